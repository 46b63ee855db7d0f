"""lagom() end to end, for what the ablation side promises: input inference and scoped repair rules."""

import numpy as np
import pytest
import torch
from torch import nn

from maggy import AblationError, experiment
from maggy.ablation import AblationStudy, MaggyDataset


def thesis_model():
    """The network of the thesis' listing 3.9."""
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


class ThesisDataset(MaggyDataset):
    """The thesis' listing 3.5 style: ``ablate_feature`` and nothing else, no input_shape, no sample_input()."""

    def __init__(self, df):
        self.columns = [c for c in df.columns if c != "survived"]
        self.data = df[self.columns].to_numpy(dtype=np.float32)
        self.labels = df["survived"].to_numpy(dtype=np.float32)

    def __getitem__(self, item):
        return self.labels[item], self.data[item]

    def __len__(self):
        return len(self.labels)

    def ablate_feature(self, feature):
        index = self.columns.index(feature)
        self.data = np.delete(self.data, index, axis=1)
        self.columns.pop(index)


def forward_and_count(model_function, dataset_function):
    model, dataset = model_function(), dataset_function()
    assert model(torch.tensor(dataset.data[:4])).shape == (4, 1)  # the model fits the ablated data
    return float(n_params(model))


def run(study, train_fn, tmp_path, **kwargs):
    return experiment.lagom(train_fn=train_fn, ablation_study=study, name=kwargs.pop("name", "test"),
                            direction="min", experiment_dir=str(tmp_path / "exp"), es_policy="none",
                            verbose=False, **kwargs)


def test_a_dataset_without_input_shape_gets_its_input_inferred_from_its_first_item(titanic_df, tmp_path, spark):
    study = AblationStudy(dataset_generator=lambda: ThesisDataset(titanic_df))
    study.model.set_base_model_generator(thesis_model)
    study.model.layers.include_groups([4, 5])
    study.features.include("fare")
    result = run(study, forward_and_count, tmp_path, num_executors=2)

    trials = result["trials"]
    # Rule: the input is the item's element the base model accepts (the features, not the
    # label), so removing [4, 5] and dropping "fare" both repair the model, as with input_shape.
    assert list(trials["status"]) == ["finished"] * 3, trials["error"].tolist()
    base = n_params(thesis_model())
    assert list(trials["metric"]) == [base, base - (64 * 32 + 32) - (32 * 2 + 2) + (64 * 2 + 2), base - 64]


class Sentences(MaggyDataset):
    """Items the model cannot take as they are: a dict of a sentence and its label."""

    def __getitem__(self, item):
        return {"text": "a sentence", "label": 1}

    def __len__(self):
        return 4

    def ablate_feature(self, feature):
        pass


def test_an_input_that_cannot_be_inferred_stops_preflight_naming_the_trials_and_the_fix(tmp_path):
    study = AblationStudy(dataset_generator=Sentences)
    study.model.set_base_model_generator(thesis_model)
    study.model.layers.include_groups([4, 5])
    study.features.include("words")
    with pytest.raises(AblationError) as caught:
        run(study, forward_and_count, tmp_path)
    message = str(caught.value)
    # Rule: the trials that need the input are named; the base trial needs none.
    assert "2 of 3 trials cannot run" in message
    assert "[4, 5])" in message and "(feature words)" in message and "(base)" not in message
    # Rule: the message says how to fix it.
    assert "input_shape" in message and "sample_input()" in message
