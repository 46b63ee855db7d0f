"""Bad input is refused by lagom() with a clear message, before any trial runs.

Argument checks come before any Spark job; pre-flight (which builds each trial's model) runs
while the job's workers start, and a failure there cancels the job before its first trial.
"""

import os
import threading
import time

import pytest
from torch import nn

import maggy.datasets
from maggy import AblationConfig, AblationError, experiment
from maggy.ablation import AblationStudy


def model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))


def train(model_function, dataset_function):
    return 1.0


@pytest.fixture
def study(catalog, titanic_df):
    maggy.datasets.register("titanic", 1, titanic_df)
    study = AblationStudy("titanic", 1, label_name="survived")
    study.model.set_base_model_generator(model)
    return study


def lagom(study, tmp_path, train_fn=train, **kwargs):
    kwargs.setdefault("direction", "min")
    return experiment.lagom(train_fn=train_fn, ablation_study=study, name="bad", experiment_dir=str(tmp_path / "exp"),
                            verbose=False, **kwargs)


def refused(tmp_path, error, match, call):
    with pytest.raises(error, match=match):
        call()
    # Rule: nothing ran: the experiment directory was never created.
    assert not (tmp_path / "exp" / "bad").exists()


def test_layer_index_out_of_range_names_the_valid_range(study, tmp_path):
    study.model.layers.include(7)
    refused(tmp_path, AblationError, r"layer index 7 is out of range.*0\.\.2", lambda: lagom(study, tmp_path))


DRIVER_PID = os.getpid()


def slow_on_the_driver():
    if os.getpid() == DRIVER_PID:
        time.sleep(4)  # pre-flight outlasts the start of the job's workers
    return model()


def test_a_failed_preflight_runs_no_trial_and_leaves_the_session_ready(study, tmp_path, spark):
    ran = tmp_path / "trials-that-ran"
    ran.mkdir()
    study.model.set_base_model_generator(slow_on_the_driver)

    def recording_train(model_function, dataset_function):
        import uuid

        (ran / uuid.uuid4().hex).touch()
        return 1.0

    study.model.layers.include(7)
    refused(tmp_path, AblationError, r"layer index 7 is out of range",
            lambda: lagom(study, tmp_path, train_fn=recording_train, spark=spark))
    # Rule: the job submitted before pre-flight runs no trial and is gone when lagom() raises.
    assert list(ran.iterdir()) == []
    tracker = spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 30
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tracker.getActiveJobsIds() == []
    # ...and the same session runs the corrected study.
    fixed = AblationStudy("titanic", 1, label_name="survived")
    fixed.model.set_base_model_generator(model)
    fixed.model.layers.include(2)
    result = lagom(fixed, tmp_path, train_fn=recording_train, spark=spark)
    assert result["num_trials"] == 2 and len(list(ran.iterdir())) == 2


def test_unknown_layer_name_suggests_the_closest(study, tmp_path):
    study.model.layers.include("3")
    study.model.layers.include_groups(["0", "x1"])
    # Rule: every invalid trial is reported in one error.
    refused(tmp_path, AblationError, r"2 of 3 trials cannot run(.|\n)*no module named '3'(.|\n)*'x1'",
            lambda: lagom(study, tmp_path))


def test_unknown_feature_and_label(study, catalog, titanic_df, tmp_path):
    study.features.include("fair")
    refused(tmp_path, ValueError, r"feature 'fair' is not a feature.*did you mean \['fare'\]", lambda: lagom(study, tmp_path))
    wrong_label = AblationStudy("titanic", 1, label_name="alive")
    wrong_label.model.set_base_model_generator(model)
    refused(tmp_path, ValueError, r"label 'alive' is not a column.*survived", lambda: lagom(wrong_label, tmp_path))


def test_unknown_dataset_lists_what_the_catalog_has(study, tmp_path):
    missing = AblationStudy("titanic", 3, label_name="survived")
    missing.model.set_base_model_generator(model)
    refused(tmp_path, FileNotFoundError, r"'titanic' version 3 is not in the catalog.*titanic \(v1\)", lambda: lagom(missing, tmp_path))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"direction": "up"}, ValueError, r"direction must be 'min' or 'max', got 'up'"),
        ({"ablator": "random"}, ValueError, r"unknown ablator 'random'; accepted: \['loco', 'loco_pytorch', 'pairs', 'shapley'\]"),
        ({"es_policy": "mean"}, ValueError, r"es_policy must be one of \['base', 'median', 'none'\]"),
        ({"num_executors": 0}, ValueError, r"num_executors must be an int >= 1, got 0"),
        ({"gpus_per_trial": 0.5}, ValueError, r"gpus_per_trial must be an int >= 1, got 0.5"),
        ({"cpus_per_trial": 0}, ValueError, r"cpus_per_trial must be an int >= 1, got 0"),
        ({"epochs": 3}, TypeError, r"unknown argument\(s\) \['epochs'\]"),
        ({"experiment_type": "optimization"}, ValueError, r"experiment_type must be 'ablation'"),
        ({"repeats": "many"}, ValueError, r"repeats must be an int >= 1 or 'auto', got 'many'"),
        ({"alpha": 1.5}, ValueError, r"alpha must be a number between 0 and 1 \(exclusive\), got 1.5"),
        ({"min_repeats": 1}, ValueError, r"min_repeats must be an int >= 2, got 1"),
        ({"min_repeats": 5, "max_repeats": 4}, ValueError, r"max_repeats must be an int >= 5, got 4"),
        ({"min_effect": -0.1}, ValueError, r"min_effect must be a number >= 0, got -0.1"),
        ({"noise_runs": -1}, ValueError, r"noise_runs must be an int >= 0, got -1"),
        ({"repeats": "auto", "noise_runs": 2}, ValueError, r"noise_runs is for single runs; repeats='auto'"),
        ({"ablator": "pairs", "noise_runs": 2}, ValueError, r"noise_runs is run by ablator='loco' only; Pairs would ignore it"),
        ({"ablator": "shapley", "noise_runs": 1}, ValueError, r"noise_runs is run by ablator='loco' only; Shapley would ignore"),
    ],
)
def test_bad_config_values(study, tmp_path, kwargs, error, match):
    refused(tmp_path, error, match, lambda: lagom(study, tmp_path, **kwargs))


