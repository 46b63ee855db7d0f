"""Spark's Python worker daemon for sessions with maggy's settings: fast first workers, torch preloaded for later ones.

Spark starts Python workers by forking them from one daemon process per executor
(``pyspark.daemon``). This daemon differs from Spark's in two ways:

* **pyspark from the installed package, not from** ``pyspark.zip``. Spark puts
  ``$SPARK_HOME/python/lib/pyspark.zip`` first on every worker's ``PYTHONPATH``. That zip
  holds no bytecode, and Python cannot cache bytecode for a zip, so every daemon compiled
  pyspark's source again: ~0.7 s of a fresh session's first job on a 2-core VM (0.15 s
  from the installed package). Where the zip belongs to a pip-installed pyspark that is also
  on the path (the same files), the daemon drops the zip from its path before importing
  pyspark, and its workers inherit that.
* **torch is imported while the daemon idles.** Spark kills workers that sat idle for a
  minute, and a new worker importing torch itself costs 1–2 s; a worker forked after the
  daemon imported torch inherits it. The daemon does not import it before its first fork
  (which would hold back a fresh session's first trial by as long), but once it has had
  nothing to do for :data:`IDLE_BEFORE_TORCH_S` and the machine has a CPU core to spare
  (:class:`SpareCpu`): importing torch takes a core for 1–1.5 s, which on a small machine
  busy with trials would come out of their bodies. Workers forked later (after an idle
  pause, or for more slots) start with torch loaded.

pyspark imports a worker's modules after the fork because some start threads a forked
child cannot take along (pyarrow's allocator, loaded with pandas); forking a process that
imported torch is what PyTorch's own DataLoader does with every worker. Importing torch does
not initialise CUDA, so each worker still picks its own GPU.

Used through ``spark.python.daemon.module`` (see :func:`maggy.spark_conf`).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from typing import Any, Callable

__all__ = ["path_without_pyspark_zip", "IdleHook", "SpareCpu", "IDLE_BEFORE_TORCH_S"]

#: Seconds without a fork request after which the daemon imports torch.
IDLE_BEFORE_TORCH_S = 3.0


def path_without_pyspark_zip(path: list[str], isfile: Callable[[str], bool] = os.path.isfile) -> list[str]:
    """``path`` without the ``pyspark.zip`` of an installed pyspark whose package directory is on it too.

    Spark's zip of a pip-installed pyspark lies inside that package
    (``<site>/pyspark/python/lib/pyspark.zip``); when ``<site>`` is also on ``path``, and no
    entry between the zip and ``<site>`` holds another pyspark, the same pyspark is imported
    from there, with its cached bytecode. Any other zip (a Spark distribution's, a
    cluster's) stays.

    Example:
        >>> site = "/venv/lib/python3.11/site-packages"
        >>> zip_ = site + "/pyspark/python/lib/pyspark.zip"
        >>> installed = {site + "/pyspark/__init__.py"}
        >>> path_without_pyspark_zip([zip_, "/work", site], isfile=installed.__contains__)
        ['/work', '/venv/lib/python3.11/site-packages']
        >>> path_without_pyspark_zip([zip_, "/work"], isfile=installed.__contains__) == [zip_, "/work"]
        True
    """
    kept = list(path)
    for i, entry in enumerate(path):
        if os.path.basename(entry) != "pyspark.zip":
            continue
        package = os.path.dirname(os.path.dirname(os.path.dirname(entry)))  # <site>/pyspark
        site = os.path.dirname(package)
        if os.path.basename(package) != "pyspark" or site not in path[i + 1:]:
            continue
        between = path[i + 1:path.index(site, i + 1)]
        if isfile(os.path.join(package, "__init__.py")) and not any(
                isfile(os.path.join(other, "pyspark", "__init__.py")) for other in between):
            kept.remove(entry)
    return kept


class SpareCpu:
    """Says whether the machine left at least ``cores`` CPU cores idle since it was last asked.

    Reads the machine-wide counters of Linux's ``/proc/stat``. The first call only takes a
    sample and says no; without ``/proc/stat`` (another OS) every call says yes, so nothing
    waits for a signal that never comes.

    Args:
        cores: the idle cores, averaged over the time between two calls, that count as spare.
        path: the statistics file (a parameter for tests).
        cpus: the CPUs its counters cover (default: those online, ``os.cpu_count()``).
    """

    def __init__(self, cores: float = 0.75, path: str = "/proc/stat", cpus: int | None = None):
        self._cores = cores
        self._path = path
        self._cpus = cpus or os.cpu_count() or 1
        self._last: tuple[int, int] | None = None

    def _sample(self) -> tuple[int, int] | None:
        """``(idle ticks, all ticks)`` summed over the machine, or None where unreadable."""
        try:
            with open(self._path) as f:
                line = f.readline()  # the machine-wide line; the rest (per CPU, interrupts) can be long
        except OSError:
            return None
        # "cpu user nice system idle iowait irq softirq steal guest guest_nice": guest time
        # is counted in user time already, so the first eight fields are all the time there is.
        ticks = [int(v) for v in line.split()[1:9]]
        return ticks[3] + ticks[4], sum(ticks)

    def __call__(self) -> bool:
        sample = self._sample()
        if sample is None:
            return True
        last, self._last = self._last, sample
        if last is None or sample[1] <= last[1]:
            return False
        return (sample[0] - last[0]) / (sample[1] - last[1]) * self._cpus >= self._cores


class IdleHook:
    """Stands in for the ``select`` module inside ``pyspark.daemon``: calls ``on_idle`` once the
    daemon's poll loop has waited ``idle_s`` seconds without anything to do, and ``ready()``
    (asked once per poll from then on) says yes.

    The daemon forks workers from its main thread between polls, so ``on_idle`` runs where
    no fork can happen at the same time (an import must not be half done in a forked child).
    Everything else is the real module's.
    """

    def __init__(self, module: Any, on_idle: Callable[[], None], idle_s: float,
                 clock: Callable[[], float] = time.monotonic, ready: Callable[[], bool] = lambda: True):
        self._module = module
        self._on_idle = on_idle
        self._idle_s = idle_s
        self._ready = ready
        self._clock = clock
        self._busy_at = clock()
        self.done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def poll(self) -> "_HookedPoller":
        return _HookedPoller(self._module.poll(), self)

    def select(self, *args: Any) -> tuple:
        """``select.select``, which the daemon uses where ``poll`` is missing (and pyspark before 4.0 everywhere)."""
        ready = self._module.select(*args)
        self.polled(ready[0])
        return ready

    def polled(self, events: list) -> list:
        """Notes one poll's ``events``; runs ``on_idle`` when the wait since the last event is long enough."""
        now = self._clock()
        if events:
            self._busy_at = now
        elif not self.done and now - self._busy_at >= self._idle_s and self._ready():
            self.done = True
            self._on_idle()
        return events


class _HookedPoller:
    """A poll object whose ``poll`` reports to an :class:`IdleHook`."""

    def __init__(self, poller: Any, hook: IdleHook):
        self._poller = poller
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._poller, name)

    def poll(self, *args: Any) -> list:
        return self._hook.polled(self._poller.poll(*args))


def _import_torch() -> None:
    try:
        import torch  # noqa: F401  (inherited by the workers this daemon forks from now on)
    except ImportError:  # a trial that needs it reports it; the daemon must go on
        pass
    # A reused worker runs gc.collect() after every task, and with torch loaded that full
    # collection took ~90 ms on a 2-core VM: at the end of every lagom(), on every slot.
    # Frozen objects are skipped by the collector (and their pages stay shared with the forks).
    gc.freeze()


def main() -> None:
    """Runs Spark's daemon loop with pyspark from the installed package and torch imported when idle."""
    sys.path[:] = path_without_pyspark_zip(sys.path)
    import pyspark.daemon

    if hasattr(pyspark.daemon, "select"):
        pyspark.daemon.select = IdleHook(pyspark.daemon.select, _import_torch, IDLE_BEFORE_TORCH_S, ready=SpareCpu())
    gc.freeze()
    pyspark.daemon.manager()


if __name__ == "__main__":
    main()
