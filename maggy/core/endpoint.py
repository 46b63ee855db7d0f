"""Where the driver's gRPC server listens, what address executors dial, and whether it speaks TLS.

Spark tells maggy where the driver runs (``spark.driver.host``, or loopback for a local
master); two environment variables override that for networks Spark does not know about:

- ``MAGGY_DRIVER_ADDRESS``: ``host`` or ``host:port`` executors dial instead (a proxy, a
  port forward, a NAT'ed name). Without a port, they dial the port the server bound.
- ``MAGGY_DRIVER_PORT``: the port the server binds (for firewalls that open one port);
  by default the operating system picks a free one per experiment.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

__all__ = ["Endpoint", "ADDRESS_ENV", "PORT_ENV"]

ADDRESS_ENV = "MAGGY_DRIVER_ADDRESS"
PORT_ENV = "MAGGY_DRIVER_PORT"

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """The driver's server address as bound and as advertised to executors.

    Attributes:
        bind_host: the interface the server binds.
        bind_port: the port it binds; 0 for "any free port".
        advertise_host: the host executors dial.
        advertise_port: the port executors dial; ``None`` for "the port the server bound".
    """

    bind_host: str
    bind_port: int = 0
    advertise_host: str = "127.0.0.1"
    advertise_port: Optional[int] = None

    @classmethod
    def resolve(cls, bind_host: str, advertise_host: str, environ: Optional[dict] = None) -> "Endpoint":
        """The endpoint Spark implies, with the environment's overrides applied.

        Raises:
            ValueError: a malformed ``MAGGY_DRIVER_ADDRESS`` or ``MAGGY_DRIVER_PORT``.

        Example:
            >>> Endpoint.resolve("0.0.0.0", "10.0.0.5", {"MAGGY_DRIVER_ADDRESS": "gw:9000"}).address(41234)
            'gw:9000'
        """
        environ = os.environ if environ is None else environ
        bind_port = _port(environ.get(PORT_ENV), PORT_ENV) if environ.get(PORT_ENV) else 0
        advertise_port = None
        override = environ.get(ADDRESS_ENV, "").strip()
        if override:
            host, sep, port = override.rpartition(":")
            if sep and host and not host.endswith(":"):  # "host:port" (an IPv6 literal needs [brackets])
                advertise_host, advertise_port = host, _port(port, ADDRESS_ENV)
            else:
                advertise_host = override
        return cls(bind_host, bind_port, advertise_host, advertise_port)

    @property
    def is_remote(self) -> bool:
        """True when executors may dial from other machines (the server is not loopback-only)."""
        return self.bind_host not in _LOOPBACK

    def address(self, bound_port: int) -> str:
        """``host:port`` executors dial, given the port the server actually bound."""
        return f"{self.advertise_host}:{self.advertise_port or bound_port}"


def _port(text: str, name: str) -> int:
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"{name} must name a port between 1 and 65535, got {text!r}")
    return port
