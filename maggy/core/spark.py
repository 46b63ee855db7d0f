"""Finding or starting the Spark session trials run on, and sizing the job."""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import Optional

from maggy.core.session import spark_conf

__all__ = ["check_java", "get_session", "decide_slots", "MIN_JAVA"]

logger = logging.getLogger(__name__)

MIN_JAVA = 17

_LOG4J = os.path.join(os.path.dirname(__file__), "log4j2.properties")

#: The embedded session's JVM compiles with C1 alone (no C2 tier); see :func:`_embedded_conf`.
JIT_OPTION = "-XX:TieredStopAtLevel=1"


def _java_binary() -> Optional[str]:
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return os.path.join(home, "bin", "java")
    return shutil.which("java")


def check_java() -> int:
    """Checks that Java 17+ is installed (Spark needs it); returns the major version.

    Raises:
        RuntimeError: no Java, or an older one; the message says how to fix it.
    """
    java = _java_binary()
    if java is None:
        raise RuntimeError(
            f"maggy runs trials on Apache Spark, which needs Java {MIN_JAVA} or newer, and no `java` "
            "was found (neither $JAVA_HOME/bin/java nor on PATH). Install a JDK, e.g. "
            "`apt-get install openjdk-17-jre-headless`, or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise RuntimeError(f"could not read the Java version from `{java} -version`: {out.stderr.strip()!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise RuntimeError(
            f"Spark needs Java {MIN_JAVA} or newer; {java} is Java {major}. "
            "Install a newer JDK and point JAVA_HOME at it."
        )
    return major


def decide_slots(requested: Optional[int], available: int, num_trials: int) -> int:
    """How many trial slots (Spark tasks) to run.

    Args:
        requested: ``num_executors`` from the config, or ``None`` for "what the cluster offers".
        available: parallel tasks the cluster offers (``defaultParallelism``).
        num_trials: trials to run; more slots than trials would idle.

    Example:
        >>> decide_slots(None, 8, 3)
        3
    """
    slots = requested if requested is not None else max(1, available)
    if slots > num_trials:
        if requested is not None:
            logger.warning("num_executors=%d but only %d trials: using %d slots", requested, num_trials, num_trials)
        slots = num_trials
    if requested is not None and requested > available:
        logger.warning(
            "num_executors=%d exceeds the %d task slots Spark reports; trials will queue for slots",
            requested, available,
        )
    return max(1, slots)


def get_session(slots: Optional[int], task_retries: int):
    """The active SparkSession, or a new embedded ``local[N, F]`` one.

    The embedded session runs executors on this very Python interpreter (so they can import
    torch and maggy), lets Spark retry a task whose Python worker died (F = retries + 1), and
    logs errors only, to ``maggy-spark-<pid>.log`` in the temporary directory.

    Args:
        slots: N, parallel tasks of the embedded session (``None``: one per CPU core).
        task_retries: how often Spark may retry a failed task.

    Returns:
        ``(spark, started)``: the session and whether this call started it.
    """
    from pyspark.sql import SparkSession

    active = _running_session()
    if active is not None:
        return active, False
    if "PYSPARK_GATEWAY_PORT" in os.environ:
        # Launched by spark-submit (or a platform's job runner): the JVM and the master
        # are the launcher's to choose, not ours.
        return SparkSession.builder.appName("maggy").getOrCreate(), True
    check_java()
    _prepare_executor_environment()
    return _launch(_embedded_conf(slots or os.cpu_count() or 1, task_retries)), True


def _running_session():
    """The user's session: active on this thread, or started on another one; else None."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None and SparkContext._active_spark_context is not None:
        # A session started on another thread is not "active" on this one, but it is the
        # user's cluster all the same.
        active = SparkSession.builder.getOrCreate()
    return active


def _prepare_executor_environment() -> None:
    """Makes the embedded session's executors run this interpreter, with maggy importable."""
    # Executors must run the driver's interpreter, or they cannot import torch.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if package_root not in paths:
        # maggy may be used from a source checkout that executors could not otherwise import.
        os.environ["PYTHONPATH"] = os.pathsep.join(paths + [package_root])


def _embedded_conf(slots: int, task_retries: int):
    """The SparkConf of the embedded ``local[slots, task_retries + 1]`` session."""
    from pyspark import SparkConf

    # C1 only: the embedded JVM schedules tasks and moves small data, work C2's compiled code
    # would barely speed up, while C2 compiling Spark's code took 0.1-0.4 CPU-seconds per
    # lagom() from the trials for many calls. Measured on a 2-core VM: the session starts
    # ~1.2 s sooner and trial bodies run 3-7% closer to a process pool's (benchmarks/README.md).
    java_opts = f"-Dlog4j2.configurationFile=file:{_LOG4J} {JIT_OPTION}"
    conf = (
        SparkConf()
        .setMaster(f"local[{slots},{task_retries + 1}]")
        .setAppName("maggy")
        .set("spark.ui.enabled", "false")
        .set("spark.driver.extraJavaOptions", java_opts)
        .set("spark.executor.extraJavaOptions", java_opts)
    )
    for key, value in spark_conf().items():
        # The interpreter is PYSPARK_PYTHON's above, so a user's own PYSPARK_PYTHON still wins.
        if not key.startswith("spark.pyspark."):
            conf.set(key, value)
    socket_dir = _unix_socket_dir()
    if socket_dir is not None:
        # Over Spark's default TCP connection a reused worker received each task's input
        # ~40 ms after its command; over a Unix socket the task starts in ~13 ms (measured
        # on a 2-core VM; the whole job took 0.07 s instead of 0.11 s). Spark < 4.1 ignores
        # these settings.
        conf.set("spark.python.unix.domain.socket.enabled", "true")
        conf.set("spark.python.unix.domain.socket.dir", socket_dir)
    return conf


def _launch(conf):
    """Starts the JVM and the session for ``conf``; the JVM's console output goes to a log file."""
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    # The JVM's own console output (JDK notices, Spark start-up lines, and the executors'
    # stray stderr) goes to a log file instead of the user's notebook or terminal.
    log_path = os.path.join(tempfile.gettempdir(), f"maggy-spark-{os.getpid()}.log")
    with open(log_path, "ab") as log:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
    SparkContext(conf=conf, gateway=gateway)
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _unix_socket_dir() -> Optional[str]:
    """A private directory for the Unix sockets of the embedded session, removed at exit.

    None where Unix sockets are missing or the path would be too long: Spark names its
    sockets ``<dir>/.<uuid>.sock``, and a socket path may not exceed 103 bytes on macOS (107
    on Linux). Under ``/tmp`` rather than a long ``$TMPDIR`` (macOS), and in a directory of
    its own because Spark leaves its socket files behind.
    """
    if not hasattr(socket, "AF_UNIX"):
        return None
    base = "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else tempfile.gettempdir()
    path = tempfile.mkdtemp(prefix="maggy-", dir=base)
    if len(os.path.join(path, f".{'0' * 36}.sock")) > 100:
        os.rmdir(path)
        return None
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
