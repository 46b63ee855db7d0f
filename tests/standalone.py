"""A Spark standalone cluster on loopback, from the installed pyspark, for the cluster tests."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def standalone_cluster(tmp_path, workers=2, cores=1, worker_opts=""):
    """A master and ``workers`` workers of ``cores`` cores (``worker_opts``: their SPARK_WORKER_OPTS); stopped afterwards.

    Yields the master URL.
    """
    import pyspark

    spark_class = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-class")
    port = free_port()
    env = dict(os.environ, SPARK_LOG_DIR=str(tmp_path / "logs"), PYSPARK_PYTHON=sys.executable,
               SPARK_WORKER_DIR=str(tmp_path / "work"), SPARK_WORKER_OPTS=worker_opts)
    processes = []
    with open(tmp_path / "daemons.log", "ab") as log:
        def start(*args):
            processes.append(subprocess.Popen([spark_class, *args], env=env, stdout=log, stderr=log, start_new_session=True))

        try:
            start("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                  "--webui-port", str(free_port()))
            wait_for_port(port)
            for _ in range(workers):
                start("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(cores), "--memory", "1g",
                      "--webui-port", str(free_port()), "--work-dir", str(tmp_path / "work"), f"spark://127.0.0.1:{port}")
            yield f"spark://127.0.0.1:{port}"
        finally:
            for process in processes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
