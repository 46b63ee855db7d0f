"""The driver's trial table: which trial is pending, running where, or done.

Plain state behind one lock, with no I/O: the gRPC servicer calls into it from its handler
threads, the driver's controller reads the events it emits. Kept apart from the servicer so
the rules (hand-off, lost executors, stale and duplicate messages, early stopping) can be
read and tested in one place.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import queue
import threading
import time
from typing import Any, Optional, Sequence

from maggy.earlystop import AbstractEarlyStop, Decision, NoEarlyStop
from maggy.earlystop.base_relative import relative_gap, worse_by
from maggy.trial import TrialStatus

__all__ = ["TrialScheduler", "SchedulerError"]


class SchedulerError(Exception):
    """A message the scheduler refuses; ``code`` is the gRPC status name to answer with."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class _Running:
    spec: dict
    attempt: int
    executor_id: str
    started: float
    last_seen: float
    history: list = dataclasses.field(default_factory=list)
    values: list = dataclasses.field(default_factory=list)  # the metric values of history, for the policy
    last_seq: int = 0
    stop: bool = False
    checked_steps: int = 0
    stop_info: Optional[dict] = None  # where the rule stopped it: step, gap to the base


@dataclasses.dataclass
class _Executor:
    partition: int
    task_attempt: int
    host: str
    trial_id: Optional[str] = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.partition}"


