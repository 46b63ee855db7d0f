"""What maggy needs to know about a Spark session, classic or Spark Connect, without a SparkContext.

Everything here works on both kinds of session: it reads the session's runtime
configuration (``spark.conf``), never the JVM. The decisions are pure functions of plain
values, tested without Spark.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import sys
from typing import Any, Callable, Mapping, Optional

__all__ = [
    "spark_conf",
    "is_connect",
    "decide_driver_hosts",
    "connect_slots",
]

logger = logging.getLogger(__name__)

#: The Spark property naming the module Spark's Python workers are forked from.
DAEMON_MODULE_KEY = "spark.python.daemon.module"
#: The module maggy's Spark Python workers fork from.
MAGGY_DAEMON = "maggy.core.worker_daemon"


def spark_conf() -> dict[str, str]:
    """The Spark settings maggy's embedded session uses, for a session you build yourself.

    Pass them to a session builder, or as ``--conf key=value`` to ``spark-submit``; a
    session built with them starts trials as fast as maggy's own embedded one. Executors run
    this interpreter (``spark.pyspark.python``), fork their Python workers from maggy's
    daemon (``spark.python.daemon.module``: pyspark from the installed package rather than
    Spark's uncompiled ``pyspark.zip``, torch imported while it idles), and keep
    those workers for the next task (``spark.python.worker.reuse``). On a cluster, set
    ``spark.pyspark.python`` to the executors' interpreter instead (it must have torch
    and maggy installed).

    Returns:
        A new dict of Spark configuration keys to string values.

    Example:
        >>> import maggy
        >>> maggy.spark_conf()["spark.python.daemon.module"]
        'maggy.core.worker_daemon'
        >>> # SparkSession.builder.config(map=maggy.spark_conf()).getOrCreate()
    """
    return {
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.python.worker.reuse": "true",
        # A fresh session's first trial starts ~1 s sooner (pyspark not compiled from the
        # zip, torch not imported before the first fork), and a lagom() after Spark retired
        # its idle workers forks them with torch loaded (~0.75 s instead of ~3 s).
        DAEMON_MODULE_KEY: MAGGY_DAEMON,
        "spark.ui.showConsoleProgress": "false",
    }


def is_connect(spark: Any) -> bool:
    """Whether ``spark`` is a Spark Connect session (it has no SparkContext)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _route_to(host: str) -> Optional[str]:
    """This machine's address on the route towards ``host`` (no packet is sent); None if unknown."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            return s.getsockname()[0]
    except OSError:
        return None


def decide_driver_hosts(
    master: Optional[str],
    driver_host: Optional[str],
    connect: bool = False,
    route_to: Callable[[str], Optional[str]] = _route_to,
) -> tuple[str, str]:
    """``(bind, advertise)``: where maggy's gRPC server listens and the address executors dial.

    ``MAGGY_DRIVER_ADDRESS`` overrides the advertised address afterwards
    (:class:`~maggy.core.endpoint.Endpoint`).

    Args:
        master: the session's ``spark.master``.
        driver_host: the session's ``spark.driver.host``.
        connect: whether the session is Spark Connect. Then maggy's server runs in the
            client process, which need not be the Spark driver's machine: executors dial
            this machine's address on the route towards ``spark.driver.host`` (the driver's
            own address when the client runs on the driver node, as in a Databricks notebook).
        route_to: finds that address (injectable for tests).

    Example:
        >>> decide_driver_hosts("local[2]", "10.0.0.5")
        ('127.0.0.1', '127.0.0.1')
        >>> decide_driver_hosts("yarn", "10.0.0.5")
        ('0.0.0.0', '10.0.0.5')
    """
    if master is None or master.startswith("local"):
        return "127.0.0.1", "127.0.0.1"
    host = driver_host or "127.0.0.1"
    if connect and not _is_loopback(host):
        host = route_to(host) or socket.gethostbyname(socket.gethostname())
    return ("127.0.0.1" if _is_loopback(host) else "0.0.0.0"), host


def connect_slots(conf: Mapping[str, Optional[str]], cpu_count: Optional[int] = None) -> Optional[int]:
    """Parallel tasks a session offers, from its configuration (Spark Connect has no SparkContext
    to ask); None when the configuration does not say.

    In order: ``spark.default.parallelism``; a ``local[N]`` master; executors × cores;
    ``spark.cores.max`` (standalone); each divided by ``spark.task.cpus``.

    Example:
        >>> connect_slots({"spark.master": "local[3, 4]"})
        3
        >>> connect_slots({"spark.master": "yarn", "spark.executor.instances": "4", "spark.executor.cores": "2"})
        8
        >>> connect_slots({"spark.master": "yarn"}) is None
        True
    """

    def number(key: str) -> Optional[int]:
        value = conf.get(key)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    task_cpus = max(1, number("spark.task.cpus") or 1)
    if number("spark.default.parallelism"):
        return number("spark.default.parallelism")
    master = (conf.get("spark.master") or "").replace(" ", "")
    local = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master)
    if local:
        n = local.group(1) or "1"
        return max(1, (cpu_count or os.cpu_count() or 1) if n == "*" else int(n))
    if number("spark.executor.instances") and number("spark.executor.cores"):
        return max(1, number("spark.executor.instances") * number("spark.executor.cores") // task_cpus)
    if number("spark.cores.max"):
        return max(1, number("spark.cores.max") // task_cpus)
    return None
