"""Reading one trial's columns: the projection a feature trial makes, through the worker's cache."""

from __future__ import annotations

import collections
import threading
from typing import Any, Optional, Sequence

import numpy as np
import pyarrow as pa

from maggy.core.data.cache import active_cache
from maggy.core.data.source import DataSource, filesystem

__all__ = ["projection", "read_columns", "to_arrays", "read_stats", "reset_read_stats"]

# What this process read from storage, newest last: the cache and projection are checked by it.
_reads: collections.deque = collections.deque(maxlen=1000)
_reads_lock = threading.Lock()


def projection(schema: pa.Schema, label_name: str, ablated_feature: Optional[str] = None) -> tuple[str, list[str]]:
    """The label column and the feature columns a trial reads, in file order.

    Names match case-insensitively, as in :class:`~maggy.ablation.PandasDataset`.

    Raises:
        ValueError: the label, or the ablated feature, is not a column; or a feature is not numeric.
    """
    columns = list(schema.names)
    lowered = [c.lower() for c in columns]
    if not label_name or label_name.lower() not in lowered:
        raise ValueError(f"label {label_name!r} is not a column of the dataset; columns: {columns}")
    label = columns[lowered.index(label_name.lower())]
    features = [c for c in columns if c != label]
    if ablated_feature:
        if ablated_feature.lower() not in [f.lower() for f in features]:
            raise ValueError(f"feature {ablated_feature!r} is not a column of the dataset; features: {features}")
        features = [f for f in features if f.lower() != ablated_feature.lower()]
    non_numeric = [f for f in features if not _numeric(schema.field(f).type)]
    if non_numeric:
        raise ValueError(f"PandasDataset needs numeric feature columns; encode these first: {non_numeric}")
    return label, features


def _numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)


def read_columns(source: DataSource, columns: Sequence[str]) -> pa.Table:
    """The named columns of every row, taken from the worker's cache where it has them.

    Only the columns the cache lacks are read from storage, so a trial never reads a column
    it does not use.
    """
    if source.empty:
        return source.schema.empty_table().select(list(columns))
    cache = active_cache()
    found: dict[str, Any] = {}
    if cache is not None:
        for name in columns:
            values = cache.get(source.key, name)
            if values is not None:
                found[name] = values
    missing = [c for c in columns if c not in found]
    if missing:
        table = _read_from_storage(source, missing)
        for name in missing:
            found[name] = table.column(name)
            if cache is not None:
                cache.put(source.key, name, found[name])
    return pa.table({name: found[name] for name in columns})


def _read_from_storage(source: DataSource, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    filesys, _ = filesystem(source.path)
    tables, nbytes = [], 0
    for path, _, _ in source.files:
        with filesys.open_input_file(path) as f:
            parquet = pq.ParquetFile(f)
            nbytes += column_bytes(parquet.metadata, columns)
            tables.append(parquet.read(columns=columns, use_pandas_metadata=False))
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    with _reads_lock:
        _reads.append({"path": source.path, "columns": list(columns), "bytes": nbytes, "rows": table.num_rows})
    return table


def column_bytes(metadata: Any, columns: Sequence[str], row_groups: Optional[Sequence[int]] = None) -> int:
    """Compressed bytes of ``columns`` in a parquet file's row groups: what reading them costs."""
    wanted = set(columns)
    total = 0
    for i in range(metadata.num_row_groups) if row_groups is None else row_groups:
        group = metadata.row_group(i)
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.path_in_schema in wanted:
                total += chunk.total_compressed_size
    return total


def record_read(path: str, columns: Sequence[str], nbytes: int, rows: int) -> None:
    """Notes a read from storage made elsewhere (the streaming dataset) in :func:`read_stats`."""
    with _reads_lock:
        _reads.append({"path": path, "columns": list(columns), "bytes": nbytes, "rows": rows})


def read_stats() -> list[dict]:
    """What this process read from storage, oldest first: ``path``, ``columns``, ``bytes``, ``rows``.

    ``bytes`` are the compressed column-chunk sizes of the parquet files, i.e. what was
    fetched from storage. Reads served by the cache do not appear.
    """
    with _reads_lock:
        return [dict(r) for r in _reads]


def reset_read_stats() -> None:
    """Forgets what :func:`read_stats` lists."""
    with _reads_lock:
        _reads.clear()


def to_arrays(table: pa.Table, label: str, features: Sequence[str], dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, features)`` as numpy arrays of ``dtype``; features one column per feature."""
    data = np.empty((table.num_rows, len(features)), dtype=dtype)
    for j, name in enumerate(features):
        data[:, j] = _column_numpy(table.column(name))
    return _column_numpy(table.column(label)).astype(dtype, copy=False), data


def _column_numpy(values: pa.ChunkedArray) -> np.ndarray:
    if values.null_count:
        values = values.cast(pa.float64())  # nulls become NaN, as pandas reads them
    return values.to_numpy()
