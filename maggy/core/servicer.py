"""The gRPC ``Driver`` service: translates messages to and from the trial scheduler."""

from __future__ import annotations

import json
import math

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

    Args:
        scheduler: the trial table of the running experiment.
    """

    def __init__(self, scheduler: TrialScheduler):
        self._scheduler = scheduler

    def Register(self, request, context):
        executor_id = self._scheduler.register(request.partition_id, request.task_attempt, request.host)
        return pb.RegisterReply(executor_id=executor_id)

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
