"""Where a training dataset lives, described without reading its rows.

The driver builds a :class:`DataSource` from the parquet footers alone (schema, row count,
each file's size), so a dataset of any size costs it a few kilobytes. The executors read the
rows themselves through pyarrow's filesystems: a local or NFS path, ``file://``, ``hdfs://``
(with libhdfs), ``s3://`` or ``s3a://`` (read as ``s3://``), ``gs://``. Nothing here needs a
SparkContext, so it works the same under Spark Connect.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import pyarrow as pa

__all__ = ["DataSource", "describe", "stage", "DEFAULT_CACHE_MB"]

#: Default memory budget of each Python worker's column cache, in MB.
DEFAULT_CACHE_MB = 1024.0


@dataclasses.dataclass(frozen=True)
class DataSource:
    """A parquet dataset the executors read: plain data, shipped to them with the task.

    Attributes:
        path: a parquet file or a folder of them (any URI pyarrow can open).
        schema: the dataset's columns and types (pandas index columns left out).
        num_rows: rows over all files.
        files: ``(path, size in bytes, modification time in ns)`` of every data file, in
            read order; the cache recognises a dataset by it.
        cache_mb: memory budget of each Python worker's column cache, MB (0 turns it off).
        empty: read no rows (the driver's pre-flight builds datasets from the schema alone).
    """

    path: Optional[str]
    schema: pa.Schema
    num_rows: int
    files: tuple = ()
    cache_mb: float = DEFAULT_CACHE_MB
    empty: bool = False

    @property
    def columns(self) -> list[str]:
        """The column names, in file order."""
        return list(self.schema.names)

    @property
    def key(self) -> tuple:
        """What identifies this version of the data: its files, sizes and modification times."""
        return (self.path, self.files)

    def schema_only(self) -> "DataSource":
        """The same source, reading no rows: what the driver's pre-flight builds datasets from."""
        return dataclasses.replace(self, empty=True)

    def with_cache(self, cache_mb: Optional[float]) -> "DataSource":
        """The same source with another cache budget (``None`` keeps the default)."""
        return self if cache_mb is None else dataclasses.replace(self, cache_mb=float(cache_mb))


def filesystem(path: str) -> tuple[Any, str]:
    """pyarrow's filesystem for ``path`` and the path inside it (``s3a://`` read as ``s3://``)."""
    from pyarrow import fs

    if path.startswith(("s3a://", "s3n://")):
        path = "s3://" + path.split("://", 1)[1]
    if "://" not in path:
        return fs.LocalFileSystem(), os.path.abspath(path)
    return fs.FileSystem.from_uri(path)


def _data_files(path: str) -> list:
    """The parquet files of ``path`` (a file or a folder), in name order; Spark's markers skipped."""
    from pyarrow import fs

    filesys, inner = filesystem(path)
    info = filesys.get_file_info(inner)
    if info.type == fs.FileType.NotFound:
        raise FileNotFoundError(f"no dataset at {path}")
    if info.type == fs.FileType.File:
        return [info]
    found = filesys.get_file_info(fs.FileSelector(inner, recursive=True))
    files = [
        f for f in found
        if f.type == fs.FileType.File and not any(p.startswith(("_", ".")) for p in os.path.relpath(f.path, inner).split("/"))
    ]
    if not files:
        raise FileNotFoundError(f"the dataset folder {path} holds no parquet files")
    return sorted(files, key=lambda f: f.path)


def describe(path: str, cache_mb: Optional[float] = None) -> DataSource:
    """Describes the parquet dataset at ``path`` from its footers; no row is read.

    Raises:
        FileNotFoundError: nothing at ``path``, or a folder without parquet files.
    """
    import pyarrow.parquet as pq

    filesys, _ = filesystem(path)
    infos = _data_files(path)
    schema, rows = None, 0
    for info in infos:
        with filesys.open_input_file(info.path) as f:
            meta = pq.ParquetFile(f).metadata
            rows += meta.num_rows
            if schema is None:
                schema = meta.schema.to_arrow_schema()
    keep = [i for i, name in enumerate(schema.names) if not name.startswith("__index_level_")]
    schema = pa.schema([schema.field(i) for i in keep])
    files = tuple((f.path, f.size, f.mtime_ns) for f in infos)
    return DataSource(path, schema, rows, files).with_cache(cache_mb)


def is_spark_frame(dataframe: Any) -> bool:
    """Whether ``dataframe`` is a Spark DataFrame (classic or Connect) rather than a pandas one."""
    return hasattr(dataframe, "write")


def stage(dataframe: Any, location: str) -> str:
    """Writes a pandas or Spark DataFrame as parquet under ``location``; returns the path.

    A Spark DataFrame is written by Spark (by the executors, so ``location`` must be a path
    they all see: a shared folder, ``hdfs://``, ``s3a://``); it is never collected on the driver.
    """
    if is_spark_frame(dataframe):
        dataframe.write.mode("overwrite").parquet(location)
        return location
    os.makedirs(location, exist_ok=True)
    dataframe.to_parquet(os.path.join(location, "data.parquet"), index=False)
    return location


def schema_of(dataframe: Any) -> pa.Schema:
    """The arrow schema of a pandas or Spark DataFrame, without collecting its rows."""
    if is_spark_frame(dataframe):
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(dataframe.schema)
    return pa.Schema.from_pandas(dataframe, preserve_index=False)
