"""CPU seconds of maggy's processes, read from ``/proc`` (Linux; no psutil needed).

:func:`framework_tree_cpu` adds up the driver (this process, its own threads only), the
Spark JVM it started and everything under the JVM (Spark's Python daemon and workers),
including children that exited and were reaped (``cutime``/``cstime``). A
``multiprocessing`` pool of this same process is left out, so a paired run can measure
maggy while the pool idles. :func:`jvm_thread_cpu` and :func:`jvm_delta` split the JVM's
part into its JIT compilers, its garbage collector, the rest, and threads that ended, from
the names HotSpot gives its threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int | str):
    """``(ppid, comm, own cpu s, reaped children's cpu s)`` of a process (or ``"pid/task/tid"``: a thread), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1: raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is state (field 3); utime, stime, cutime, cstime are fields 14-17.
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / _TICK
    children = (int(fields[13]) + int(fields[14])) / _TICK
    return ppid, comm, own, children


def _processes() -> dict:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                out[int(name)] = stat
    return out


def framework_tree_cpu() -> dict:
    """CPU seconds so far: ``driver``, ``jvm`` and ``workers`` (Python processes under the JVM)."""
    if not os.path.isdir("/proc"):
        return {"driver": 0.0, "jvm": 0.0, "workers": 0.0}
    procs = _processes()
    figures = {"driver": procs[os.getpid()][2], "jvm": 0.0, "workers": 0.0}
    for jvm in _jvm_pids(procs):
        figures["jvm"] += procs[jvm][2]
        figures["workers"] += procs[jvm][3]  # workers that exited under the JVM
        stack = [jvm]
        while stack:
            parent = stack.pop()
            for pid, (ppid, _, own, reaped) in procs.items():
                if ppid == parent:
                    figures["workers"] += own + reaped
                    stack.append(pid)
    return figures


#: HotSpot's thread names (``/proc/<pid>/task/<tid>/comm``, cut to 15 characters) by kind.
_JVM_THREAD_KINDS = (
    ("jit", ("C1 CompilerThre", "C2 CompilerThre")),
    ("gc", ("G1 ", "GC Thread#", "VM Thread")),  # G1's concurrent, refinement and service threads; safepoints
)


def _jvm_pids(procs: dict | None = None) -> list:
    """The JVMs this process started (``procs``: a :func:`_processes` reading, else a new one)."""
    me = os.getpid()
    return [pid for pid, (ppid, comm, _, _) in (procs or _processes()).items() if ppid == me and comm == "java"]


def jvm_thread_cpu(pids: Iterable[int] | None = None) -> dict:
    """A reading of the JVMs' CPU, process by process and thread by thread, for :func:`jvm_delta`.

    Args:
        pids: the JVMs to read; by default those this process started.
    """
    reading: dict = {"process": {}, "threads": {}}
    if not os.path.isdir("/proc"):
        return reading
    for pid in _jvm_pids() if pids is None else pids:
        stat = _stat(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        if stat is None:  # gone between the two reads
            continue
        reading["process"][pid] = stat[2]
        for tid in tids:
            stat = _stat(f"{pid}/task/{tid}")
            if stat is not None:
                _, comm, own, _ = stat
                kind = next((k for k, prefixes in _JVM_THREAD_KINDS if comm.startswith(prefixes)), "other")
                reading["threads"][(pid, tid)] = (kind, own)
    return reading


def jvm_delta(before: dict, after: dict) -> dict:
    """CPU seconds between two :func:`jvm_thread_cpu` readings: ``jit``, ``gc``, ``other``, ``exited``, ``total``.

    ``jit``, ``gc`` and ``other`` are threads alive at the second reading, by name.
    ``exited`` is what threads that ended in between spent after the first: HotSpot stops
    compiler threads it no longer needs (``UseDynamicNumberOfCompilerThreads``), and a
    thread's figures leave ``/proc`` with it, while the process's total keeps them. Each
    figure is in clock ticks, so each thread's part is off by up to one tick (10 ms).
    """
    out = dict.fromkeys(("jit", "gc", "other"), 0.0)
    for key, (kind, cpu) in after["threads"].items():
        out[kind] += cpu - before["threads"].get(key, (kind, 0.0))[1]
    total = sum(cpu - before["process"].get(pid, 0.0) for pid, cpu in after["process"].items())
    out["exited"] = max(0.0, total - sum(out.values()))
    out["total"] = total
    return {k: round(v, 3) for k, v in out.items()}


def delta(before: dict, after: dict) -> dict:
    """``after - before`` per part, and their ``total``."""
    out = {k: round(after[k] - before.get(k, 0.0), 3) for k in after}
    out["total"] = round(sum(after[k] - before.get(k, 0.0) for k in after), 3)
    return out