class TrialScheduler:
    """Hands out trials, collects their metrics and results, and re-queues lost ones.

    Thread model: every public method may be called from any thread; all state is guarded
    by ``self._cond``'s lock. ``next()`` blocks on that condition while no trial is pending
    but some are still running (a lost trial may come back). Whatever the controller must
    act on (a trial started, logged, stopped, ended) is put on ``self.events``, a
    ``queue.Queue`` of ``(kind, payload)`` tuples, so no I/O happens under the lock.

    Args:
        specs: trial specs to run, in order.
        policy: early-stopping rule, or ``None`` for none.
        direction: ``"min"`` or ``"max"``.
        es_interval: consult the rule after every ``es_interval``-th step of a trial.
        max_trial_retries: how often a trial lost with its executor is run again.
        finished_histories: metric histories of trials finished in an earlier run (resume).
        hold_executors: an executor with nothing to run waits for :meth:`close` instead of
            leaving once every trial has a record. For an adaptive ablator, which may add
            trials (:meth:`add`) after the last result, and for ``lagom()``, which writes its
            report before Spark ends the job (:mod:`maggy.core.job_end`).
    """

    def __init__(
        self,
        specs: Sequence[dict],
        policy: Optional[AbstractEarlyStop] = None,
        direction: str = "max",
        es_interval: int = 1,
        max_trial_retries: int = 2,
        finished_histories: Sequence[Sequence[float]] = (),
        base_histories: Optional[dict] = None,
        hold_executors: bool = False,
    ):
        self._cond = threading.Condition()
        self._specs = {spec["trial_id"]: spec for spec in specs}
        self._pending = collections.deque(specs)
        self._running: dict[str, _Running] = {}
        self._done: dict[str, dict] = {}
        self._attempts: collections.Counter = collections.Counter()
        self._executors: dict[str, _Executor] = {}
        self._by_partition: dict[int, str] = {}
        self._ids = itertools.count(1)
        self._finished_histories = [list(h) for h in finished_histories]
        # repeat -> the base trial's metric values so far: the live list of a running base
        # trial, or the history of one that finished (also in an earlier, resumed run).
        self._base_values: dict[int, list] = {int(r): list(v) for r, v in (base_histories or {}).items()}
        self._closed = False
        self.hold_executors = hold_executors
        self.policy = policy
        self.direction = direction
        self.es_interval = es_interval
        self.max_trial_retries = max_trial_retries
        self.events: "queue.Queue[tuple[str, Any]]" = queue.Queue()

    # -- queries ----------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Number of trials this scheduler runs."""
        return len(self._specs)

    def is_over(self) -> bool:
        """True when no trial will be handed out any more (all done, or closed)."""
        with self._cond:
            return self._closed or (not self.hold_executors and len(self._done) == len(self._specs))

    def all_done(self) -> bool:
        """True when every trial has a record."""
        with self._cond:
            return len(self._done) == len(self._specs)

    def records(self) -> list[dict]:
        """Records of the trials that ended, in the order they ended."""
        with self._cond:
            return list(self._done.values())

    # -- called by the RPC handlers ---------------------------------------------------
    def register(self, partition: int, task_attempt: int, host: str) -> str:
        """Records a new executor task; a task replacing one of the same slot loses its trial."""
        with self._cond:
            previous = self._by_partition.get(partition)
            if previous is not None:
                old = self._executors[previous]
                if old.trial_id is not None:
                    self._lose(old.trial_id, f"executor {old.name} was lost (Spark restarted its task)")
            executor_id = f"e{next(self._ids)}-p{partition}"
            self._executors[executor_id] = _Executor(partition, task_attempt, host)
            self._by_partition[partition] = executor_id
            return executor_id

    def next(self, executor_id: str, result: Optional[dict] = None, wait: Optional[float] = None) -> Optional[tuple[dict, int]]:
        """Takes the executor's last result (if any) and returns its next ``(spec, attempt)``.

        Blocks while nothing is pending but trials are still running; returns ``None`` when
        the experiment is over (or after ``wait`` seconds, for callers that must not block).

        Raises:
            SchedulerError: unknown executor, or a result that is unknown, stale or duplicate.
        """
        with self._cond:
            executor = self._executor(executor_id)
            if result is not None:
                self._finish(executor_id, executor, result)
            deadline = None if wait is None else time.monotonic() + wait
            while True:
                if self._pending and not self._closed:
                    spec = self._pending.popleft()
                    return spec, self._start(spec, executor_id, executor)
                if self._closed or (not self.hold_executors and len(self._done) == len(self._specs)):
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def heartbeat(self, executor_id: str, trial_id: str, attempt: int, seq: int,
                  metrics: Sequence[tuple[int, float]], logs: Sequence[tuple[str, bool]]) -> bool:
        """Records a running trial's new metrics and logs; returns its stop flag.

        Raises:
            SchedulerError: unknown executor or trial, a trial this executor is not running
                (any more), or a heartbeat older than one already received.
        """
        with self._cond:
            self._executor(executor_id)
            running = self._running_of(executor_id, trial_id, attempt, "heartbeat")
            if seq <= running.last_seq:
                raise SchedulerError("OUT_OF_RANGE", f"out-of-order heartbeat {seq} for trial {trial_id} (last was {running.last_seq})")
            running.last_seq = seq
            running.last_seen = time.monotonic()
            _add_metrics(running, metrics)
            if logs:
                self.events.put(("log", (trial_id, list(logs))))
            if metrics and not running.stop and self._should_stop(running):
                self._stop(running)
            if metrics and running.spec.get("index") == 0 and getattr(self.policy, "uses_base", False):
                self._recheck_against_base(running, added=len(metrics))
            return running.stop

    # -- called by the controller -----------------------------------------------------
    def add(self, specs: Sequence[dict]) -> None:
        """Queues trials decided while the experiment runs (after those pending).

        Raises:
            ValueError: a trial id already known, or the scheduler is closed.
        """
        with self._cond:
            if self._closed:
                raise ValueError("cannot add trials to a closed scheduler")
            for spec in specs:
                if spec["trial_id"] in self._specs:
                    raise ValueError(f"trial {spec['trial_id']!r} was already scheduled")
            for spec in specs:
                self._specs[spec["trial_id"]] = spec
                self._pending.append(spec)
            self._cond.notify_all()

    def check_timeouts(self, timeout: float) -> None:
        """Treats trials silent for more than ``timeout`` seconds as lost with their executor."""
        now = time.monotonic()
        with self._cond:
            for trial_id, running in list(self._running.items()):
                if now - running.last_seen > timeout:
                    executor = self._executors[running.executor_id]
                    self._lose(trial_id, f"no heartbeat from executor {executor.name} for {timeout:g} s")

    def fail_remaining(self, reason: str) -> None:
        """Ends every pending and running trial as failed (the Spark job is gone)."""
        with self._cond:
            for trial_id in list(self._running):
                self._record(self._running.pop(trial_id).spec, status=TrialStatus.FAILED, error=reason)
            while self._pending:
                self._record(self._pending.popleft(), status=TrialStatus.FAILED, error=reason)
            self._cond.notify_all()

    def close(self) -> None:
        """Releases every blocked ``next()`` call with "done"."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- internals (lock held) --------------------------------------------------------
    def _executor(self, executor_id: str) -> _Executor:
        try:
            return self._executors[executor_id]
        except KeyError:
            raise SchedulerError("NOT_FOUND", f"unknown executor {executor_id!r}; register first") from None

    def _running_of(self, executor_id: str, trial_id: str, attempt: int, what: str) -> _Running:
        if trial_id not in self._specs:
            raise SchedulerError("NOT_FOUND", f"{what} for unknown trial {trial_id!r}")
        running = self._running.get(trial_id)
        if trial_id in self._done and (running is None or running.attempt != attempt):
            raise SchedulerError("ALREADY_EXISTS", f"{what} for trial {trial_id}, which already has a result")
        if running is None or running.attempt != attempt or running.executor_id != executor_id:
            raise SchedulerError("FAILED_PRECONDITION", f"{what} for trial {trial_id} attempt {attempt}, which this executor is not running")
        return running

    def _start(self, spec: dict, executor_id: str, executor: _Executor) -> int:
        trial_id = spec["trial_id"]
        self._attempts[trial_id] += 1
        now = time.monotonic()
        self._running[trial_id] = _Running(spec, self._attempts[trial_id], executor_id, now, now)
        if spec.get("index") == 0:
            self._base_values[spec.get("repeat", 0)] = self._running[trial_id].values
        executor.trial_id = trial_id
        self.events.put(("started", (trial_id, executor.name, self._attempts[trial_id])))
        return self._attempts[trial_id]

    def _finish(self, executor_id: str, executor: _Executor, result: dict) -> None:
        running = self._running_of(executor_id, result["trial_id"], result["attempt"], "result")
        del self._running[result["trial_id"]]
        executor.trial_id = None
        _add_metrics(running, result.get("metrics", ()))
        if result.get("logs"):
            self.events.put(("log", (result["trial_id"], list(result["logs"]))))
        self._record(
            running.spec,
            status=result["status"],
            metric=result.get("metric"),
            history=running.history,
            duration_s=result.get("duration_s", time.monotonic() - running.started),
            executor=executor.name,
            error=result.get("error") or None,
            stop=running.stop_info if result["status"] == TrialStatus.EARLY_STOPPED else None,
        )

    def _record(self, spec: dict, status: TrialStatus, metric=None, history=(), duration_s=0.0, executor=None,
                error=None, stop: Optional[dict] = None) -> None:
        trial_id = spec["trial_id"]
        record = dict(spec)
        record.update(
            status=status,
            metric=metric,
            history=[list(h) for h in history],
            steps=len(history),
            duration_s=duration_s,
            executor=executor,
            error=error,
            attempts=self._attempts[trial_id],
        )
        if stop is not None:
            record.update(stop)
        self._done[trial_id] = record
        if status == TrialStatus.FINISHED:  # the median rule compares with trials that ran their course
            self._finished_histories.append([v for _, v in record["history"]])
        self.events.put(("ended", record))
        self._cond.notify_all()

    def _lose(self, trial_id: str, reason: str) -> None:
        running = self._running.pop(trial_id)
        self._executors[running.executor_id].trial_id = None
        if self._attempts[trial_id] > self.max_trial_retries:
            self._record(running.spec, status=TrialStatus.FAILED, history=running.history, error=f"lost {self._attempts[trial_id]} times; last: {reason}")
        else:
            self._pending.appendleft(running.spec)
            self.events.put(("requeued", (trial_id, reason)))
        self._cond.notify_all()

    def _should_stop(self, running: _Running) -> bool:
        if self.policy is None or type(self.policy) is NoEarlyStop or running.spec.get("index") == 0:
            return False  # the base trial is what everything is compared with: never stopped
        steps = len(running.values)
        if steps // self.es_interval == running.checked_steps // self.es_interval:
            return False
        running.checked_steps = steps
        # running.values grows with each heartbeat instead of being rebuilt from the history,
        # so the scheduler's own work per heartbeat does not grow with the trial's length.
        # The policy gets the live lists under the lock: it must not modify them (the median
        # rule remembers them, to read only what was added by its next call).
        extra = {"base": self._base_of(running)} if self.policy.uses_base else {}
        return self.policy.decide(running.values, self._finished_histories, self.direction, **extra) is Decision.STOP

    def _recheck_against_base(self, base: _Running, added: int) -> None:
        """Asks the rule again about the trials of ``base``'s repeat, now that the base reported more.

        A trial that got ahead of its base trial could not be compared at its own heartbeat;
        without this it would wait for its next one, a step or more later.
        """
        repeat = base.spec.get("repeat", 0)
        for other in self._running.values():
            if other is base or other.stop or not other.values or other.spec.get("repeat", 0) != repeat:
                continue
            before = len(base.values) - added
            if not before < len(other.values) <= len(base.values):
                continue  # compared at its own heartbeat already, or still ahead of the base
            if self.policy.decide(other.values, self._finished_histories, self.direction, base=base.values) is Decision.STOP:
                self._stop(other)

    def _stop(self, running: _Running) -> None:
        """Sets the trial's stop flag (its next heartbeat reply carries it) and notes why."""
        running.stop = True
        running.stop_info = self._stop_info(running)
        self.events.put(("stopping", running.spec["trial_id"]))

    def _base_of(self, running: _Running) -> Optional[list]:
        """The metric values of the base trial of ``running``'s repeat, so far (None: not started)."""
        return self._base_values.get(running.spec.get("repeat", 0))

    def _stop_info(self, running: _Running) -> dict:
        """What a stopped trial's record says about the stop: at which step, how far behind the base.

        ``stop_step`` is the step number of the last metric the rule saw; ``stop_base_gap`` the
        relative gap to the base trial's metric at the same report (> 0: worse than the base;
        None when the base had not reported that far) and ``stop_base_delta`` the same gap in
        the metric's units; ``stop_lower_bound`` whether the rule stops only trials clearly
        worse than the base (then that delta is a lower bound of the component's effect).
        """
        base = self._base_of(running)
        at = len(running.values)
        gap = delta = None
        if base is not None and len(base) >= at:
            value = relative_gap(running.values[at - 1], base[at - 1], self.direction)
            gap = None if value != value else round(value, 6)  # NaN: no relative scale
            value = worse_by(running.values[at - 1], base[at - 1], self.direction)
            delta = None if value != value else value
        return {"stop_step": running.history[-1][0], "stop_base_gap": gap, "stop_base_delta": delta,
                "stop_rule": repr(self.policy),
                "stop_lower_bound": bool(getattr(self.policy, "marks_lower_bound", False) and delta is not None)}


def _add_metrics(running: _Running, metrics) -> None:
    for step, value in metrics:
        value = float(value)
        running.history.append([int(step), value])
        running.values.append(value)
