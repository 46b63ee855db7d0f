"""maggy.ablation.Ablator: the one-class API of the Maggy thesis (listing 3.13), end to end."""

import pytest
import torch
from torch import nn

from maggy.ablation import Ablator, PandasDataset
from maggy.ablation.ablator import DeclaredTrials
from maggy.ablation.surgery import prefix
from maggy.exceptions import AblationError


def titanic_model():
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def count_params(model_function, dataset_function, reporter):
    model, dataset = model_function(), dataset_function()
    assert model(torch.tensor(dataset.data[:4])).shape == (4, 1)  # the model fits the ablated data
    reporter.broadcast(metric=float(n_params(model)), step=0)
    return float(n_params(model))


@pytest.fixture
def dataset_fn(titanic_df):
    return lambda: PandasDataset(titanic_df, "survived")


def make(dataset_fn, **kwargs):
    return Ablator(titanic_model, dataset_fn, count_params, **kwargs)


# ----------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"direction": "up"}, ValueError, "direction must be 'min' or 'max'"),
        ({"num_executor": 2}, TypeError, r"unknown config field\(s\) \['num_executor'\]"),
        ({"ablator": "loco"}, TypeError, r"sets \['ablator'\] itself"),
        ({"es_min": 0}, ValueError, "es_min"),
    ],
)
def test_config_fields_are_checked_when_the_ablator_is_made(dataset_fn, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(dataset_fn, **kwargs)


def test_generators_and_train_fn_must_be_callable(dataset_fn):
    with pytest.raises(TypeError, match="train_fn"):
        Ablator(titanic_model, dataset_fn, "train")
    with pytest.raises(TypeError, match="set_base_model_generator"):
        Ablator(None, dataset_fn, count_params)
    with pytest.raises(TypeError, match="set_dataset_generator"):
        Ablator(titanic_model, 3, count_params)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"ablated_layers": 2.5}, TypeError, "layer positions"),
        ({"ablated_layers": [True]}, TypeError, "layer positions"),
        ({"ablated_layers": [{"name": "fc"}]}, TypeError, "prefix identifier"),
        ({"ablated_layers": [2, 2]}, ValueError, "names a layer twice"),
        ({"ablated_features": ["sex", "age"]}, TypeError, "one feature"),
        ({"input_shape": (0, 3)}, TypeError, "input_shape"),
        ({"input_shape": "6"}, TypeError, "input_shape"),
        ({"ablated_layers": 2, "infer_activation": "yes"}, TypeError, "infer_activation"),
    ],
)
def test_new_trial_checks_its_arguments(dataset_fn, kwargs, error, match):
    with pytest.raises(error, match=match):
        make(dataset_fn).new_trial(**kwargs)


def test_a_trial_declared_twice_is_refused(dataset_fn):
    ablator = make(dataset_fn)
    ablator.new_trial(ablated_layers=[2, 3])
    with pytest.raises(ValueError, match=r"declared already: layer \[2, 3\]"):
        ablator.new_trial(ablated_layers=(2, 3))


# ----------------------------------------------------------------------- trial order


def test_the_base_trial_is_added_first_unless_declared(dataset_fn):
    ablator = make(dataset_fn)
    # Rule: new_trial returns the run position; the base trial is position 0.
    assert ablator.new_trial(ablated_features="sex") == 1
    assert ablator.new_trial(ablated_layers=prefix("fc")) == 2
    assert [t["ablated_feature"] for t in ablator.trials] == [None, "sex", None]
    assert ablator.trials[2]["layer_label"] == "fc.*"
    # Rule: a trial removing nothing is the base trial and runs first wherever declared.
    assert ablator.new_trial((6,)) == 0
    assert len(ablator.trials) == 3 and ablator.trials[0]["ablated_layers"] is None


