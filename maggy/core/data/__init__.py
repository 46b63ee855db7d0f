"""Training data read where it lives: by the executors, one trial's columns at a time.

The driver describes a dataset (:func:`describe`: schema, row count, files) and ships that
description; each trial reads only the columns it uses (:func:`load_dataset`), through its
Python worker's column cache (:func:`worker_cache`), or streams them row group by row group
(:class:`StreamingDataset`). A DataFrame given as training data is first written as parquet
(:func:`stage`). Nothing here needs a SparkContext.
"""

from __future__ import annotations

from typing import Any, Optional

from maggy.core.data.cache import ColumnCache, active_cache, worker_cache
from maggy.core.data.reader import projection, read_columns, read_stats, reset_read_stats, to_arrays
from maggy.core.data.source import DEFAULT_CACHE_MB, DataSource, describe, schema_of, stage
from maggy.core.data.streaming import StreamingDataset

__all__ = [
    "DataSource", "describe", "stage", "schema_of", "DEFAULT_CACHE_MB",
    "ColumnCache", "worker_cache", "active_cache",
    "projection", "read_columns", "read_stats", "reset_read_stats", "to_arrays",
    "StreamingDataset", "load_dataset",
]


def load_dataset(source: DataSource, label_name: str, ablated_feature: Optional[str] = None,
                 streaming: bool = False) -> Any:
    """One trial's dataset: a ``PandasDataset`` of the columns it uses, or a ``StreamingDataset``.

    Args:
        source: the dataset.
        label_name: the label column.
        ablated_feature: the feature this trial leaves out; it is never read.
        streaming: stream row groups instead of holding the columns in memory.
    """
    if streaming:
        dataset = StreamingDataset(source, label_name)
        if ablated_feature:
            dataset.ablate_feature(ablated_feature)
        return dataset
    from maggy.ablation.datasets import PandasDataset

    label, features = projection(source.schema, label_name, ablated_feature)
    labels, data = to_arrays(read_columns(source, [label, *features]), label, features)
    return PandasDataset.from_arrays(labels, data, label, features)
