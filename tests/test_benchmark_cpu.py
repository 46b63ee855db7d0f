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


def test_splits_the_jvm_cpu_into_compilers_collector_and_the_rest(tmp_path):
    java = tmp_path / "java"
    java.symlink_to(sys.executable)
    # Threads named as HotSpot names its C2 compiler and G1's concurrent marker burn CPU and
    # stay alive, as those threads do; the main thread burns a little ("other").
    code = (
        "import ctypes, threading, time\n"
        "libc = ctypes.CDLL(None)\n"
        "done = threading.Barrier(3)\n"
        "def burn(name, s):\n"
        "    if name: libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME\n"
        "    t = time.thread_time()\n"
        "    while time.thread_time() - t < s: pass\n"
        "    done.wait()\n"
        "    time.sleep(60)\n"
        "for n, s in (('C2 CompilerThread0', 0.4), ('G1 Conc#0', 0.2)):\n"
        "    threading.Thread(target=burn, args=(n, s), daemon=True).start()\n"
        "t = time.thread_time()\n"
        "while time.thread_time() - t < 0.1: pass\n"
        "done.wait()\n"
        "print('done', flush=True)\n"
        "time.sleep(60)\n"
    )
    before = proc_cpu.jvm_thread_cpu()
    jvm = subprocess.Popen([str(java), "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert jvm.stdout.readline().strip() == "done"
        figures = proc_cpu.delta(before, proc_cpu.jvm_thread_cpu())
    finally:
        jvm.kill()
        jvm.wait()
    assert 0.35 <= figures["jit"] <= 0.6, figures
    assert 0.15 <= figures["gc"] <= 0.35, figures
    assert 0.05 <= figures["other"] < 0.35, figures  # the main thread (and the interpreter's start)
