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


def _frozen_objects(_):
    import gc

    return gc.get_freeze_count()


def test_workers_keep_torch_out_of_the_garbage_collectors_scans(spark):
    # A reused worker runs gc.collect() after every task; scanning torch's ~150k objects
    # there delayed the end of every experiment by ~0.1 s. The daemon freezes them first.
    counts = spark.sparkContext.parallelize(range(2), 2).map(_frozen_objects).collect()
    assert min(counts) > 100_000, counts


def test_a_worker_loads_maggys_executor_without_pandas():
    # Every new Spark worker imports the executor; pandas would add ~0.3 s to each start,
    # and most trials never build a PandasDataset (which imports it when it does).
    probe = "import sys, maggy.core.executor; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]
