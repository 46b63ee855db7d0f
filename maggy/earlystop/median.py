"""The median stopping rule (Golovin et al., "Google Vizier", KDD 2017), as Maggy uses it."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from maggy.earlystop.abstract import AbstractEarlyStop, Decision, _as_floats, check_direction

__all__ = ["DEFAULT_MIN_FINISHED", "MedianStoppingRule", "MedianEarlyStop"]

# Chosen with benchmarks/earlystop.py (16 trials of 20 steps, 2 slots): 3 saves as many steps
# as Optuna's MedianPruner there without ever stopping the best trial, and 3 finished trials
# still give a median that one unlucky trial cannot drag around.
DEFAULT_MIN_FINISHED = 3

# Running trials whose best-so-far one rule remembers (far more than run at once).
_MAX_MEMO = 1024


class MedianStoppingRule(AbstractEarlyStop):
    """Stop a trial whose best metric so far is worse than the median of finished trials.

    A running trial that has reported ``s`` steps is stopped when at least ``min_finished``
    finished trials reported ``s`` or more steps and its best metric so far is worse than the
    median of those finished trials' running averages over their first ``s`` steps.

    Non-finite values:

    - NaN is ignored in running averages and in the trial's best so far. A finished trial
      whose first ``s`` values are all NaN does not count towards ``min_finished``.
    - A trial whose own values are all NaN so far is not stopped by this rule (NaN neither
      stops every trial nor switches the rule off for the others).
    - Infinities count as values: a trial whose best is ``inf`` (min) or ``-inf`` (max) has
      diverged and is stopped once a finite median exists. A running average over both
      ``inf`` and ``-inf`` is undefined and that finished trial does not count.

    Args:
        min_finished: how many finished trials (that reached the step) are needed before the
            rule applies. The ``es_min`` field of ``AblationConfig``.
        grace_steps: no decision before the trial reported this many values (a warm-up, as
            Ray's ``grace_period`` and Optuna's ``n_warmup_steps``): early values of a
            learning curve say little about where it ends. ``es_grace_steps`` in the config.

    Raises:
        ValueError: if ``min_finished`` is not an int >= 1 or ``grace_steps`` not an int >= 0.

    Example:
        >>> rule = MedianStoppingRule(min_finished=2)
        >>> finished = [[1.0, 0.8, 0.6], [1.2, 1.0, 0.9]]
        >>> rule.decide([1.5, 1.4], finished, "min")  # 1.4 > median(0.9, 1.1)
        <Decision.STOP: 'stop'>
        >>> rule.decide([1.05], finished, "min")  # 1.05 < median(1.0, 1.2) = 1.1
        <Decision.CONTINUE: 'continue'>
    """

    def __init__(self, min_finished: int = DEFAULT_MIN_FINISHED, grace_steps: int = 0) -> None:
        # bool is an int subclass, but True as a count is almost certainly a mistake.
        if isinstance(min_finished, bool) or not isinstance(min_finished, int) or min_finished < 1:
            raise ValueError(
                f"min_finished must be an int >= 1 (the finished trials needed before the "
                f"median rule applies), got {min_finished!r}"
            )
        if isinstance(grace_steps, bool) or not isinstance(grace_steps, int) or grace_steps < 0:
            raise ValueError(f"es_grace_steps must be an int >= 0, got {grace_steps!r}")
        self.min_finished = min_finished
        self.grace_steps = grace_steps
        # Memos keyed by id() of the lists the driver hands in, each holding its list so the
        # id cannot be reused while the entry lives. The driver passes the same finished
        # histories (final) and the same growing list per running trial on every call, so
        # a call costs O(finished trials + new values) instead of re-reading every history.
        self._finished_averages: dict[int, tuple[Sequence[float], list[float]]] = {}
        self._bests: dict[int, tuple[Sequence[float], int, str, float]] = {}

    def decide(
        self,
        history: Sequence[float],
        finished: Sequence[Sequence[float]],
        direction: str,
    ) -> Decision:
        """Apply the median rule to one running trial.

        See :meth:`AbstractEarlyStop.decide` for when the driver calls it.

        Args:
            history: the running trial's metric values so far, in report order.
            finished: histories of the finished trials (base trial included).
            direction: ``"min"`` or ``"max"``.

        Returns:
            :attr:`Decision.STOP` when the trial is worse than the median, else
            :attr:`Decision.CONTINUE`.

        Raises:
            ValueError: if ``direction`` is not ``"min"`` or ``"max"``.

        Example:
            >>> MedianStoppingRule(1).decide([0.2], [[0.5]], "max")
            <Decision.STOP: 'stop'>
        """
        check_direction(direction)
        steps = len(history)
        if steps == 0 or steps < self.grace_steps:
            return Decision.CONTINUE

        best = self._best_so_far(history, direction)
        if math.isnan(best):
            return Decision.CONTINUE

        averages = self._reference_averages(finished, steps)
        if len(averages) < self.min_finished:
            return Decision.CONTINUE

        if _is_worse(best, _median(averages), direction):
            return Decision.STOP
        return Decision.CONTINUE

    def __repr__(self) -> str:
        grace = f", grace_steps={self.grace_steps}" if self.grace_steps else ""
        return f"{type(self).__name__}(min_finished={self.min_finished}{grace})"

    def _best_so_far(self, history: Sequence[float], direction: str) -> float:
        """:func:`_best_so_far`, reading only the values added since the last call for this list."""
        entry = self._bests.get(id(history))
        if entry is not None and entry[0] is history and entry[1] <= len(history) and entry[2] == direction:
            seen, best = entry[1], entry[3]
        else:
            seen, best = 0, math.nan
            if len(self._bests) >= _MAX_MEMO:  # lists from callers that build new ones per call
                self._bests.clear()
        new = _best_so_far(_as_floats(history[seen:]), direction)
        if math.isnan(best) or _is_worse(best, new, direction):
            best = new
        self._bests[id(history)] = (history, len(history), direction, best)
        return best

    def _reference_averages(self, finished: Sequence[Sequence[float]], steps: int) -> list[float]:
        """Running averages over ``steps`` of the finished trials that reached ``steps``.

        Trials that reported fewer steps, or whose average is undefined (all NaN), are left
        out, so they do not count towards ``min_finished``. Each finished history's running
        averages are computed once.
        """
        memo = {}
        for history in finished:
            entry = self._finished_averages.get(id(history))
            if entry is None or entry[0] is not history or len(entry[1]) != len(history):
                entry = (history, _prefix_averages(_as_floats(history)))
            memo[id(history)] = entry
        self._finished_averages = memo  # only the histories passed now: nothing else is kept
        return _averages_at([prefixes for _, prefixes in memo.values()], steps)


MedianEarlyStop = MedianStoppingRule


def _best_so_far(values: Sequence[float], direction: str) -> float:
    """Best non-NaN value (lowest for min, highest for max); NaN if there is none."""
    seen = [v for v in values if not math.isnan(v)]
    if not seen:
        return math.nan
    return min(seen) if direction == "min" else max(seen)


def _prefix_averages(values: Sequence[float]) -> list[float]:
    """``out[s - 1]`` is the running average of the first ``s`` values, for every ``s``, in one pass.

    Sums left to right (the same in every Python version; ``sum()`` of floats is compensated
    from 3.12 on), so a memoised average and a fresh one are the same float.
    """
    out = []
    total, count = 0.0, 0
    for v in values:
        if not math.isnan(v):
            total += v
            count += 1
        out.append(total / count if count else math.nan)
    return out


def _averages_at(prefix_averages: Sequence[Sequence[float]], steps: int) -> list[float]:
    """The running average over ``steps`` from each list of :func:`_prefix_averages` that has one."""
    return [p[steps - 1] for p in prefix_averages if len(p) >= steps and not math.isnan(p[steps - 1])]


def _median(values: Sequence[float]) -> float:
    """Median of a non-empty list; NaN when it is undefined (``inf`` and ``-inf`` in the middle)."""
    return float(statistics.median(values))


def _is_worse(value: float, reference: float, direction: str) -> bool:
    """Strictly worse; any comparison with NaN is False, so NaN never stops a trial."""
    return value > reference if direction == "min" else value < reference
