"""The driver's side: which dataset a study trains on, described without reading rows."""

from __future__ import annotations

from typing import Any, Optional

from maggy import layout
from maggy.core.data.source import DataSource, describe, is_spark_frame, schema_of, stage

__all__ = ["source_for", "staged", "stages_with_spark"]


def source_for(study: Any, cache_mb: Optional[float] = None) -> Optional[DataSource]:
    """The study's training data as a :class:`DataSource`, or ``None`` under a dataset generator.

    A catalog dataset is described from its parquet footers; a DataFrame given with
    ``dataframe=`` from its schema alone (it is staged by :func:`staged` once the run's
    directory exists).

    Raises:
        FileNotFoundError: the catalog has no such dataset or version.
    """
    if study.dataset_generator is not None:
        return None
    if getattr(study, "dataframe", None) is not None:
        return DataSource(None, schema_of(study.dataframe), 0).with_cache(cache_mb)
    if study.name is None:
        return None
    from maggy import datasets

    path = datasets.path_of(study.name, study.version)
    try:
        return describe(path, cache_mb)
    except FileNotFoundError:
        datasets.raise_missing(study.name, study.version)
        raise


def stages_with_spark(source: Optional[DataSource], study: Any) -> bool:
    """Whether :func:`staged` runs a Spark job: the study's data is a Spark DataFrame."""
    return source is not None and is_spark_frame(getattr(study, "dataframe", None))


def staged(source: Optional[DataSource], study: Any, run_dir: str) -> Optional[DataSource]:
    """``source``, with a study's DataFrame first written as parquet for the executors to read.

    It goes to the study's ``staging_path``, by default ``<run_dir>/data``.
    """
    if source is None or getattr(study, "dataframe", None) is None:
        return source
    path = stage(study.dataframe, study.staging_path or layout.staged_data_path(run_dir))
    return describe(path, source.cache_mb)
