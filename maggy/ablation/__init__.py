"""Declaring ablation studies: the study, its datasets, and model surgery."""

# The datasets module imports torch, so it loads on first use: a Spark worker unpickling a
# study whose trials never touch torch starts its first trial without paying for torch.
from maggy.ablation.study import AblationStudy

__all__ = ["AblationStudy", "MaggyDataset", "PandasDataset", "StreamingDataset", "Ablator"]


def __getattr__(name):
    if name in ("MaggyDataset", "PandasDataset"):
        from maggy.ablation import datasets

        return getattr(datasets, name)
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
