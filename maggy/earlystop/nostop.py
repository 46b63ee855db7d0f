"""The rule that never stops a trial (``es_policy="none"``)."""

from __future__ import annotations

from collections.abc import Sequence

from maggy.earlystop.abstract import AbstractEarlyStop, Decision, check_direction

__all__ = ["NoEarlyStop"]


class NoEarlyStop(AbstractEarlyStop):
    """Let every trial run to the end.

    Example:
        >>> NoEarlyStop().decide([9.0, 9.5], [[0.1], [0.2], [0.3]], "min")
        <Decision.CONTINUE: 'continue'>
    """

    reads_running_metrics = False

    def decide(
        self,
        history: Sequence[float],
        finished: Sequence[Sequence[float]],
        direction: str,
    ) -> Decision:
        """Always :attr:`Decision.CONTINUE` (``direction`` is still checked).

        Args:
            history: ignored.
            finished: ignored.
            direction: ``"min"`` or ``"max"``.

        Returns:
            :attr:`Decision.CONTINUE`.

        Raises:
            ValueError: if ``direction`` is not ``"min"`` or ``"max"``.

        Example:
            >>> NoEarlyStop().decide([], [], "max")
            <Decision.CONTINUE: 'continue'>
        """
        check_direction(direction)
        return Decision.CONTINUE
