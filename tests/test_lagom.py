"""End to end: lagom() on a real local Spark session with 2 slots and a real gRPC server."""

import json
import os

import pytest
import torch
from torch import nn

import maggy.datasets
from maggy import AblationConfig, experiment
from maggy.ablation import AblationStudy


def titanic_model():
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture
def study(catalog, titanic_df):
    maggy.datasets.register("titanic_train_dataset", 1, titanic_df)
    study = AblationStudy("titanic_train_dataset", training_dataset_version=1, label_name="survived")
    study.model.set_base_model_generator(titanic_model)
    return study


def run(study, train_fn, tmp_path, **kwargs):
    kwargs.setdefault("direction", "min")
    return experiment.lagom(train_fn=train_fn, experiment_type="ablation", ablation_study=study, ablator="loco",
                            name=kwargs.pop("name", "test"), experiment_dir=str(tmp_path / "exp"),
                            num_executors=2, **kwargs)


def count_params(model_function, dataset_function, reporter):
    model = model_function()
    dataset = dataset_function()
    x = torch.tensor(dataset.data[:8])
    assert model(x).shape == (8, 1)  # the model fits the ablated data
    for step in range(3):
        reporter.broadcast(metric=float(n_params(model) + step), step=step)
    reporter.log(f"features={dataset.input_shape[0]}")
    print("printed inside the trial")
    return {"metric": float(n_params(model)), "features": dataset.input_shape[0]}


def test_lagom_names_the_best_and_worst_trial_and_journals_everything(study, tmp_path, capsys):
    study.model.layers.include(2)
    study.model.layers.include_groups([4, 5])
    study.features.include("fare")
    result = run(study, count_params, tmp_path, es_policy="none")

    base = n_params(titanic_model())
    expected = {
        "base": base,
        "2": base - 64 * 64 - 64,
        "[4, 5]": base - (64 * 32 + 32) - (32 * 2 + 2) + (64 * 2 + 2),
        "fare": base - 64,
    }
    trials = result["trials"]
    # Rule: one base trial plus one per component, in declaration order, base first.
    assert list(trials["ablated_layers"].fillna("-")) == ["-", "2", "[4, 5]", "-"]
    assert list(trials["ablated_feature"].fillna("-")) == ["-", "-", "-", "fare"]
    assert list(trials["metric"]) == [expected["base"], expected["2"], expected["[4, 5]"], expected["fare"]]
    # Rule: best/worst follow direction="min"; the base trial has the most parameters.
    assert result["best_config"] == {"ablated_feature": "None", "ablated_layer": "2"}
    assert result["worst_config"] == {"ablated_feature": "None", "ablated_layer": "None"}
    assert result["best_val"] == expected["2"] and result["worst_val"] == base
    assert result["avg"] == pytest.approx(sum(expected.values()) / 4)
    assert result["num_trials"] == 4 and result["failed"] == 0 and result["early_stopped"] == 0
    # Rule: delta > 0 means worse than the base; here every ablation is better (fewer params).
    assert (trials["delta"].iloc[1:] < 0).all() and trials["delta"].iloc[0] == 0
    assert set(trials["status"]) == {"finished"} and list(trials["steps"]) == [3, 3, 3, 3]

    out = capsys.readouterr().out
    assert "------ LOCO Results ------" in out
    assert 'BEST Config Excludes {"ablated_feature": "None", "ablated_layer": "2"}' in out
    # reporter.log lines are shown on the driver; print() inside train_fn is not.
    assert "features=5" in out and "printed inside the trial" not in out

    run_dir = result["run_dir"]
    journal = [json.loads(line) for line in open(os.path.join(run_dir, "trials.jsonl"))]
    assert sorted(r["trial_id"] for r in journal) == sorted(trials["trial_id"])
    fare = next(r for r in journal if r["ablated_feature"] == "fare")
    # Every broadcast reached the driver, in order.
    assert fare["history"] == [[0, expected["fare"]], [1, expected["fare"] + 1], [2, expected["fare"] + 2]]
    log = open(os.path.join(run_dir, "logs", f"{fare['trial_id']}.log")).read()
    assert "features=5" in log and "printed inside the trial" in log
    assert json.load(open(os.path.join(run_dir, "result.json")))["best_val"] == expected["2"]
    assert os.path.getsize(os.path.join(run_dir, "effects.png")) > 0


def failing_without_fare(dataset_function):
    if "fare" not in dataset_function().feature_names:
        raise RuntimeError("cannot train without fare")
    return 1.0


