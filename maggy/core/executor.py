"""What runs inside each Spark task: a loop that asks the driver for trials and runs them."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import inspect
import io
import json
import math
import os
import socket
import sys
import time
import traceback
from typing import Any, Callable, Iterator, Optional

import grpc

from maggy.ablation.study import AblationStudy
from maggy.core import current_trial
from maggy.core.devices import claim_gpus, task_gpus
from maggy.core.reporter import Reporter, to_float
from maggy.core.rpc.client import DriverClient, pb, trial_revoked
from maggy.core.shipping import unpack
from maggy.exceptions import EarlyStopException, TrialError
from maggy.trial import TrialStatus
from maggy.util import _set_current_device, pick_device, set_seed

__all__ = ["ExecutorContext", "run_task", "final_metric", "TRAIN_FN_ARGS"]

#: The parameters a train_fn may take, in any order and any subset.
TRAIN_FN_ARGS = ("model_function", "dataset_function", "reporter")


@dataclasses.dataclass
class ExecutorContext:
    """Everything a Spark task needs: shipped with the task's closure, except the late fields
    (``data``, ``tensorboard_dir``), which the driver decides after the job started and sends
    in its reply to ``Register``.

    Attributes:
        address: ``host:port`` of the driver's gRPC server.
        token: the experiment's secret token.
        study: the ablation study (model and dataset generators).
        train_fn: the user's training function.
        optimization_key: key of the metric when train_fn returns a dict.
        hb_interval: heartbeat interval in seconds.
        data: the training data (a ``core.data.DataSource``): the executors read its rows.
        repair_rules: the experiment's repair rules (module class -> rule), passed to every
            model build; a worker never registers them in its process, which Spark reuses
            for later experiments.
        tls_cert: the run's certificate (PEM) when the channel is encrypted: the only one
            the executor's channel trusts.
        tensorboard_dir: the run's ``tensorboard`` folder on the driver, for
            :func:`maggy.tensorboard.logdir`.
        gpus_per_trial: GPUs each trial asked for; on a local master (where Spark assigns
            none) the slot takes its own share of the machine's GPUs.
        metrics_wanted: whether the driver's early-stopping rule reads running trials'
            metrics; if not, they travel with the keep-alive heartbeats (see
            :class:`~maggy.core.reporter.Reporter`).
    """

    address: str
    token: str
    study: AblationStudy
    train_fn: Callable
    optimization_key: str = "metric"
    hb_interval: float = 1.0
    data: Any = None
    repair_rules: dict = dataclasses.field(default_factory=dict)
    tls_cert: Optional[bytes] = None
    tensorboard_dir: Optional[str] = None
    gpus_per_trial: Optional[int] = None
    metrics_wanted: bool = True


def final_metric(value: Any, optimization_key: str) -> float:
    """The final metric from what ``train_fn`` returned.

    Raises:
        TrialError: ``None``, a string, NaN, or a dict without ``optimization_key``.
    """
    if isinstance(value, dict):
        if optimization_key not in value:
            raise TrialError(
                f"train_fn returned a dict without the optimization key {optimization_key!r} "
                f"(keys: {sorted(map(str, value))}); set optimization_key= in the config or add the key"
            )
        value = value[optimization_key]
    if value is None:
        raise TrialError("train_fn returned None; return the final metric (a number) or a dict holding it")
    try:
        metric = to_float(value, "train_fn's return value")
    except TypeError as e:
        raise TrialError(str(e)) from None
    if math.isnan(metric):
        raise TrialError("train_fn returned NaN as its final metric")
    return metric


class _LineWriter(io.TextIOBase):
    """A text stream that hands each complete line to ``sink`` (captures print output)."""

    def __init__(self, sink: Callable[[str], None]):
        self._sink = sink
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._sink(line)
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._sink(self._buffer)
            self._buffer = ""


def _call_train_fn(ctx: ExecutorContext, spec: dict, reporter: Reporter) -> float:
    # trial_builder is imported on use: it needs torch, and a worker of a session maggy did
    # not start imports torch only when a trial asks for a model or dataset (or a seed).
    dataset_cache = []

    def dataset_function():
        from maggy.core.trial_builder import build_dataset

        if not dataset_cache:
            dataset_cache.append(build_dataset(ctx.study, spec, ctx.data))
        return dataset_cache[0]

    has_dataset = ctx.study.dataset_generator is not None or ctx.data is not None

    def model_function():
        from maggy.core.trial_builder import build_dataset, build_model

        dataset = dataset_function() if has_dataset else None
        return build_model(ctx.study, spec, dataset, log=lambda line: reporter.log(line, jupyter=False),
                           rules=ctx.repair_rules, base_dataset=lambda: build_dataset(
                               ctx.study, {**spec, "ablated_feature": None}, ctx.data))

    available = {"model_function": model_function, "dataset_function": dataset_function, "reporter": reporter}
    params = inspect.signature(ctx.train_fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = available
    else:
        kwargs = {name: available[name] for name in params if name in available}
    set_seed(spec.get("seed"))
    return final_metric(ctx.train_fn(**kwargs), ctx.optimization_key)


def run_trial(ctx: ExecutorContext, client: DriverClient, executor_id: str, trial: "pb.Trial") -> "pb.TrialResult":
    """Runs one trial and returns its result message (failures are data, not exceptions)."""
    spec = json.loads(trial.spec_json)

    def send(seq, metrics, logs):
        return client.heartbeat(executor_id, trial.trial_id, trial.attempt, seq, metrics, logs)

    reporter = Reporter(send, ctx.hb_interval, trial.trial_id, metrics_wanted=ctx.metrics_wanted).start()
    result = pb.TrialResult(trial_id=trial.trial_id, attempt=trial.attempt)
    start = time.perf_counter()
    # print() inside train_fn goes to the trial's log instead of the executor's console.
    out = _LineWriter(lambda line: reporter.log(line, jupyter=False))
    try:
        with contextlib.redirect_stdout(out), current_trial.running(trial.trial_id, ctx.tensorboard_dir, reporter.log):
            result.metric = _call_train_fn(ctx, spec, reporter)
        result.has_metric = True
        result.status = TrialStatus.FINISHED
    except EarlyStopException:
        result.status = TrialStatus.EARLY_STOPPED
        if reporter.last_metric is not None:
            result.metric, result.has_metric = reporter.last_metric, True
    except TrialError as e:
        result.status, result.error = TrialStatus.FAILED, str(e)
    except Exception:  # the user's code failed: the trial fails, the experiment goes on
        result.status, result.error = TrialStatus.FAILED, traceback.format_exc()
    finally:
        out.flush()
    result.duration_s = time.perf_counter() - start
    metrics, logs = reporter.close()
    result.metrics.extend(pb.Metric(step=s, value=v) for s, v in metrics)
    result.logs.extend(pb.LogLine(text=t, echo=e) for t, e in logs)
    return result


def _freeze_survivors() -> None:
    """Moves every object alive at the start of a task to the collector's permanent generation.

    Spark's reused Python worker runs ``gc.collect()`` after each task. At a task's start
    what is alive is what the worker imported (torch, maggy, pandas, grpc, the user's modules)
    plus what earlier tasks kept: scanning it took ~90 ms per task, once every experiment on
    every slot, competing with the driver for the CPU as it wrote the results. Frozen objects
    are still freed when their reference count drops; only reference cycles among them would
    stay, and import-time state does not become such garbage.
    """
    gc.freeze()


def run_task(payload: bytes) -> Callable:
    """The function Spark runs for each trial-slot partition (with ``mapPartitions``).

    The task unpickles its :class:`ExecutorContext` from ``payload`` (made with
    :func:`maggy.core.shipping.pack`) itself, so that a failure to load the user's code (a
    module missing on the executors) is not a task failure that Spark retries, to fail the
    same way each time: the task yields the traceback as data and ends, and the driver
    explains it in every trial's error. Otherwise it yields nothing: it registers with the
    driver, which holds it until the run is prepared and then sends the context fields
    decided after the job started (the training data, the run's folders); then it loops:
    hand in the last result and get the next trial in one round trip, run it, until the
    driver answers ``done``.

    Args:
        payload: the pickled :class:`ExecutorContext` as far as it is known when the job
            starts (without its late fields: ``data``, ``tensorboard_dir``).
    """

    def task(_partition) -> Iterator[str]:
        from pyspark import TaskContext

        try:
            ctx = unpack(payload)
        except Exception:
            yield traceback.format_exc()
            return
        task_ctx = TaskContext.get()
        if task_ctx is not None:
            _freeze_survivors()
        partition = task_ctx.partitionId() if task_ctx else 0
        attempt = task_ctx.attemptNumber() if task_ctx else 0
        gpus = task_gpus(task_ctx.resources() if task_ctx else {}, partition, ctx.gpus_per_trial)
        # Spark's addresses become the process's only visible GPUs, so cuda:0 is the first of them.
        _set_current_device(claim_gpus(gpus) if gpus else pick_device([], partition))
        with DriverClient(ctx.address, ctx.token, tls_cert=ctx.tls_cert) as client:
            # The driver holds this call until it has prepared the run (the job starts first).
            joined = client.register(partition, attempt, socket.gethostname(), os.getpid())
            if joined.done:
                return  # the experiment was called off before its first trial
            try:
                ctx = _with_late_context(ctx, joined.late_context)
            except Exception:
                yield traceback.format_exc()
                return
            with _data_cache(ctx.data):
                _trial_loop(ctx, client, joined.executor_id)

    return task


def _data_cache(data: Any) -> contextlib.AbstractContextManager:
    """The worker's column cache for ``data`` (a ``DataSource``); nothing for a study without one.

    The data package (pyarrow, numpy) is imported only by tasks that read data.
    """
    if data is None:
        return contextlib.nullcontext()
    from maggy.core.data import worker_cache

    return worker_cache(data.cache_mb)


def _with_late_context(ctx: ExecutorContext, late_context: bytes) -> ExecutorContext:
    """``ctx`` completed with the fields the driver decided after the job started (pickled)."""
    return dataclasses.replace(ctx, **unpack(late_context)) if late_context else ctx


def _trial_loop(ctx: ExecutorContext, client: DriverClient, executor_id: str) -> None:
    """Hands in the last result and gets the next trial in one round trip, until the driver says done."""
    result = None
    while True:
        try:
            reply = client.next(executor_id, result)
        except grpc.RpcError as e:
            if result is not None and trial_revoked(e):
                # The driver no longer wants this result (the trial was re-run
                # elsewhere); ask for work without it.
                result = None
                continue
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                return  # the driver has finished or gone away
            raise
        if reply.WhichOneof("reply") != "trial":
            return
        result = run_trial(ctx, client, executor_id, reply.trial)
        sys.stdout.flush()
