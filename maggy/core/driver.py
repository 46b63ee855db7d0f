"""The driver: runs an experiment's trials on Spark and collects what they report."""

from __future__ import annotations

import os
import queue
import secrets
import threading
import time
import uuid
from typing import Any, Callable, Optional

from maggy.ablation.repair import user_rules
from maggy.core.endpoint import Endpoint
from maggy.core.executor import ExecutorContext, run_task
from maggy.core.journal import Journal
from maggy.core.progress import Progress
from maggy.core.rpc.server import serve
from maggy.core.rpc.tls import make_certificate
from maggy.core.scheduler import TrialScheduler
from maggy.core.servicer import DriverServicer
from maggy.core.spark import driver_hosts
from maggy import layout
from maggy.trial import TrialStatus, describe

__all__ = ["Driver"]


def _short_error(error: BaseException) -> str:
    # Py4J errors carry the whole JVM stack trace; the first lines say what happened.
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: " + " ".join(lines[:3])[:800]


class Driver:
    """Runs one experiment: a gRPC server, one Spark job, and the controller loop.

    Thread model:

    * The caller's thread runs :meth:`run`, the controller loop. It alone owns the journal,
      the per-trial log files, the TensorBoard writers and the progress bar, and it learns
      what happened from ``scheduler.events`` (a queue), so no I/O happens on a handler
      thread or under the scheduler's lock.
    * gRPC handler threads (the pool of :func:`~maggy.core.rpc.server.serve`) call into the
      :class:`~maggy.core.scheduler.TrialScheduler`, whose lock guards every trial's state.
    * One ``maggy-spark-job`` thread runs the blocking Spark action and puts
      ``("spark_done", error)`` on the event queue when it returns. It is joined in
      ``finally``; a keyboard interrupt cancels the job group first.

    Args:
        scheduler: the trial table, holding the trials still to run.
        run_dir: the run's directory (journal, logs, tensorboard).
        train_fn: the user's training function.
        study: the ablation study.
        optimization_key: key of the metric in a dict returned by train_fn.
        hb_interval: heartbeat interval, seconds.
        hb_timeout: silence after which a running trial counts as lost, seconds.
        data: the training data the executors read themselves (a ``core.data.DataSource``).
        progress: the progress display.
        on_record: called with each trial record as it arrives (after it is journaled).
        tls: encrypt the channel with a certificate made for this run, which executors pin;
            ``None``: on when executors may dial from other machines (see
            :mod:`maggy.core.endpoint`), off for a local master.
    """

    def __init__(
        self,
        scheduler: TrialScheduler,
        run_dir: str,
        train_fn: Callable,
        study: Any,
        optimization_key: str = "metric",
        hb_interval: float = 1.0,
        hb_timeout: float = 60.0,
        data: Any = None,
        progress: Optional[Progress] = None,
        on_record: Optional[Callable[[dict], None]] = None,
        tls: Optional[bool] = None,
    ):
        self.scheduler = scheduler
        self.run_dir = run_dir
        self.train_fn = train_fn
        self.study = study
        self.optimization_key = optimization_key
        self.hb_interval = hb_interval
        self.hb_timeout = hb_timeout
        self.data = data
        self.progress = progress or Progress(scheduler.total, scheduler.direction, enabled=False)
        self.on_record = on_record
        self.tls = tls
        self.journal = Journal(layout.journal_path(run_dir))
        self._logs: dict[str, Any] = {}
        self._spark_error: Optional[BaseException] = None

    def run(self, spark, slots: int) -> list[dict]:
        """Runs every trial of the scheduler on ``slots`` Spark tasks; returns the new records."""
        sc = spark.sparkContext
        token = secrets.token_urlsafe(32)
        endpoint = Endpoint.resolve(*driver_hosts(spark))
        use_tls = endpoint.is_remote if self.tls is None else self.tls
        certificate = make_certificate() if use_tls else None
        group = f"maggy-{uuid.uuid4().hex[:12]}"
        records: list[dict] = []
        with serve(DriverServicer(self.scheduler), token, host=endpoint.bind_host, port=endpoint.bind_port,
                   max_workers=2 * slots + 16, certificate=certificate) as (_, port):
            ctx = ExecutorContext(
                address=endpoint.address(port),
                token=token,
                tls_cert=certificate.cert_pem if certificate is not None else None,
                study=self.study,
                train_fn=self.train_fn,
                optimization_key=self.optimization_key,
                hb_interval=self.hb_interval,
                data=self.data,
                repair_rules=user_rules(),
            )
            job = threading.Thread(target=self._spark_job, args=(sc, group, slots, ctx), name="maggy-spark-job", daemon=True)
            job.start()
            try:
                self._control(records)
            except KeyboardInterrupt:
                sc.cancelJobGroup(group)
                raise
            finally:
                self.scheduler.close()
                job.join(timeout=30)
                if job.is_alive():
                    # A task still busy with a trial presumed lost (and already re-run
                    # elsewhere) would keep the job alive: its result is not needed.
                    sc.cancelJobGroup(group)
                    job.join(timeout=30)
                for handle in self._logs.values():
                    handle.close()
                self.progress.close()
        return records

    def _spark_job(self, sc, group: str, slots: int, ctx: ExecutorContext) -> None:
        error = None
        try:
            sc.setJobGroup(group, f"maggy: {self.scheduler.total} trials", interruptOnCancel=True)
            sc.parallelize(range(slots), slots).foreachPartition(run_task(ctx))
        except BaseException as e:  # reported to the controller, which fails what is left
            error = e
        finally:
            self.scheduler.events.put(("spark_done", error))

    def _control(self, records: list) -> None:
        events = self.scheduler.events
        wait = min(1.0, self.hb_timeout / 4)
        last_check = time.monotonic()
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
        while True:  # what arrived together with the last result
            try:
                self._handle(*events.get_nowait(), records)
            except queue.Empty:
                break

    def _handle(self, kind: str, payload: Any, records: list) -> None:
        if kind == "started":
            trial_id, executor, attempt = payload
            self.progress.started(trial_id)
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
        elif kind == "spark_done" and not self.scheduler.all_done():
            reason = "the Spark job ended before this trial ran"
            if payload is not None:
                reason = f"the Spark job failed: {_short_error(payload)}"
            self.scheduler.fail_remaining(reason)

    def _log_file(self, trial_id: str):
        if trial_id not in self._logs:
            path = layout.log_path(self.run_dir, trial_id)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._logs[trial_id] = open(path, "a", encoding="utf-8")
        return self._logs[trial_id]
