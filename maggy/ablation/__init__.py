"""Declaring ablation studies: the study, its datasets, and model surgery."""

from maggy.ablation.datasets import MaggyDataset, PandasDataset
from maggy.ablation.study import AblationStudy

__all__ = ["AblationStudy", "MaggyDataset", "PandasDataset", "Ablator"]


def __getattr__(name):
    # The one-class API is a façade over lagom(), a layer above this package
    # (maggy/one_class.py): import it only when asked for, under the name the thesis uses.
    if name == "Ablator":
        from maggy.one_class import Ablator

        return Ablator
    raise AttributeError(f"module 'maggy.ablation' has no attribute {name!r}")
