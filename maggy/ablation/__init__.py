"""Declaring ablation studies: the study, its datasets, and model surgery."""

from maggy.ablation.datasets import MaggyDataset, PandasDataset
from maggy.ablation.study import AblationStudy

__all__ = ["AblationStudy", "MaggyDataset", "PandasDataset", "StreamingDataset", "Ablator"]


def __getattr__(name):
    # The one-class API is a façade over lagom(), a layer above this package
    # (maggy/one_class.py): import it only when asked for, under the name the thesis uses.
    if name == "Ablator":
        from maggy.one_class import Ablator

        return Ablator
    if name == "StreamingDataset":
        # It lives with the executors' data reading (maggy.core.data), a layer above this one.
        from maggy.core.data import StreamingDataset

        return StreamingDataset
    raise AttributeError(f"module 'maggy.ablation' has no attribute {name!r}")
