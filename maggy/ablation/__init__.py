"""Declaring ablation studies: the study, its datasets, and model surgery."""

# The datasets module imports torch, so it loads on first use: a Spark worker unpickling a
# study whose trials never touch torch starts its first trial without paying for torch.
from maggy.ablation.study import AblationStudy

__all__ = ["AblationStudy", "MaggyDataset", "PandasDataset", "Ablator"]


def __getattr__(name):
    if name in ("MaggyDataset", "PandasDataset"):
        from maggy.ablation import datasets

        return getattr(datasets, name)
    # The one-class API is optional sugar over lagom(); import it only when asked for.
    if name == "Ablator":
        from maggy.ablation.one_class import Ablator

        return Ablator
    raise AttributeError(f"module 'maggy.ablation' has no attribute {name!r}")