def test_declared_trials_yield_specs_in_order_with_repeats(dataset_fn):
    ablator = make(dataset_fn)
    ablator.new_trial(ablated_layers=4, ablated_features="pclass")
    ablator.new_trial(ablated_layers=[3, 4, 5, 6])
    policy = DeclaredTrials(ablator.study, ablator.trials, repeats=2, seed=7)
    policy.initialize()
    specs = []
    while (spec := policy.get_trial()) is not None:
        specs.append(spec)
    assert policy.get_number_of_trials() == len(specs) == 6
    assert [(s["index"], s["repeat"], s["seed"]) for s in specs] == [
        (0, 0, 7), (1, 0, 7), (2, 0, 7), (0, 1, 8), (1, 1, 8), (2, 1, 8)]
    # Rule: one trial may remove a layer and a feature together.
    assert (specs[1]["ablated_feature"], specs[1]["ablated_layers"]) == ("pclass", [4])
    assert specs[2]["layer_label"] == "[3, 4, 5, 6]"
    assert len({s["trial_id"] for s in specs}) == 6
    with pytest.raises(ValueError, match="base trial"):
        DeclaredTrials(ablator.study, [{"ablated_feature": "sex"}])


def test_a_declared_input_shape_must_match_the_dataset_before_spark_starts(dataset_fn, tmp_path):
    ablator = make(dataset_fn, experiment_dir=str(tmp_path))
    ablator.new_trial((6,), None, "sex")  # the thesis' listing passes the shape after ablation
    with pytest.raises(ValueError, match=r"input_shape=\(6,\).*feature sex.*is \(5,\)"):
        ablator.execute_trials()
    assert not (tmp_path / "ablator").exists()  # nothing ran


def test_an_impossible_trial_fails_in_preflight(dataset_fn, tmp_path):
    ablator = make(dataset_fn, experiment_dir=str(tmp_path))
    ablator.new_trial(ablated_layers=12)
    with pytest.raises(AblationError, match="out of range"):
        ablator.execute_trials()


# ----------------------------------------------------------------------- end to end


def test_listing_3_13_runs_end_to_end(spark, dataset_fn, tmp_path, capsys):
    ablator = make(dataset_fn, name="one-class", direction="min", num_executors=2, es_policy="none",
                   experiment_dir=str(tmp_path))
    ablator.new_trial((6,), ablated_layers=None, ablated_features=None)
    ablator.new_trial((5,), None, "sex")
    ablator.new_trial((6,), 2, None, infer_activation=True)
    ablator.new_trial((5,), 4, "pclass")
    ablator.new_trial((6,), [3, 4, 5, 6], None)
    result = ablator.execute_trials()

    base = n_params(titanic_model())
    expected = [
        base,
        base - 64,                                   # sex: the first Linear takes 5 inputs
        base - (64 * 64 + 64),                       # layer 2 and the ReLU after it
        base - 64 - (64 * 32 + 32) + (64 * 2 + 2) - (32 * 2 + 2),  # layer 4 and feature pclass
        base - (64 * 32 + 32) - (32 * 2 + 2) - 3 + 65,  # layers 3-6; Linear(2, 1) -> Linear(64, 1)
    ]
    trials = result["trials"]
    # Rule: exactly the declared trials, in declaration order, base first.
    assert list(trials["metric"]) == expected
    assert list(trials["ablated_feature"].fillna("-")) == ["-", "sex", "-", "pclass", "-"]
    assert list(trials["ablated_layers"].fillna("-")) == ["-", "-", "2", "4", "[3, 4, 5, 6]"]
    assert set(trials["status"]) == {"finished"} and trials["delta"].iloc[0] == 0
    # Rule: the result is lagom's, with every component measured against the base trial.
    assert result["best_config"] == {"ablated_feature": "None", "ablated_layer": "2"}
    assert result["num_trials"] == 5 and "run_dir" in result
    assert list(result["components"]["component"]) == [
        "feature sex", "layer 2", "feature pclass, layer 4", "layer [3, 4, 5, 6]"]
    assert "------ Ablation Results ------" in capsys.readouterr().out
