"""The gRPC ``Driver`` service: translates messages to and from the trial scheduler."""

from __future__ import annotations

import json
import math
import threading
from typing import Optional

import grpc

from maggy.core.rpc.generated import maggy_pb2 as pb
from maggy.core.rpc.generated import maggy_pb2_grpc
from maggy.core.scheduler import SchedulerError, TrialScheduler
from maggy.trial import TrialStatus

__all__ = ["DriverServicer"]

#: The statuses an executor may report, as the words on the wire.
_STATUSES = tuple(status.value for status in TrialStatus)


def _abort(context, error: SchedulerError):
    context.abort(getattr(grpc.StatusCode, error.code), str(error))


class DriverServicer(maggy_pb2_grpc.DriverServicer):
    """Serves executors on behalf of a :class:`TrialScheduler`. Nothing received is unpickled.

    The Spark job starts while the driver still prepares the run, so a ``held`` servicer's
    ``Register`` holds each executor until :meth:`open` (the run is ready: here is what the
    tasks still need) or :meth:`call_off` (pre-flight failed: the tasks end without a trial).

    Args:
        scheduler: the trial table of the running experiment.
        held: hold registering executors until :meth:`open` or :meth:`call_off`; otherwise
            the servicer is open from the start, with no late context.
    """

    def __init__(self, scheduler: TrialScheduler, held: bool = False):
        self._scheduler = scheduler
        self._decided = threading.Event()
        self._late_context: Optional[bytes] = None
        if not held:
            self.open(b"")

    def open(self, late_context: bytes) -> None:
        """Lets the executors in: each gets ``late_context`` (pickled context fields) with its id."""
        self._late_context = late_context
        self._decided.set()

    def call_off(self) -> None:
        """Sends every executor away before any trial: ``Register`` answers ``done``."""
        self._decided.set()

    def Register(self, request, context):
        executor_id = self._scheduler.register(request.partition_id, request.task_attempt, request.host)
        # Wake up now and then so a call whose client went away frees its thread.
        while not self._decided.wait(5.0):
            if not context.is_active():
                return pb.RegisterReply(done=True)
        if self._late_context is None:
            return pb.RegisterReply(executor_id=executor_id, done=True)
        return pb.RegisterReply(executor_id=executor_id, late_context=self._late_context)

    def Next(self, request, context):
        result = None
        if request.HasField("result"):
            r = request.result
            if r.status not in _STATUSES:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"status must be one of {_STATUSES}, got {r.status!r}")
            result = {
                "trial_id": r.trial_id,
                "attempt": r.attempt,
                "status": TrialStatus(r.status),
                "metric": r.metric if r.has_metric and not math.isnan(r.metric) else None,
                "metrics": [(m.step, m.value) for m in r.metrics],
                "logs": [(line.text, line.echo) for line in r.logs],
                "duration_s": r.duration_s,
                "error": r.error,
            }
        try:
            # Wake up now and then so a call whose client went away frees its thread.
            while True:
                assigned = self._scheduler.next(request.executor_id, result, wait=5.0)
                result = None  # handed in exactly once
                if assigned is not None or self._scheduler.is_over() or not context.is_active():
                    break
        except SchedulerError as e:
            _abort(context, e)
        if assigned is None:
            return pb.NextReply(done=True)
        spec, attempt = assigned
        return pb.NextReply(trial=pb.Trial(trial_id=spec["trial_id"], attempt=attempt, spec_json=json.dumps(spec)))

    def Heartbeat(self, request, context):
        try:
            stop = self._scheduler.heartbeat(
                request.executor_id,
                request.trial_id,
                request.attempt,
                request.seq,
                [(m.step, m.value) for m in request.metrics],
                [(line.text, line.echo) for line in request.logs],
            )
        except SchedulerError as e:
            _abort(context, e)
        return pb.HeartbeatReply(stop=stop)
