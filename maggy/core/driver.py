"""The driver: runs an experiment's trials on Spark and collects what they report."""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import threading
import time
from typing import Any, Callable, Iterator, Optional

from maggy.core.endpoint import Endpoint
from maggy.core.executor import ExecutorContext, run_task
from maggy.core.job_end import end_job
from maggy.core.job_errors import explain
from maggy.core.journal import Journal
from maggy.core.launch import Launch
from maggy.core.progress import Progress
from maggy.core.rpc.server import serve
from maggy.core.rpc.tls import make_certificate
from maggy.core.scheduler import TrialScheduler
from maggy.core.servicer import DriverServicer
from maggy.core.shipping import pack
from maggy import layout
from maggy.trial import TrialStatus, describe

__all__ = ["Driver"]


class Driver:
    """Runs one experiment: a gRPC server, one Spark job, and the controller loop.

    The job starts first (:meth:`started`), so that Spark's Python workers start while the
    caller runs pre-flight and prepares the run's folder; the executors wait at ``Register``
    until :meth:`run` lets them in with what was decided meanwhile (the training data, the
    TensorBoard folder). If the caller fails before that, they are sent away and the job is
    cancelled: no trial runs.

    Thread model:

    * The caller's thread runs :meth:`run`, the controller loop. It alone owns the journal,
      the per-trial log files, the TensorBoard writers and the progress bar, and it learns
      what happened from ``scheduler.events`` (a queue), so no I/O happens on a handler
      thread or under the scheduler's lock.
    * gRPC handler threads (the pool of :func:`~maggy.core.rpc.server.serve`) call into the
      :class:`~maggy.core.scheduler.TrialScheduler`, whose lock guards every trial's state.
    * One ``maggy-spark-job`` thread runs the blocking Spark action and puts
      ``("spark_done", (error, setup_failures))`` on the event queue when it returns. When
      :meth:`started` ends, :meth:`Launch.end <maggy.core.launch.Launch.end>` waits for it
      (on a thread of its own for a classic session); an exception (a keyboard interrupt, a
      failed pre-flight) cancels the job (group or tag) and waits for it.

    Args:
        scheduler: the trial table, holding the trials still to run.
        train_fn: the user's training function.
        study: the ablation study.
        optimization_key: key of the metric in a dict returned by train_fn.
        hb_interval: heartbeat interval, seconds.
        hb_timeout: silence after which a running trial counts as lost, seconds.
        tls: encrypt the channel with a certificate made for this run, which executors pin;
            ``None``: on when executors may dial from other machines (see
            :mod:`maggy.core.endpoint`), off for a local master.
        repair_rules: the experiment's repair rules, for the executors' model surgery.
    """

    def __init__(
        self,
        scheduler: TrialScheduler,
        train_fn: Callable,
        study: Any,
        optimization_key: str = "metric",
        hb_interval: float = 1.0,
        hb_timeout: float = 60.0,
        tls: Optional[bool] = None,
        repair_rules: Optional[dict] = None,
    ):
        self.scheduler = scheduler
        self.train_fn = train_fn
        self.study = study
        self.optimization_key = optimization_key
        self.hb_interval = hb_interval
        self.hb_timeout = hb_timeout
        self.tls = tls
        self.repair_rules = dict(repair_rules or {})
        self._servicer = DriverServicer(scheduler, held=True)
        #: Set when the first trial starts (the Spark workers are up).
        self.first_trial_started = threading.Event()
        self._spark_gone = False
        self._logs: dict[str, Any] = {}
        self.run_dir: Optional[str] = None

    @contextlib.contextmanager
    def started(self, launch: Launch, slots: int) -> Iterator["Driver"]:
        """Starts the server and the Spark job of ``slots`` tasks, for the ``with`` block.

        The tasks start loading and register, then wait for :meth:`run`. On leaving the
        block the tasks are let go, and :meth:`Launch.end <maggy.core.launch.Launch.end>`
        ends the job and then stops the server: a classic session's job ends after the
        block, on a thread of its own (:mod:`maggy.core.job_end`). If the block raised, the
        job is cancelled and has ended, and the server stopped, before the exception leaves.
        """
        token = secrets.token_urlsafe(32)
        endpoint = Endpoint.resolve(*launch.hosts())
        use_tls = endpoint.is_remote if self.tls is None else self.tls
        certificate = make_certificate() if use_tls else None
        with contextlib.ExitStack() as server:
            _, port = server.enter_context(serve(self._servicer, token, host=endpoint.bind_host,
                                                 port=endpoint.bind_port, max_workers=2 * slots + 16,
                                                 certificate=certificate))
            payload = pack(ExecutorContext(
                address=endpoint.address(port),
                token=token,
                tls_cert=certificate.cert_pem if certificate is not None else None,
                study=self.study,
                train_fn=self.train_fn,
                optimization_key=self.optimization_key,
                hb_interval=self.hb_interval,
                repair_rules=self.repair_rules,
                gpus_per_trial=launch.gpus_per_trial,
                metrics_wanted=self.scheduler.policy is not None and self.scheduler.policy.reads_running_metrics,
            ))
            job = threading.Thread(target=self._spark_job, args=(launch, slots, payload),
                                   name="maggy-spark-job", daemon=True)
            job.start()
            try:
                yield self
            except BaseException:
                self._servicer.call_off()
                launch.cancel()
                self.scheduler.close()
                end_job(job, launch.cancel)
                raise
            self._servicer.call_off()  # executors still waiting to be let in leave
            self.scheduler.close()  # the others get "done"
            launch.tasks_released()
            launch.end(job, then=server.pop_all().close)

    def run(
        self,
        run_dir: str,
        data: Any = None,
        progress: Optional[Progress] = None,
        on_record: Optional[Callable[[dict], None]] = None,
        tensorboard_dir: Optional[str] = None,
        more_trials: Optional[Callable[[list], list]] = None,
    ) -> list[dict]:
        """Lets the waiting executors in and runs every trial of the scheduler; returns the new records.

        Call it inside :meth:`started`.

        Args:
            run_dir: the run's directory (journal, logs, tensorboard).
            data: the training data the executors read themselves (a ``core.data.DataSource``).
            progress: the progress display.
            on_record: called with each trial record as it arrives (after it is journaled).
            tensorboard_dir: the run's TensorBoard folder, for :func:`maggy.tensorboard.logdir`.
            more_trials: for adaptive ablators: called on the controller thread with the new
                records so far each time a trial ends; the specs it returns are scheduled (the
                scheduler must hold its executors, ``hold_executors``).
        """
        self._attach(run_dir, progress, on_record, more_trials)
        records: list[dict] = []
        self._servicer.open(pack({"data": data, "tensorboard_dir": tensorboard_dir}))
        try:
            self._control(records)
        finally:
            for handle in self._logs.values():
                handle.close()
            self.progress.close()
        return records

    def _attach(self, run_dir: str, progress: Optional[Progress] = None,
                on_record: Optional[Callable[[dict], None]] = None,
                more_trials: Optional[Callable[[list], list]] = None) -> None:
        """Points the controller at the run's folder and its consumers of records."""
        self.run_dir = run_dir
        self.progress = progress or Progress(self.scheduler.total, self.scheduler.direction, enabled=False)
        self.on_record = on_record
        self.more_trials = more_trials
        self.journal = Journal(layout.journal_path(run_dir))

    def _spark_job(self, launch: Launch, slots: int, payload: bytes) -> None:
        error, setup_failures = None, []
        try:
            # Each task yields only the traceback of a failure to load the payload.
            setup_failures = launch.run(slots, run_task(payload), f"maggy: {self.scheduler.total} trials")
        except BaseException as e:  # reported to the controller, which fails what is left
            error = e
        finally:
            self.scheduler.events.put(("spark_done", (error, setup_failures)))

    def _control(self, records: list) -> None:
        events = self.scheduler.events
        wait = min(1.0, self.hb_timeout / 4)
        last_check = time.monotonic()
        while not self.scheduler.all_done():
            while not self.scheduler.all_done():
                try:
                    kind, payload = events.get(timeout=wait)
                except queue.Empty:
                    kind, payload = None, None
                if kind is not None:
                    self._handle(kind, payload, records)
                if time.monotonic() - last_check >= wait:
                    self.scheduler.check_timeouts(self.hb_timeout)
                    last_check = time.monotonic()
            while True:  # what arrived together with the last result (it may add trials)
                try:
                    self._handle(*events.get_nowait(), records)
                except queue.Empty:
                    break

    def _handle(self, kind: str, payload: Any, records: list) -> None:
        if kind == "started":
            self.first_trial_started.set()
            self.progress.started(payload[0])
        elif kind == "requeued":
            trial_id, reason = payload
            self.progress.requeued(trial_id)
            self.progress.write(f"maggy: trial {trial_id} will run again: {reason}")
        elif kind == "log":
            trial_id, lines = payload
            log = self._log_file(trial_id)
            for text, echo in lines:
                log.write(text + "\n")
                if echo:
                    self.progress.write(f"[{trial_id}] {text}")
            log.flush()
        elif kind == "ended":
            log = self._logs.pop(payload["trial_id"], None)
            if log is not None:  # its last lines came before its record: one open file per running trial at most
                log.close()
            self.journal.append(payload)
            records.append(payload)
            self.progress.ended(payload)
            if payload["status"] == TrialStatus.FAILED:
                reason = (payload.get("error") or "").strip().splitlines()
                self.progress.write(f"maggy: trial {payload['trial_id']} ({describe(payload)}) failed: {reason[-1] if reason else '?'}")
            if self.on_record is not None:
                self.on_record(payload)
            if self.more_trials is not None and not self._spark_gone:
                added = self.more_trials(records)
                if added:
                    self.scheduler.add(added)
                    self.progress.grow(len(added))
        elif kind == "spark_done":
            self._spark_gone = True  # nothing added from now on could run
            self._spark_done(*payload)

    def _spark_done(self, error: Optional[BaseException], setup_failures: list[str]) -> None:
        """Fails the trials left when the job ended, with what went wrong and how to fix it."""
        reason = "the Spark job ended before this trial ran"
        if setup_failures:
            what = f"{len(setup_failures)} of the job's tasks could not load the train_fn and study"
            reason = explain(what, setup_failures[0], self.run_dir)
        if error is not None:
            reason = explain("the Spark job failed", f"{type(error).__name__}: {error}", self.run_dir)
        if not self.scheduler.all_done():
            self.scheduler.fail_remaining(reason)
        elif setup_failures:  # the other tasks ran every trial
            self.progress.write(f"maggy: {reason}")

    def _log_file(self, trial_id: str):
        if trial_id not in self._logs:
            path = layout.log_path(self.run_dir, trial_id)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._logs[trial_id] = open(path, "a", encoding="utf-8")
        return self._logs[trial_id]
