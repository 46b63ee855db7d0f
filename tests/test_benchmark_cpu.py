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


def _fake_jvm(tmp_path, threads: str) -> subprocess.Popen:
    """A process named ``java`` whose threads, named as HotSpot names them, burn CPU.

    ``threads`` is Python for a tuple of ``(name, seconds, stays)``: each thread burns its
    seconds, then stays alive or ends. The main thread burns 0.1 s ("other") and prints
    "done" once every thread has burnt its share.
    """
    java = tmp_path / "java"
    java.symlink_to(sys.executable)
    code = (
        "import ctypes, threading, time\n"
        f"threads = {threads}\n"
        "libc = ctypes.CDLL(None)\n"
        "done = threading.Barrier(len(threads) + 1)\n"
        "def burn(name, s, stays):\n"
        "    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME\n"
        "    t = time.thread_time()\n"
        "    while time.thread_time() - t < s: pass\n"
        "    done.wait()\n"
        "    if stays: time.sleep(60)\n"
        "workers = [threading.Thread(target=burn, args=a, daemon=True) for a in threads]\n"
        "for w in workers: w.start()\n"
        "t = time.thread_time()\n"
        "while time.thread_time() - t < 0.1: pass\n"
        "done.wait()\n"
        "for w, (_, _, stays) in zip(workers, threads):\n"
        "    if not stays: w.join()\n"
        "print('done', flush=True)\n"
        "time.sleep(60)\n"
    )
    return subprocess.Popen([str(java), "-c", code], stdout=subprocess.PIPE, text=True)


def _jvm_figures(jvm: subprocess.Popen) -> dict:
    """The fake JVM's figures from its start until it printed "done" (other JVMs of this process, such as a test session's, left out)."""
    before = proc_cpu.jvm_thread_cpu(pids=[])
    try:
        assert jvm.stdout.readline().strip() == "done"
        return proc_cpu.jvm_delta(before, proc_cpu.jvm_thread_cpu(pids=[jvm.pid]))
    finally:
        jvm.kill()
        jvm.wait()


def test_splits_the_jvm_cpu_into_compilers_collector_and_the_rest(tmp_path):
    # The C2 compiler and G1's concurrent marker stay alive, as those threads mostly do.
    figures = _jvm_figures(_fake_jvm(tmp_path, "(('C2 CompilerThread0', 0.4, True), ('G1 Conc#0', 0.2, True))"))
    assert 0.35 <= figures["jit"] <= 0.6, figures
    assert 0.15 <= figures["gc"] <= 0.35, figures
    assert 0.05 <= figures["other"] < 0.35, figures  # the main thread (and the interpreter's start)
    assert figures["exited"] <= 0.05, figures
    assert figures["total"] == pytest.approx(figures["jit"] + figures["gc"] + figures["other"] + figures["exited"], abs=0.01)


def test_counts_what_threads_that_ended_spent(tmp_path):
    # HotSpot stops a compiler thread it no longer needs: its CPU stays in the process's total.
    figures = _jvm_figures(_fake_jvm(tmp_path, "(('C2 CompilerThread1', 0.3, False), ('G1 Conc#0', 0.1, True))"))
    assert 0.25 <= figures["exited"] <= 0.45, figures
    assert figures["jit"] <= 0.02, figures
    assert 0.05 <= figures["gc"] <= 0.25, figures
