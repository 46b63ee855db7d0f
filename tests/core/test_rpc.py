"""The driver's gRPC channel, exercised with a raw client over a real server on loopback."""

import time

import grpc
import pytest

from maggy.core.rpc import MAX_MESSAGE_BYTES, TOKEN_METADATA_KEY, serve
from maggy.core.rpc.generated import maggy_pb2 as pb
from maggy.core.reporter import Reporter
from maggy.core.rpc.client import DriverClient
from maggy.core.rpc.generated import maggy_pb2_grpc
from maggy.core.scheduler import TrialScheduler
from maggy.core.servicer import DriverServicer
from maggy.exceptions import EarlyStopException
from maggy.trial import make_spec

TOKEN = "s3cret-token"


@pytest.fixture
def channel():
    specs = [make_spec(0), make_spec(1, ablated_feature="fare")]
    scheduler = TrialScheduler(specs, max_trial_retries=1)
    with serve(DriverServicer(scheduler), TOKEN) as (_, port):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            yield maggy_pb2_grpc.DriverStub(ch), scheduler


AUTH = ((TOKEN_METADATA_KEY, TOKEN),)


def _code(call):
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def _register(stub, partition=0):
    return stub.Register(pb.RegisterRequest(partition_id=partition, host="h"), metadata=AUTH).executor_id


def _next(stub, executor_id, result=None):
    request = pb.NextRequest(executor_id=executor_id)
    if result is not None:
        request.result.CopyFrom(result)
    return stub.Next(request, metadata=AUTH, timeout=10)


def test_calls_without_the_token_are_refused(channel):
    stub, _ = channel
    # Rule: every RPC needs the run's token; without it, or with a wrong one, UNAUTHENTICATED.
    assert _code(lambda: stub.Register(pb.RegisterRequest(partition_id=0)))[0] == grpc.StatusCode.UNAUTHENTICATED
    wrong = ((TOKEN_METADATA_KEY, "guess"),)
    assert _code(lambda: stub.Register(pb.RegisterRequest(), metadata=wrong))[0] == grpc.StatusCode.UNAUTHENTICATED
    assert _code(lambda: stub.Heartbeat(pb.HeartbeatRequest(), metadata=wrong))[0] == grpc.StatusCode.UNAUTHENTICATED
    # ...and with it, the same call works.
    assert _register(stub).startswith("e")


def test_oversized_messages_are_refused(channel):
    stub, _ = channel
    executor = _register(stub)
    trial = _next(stub, executor).trial
    huge = [pb.LogLine(text="x" * 1024)] * (MAX_MESSAGE_BYTES // 1024 + 10)
    request = pb.HeartbeatRequest(executor_id=executor, trial_id=trial.trial_id, attempt=trial.attempt, seq=1, logs=huge)
    # Rule: a message over the cap is rejected before the handler sees it.
    assert _code(lambda: stub.Heartbeat(request, metadata=AUTH))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unknown_trials_duplicates_and_out_of_order_heartbeats_change_nothing(channel):
    stub, scheduler = channel
    executor = _register(stub)
    trial = _next(stub, executor).trial
    beat = lambda seq, trial_id=trial.trial_id, attempt=trial.attempt: stub.Heartbeat(  # noqa: E731
        pb.HeartbeatRequest(executor_id=executor, trial_id=trial_id, attempt=attempt, seq=seq,
                            metrics=[pb.Metric(step=seq, value=float(seq))]),
        metadata=AUTH,
    )
    assert beat(2).stop is False
    # Rule: a heartbeat older than one already received is refused and not recorded.
    assert _code(lambda: beat(1))[0] == grpc.StatusCode.OUT_OF_RANGE
    # Rule: unknown trial ids and attempts the executor does not hold are refused.
    assert _code(lambda: beat(3, trial_id="t999-nope"))[0] == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: beat(3, attempt=7))[0] == grpc.StatusCode.FAILED_PRECONDITION
    # Rule: unknown executors are refused.
    assert _code(lambda: _next(stub, "e404"))[0] == grpc.StatusCode.NOT_FOUND

    final = pb.TrialResult(trial_id=trial.trial_id, attempt=trial.attempt, status="finished", has_metric=True, metric=0.5)
    second = _next(stub, executor, final)
    assert second.WhichOneof("reply") == "trial"
    # Rule: a second final for the same trial is refused and the first result stands.
    assert _code(lambda: _next(stub, executor, final))[0] == grpc.StatusCode.ALREADY_EXISTS
    records = {r["trial_id"]: r for r in scheduler.records()}
    assert records[trial.trial_id]["metric"] == 0.5
    # Only the in-order heartbeat's metric was kept.
    assert records[trial.trial_id]["history"] == [[2, 2.0]]


def test_trial_specs_travel_as_json_and_the_last_reply_is_done(channel):
    import json

    stub, _ = channel
    executor = _register(stub)
    first = _next(stub, executor).trial
    assert json.loads(first.spec_json)["index"] == 0
    result = pb.TrialResult(trial_id=first.trial_id, attempt=1, status="finished", has_metric=True, metric=1.0)
    second = _next(stub, executor, result).trial
    assert json.loads(second.spec_json)["ablated_feature"] == "fare"
    result = pb.TrialResult(trial_id=second.trial_id, attempt=1, status="failed", error="boom")
    # Rule: once every trial has a result, Next answers done.
    assert _next(stub, executor, result).done is True


def test_invalid_status_is_refused(channel):
    stub, _ = channel
    executor = _register(stub)
    trial = _next(stub, executor).trial
    bad = pb.TrialResult(trial_id=trial.trial_id, attempt=trial.attempt, status="great")
    assert _code(lambda: _next(stub, executor, bad))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_a_stale_copy_of_a_trial_stops_at_its_next_heartbeat():
    scheduler = TrialScheduler([make_spec(0), make_spec(1, ablated_feature="fare")], max_trial_retries=1)
    with serve(DriverServicer(scheduler), TOKEN) as (_, port), DriverClient(f"127.0.0.1:{port}", TOKEN) as client:
        first = client.register(0, 0, "h", 1).executor_id
        trial = client.next(first).trial
        # The first copy is presumed lost; the trial runs again elsewhere and delivers its result.
        scheduler.check_timeouts(0.0)
        second = client.register(1, 0, "h", 2).executor_id
        again = client.next(second).trial
        assert (again.trial_id, again.attempt) == (trial.trial_id, 2)
        client.next(second, pb.TrialResult(trial_id=again.trial_id, attempt=2, status="finished", has_metric=True, metric=1.0))
        assert [r["trial_id"] for r in scheduler.records()] == [trial.trial_id]

        # The first copy is still alive and reports through its reporter.
        reporter = Reporter(
            lambda seq, metrics, logs: client.heartbeat(first, trial.trial_id, trial.attempt, seq, metrics, logs),
            hb_interval=0.05, trial_id=trial.trial_id,
        ).start()
        try:
            reporter.broadcast(0.5, step=0)
            deadline = time.monotonic() + 10
            while not reporter.stopped and time.monotonic() < deadline:
                time.sleep(0.02)
            # Rule: "this trial is no longer yours" (here: its other copy delivered the result)
            # stops the stale copy at its next heartbeat; its next broadcast raises.
            assert reporter.stopped
            with pytest.raises(EarlyStopException):
                reporter.broadcast(0.4, step=1)
        finally:
            reporter.close()
