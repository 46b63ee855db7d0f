"""Each Python worker's column cache: consecutive trials reuse what an earlier one read.

A Spark task of maggy runs one trial after another on the same Python worker. The first
trial reads its columns from storage; a later trial takes the columns it needs from here and
reads only those it lacks, so a feature study reads the dataset about once per worker. The
cache holds whole columns (arrow arrays), evicts the least recently used when the budget is
exceeded, and lives only while a task runs (:func:`worker_cache`): a reused Spark worker
keeps nothing of an experiment after its task ends.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from typing import Iterator, Optional

import pyarrow as pa

__all__ = ["ColumnCache", "worker_cache", "active_cache"]


class ColumnCache:
    """Columns of parquet datasets in memory, least recently used evicted first.

    Args:
        budget_bytes: the most the cached columns may hold; a column larger than the whole
            budget is not cached.

    Example:
        >>> cache = ColumnCache(budget_bytes=1 << 20)
        >>> cache.put(("data", ()), "x", pa.chunked_array([[1.0, 2.0]]))
        >>> cache.get(("data", ()), "x").to_pylist()
        [1.0, 2.0]
    """

    def __init__(self, budget_bytes: int):
        self.budget_bytes = int(budget_bytes)
        self.nbytes = 0
        self._columns: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()  # DataLoader threads or a user's threads may read at once

    def get(self, source_key: tuple, column: str) -> Optional[pa.ChunkedArray]:
        """The cached column, or ``None``."""
        with self._lock:
            found = self._columns.get((source_key, column))
            if found is not None:
                self._columns.move_to_end((source_key, column))
            return found

    def put(self, source_key: tuple, column: str, values: pa.ChunkedArray) -> None:
        """Caches ``values``, evicting the least recently used columns to stay within budget."""
        size = values.nbytes
        if size > self.budget_bytes:
            return
        with self._lock:
            old = self._columns.pop((source_key, column), None)
            if old is not None:
                self.nbytes -= old.nbytes
            while self._columns and self.nbytes + size > self.budget_bytes:
                _, evicted = self._columns.popitem(last=False)
                self.nbytes -= evicted.nbytes
            self._columns[(source_key, column)] = values
            self.nbytes += size

    def __len__(self) -> int:
        return len(self._columns)


_active: Optional[ColumnCache] = None


def active_cache() -> Optional[ColumnCache]:
    """The cache of the task running in this process, or ``None`` outside a task."""
    return _active


@contextlib.contextmanager
def worker_cache(budget_mb: float) -> Iterator[Optional[ColumnCache]]:
    """Gives the trials of one Spark task a column cache of ``budget_mb`` MB; drops it afterwards.

    A budget of 0 gives no cache (every trial reads from storage).
    """
    global _active
    previous = _active
    _active = ColumnCache(int(budget_mb * (1 << 20))) if budget_mb > 0 else None
    try:
        yield _active
    finally:
        _active = previous
