"""The embedded session forks its Python workers from maggy's daemon, with torch loaded."""

import os
import subprocess
import sys


def _parent_command(_):
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def test_workers_of_the_embedded_session_are_forked_from_maggys_daemon(spark):
    commands = spark.sparkContext.parallelize(range(2), 2).map(_parent_command).collect()
    assert all("maggy.core.worker_daemon" in command for command in commands), commands


def test_the_daemon_imports_torch_before_it_forks_a_worker():
    # A fresh interpreter, so nothing else has imported torch yet.
    probe = "import sys, maggy.core.worker_daemon; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    # torch is inherited by every worker; pandas (whose import starts threads) is not preloaded.
    assert out.stdout.split() == ["True", "False"]
