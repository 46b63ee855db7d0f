"""The dataset catalog: named, versioned training datasets stored as parquet.

``AblationStudy("titanic_train_dataset", training_dataset_version=1, ...)`` reads from here.
The root is ``$MAGGY_DATASETS`` (default ``./maggy_datasets``); on a cluster, any path Spark
can read (``hdfs://``, ``s3a://``) works, and those are read and written through Spark.
"""

from __future__ import annotations

import os
import re
from typing import Any, Optional

import pandas as pd

from maggy.util import to_pandas

__all__ = ["register", "load", "path_of", "catalog_root", "raise_missing"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def catalog_root() -> str:
    """The catalog's root path: ``$MAGGY_DATASETS`` or ``./maggy_datasets``."""
    return os.environ.get("MAGGY_DATASETS", os.path.abspath("maggy_datasets"))


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def path_of(name: str, version: int, root: Optional[str] = None) -> str:
    """Where version ``version`` of dataset ``name`` is stored."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"dataset name must use letters, digits, '_', '.', '-' only, got {name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"dataset version must be an int >= 1, got {version!r}")
    root = root or catalog_root()
    return f"{root.rstrip('/')}/{name}/v{version}"


def register(name: str, version: int, dataframe: Any, overwrite: bool = True, root: Optional[str] = None) -> str:
    """Stores ``dataframe`` as version ``version`` of training dataset ``name``.

    Args:
        name: dataset name, e.g. ``"titanic_train_dataset"``.
        version: version number, >= 1.
        dataframe: a pandas or Spark DataFrame.
        overwrite: replace an existing version (``False`` raises instead).
        root: catalog root; defaults to :func:`catalog_root`.

    Returns:
        The path the dataset was written to.

    Example:
        >>> import pandas as pd, maggy.datasets as catalog
        >>> path = catalog.register("demo", 1, pd.DataFrame({"y": [0, 1], "x": [1.0, 2.0]}))
    """
    path = path_of(name, version, root)
    if hasattr(dataframe, "write"):  # a Spark DataFrame: let Spark write it wherever it is
        dataframe.write.mode("overwrite" if overwrite else "error").parquet(path)
        return path
    if not isinstance(dataframe, pd.DataFrame):
        raise TypeError(f"register takes a pandas or Spark DataFrame, got {type(dataframe).__name__}")
    if _is_remote(path):
        from pyspark.sql import SparkSession

        SparkSession.builder.getOrCreate().createDataFrame(dataframe).write.mode(
            "overwrite" if overwrite else "error"
        ).parquet(path)
        return path
    target = os.path.join(path, "data.parquet")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"dataset {name!r} version {version} exists at {path}; pass overwrite=True")
    os.makedirs(path, exist_ok=True)
    for stale in os.listdir(path):
        os.remove(os.path.join(path, stale))
    dataframe.to_parquet(target, index=False)
    return path


def load(name: str, version: int, root: Optional[str] = None) -> pd.DataFrame:
    """Reads version ``version`` of dataset ``name`` as a pandas DataFrame.

    Raises:
        FileNotFoundError: no such dataset or version; the message lists what the catalog has.
    """
    path = path_of(name, version, root)
    if _is_remote(path):
        from pyspark.sql import SparkSession

        return to_pandas(SparkSession.builder.getOrCreate().read.parquet(path))
    if not os.path.isdir(path):
        raise_missing(name, version, root)
    return pd.read_parquet(path)


def raise_missing(name: str, version: int, root: Optional[str] = None) -> None:
    """Raises the error for a dataset the catalog lacks, listing what it has.

    Raises:
        FileNotFoundError: always.
    """
    root_dir = root or catalog_root()
    known = []
    if os.path.isdir(root_dir):
        for ds in sorted(os.listdir(root_dir)):
            versions = sorted(os.listdir(os.path.join(root_dir, ds))) if os.path.isdir(os.path.join(root_dir, ds)) else []
            known.append(f"{ds} ({', '.join(versions)})")
    raise FileNotFoundError(
        f"dataset {name!r} version {version} is not in the catalog at {root_dir}; "
        f"it has: {', '.join(known) or 'nothing'}. Register it with maggy.datasets.register()"
    )
