"""The base-relative rule (``es_policy="base"``): stop a trial that clearly trails the base trial.

An ablation asks "is the model worse without this component?"; the natural reference is the
base trial at the same step, not the other ablations (which the median rule compares with, and
which may all be worse than the base). A trial is stopped once its metric has been worse than
the base trial's metric at the same step, by more than a relative margin, for several
consecutive steps; so a stopped trial's component is *clearly* needed and its delta at the
stop is a lower bound of what training to the end would have shown (the gap was growing or
holding, and the trial was not allowed to finish).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from maggy.earlystop.abstract import AbstractEarlyStop, Decision, _as_floats, check_direction

__all__ = ["BaseRelativeRule", "DEFAULT_MARGIN", "DEFAULT_PATIENCE", "relative_gap", "worse_by"]

#: Default relative margin: a trial must trail the base by more than 25% of the base's metric.
#: benchmarks/earlystop.py's W3 scenario has good ablations up to ~20% behind a good base and
#: bad ones ~100% behind: 0.25 stops every bad one and no good one.
DEFAULT_MARGIN = 0.25

#: Default patience: consecutive steps the trial must trail by more than the margin. One is
#: enough with the default margin: every trial starts from the base's seed, so a trial 25%
#: behind at the same step is behind for a reason. Raise it (or es_grace_steps) for metrics
#: that are noisy from step to step, or for components that only slow the first epochs.
DEFAULT_PATIENCE = 1


def worse_by(value: float, base: float, direction: str) -> float:
    """How much worse ``value`` is than ``base``, in the metric's units (> 0: worse).

    Example:
        >>> worse_by(1.5, 1.0, "min"), worse_by(0.75, 1.0, "max")
        (0.5, 0.25)
    """
    return value - base if direction == "min" else base - value


def relative_gap(value: float, base: float, direction: str) -> float:
    """How far ``value`` trails ``base``, relative to ``|base|`` (> 0: worse than the base).

    NaN when either is NaN or the base is 0 (no relative scale).

    Example:
        >>> relative_gap(1.5, 1.0, "min")
        0.5
        >>> relative_gap(0.5, 1.0, "max")
        0.5
    """
    if math.isnan(value) or math.isnan(base) or base == 0 or math.isinf(base):
        return math.nan
    return worse_by(value, base, direction) / abs(base)


class BaseRelativeRule(AbstractEarlyStop):
    """Stop a trial whose metric trails the base trial's at the same step.

    A running trial that has reported ``s`` values is stopped when, for each of its last
    ``patience`` reports (report ``i`` compared with the base trial's report ``i``), it is
    worse than the base by more than ``margin`` times ``|base|``, and ``s >= grace_steps``.
    Reports the base trial has not made yet cannot be compared: the decision waits for them.
    The base trial itself is never stopped (the driver does not ask for it).

    NaN in either history never counts as trailing (a NaN report breaks the streak).

    Args:
        margin: relative margin (``es_margin``), >= 0.
        patience: consecutive trailing reports needed (``es_patience``), >= 1.
        grace_steps: no decision before the trial reported this many values
            (``es_grace_steps``), >= 0.

    Raises:
        ValueError: for a negative margin, a patience below 1 or a negative grace.

    Example:
        >>> rule = BaseRelativeRule(margin=0.25, patience=2)
        >>> rule.decide([2.0, 1.8], [], "min", base=[1.0, 0.9, 0.8])
        <Decision.STOP: 'stop'>
        >>> rule.decide([1.2, 1.1], [], "min", base=[1.0, 0.9, 0.8])  # 20% and 22% behind
        <Decision.CONTINUE: 'continue'>
    """

    uses_base = True
    marks_lower_bound = True

    def __init__(
        self,
        margin: float = DEFAULT_MARGIN,
        patience: int = DEFAULT_PATIENCE,
        grace_steps: int = 0,
    ) -> None:
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
            raise ValueError(f"es_margin must be a number >= 0 (relative to the base metric), got {margin!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"es_patience must be an int >= 1 (consecutive steps), got {patience!r}")
        if isinstance(grace_steps, bool) or not isinstance(grace_steps, int) or grace_steps < 0:
            raise ValueError(f"es_grace_steps must be an int >= 0, got {grace_steps!r}")
        self.margin = float(margin)
        self.patience = patience
        self.grace_steps = grace_steps

    def decide(
        self,
        history: Sequence[float],
        finished: Sequence[Sequence[float]],
        direction: str,
        base: Optional[Sequence[float]] = None,
    ) -> Decision:
        """Compare the running trial's last ``patience`` reports with the base trial's.

        Args:
            history: the running trial's metric values so far, in report order.
            finished: ignored (the reference is the base trial, not the others).
            direction: ``"min"`` or ``"max"``.
            base: the base trial's values so far (the same repeat's base trial); ``None``
                or too short: no decision yet.

        Returns:
            :attr:`Decision.STOP` or :attr:`Decision.CONTINUE`.
        """
        check_direction(direction)
        steps = len(history)
        if steps < max(self.grace_steps, self.patience, 1):
            return Decision.CONTINUE
        if base is None or len(base) < steps:
            return Decision.CONTINUE  # the base has not reached this step: wait for it
        recent = _as_floats(history[steps - self.patience:steps])
        reference = _as_floats(base[steps - self.patience:steps])
        if all(relative_gap(v, b, direction) > self.margin for v, b in zip(recent, reference)):
            return Decision.STOP
        return Decision.CONTINUE

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(margin={self.margin:g}, patience={self.patience}, "
            f"grace_steps={self.grace_steps})"
        )
