"""Datasets that know how to leave a feature out."""

from __future__ import annotations

import abc
from typing import Any, Optional, Sequence

import numpy as np
from torch.utils.data import Dataset

from maggy.util import to_pandas

__all__ = ["MaggyDataset", "PandasDataset"]


class MaggyDataset(Dataset, abc.ABC):
    """A ``torch.utils.data.Dataset`` that can remove one of its features.

    Subclass it and implement :meth:`ablate_feature` — drop a column, a channel, mask words,
    anything. maggy builds a fresh dataset for every trial, so the method never has to undo
    an earlier ablation.

    Optional hooks used by model surgery to repair the first layers after an ablation:

    * ``input_shape``: the shape of one model input (no batch dimension) after ablation.
    * ``sample_input()``: one real batch, for models whose input is not a float tensor
      (e.g. token ids).

    Example:
        >>> class Images(MaggyDataset):
        ...     def __init__(self, x, y):
        ...         self.x, self.y = x, y          # x: (n, channels, h, w)
        ...     def __len__(self):
        ...         return len(self.y)
        ...     def __getitem__(self, i):
        ...         return self.x[i], self.y[i]
        ...     def ablate_feature(self, feature):
        ...         keep = [c for c in range(self.x.shape[1]) if f"ch{c}" != feature]
        ...         self.x = self.x[:, keep]
        ...     @property
        ...     def input_shape(self):
        ...         return tuple(self.x.shape[1:])
    """

    @abc.abstractmethod
    def ablate_feature(self, feature: str) -> None:
        """Removes ``feature`` from the data this dataset holds."""
        raise NotImplementedError


class PandasDataset(MaggyDataset):
    """A dataset over a pandas (or Spark) DataFrame: one column is the label, the rest features.

    Args:
        df: a pandas DataFrame, or a Spark DataFrame (collected with ``toPandas()``).
        label_name: the label column.
        label_first: ``True`` (the default, as in the original Maggy listings) makes
            ``__getitem__`` return ``(label, features)``; ``False`` returns ``(features, label)``.
        dtype: numpy dtype of the feature and label arrays.

    Raises:
        ValueError: the label is not a column, or a feature column is not numeric.

    Example:
        >>> import pandas as pd
        >>> ds = PandasDataset(pd.DataFrame({"y": [0, 1], "a": [1.0, 2.0], "b": [3.0, 4.0]}), "y")
        >>> ds.ablate_feature("A")
        >>> ds.input_shape
        (1,)
    """

    def __init__(self, df: Any, label_name: str, label_first: bool = True, dtype: Any = np.float32):
        df = to_pandas(df)
        if not hasattr(df, "columns"):
            raise TypeError(f"PandasDataset takes a pandas or Spark DataFrame, got {type(df).__name__}")
        columns = [str(c) for c in df.columns]
        lowered = [c.lower() for c in columns]
        if label_name.lower() not in lowered:
            raise ValueError(f"label {label_name!r} is not a column of the dataset; columns: {columns}")
        label_idx = lowered.index(label_name.lower())
        self.label = columns[label_idx]
        self.columns = [c for i, c in enumerate(columns) if i != label_idx]
        # Imported here: executors load this module for every trial, most never build a
        # PandasDataset, and pandas costs a fresh Spark worker ~0.3 s to import.
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        features = df.drop(columns=[self.label])
        non_numeric = [
            c for c in self.columns
            if not (is_numeric_dtype(features[c].dtype) or is_bool_dtype(features[c].dtype))
        ]
        if non_numeric:
            raise ValueError(
                f"PandasDataset needs numeric feature columns; encode these first: {non_numeric}"
            )
        self.data = features.to_numpy(dtype=dtype)
        self.labels = df[self.label].to_numpy(dtype=dtype)
        self.label_first = label_first

    @classmethod
    def from_arrays(cls, labels: np.ndarray, data: np.ndarray, label_name: str, feature_names: Sequence[str],
                    label_first: bool = True) -> "PandasDataset":
        """A dataset over arrays already read: ``labels`` (n,) and ``data`` (n, features).

        This is how executors build a trial's dataset from the columns they read themselves.

        Example:
            >>> ds = PandasDataset.from_arrays(np.zeros(2), np.ones((2, 3)), "y", ["a", "b", "c"])
            >>> ds.input_shape, ds.feature_names
            ((3,), ['a', 'b', 'c'])
        """
        dataset = cls.__new__(cls)
        dataset.label, dataset.columns = label_name, list(feature_names)
        dataset.labels, dataset.data, dataset.label_first = labels, data, label_first
        return dataset

    def __getitem__(self, item):
        if self.label_first:
            return self.labels[item], self.data[item]
        return self.data[item], self.labels[item]

    def __len__(self) -> int:
        return self.data.shape[0]

    def ablate_feature(self, feature: str) -> None:
        """Drops the feature column ``feature`` (matched case-insensitively).

        Raises:
            ValueError: no such feature column; the message lists the columns.
        """
        lowered = [c.lower() for c in self.columns]
        if feature.lower() not in lowered:
            raise ValueError(f"feature {feature!r} is not a column of the dataset; features: {self.columns}")
        idx = lowered.index(feature.lower())
        self.data = np.delete(self.data, obj=idx, axis=1)
        self.columns.pop(idx)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one feature vector: ``(number of features,)``."""
        return (self.data.shape[1],)

    @property
    def feature_names(self) -> Sequence[str]:
        """The feature columns, in order."""
        return list(self.columns)


def input_info(dataset: Any) -> tuple[Optional[tuple], Any]:
    """The ``(input_shape, sample_input)`` a dataset offers for shape repair (either may be None)."""
    shape = getattr(dataset, "input_shape", None)
    if callable(shape):
        shape = shape()
    sample = dataset.sample_input() if callable(getattr(dataset, "sample_input", None)) else None
    return (tuple(shape) if shape is not None else None), sample
