"""The executor's side of the channel: one small method per RPC."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import grpc

from maggy.core.rpc.generated import maggy_pb2, maggy_pb2_grpc
from maggy.core.rpc.server import MAX_MESSAGE_BYTES, TOKEN_METADATA_KEY
from maggy.core.rpc.tls import channel_credentials, channel_options

__all__ = ["DriverClient", "pb", "REVOKED_CODES", "trial_revoked"]

#: The generated message module, for code that builds messages.
pb = maggy_pb2

#: What the driver answers about a trial that is no longer the caller's to run: it was
#: handed to another executor after this one was presumed lost (FAILED_PRECONDITION), that
#: other copy already delivered its result (ALREADY_EXISTS), or the driver does not know the
#: trial or executor (NOT_FOUND). The one definition the reporter (stop the trial) and the
#: task loop (drop its result) both use.
REVOKED_CODES = frozenset(
    {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND}
)


def trial_revoked(error: grpc.RpcError) -> bool:
    """True when ``error`` says the trial is no longer this executor's: stop working on it.

    Any other error (the driver unreachable for a moment, a deadline) is transient.
    """
    code = getattr(error, "code", None)
    return callable(code) and code() in REVOKED_CODES


class DriverClient:
    """Talks to the driver's gRPC server.

    Args:
        address: ``host:port`` of the driver's server.
        token: the experiment's secret token.
        timeout: seconds a short call (register, heartbeat) may take before it fails.
        tls_cert: the experiment's certificate (PEM); the channel is then encrypted and
            accepts that certificate only. ``None``: plain text.

    Example:
        >>> client = DriverClient("127.0.0.1:50051", "secret-token")  # connects on the first call
        >>> executor_id = client.register(partition_id=0, task_attempt=0, host="h", pid=1).executor_id  # doctest: +SKIP
        >>> client.heartbeat(executor_id, "t0", attempt=0, seq=1, metrics=[(1, 0.52)])  # doctest: +SKIP
        False
        >>> client.close()
    """

    def __init__(self, address: str, token: str, timeout: float = 30.0, tls_cert: Optional[bytes] = None):
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls_cert is not None:
            self._channel = grpc.secure_channel(address, channel_credentials(tls_cert), options + channel_options())
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = maggy_pb2_grpc.DriverStub(self._channel)
        self._metadata = ((TOKEN_METADATA_KEY, token),)
        self._timeout = timeout

    def register(self, partition_id: int, task_attempt: int, host: str, pid: int) -> "pb.RegisterReply":
        """Announces an executor task; returns the reply: the executor id to use in later calls,
        and the context fields the driver decided after the job started (or ``done``).

        Has no deadline: the driver holds the call until it has prepared the run (pre-flight
        may build large models). It fails fast (UNAVAILABLE) when the driver cannot be reached.
        """
        request = pb.RegisterRequest(
            partition_id=partition_id, task_attempt=task_attempt, host=host, pid=pid
        )
        return self._stub.Register(request, metadata=self._metadata)

    def next(self, executor_id: str, result: "pb.TrialResult | None" = None) -> "pb.NextReply":
        """Hands in the last trial's result (if any) and waits for the next trial.

        Has no deadline: the driver holds the call while every pending trial is taken but
        some may still come back, and answers ``done`` when the experiment is over.
        """
        request = pb.NextRequest(executor_id=executor_id)
        if result is not None:
            request.result.CopyFrom(result)
        return self._stub.Next(request, metadata=self._metadata, wait_for_ready=True)

    def heartbeat(
        self,
        executor_id: str,
        trial_id: str,
        attempt: int,
        seq: int,
        metrics: Sequence[tuple[int, float]] = (),
        logs: Iterable[tuple[str, bool]] = (),
    ) -> bool:
        """Sends the metrics and ``(line, echo)`` log lines since the last heartbeat; returns the stop flag."""
        request = pb.HeartbeatRequest(
            executor_id=executor_id,
            trial_id=trial_id,
            attempt=attempt,
            seq=seq,
            metrics=[pb.Metric(step=step, value=value) for step, value in metrics],
            logs=[pb.LogLine(text=text, echo=echo) for text, echo in logs],
        )
        reply = self._stub.Heartbeat(request, metadata=self._metadata, timeout=self._timeout)
        return reply.stop

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> "DriverClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
