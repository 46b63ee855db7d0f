"""The driver's gRPC server: token check, message size cap, and a context manager to run it."""

from __future__ import annotations

import contextlib
import hmac
from concurrent import futures
from typing import Iterator, Optional

import grpc

from maggy.core.rpc.generated import maggy_pb2_grpc
from maggy.core.rpc.tls import ExperimentCertificate, server_credentials

__all__ = ["TOKEN_METADATA_KEY", "MAX_MESSAGE_BYTES", "TokenInterceptor", "serve"]

#: Metadata entry that carries the experiment's secret token on every call.
TOKEN_METADATA_KEY = "x-maggy-token"

#: Largest message either side accepts. Heartbeats carry metrics and log lines, never
#: models or data, so a few MiB is generous; bigger messages are refused with
#: RESOURCE_EXHAUSTED before they are read into memory.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class TokenInterceptor(grpc.ServerInterceptor):
    """Rejects every call whose token metadata does not match the experiment's token.

    Args:
        token: the secret created for this run.
    """

    def __init__(self, token: str):
        self._token = token.encode()

        def _deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong maggy token")

        self._deny = grpc.unary_unary_rpc_method_handler(_deny)

    def intercept_service(self, continuation, handler_call_details):
        for key, value in handler_call_details.invocation_metadata or ():
            if key == TOKEN_METADATA_KEY:
                given = value.encode() if isinstance(value, str) else value
                # compare_digest: the time taken must not reveal how much of the token matched.
                if hmac.compare_digest(given, self._token):
                    return continuation(handler_call_details)
                break
        return self._deny


@contextlib.contextmanager
def serve(
    servicer: maggy_pb2_grpc.DriverServicer,
    token: str,
    host: str = "127.0.0.1",
    max_workers: int = 16,
    certificate: Optional[ExperimentCertificate] = None,
    port: int = 0,
) -> Iterator[tuple[grpc.Server, int]]:
    """Runs the driver service until the ``with`` block ends.

    Args:
        servicer: the implementation of the ``Driver`` service.
        token: the secret every call must carry.
        host: interface to bind; ``0.0.0.0`` when executors run on other machines.
        max_workers: handler threads. ``Next`` calls block while executors wait for a trial,
            so this must exceed the number of trial slots.
        certificate: serve TLS with this certificate (:mod:`maggy.core.rpc.tls`); ``None``
            serves plain text.
        port: the port to bind; 0 lets the operating system pick a free one.

    Yields:
        ``(server, port)``, the port picked by the operating system.

    Example:
        >>> with serve(servicer, token) as (server, port):  # doctest: +SKIP
        ...     client = DriverClient(f"127.0.0.1:{port}", token)
    """
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # A fresh port per run: never share one with a stale server of an earlier run.
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="maggy-rpc"),
        interceptors=[TokenInterceptor(token)],
        options=options,
    )
    maggy_pb2_grpc.add_DriverServicer_to_server(servicer, server)
    if certificate is not None:
        port = server.add_secure_port(f"{host}:{port}", server_credentials(certificate))
    else:
        port = server.add_insecure_port(f"{host}:{port}")
    if port == 0:
        raise OSError(f"the driver's gRPC server could not bind {host}:{port} (port in use?)")
    server.start()
    try:
        yield server, port
    finally:
        # Cancels calls still blocked in Next so no handler thread outlives the run.
        server.stop(grace=None)
