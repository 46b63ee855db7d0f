"""The study the overhead and scale benchmarks share: N trials that cost next to nothing to build.

Its functions travel to the executors by value (registered with cloudpickle below), so the
executors need not import this file.
"""

import sys

from pyspark import cloudpickle

from maggy.ablation import AblationStudy


class TrivialDataset:
    """The smallest dataset a feature ablation can act on."""

    input_shape = (4,)

    def ablate_feature(self, feature):
        pass


def make_dataset():
    return TrivialDataset()


def make_model():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 1))


def make_study(trials: int) -> AblationStudy:
    """A base trial and ``trials - 1`` feature trials over a one-layer model."""
    study = AblationStudy(dataset_generator=make_dataset)
    study.model.set_base_model_generator(make_model)
    study.features.include(*[f"f{i}" for i in range(1, trials)])
    return study


cloudpickle.register_pickle_by_value(sys.modules[__name__])
