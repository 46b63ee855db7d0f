"""The live progress bar of an experiment."""

from __future__ import annotations

import math
from typing import Optional

from maggy.trial import TrialStatus

__all__ = ["Progress"]


def _tqdm_class():
    # tqdm.auto picks the notebook widget in Jupyter, which needs ipywidgets; without it,
    # it warns on every run, so fall back to the text bar, which renders in notebooks too.
    try:
        import ipywidgets  # noqa: F401

        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    return tqdm


class Progress:
    """Shows trials finished / total, running, early-stopped, failed and the best metric.

    Uses ``tqdm.auto``, so it renders as a widget in Jupyter and as a bar in terminals.

    Args:
        total: number of trials.
        direction: ``"min"`` or ``"max"``, to know which metric is best.
        enabled: ``False`` makes every method a no-op.
        done: trials that already have a result (resume).
    """

    def __init__(self, total: int, direction: str, enabled: bool = True, done: int = 0):
        self._direction = direction
        self._running: set = set()
        self._stopped = 0
        self._failed = 0
        self._best: Optional[float] = None
        self._bar = None
        if enabled:
            tqdm = _tqdm_class()
            self._bar = tqdm(total=total, initial=done, desc="maggy", unit="trial", dynamic_ncols=True)
            self._refresh()

    def started(self, trial_id: str) -> None:
        """A trial started on an executor."""
        self._running.add(trial_id)
        self._refresh()

    def requeued(self, trial_id: str) -> None:
        """A running trial was lost and put back into the queue."""
        self._running.discard(trial_id)
        self._refresh()

    def ended(self, record: dict) -> None:
        """A trial ended; ``record`` is its trial record."""
        self._running.discard(record["trial_id"])
        if record["status"] == TrialStatus.EARLY_STOPPED:
            self._stopped += 1
        elif record["status"] == TrialStatus.FAILED:
            self._failed += 1
        metric = record.get("metric")
        if record["status"] == TrialStatus.FINISHED and metric is not None and not math.isnan(metric):
            if self._best is None or (metric < self._best if self._direction == "min" else metric > self._best):
                self._best = metric
        self._refresh()
        if self._bar is not None:
            self._bar.update(1)  # redraws, subject to tqdm's rate limit

    def grow(self, count: int) -> None:
        """``count`` more trials were scheduled while the experiment runs (adaptive ablators)."""
        if self._bar is not None and count:
            self._bar.total += count
            self._bar.refresh()

    def write(self, line: str) -> None:
        """Prints a line above the bar; nothing when the display is off (``verbose=False``)."""
        if self._bar is not None:
            self._bar.write(line)

    def close(self) -> None:
        """Finishes the bar."""
        if self._bar is not None:
            self._refresh(now=True)
            self._bar.close()

    def _refresh(self, now: bool = False) -> None:
        if self._bar is None:
            return
        best = "-" if self._best is None else f"{self._best:.4g}"
        self._bar.set_postfix_str(
            f"running={len(self._running)} stopped={self._stopped} failed={self._failed} best={best}", refresh=now
        )
