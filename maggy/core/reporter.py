"""The reporter a train_fn receives: it streams metrics to the driver and relays stop flags."""

from __future__ import annotations

import numbers
import threading
import time
from typing import Callable, Optional

import grpc

from maggy.core.rpc.client import trial_revoked
from maggy.exceptions import EarlyStopException

__all__ = ["Reporter", "to_float"]

# What the heartbeat thread calls: send(seq, metrics, logs) -> stop flag.
SendFn = Callable[[int, list, list], bool]

#: Shortest pause between two heartbeats, in seconds (or ``hb_interval`` if that is shorter).
#: A train_fn that broadcasts every batch would otherwise make one call per batch, and those
#: calls cost CPU on the executor and the driver alike: on 2 cores, broadcasting each of 1,500
#: steps of a small MLP doubled the makespan of benchmarks/training.py. 0.1 s is at most ten
#: heartbeats a second per trial, and delays metrics and stop flags by no more than that.
MIN_HEARTBEAT_GAP = 0.1


def to_float(value, what: str = "metric") -> float:
    """``value`` as a float: numbers, numpy scalars and one-element tensors are accepted.

    Raises:
        TypeError: anything else, naming what was received.
    """
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError) as e:
            raise TypeError(f"{what} must be a number or a one-element tensor, got {value!r}") from e
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number or a one-element tensor, got {type(value).__name__}: {value!r}")
    return float(value)


class Reporter:
    """Streams a trial's metrics and log lines to the driver.

    A background thread sends a heartbeat when something new was reported, but no sooner
    than :data:`MIN_HEARTBEAT_GAP` (or ``hb_interval``, if shorter) after the last one that
    carried anything, so
    broadcasts made in between travel together; and at least every ``hb_interval`` seconds,
    which tells the driver the trial is alive. When the driver's early-stopping rule does
    not read running metrics (``metrics_wanted=False``, e.g. ``es_policy="none"``), metrics
    alone wait for that keep-alive: a train_fn that broadcasts every batch then costs one
    call per ``hb_interval``, not ten a second. Log lines always go within the short gap.
    One call is in flight at a time. Every
    broadcast metric reaches the driver: what a heartbeat could not deliver goes with the
    next one, and what is left when the trial ends goes with its final result.

    Args:
        send: callable ``send(seq, metrics, logs) -> stop`` that delivers one heartbeat.
        hb_interval: longest pause between heartbeats, in seconds.
        trial_id: id of the trial being reported.
        metrics_wanted: whether the driver wants metrics as soon as they are broadcast.

    Example:
        >>> def train(model_function, dataset_function, reporter):
        ...     for epoch in range(10):
        ...         loss = ...
        ...         reporter.broadcast(metric=loss, step=epoch)   # may raise EarlyStopException
        ...     return loss
    """

    def __init__(self, send: SendFn, hb_interval: float = 1.0, trial_id: Optional[str] = None,
                 metrics_wanted: bool = True):
        self._send = send
        self._hb_interval = hb_interval
        self._min_gap = min(MIN_HEARTBEAT_GAP, hb_interval)
        self._metrics_wanted = metrics_wanted
        self.trial_id = trial_id
        self._cond = threading.Condition()
        self._metrics: list[tuple[int, float]] = []
        self._logs: list[tuple[str, bool]] = []
        self._seq = 0
        self._count = 0
        self._last_metric: Optional[float] = None
        self._stop = False
        self._closing = False
        self._thread: Optional[threading.Thread] = None

    # -- used by train_fn -------------------------------------------------------------
    def broadcast(self, metric, step: Optional[int] = None) -> None:
        """Reports an intermediate metric.

        Args:
            metric: a number or one-element tensor (NaN is allowed and recorded).
            step: the step (epoch, batch) it belongs to; defaults to the report count.

        Raises:
            EarlyStopException: the driver decided to stop this trial. maggy catches it and
                records the trial as early-stopped with this metric.
        """
        value = to_float(metric)
        if step is not None and (isinstance(step, bool) or not isinstance(step, numbers.Integral)):
            raise TypeError(f"step must be an int, got {step!r}")
        with self._cond:
            self._metrics.append((self._count if step is None else int(step), value))
            self._count += 1
            self._last_metric = value
            if self._metrics_wanted:  # else they wait for the keep-alive: no need to wake it
                self._cond.notify()
            stop = self._stop
        if stop:
            raise EarlyStopException(value)

    def log(self, line: str, jupyter: bool = True) -> None:
        """Writes a line to the trial's log on the driver.

        Args:
            line: the text; several lines are split.
            jupyter: also show the line in the driver's output (notebook or terminal).
        """
        with self._cond:
            for part in str(line).splitlines() or [""]:
                self._logs.append((part, bool(jupyter)))
            self._cond.notify()

    def get_trial_id(self) -> Optional[str]:
        """The id of the trial being run."""
        return self.trial_id

    @property
    def stopped(self) -> bool:
        """True once the driver asked this trial to stop."""
        return self._stop

    @property
    def last_metric(self) -> Optional[float]:
        """The last metric broadcast, if any."""
        return self._last_metric

    # -- used by the executor ---------------------------------------------------------
    def start(self) -> "Reporter":
        """Starts the heartbeat thread."""
        self._thread = threading.Thread(target=self._run, name="maggy-heartbeat", daemon=True)
        self._thread.start()
        return self

    def close(self) -> tuple[list, list]:
        """Stops the heartbeat thread; returns the metrics and log lines it did not send."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            metrics, logs = self._metrics, self._logs
            self._metrics, self._logs = [], []
        return metrics, logs

    def _due(self) -> bool:
        """Whether what is waiting should go now rather than with the next keep-alive."""
        return bool(self._logs) or (self._metrics_wanted and bool(self._metrics)) or self._closing

    def _run(self) -> None:
        next_allowed = 0.0  # time.monotonic() before which no heartbeat is sent
        last_sent = time.monotonic()
        while True:
            with self._cond:
                keep_alive = last_sent + self._hb_interval - time.monotonic()
                if keep_alive > 0:
                    self._cond.wait_for(self._due, keep_alive)
                pause = next_allowed - time.monotonic()
                if pause > 0:  # close() ends the pause at once
                    self._cond.wait_for(lambda: self._closing, pause)
                if self._closing:
                    return
                metrics, self._metrics = self._metrics, []
                logs, self._logs = self._logs, []
                self._seq += 1
                seq = self._seq
            # Only a heartbeat that carried something holds back the next one: a keep-alive
            # sent just before the trial's first metric would otherwise delay that metric, and
            # the stop decision it brings, by a whole gap.
            last_sent = time.monotonic()
            next_allowed = last_sent + self._min_gap if (metrics or logs) else 0.0
            try:
                stop = self._send(seq, metrics, logs)
            except grpc.RpcError as e:
                with self._cond:
                    if trial_revoked(e):  # a stale copy: it stops at its next broadcast
                        self._stop = True
                        return
                    # Transient failure: keep everything for the next heartbeat, in order.
                    self._metrics = metrics + self._metrics
                    self._logs = logs + self._logs
                    self._cond.wait(self._hb_interval)
                continue
            if stop:
                with self._cond:
                    self._stop = True