def test_train_fn_missing_not_callable_or_with_unknown_parameters(study, tmp_path):
    refused(tmp_path, TypeError, "needs train_fn", lambda: experiment.lagom(ablation_study=study, direction="min"))
    refused(tmp_path, TypeError, "train_fn must be a function, got int", lambda: lagom(study, tmp_path, train_fn=3))
    refused(tmp_path, TypeError, r"parameter\(s\) \['epochs'\] that maggy cannot supply",
            lambda: lagom(study, tmp_path, train_fn=lambda model_function, epochs: 1.0))


def test_layers_without_a_base_model(catalog, titanic_df, tmp_path):
    maggy.datasets.register("titanic", 1, titanic_df)
    study = AblationStudy("titanic", 1, label_name="survived")
    study.model.layers.include(1)
    refused(tmp_path, ValueError, "no base model: call study.model.set_base_model_generator", lambda: lagom(study, tmp_path))


def test_unpicklable_functions_are_named(study, tmp_path):
    lock = threading.Lock()

    def holds_a_lock(model_function):
        with lock:
            return 1.0

    refused(tmp_path, TypeError, r"train_fn .*holds_a_lock.* cannot be sent to the Spark executors.*lock",
            lambda: lagom(study, tmp_path, train_fn=holds_a_lock))

    def make_locked_model():
        with lock:
            return model()

    study.model.set_base_model_generator(make_locked_model)
    refused(tmp_path, TypeError, r"the base model generator .*make_locked_model.* cannot be sent",
            lambda: lagom(study, tmp_path))


@pytest.mark.parametrize(
    "declare, error, match",
    [
        (lambda s: s.model.layers.include(2.5), TypeError, r"layer positions \(int\) or module names \(str\), got 2\.5"),
        (lambda s: s.model.layers.include(True), TypeError, "got True of type bool"),
        (lambda s: s.model.layers.include_groups(2, 3), TypeError, r"one list per trial"),
        (lambda s: s.model.layers.include_groups([2]), ValueError, "at least two layers"),
        (lambda s: s.features.include(3), TypeError, r"feature names .* got 3 of type int"),
        (lambda s: s.model.set_base_model_generator(model()), TypeError, "function returning a torch.nn.Module"),
        (lambda s: s.model.add_custom_model_generator(model, ""), TypeError, "name must be a non-empty str"),
    ],
)
def test_declarations_with_the_wrong_type_fail_at_the_call(declare, error, match):
    with pytest.raises(error, match=match):
        declare(AblationStudy("titanic", 1, label_name="survived"))


def test_config_object_is_checked_too(study):
    with pytest.raises(ValueError, match="repeats must be an int >= 1 or 'auto', got 0"):
        AblationConfig(ablation_study=study, repeats=0)
    with pytest.raises(TypeError, match="ablation_study must be a maggy.ablation.AblationStudy"):
        AblationConfig(ablation_study="titanic")


def _loco_specs(study):
    from maggy.ablation.ablator.loco import LOCO

    ablator = LOCO(study)
    ablator.initialize()
    return list(ablator.trial_buffer)


def test_preflight_builds_each_distinct_model_once(catalog, titanic_df):
    from maggy.core.validation import preflight

    maggy.datasets.register("titanic", 1, titanic_df)
    built = []

    def counted():
        built.append(1)
        return model()

    study = AblationStudy("titanic", 1, label_name="survived")
    study.model.set_base_model_generator(counted)
    study.features.include("age", "fare", "sex")
    study.model.layers.include(1, 2)
    specs = _loco_specs(study)
    preflight(study, specs, maggy.datasets.load("titanic", 1))
    # Rule: the base model, one model for every feature trial (same input width), one per
    # layer trial; the 3 feature trials do not build 3 equal models.
    assert len(specs) == 6 and len(built) == 4


def test_preflight_still_names_every_trial_whose_model_cannot_be_built(catalog, titanic_df):
    from maggy.core.validation import preflight

    class SixInputs(nn.Module):  # no repair rule can widen or narrow this
        def forward(self, x):
            if x.shape[-1] != 6:
                raise ValueError(f"expects 6 inputs, got {x.shape[-1]}")
            return x

    maggy.datasets.register("titanic", 1, titanic_df)
    study = AblationStudy("titanic", 1, label_name="survived")
    study.model.set_base_model_generator(lambda: nn.Sequential(SixInputs(), nn.Linear(6, 1)))
    study.features.include("age", "fare")
    specs = _loco_specs(study)
    with pytest.raises(AblationError, match=r"2 of 3 trials cannot run") as raised:
        preflight(study, specs, maggy.datasets.load("titanic", 1))
    # Both feature trials build the same model, and both are named.
    assert all(f"trial {s['trial_id']}" in str(raised.value) for s in specs[1:])
