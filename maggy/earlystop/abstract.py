"""The interface between the driver and an early-stopping rule.

A rule sees plain data only: the metric values each trial reported, in report order. It never
touches Spark, RPC or files; the driver hands it a snapshot and acts on the answer.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Mapping, Sequence

from maggy.trial import check_direction

__all__ = ["Decision", "AbstractEarlyStop", "check_direction"]


class Decision(enum.Enum):
    """What the driver should do with a running trial.

    Example:
        >>> Decision.STOP is Decision["STOP"]
        True
    """

    CONTINUE = "continue"
    STOP = "stop"


class AbstractEarlyStop(abc.ABC):
    """Base class of early-stopping rules.

    Subclasses implement :meth:`decide` for one trial, which the driver calls whenever a
    running trial's heartbeat brings new metrics; the batch hook :meth:`earlystop_check` (the
    original Maggy interface) is built on top of it for callers that hold several trials.

    Histories are the metric values a trial reported through ``reporter.broadcast``, in report
    order; a trial that reported ``s`` values "has reported ``s`` steps", whatever step numbers
    it passed. Values may be NaN (or ``None``, read as NaN) or infinite.

    Example:
        >>> class StopAfter(AbstractEarlyStop):
        ...     def decide(self, history, finished, direction):
        ...         return Decision.STOP if len(history) > 10 else Decision.CONTINUE
        >>> StopAfter().earlystop_check({"t1": [0.5] * 11, "t2": [0.5]}, [], "min")
        ['t1']
    """

    #: True for rules that compare with the base trial: the driver then passes the base
    #: trial's values so far (same repeat) as ``decide(..., base=values)``.
    uses_base: bool = False

    #: False for rules that never look at a running trial's metrics: its executor then sends
    #: them with the keep-alive heartbeat (every ``hb_interval``) instead of within
    #: :data:`maggy.core.reporter.MIN_HEARTBEAT_GAP`, which saves the CPU of up to ten
    #: calls a second per trial.
    reads_running_metrics: bool = True

    #: True for rules that stop only trials trailing the base trial beyond a margin: the
    #: component of a trial stopped so is reported as needed, with its delta at the stop
    #: (against the base at the same step) marked as a lower bound.
    marks_lower_bound: bool = False

    @abc.abstractmethod
    def decide(
        self,
        history: Sequence[float],
        finished: Sequence[Sequence[float]],
        direction: str,
    ) -> Decision:
        """Decide whether one running trial should stop.

        Called by :meth:`earlystop_check` for each running trial that reported new metrics
        since the last check (the driver does this on every heartbeat that carries new
        metrics). Never called for the base trial: the driver excludes it.

        Args:
            history: the running trial's metric values so far, in report order.
            finished: the histories of the trials that finished so far (status
                ``finished``), the base trial included.
            direction: ``"min"`` or ``"max"`` — which way is better.

        Returns:
            :attr:`Decision.STOP` or :attr:`Decision.CONTINUE`.
        """

    def earlystop_check(
        self,
        to_check: Mapping[str, Sequence[float]],
        finalized_trials: Sequence[Sequence[float]],
        direction: str,
    ) -> list[str]:
        """Return the ids of the running trials the driver should stop.

        The batch form of :meth:`decide`, kept from the original Maggy interface: it applies
        ``decide`` to each running trial. The driver itself calls ``decide`` for the one trial
        whose heartbeat brought new metrics, then sets that trial's stop flag, which the
        executor's next ``broadcast`` turns into ``EarlyStopException``. The base trial is
        never checked.

        Args:
            to_check: running trial id -> its metric values so far, in report order.
            finalized_trials: the histories of the trials that finished (status
                ``finished``; not early-stopped or failed ones), the base trial included.
            direction: ``"min"`` or ``"max"``.

        Returns:
            The trial ids to stop, in the order of ``to_check``.

        Raises:
            ValueError: if ``direction`` is not ``"min"`` or ``"max"``.

        Example:
            >>> from maggy.earlystop import MedianStoppingRule
            >>> finished = [[1.0, 0.9], [1.1, 1.0], [1.2, 1.1]]
            >>> MedianStoppingRule().earlystop_check({"a": [2.0, 1.9], "b": [1.0]}, finished, "min")
            ['a']
        """
        check_direction(direction)
        finished = [_as_floats(h) for h in finalized_trials]
        return [
            trial_id
            for trial_id, history in to_check.items()
            if self.decide(_as_floats(history), finished, direction) is Decision.STOP
        ]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _as_floats(values: Sequence[float | None]) -> list[float]:
    # The driver forwards what executors sent; None stands for "no value" and reads as NaN
    # so that one bad report cannot crash the controller loop.
    return [math.nan if v is None else float(v) for v in values]
