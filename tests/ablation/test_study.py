"""Declaring a study, and what LOCO makes of it."""

import pytest

from maggy.ablation import AblationStudy
from maggy.ablation.ablator import LOCO
from maggy.trial import make_spec


def model():
    return None


@pytest.fixture
def study():
    study = AblationStudy("titanic_train_dataset", training_dataset_version=1, label_name="survived")
    study.model.set_base_model_generator(model)
    return study


def trials_of(study, repeats=1, seed=0):
    ablator = LOCO(study, repeats=repeats, seed=seed)
    ablator.initialize()
    trials = []
    while (trial := ablator.get_trial()) is not None:
        trials.append(trial)
    assert len(trials) == ablator.get_number_of_trials()
    return trials


def test_the_thesis_declaration_gives_six_trials_base_first(study):
    study.model.layers.include(2, 4)
    study.model.layers.include_groups([2, 3], [4, 5])
    study.model.features.include("Fare")
    trials = trials_of(study)
    # Rule: one base trial, then one per component, in declaration order.
    assert [(t["ablated_feature"], t["ablated_layers"], t["layer_label"]) for t in trials] == [
        (None, None, None),
        (None, [2], "2"),
        (None, [4], "4"),
        (None, [2, 3], "[2, 3]"),
        (None, [4, 5], "[4, 5]"),
        ("Fare", None, None),
    ]
    assert [t["index"] for t in trials] == list(range(6))
    assert len({t["trial_id"] for t in trials}) == 6


def test_names_prefixes_custom_models_and_infer_activation(study):
    study.model.layers.include("encoder.layers.1", infer_activation=True)
    study.model.layers.include_groups(prefix="encoder.layers")
    study.model.add_custom_model_generator(model, "small")
    trials = trials_of(study)[1:]
    assert trials[0]["ablated_layers"] == ["encoder.layers.1"] and trials[0]["infer_activation"] is True
    assert trials[1]["ablated_layers"] == [{"prefix": "encoder.layers"}] and trials[1]["layer_label"] == "encoder.layers.*"
    assert trials[2]["custom_model"] == "small" and trials[2]["ablated_layers"] is None


def test_features_are_one_trial_each_and_reachable_from_the_model(study):
    study.features.include("fare", ["sibsp", "parch"])
    assert study.model.features is study.features
    study.features.exclude("PARCH")
    assert study.features.list_all() == ["fare", "sibsp"]
    assert [t["ablated_feature"] for t in trials_of(study)] == [None, "fare", "sibsp"]


def test_exclude_and_duplicates(study):
    study.model.layers.include(2, 4, 2)
    study.model.layers.include_groups([2, 3], [4, 5])
    study.model.layers.exclude(4, [2, 3])
    # Rule: a component declared twice is one trial; excluded ones are gone.
    assert study.model.layers.list_all() == [2, (4, 5)]


def test_repeats_run_every_trial_with_its_own_seed(study):
    study.features.include("fare")
    trials = trials_of(study, repeats=3, seed=10)
    assert len(trials) == 6
    assert [(t["index"], t["repeat"], t["seed"]) for t in trials] == [
        (0, 0, 10), (1, 0, 10), (0, 1, 11), (1, 1, 11), (0, 2, 12), (1, 2, 12)
    ]
    # A trial's id is stable across runs (resume matches on it) and differs per repeat.
    assert trials[0]["trial_id"] == make_spec(0, repeat=0, seed=10)["trial_id"]
    assert trials[0]["trial_id"] != trials[2]["trial_id"]


def test_constructor_arguments_are_checked():
    with pytest.raises(TypeError, match="training_dataset_version must be an int"):
        AblationStudy("titanic", "1")
    with pytest.raises(TypeError, match="label_name must be a str"):
        AblationStudy("titanic", 1, label_name=3)
    with pytest.raises(TypeError, match="function returning a MaggyDataset"):
        AblationStudy(dataset_generator="data.csv")


def test_noise_runs_add_base_runs_after_the_thesis_trials(study):
    from maggy.ablation.ablator import LOCO
    from maggy.config import AblationConfig

    study.model.layers.include(2, 4)
    study.model.layers.include_groups([2, 3], [4, 5])
    study.model.features.include("Fare")
    ablator = LOCO(study)
    ablator.configure(AblationConfig(ablation_study=study, noise_runs=2))
    ablator.initialize()
    trials = ablator.more_trials([])
    # Rule: the 6 trials of the thesis first, then the base trial alone with the next seeds.
    assert len(trials) == ablator.get_number_of_trials() == 8
    assert [t["index"] for t in trials[6:]] == [0, 0] and [t["seed"] for t in trials[6:]] == [1, 2]
    assert [t["repeat"] for t in trials[:6]] == [0] * 6
