"""Spark's Python worker daemon for maggy's embedded session, with torch imported once.

Spark starts Python workers by forking them from one daemon process per executor
(``pyspark.daemon``). By default every worker imports torch itself (1–2 s each), and Spark
kills workers that sat idle for a minute, so a ``lagom()`` after a pause paid that again.
Importing torch here, before the daemon forks, lets every worker inherit it: a new worker
costs a fork plus the rest of maggy's imports.

Only torch (and numpy, which it loads) is imported. pyspark imports a worker's modules after
the fork because some start threads a forked child cannot take along (pyarrow's allocator,
loaded with pandas); forking a process that imported torch is what PyTorch's own DataLoader
does with every worker. Importing torch does not initialise CUDA, so each worker still picks
its own GPU. Everything imported is moved to the garbage collector's permanent
generation before the first fork (see below).

Used through ``spark.python.daemon.module`` (see :func:`maggy.core.spark.get_session`).
"""

import gc

try:
    import torch  # noqa: F401  (imported for the workers this daemon forks)
except ImportError:  # the worker will report it; the daemon itself must still start
    pass

from pyspark.daemon import manager

if __name__ == "__main__":
    # A reused worker runs gc.collect() after every task, and with torch loaded that full
    # collection took ~90 ms on a 2-core VM: at the end of every lagom(), on every slot.
    # Frozen objects are skipped by the collector (and their pages stay shared with the forks).
    gc.freeze()
    manager()