def test_a_failing_train_fn_fails_its_trial_not_the_experiment(study, tmp_path):
    study.features.include("fare", "age")
    study.model.layers.include(2)
    result = run(study, failing_without_fare, tmp_path, es_policy="none", verbose=False)
    trials = result["trials"]
    rows = trials.set_index(trials["ablated_feature"].fillna(trials["ablated_layers"]).fillna("base"))
    assert rows.loc["base", "status"] == "finished" and rows.loc["age", "status"] == "finished"
    # Rule: the exception fails only its trial, and its traceback is kept.
    assert rows.loc["fare", "status"] == "failed"
    assert "RuntimeError: cannot train without fare" in rows.loc["fare", "error"]
    assert "Traceback" in rows.loc["fare", "error"]
    assert result["failed"] == 1 and result["num_trials"] == 4


@pytest.mark.parametrize(
    "returned, reason",
    [(None, "returned None"), (float("nan"), "NaN"), ("good", "str"), ({"loss": 1.0}, "optimization key 'metric'")],
)
def test_unusable_return_values_fail_the_trial_with_the_reason(study, tmp_path, returned, reason):
    result = run(study, lambda: returned, tmp_path, es_policy="none", verbose=False)
    (row,) = result["trials"].to_dict("records")
    assert row["status"] == "failed" and reason in row["error"]


def test_a_zero_dim_tensor_counts_as_a_number_and_the_config_form_works(study, tmp_path):
    config = AblationConfig(ablation_study=study, ablator="loco_pytorch", name="cfg", direction="max",
                            experiment_dir=str(tmp_path / "exp"), es_policy="none", verbose=False)
    result = experiment.lagom(lambda: torch.tensor(0.25, requires_grad=True) * 2, config)
    assert result["best_val"] == 0.5 and result["trials"]["status"].tolist() == ["finished"]


class Scale(nn.Module):
    """A layer type maggy knows nothing about: it insists on its input width."""

    def __init__(self, width):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        if x.shape[-1] != self.weight.shape[0]:
            raise ValueError(f"Scale({self.weight.shape[0]}) got width {x.shape[-1]}")
        return x * self.weight


def scaled_model():
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4), Scale(4), nn.Linear(4, 1))


def width_of_scale(model_function):
    return float(model_function()[-2].weight.shape[0])


def test_repair_rules_travel_with_the_experiment_and_apply_to_it_only(study, tmp_path):
    from maggy.ablation.surgery import RepairRule, register_repair_rule, unregister_repair_rule

    rule = RepairRule(expected=lambda m: m.weight.shape[0], rebuild=lambda m, width: Scale(width))
    study.model.set_base_model_generator(scaled_model)
    study.model.layers.include(2)  # removing Linear(8, 4) hands Scale a width of 8
    register_repair_rule(Scale, rule)
    try:
        first = run(study, width_of_scale, tmp_path, name="registered", es_policy="none", verbose=False)
    finally:
        unregister_repair_rule(Scale)
    # Rule: an experiment takes the rules registered on the driver as it starts to its executors.
    assert list(first["trials"]["status"]) == ["finished", "finished"], first["trials"]["error"].tolist()
    assert list(first["trials"]["metric"]) == [4.0, 8.0]

    # The next experiment runs on the same session, whose Python workers Spark reuses;
    # without pre-flight, only the executors decide.
    second = run(study, width_of_scale, tmp_path, name="unregistered", es_policy="none", verbose=False,
                 preflight=False)
    # Rule: the rule was unregistered before it started, so no executor applies it.
    assert list(second["trials"]["status"]) == ["finished", "failed"]
    assert "no repair rule is registered for Scale" in second["trials"]["error"].iloc[1]

    # Rule: a rule the study carries applies to the study's experiments, with nothing registered.
    study.model.add_repair_rule(Scale, rule)
    third = run(study, width_of_scale, tmp_path, name="carried", es_policy="none", verbose=False)
    assert list(third["trials"]["metric"]) == [4.0, 8.0], third["trials"]["error"].tolist()


def test_a_study_without_a_dataset_gives_model_function_the_bare_model(tmp_path):
    study = AblationStudy()
    study.model.set_base_model_generator(titanic_model)
    study.model.layers.include(2)
    result = run(study, lambda model_function: float(n_params(model_function())), tmp_path, es_policy="none", verbose=False)
    assert list(result["trials"]["status"]) == ["finished", "finished"], result["trials"]["error"].tolist()
    assert result["trials"]["metric"].iloc[0] == n_params(titanic_model())
