"""benchmarks/proc_cpu.py: the framework CPU the paired training benchmark reports.

A user reads "framework CPU per trial" from it, so it must count the JVM's subtree (Spark's
Python workers, also those that exited) and leave out other children of the driver (the
``multiprocessing`` pool it is compared with).
"""

import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import proc_cpu  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc (Linux)")

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def _wait_for_cpu(key, at_least, before):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        figures = proc_cpu.delta(before, proc_cpu.framework_tree_cpu())
        if figures[key] >= at_least:
            return figures
        time.sleep(0.05)
    return proc_cpu.delta(before, proc_cpu.framework_tree_cpu())


def test_counts_the_jvm_subtree_with_exited_workers_and_not_other_children(tmp_path):
    java = tmp_path / "java"  # a process whose name is "java", standing in for Spark's JVM
    java.symlink_to(sys.executable)
    # The stand-in runs a "worker" that burns 0.3 s of CPU and exits, then waits to be stopped.
    jvm_code = (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(s=0.3)!r}], check=True)\n"
        "time.sleep(60)\n"
    )
    before = proc_cpu.framework_tree_cpu()
    pool = subprocess.Popen([sys.executable, "-c", BURN.format(s=0.3)])  # not under the JVM
    jvm = subprocess.Popen([str(java), "-c", jvm_code])
    try:
        figures = _wait_for_cpu("workers", 0.25, before)
        pool.wait(timeout=20)
        figures = proc_cpu.delta(before, proc_cpu.framework_tree_cpu())
    finally:
        jvm.kill()
        jvm.wait()
    assert figures["workers"] >= 0.25  # the exited worker, through the JVM's cutime
    assert figures["workers"] < 0.5  # and not the pool's 0.3 s on top
    assert figures["total"] == pytest.approx(figures["driver"] + figures["jvm"] + figures["workers"], abs=0.01)
