"""The pairs and Shapley policies end to end, on a real local Spark session with 2 slots."""

import json
import os
import uuid

import pandas as pd
import pytest
from torch import nn

from maggy import AblationConfig, experiment
from maggy.ablation import AblationStudy, PandasDataset
from maggy.ablation.surgery import ablate
from maggy.earlystop import MedianStoppingRule, NoEarlyStop

FRAME = pd.DataFrame({"y": [0.0, 1.0], "x1": [1.0, 2.0], "x2": [1.0, 2.0], "x3": [3.0, 4.0], "null": [5.0, 6.0]})


def planted_dataset():
    return PandasDataset(FRAME, "y")


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))


def planted_loss(dataset_function):
    """A known game: losing x1 and x2 together costs 4 (either alone covers), losing x3 costs 1."""
    kept = set(dataset_function().feature_names)
    return 1.0 + 4.0 * (not kept & {"x1", "x2"}) + 1.0 * ("x3" not in kept)


def planted_study():
    study = AblationStudy(label_name="y", dataset_generator=planted_dataset)
    study.model.set_base_model_generator(mlp)
    study.features.include("x1", "x2", "x3", "null")
    return study


def run(study, train_fn, tmp_path, **kwargs):
    return experiment.lagom(train_fn=train_fn, ablation_study=study, direction="min", name=kwargs.pop("name", "p"),
                            experiment_dir=str(tmp_path / "exp"), num_executors=2, verbose=False, **kwargs)


def test_shapley_on_spark_gives_the_planted_values_and_they_are_efficient(spark, tmp_path):
    result = run(planted_study(), planted_loss, tmp_path, ablator="shapley")
    components = result["components"].set_index("component")
    # Rule: 4 components fit the default budget (16 trials): exact values.
    assert result["num_trials"] == 16 and result["failed"] == 0
    assert components["shapley"].to_dict() == pytest.approx(
        {"feature x1": 2.0, "feature x2": 2.0, "feature x3": 1.0, "feature null": 0.0})
    # Rule (efficiency): they sum to the delta of removing everything.
    everything = result["trials"][result["trials"]["removed"].map(len) == 4]["delta"].item()
    assert components["shapley"].sum() == pytest.approx(everything) == 5.0
    # LOCO sees neither x1 nor x2: each covers for the other.
    assert components.loc["feature x1", "mean_delta"] == 0.0
    assert os.path.getsize(os.path.join(result["run_dir"], "effects.png")) > 0
    saved = json.load(open(os.path.join(result["run_dir"], "config.json")))
    assert saved["analysis"]["kind"] == "shapley" and saved["es_policy"] is None


def test_the_report_command_rebuilds_the_shapley_values_of_a_run(spark, tmp_path, capsys):
    from maggy.__main__ import main

    result = run(planted_study(), planted_loss, tmp_path, ablator="shapley", max_trials=10)
    capsys.readouterr()
    assert main(["report", result["run_dir"], "--no-plot"]) == 0
    # Rule: the sampled orders are kept in config.json, so the report gives the same values.
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("Shapley values"))
    for row in result["components"].itertuples():
        assert f"{row.component} {row.shapley:+.4f}" in line


def test_pairs_on_spark_removes_layers_and_features_together_and_finds_the_redundant_pair(spark, tmp_path):
    study = planted_study()
    study.features.exclude("null", "x3")
    study.model.layers.include(2)

    def train(model_function, dataset_function):
        model = model_function()
        return planted_loss(dataset_function) + sum(p.numel() for p in model.parameters()) / 1000

    result = run(study, train, tmp_path, ablator="pairs")
    trials = result["trials"]
    assert result["num_trials"] == 1 + 3 + 3 and result["failed"] == 0
    # Rule: the pair (x1, layer 2) trial trained the model without layer 2 on 3 features.
    row = trials[trials["removed"].map(lambda r: r == ["feature x1", "layer 2"])].iloc[0]
    expected = sum(p.numel() for p in ablate(mlp(), [2], input_shape=(3,), verbose=False).parameters())
    assert row["metric"] == pytest.approx(1.0 + expected / 1000)
    assert row["ablated_feature"] == "x1" and row["ablated_layers"] == "2"
    interactions = result["interactions"]
    redundant = interactions[interactions["kind"] == "redundant"]
    assert list(zip(redundant["component_a"], redundant["component_b"])) == [("feature x1", "feature x2")]
    assert os.path.getsize(os.path.join(result["run_dir"], "interactions.png")) > 0


def test_a_resumed_shapley_run_runs_only_the_coalitions_without_a_result(spark, tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()

    def counted(dataset_function):
        (calls / uuid.uuid4().hex).touch()
        return planted_loss(dataset_function)

    first = run(planted_study(), counted, tmp_path, ablator="shapley", max_trials=12, name="resume")
    journal = os.path.join(first["run_dir"], "trials.jsonl")
    lines = open(journal).read().splitlines()
    open(journal, "w").write("\n".join(lines[:7]) + "\n")
    before = len(os.listdir(calls))
    second = run(planted_study(), counted, tmp_path, ablator="shapley", max_trials=12, name="resume", resume=True)
    # Rule: the same coalitions are planned again (same ids), and only the missing ones run.
    assert second["run_dir"] == first["run_dir"]
    assert len(os.listdir(calls)) - before == len(lines) - 7
    assert second["components"]["shapley"].tolist() == pytest.approx(first["components"]["shapley"].tolist())


def test_early_stopping_is_off_for_pairs_and_shapley_unless_asked(tmp_path):
    study = planted_study()
    plans = {
        ablator: experiment._plan(planted_loss, AblationConfig(ablation_study=study, ablator=ablator, **extra)).policy
        for ablator, extra in (("loco", {}), ("pairs", {}), ("shapley", {}))
    }
    assert isinstance(plans["loco"], MedianStoppingRule)
    assert isinstance(plans["pairs"], NoEarlyStop) and isinstance(plans["shapley"], NoEarlyStop)
    asked = experiment._plan(planted_loss, AblationConfig(ablation_study=study, ablator="shapley", es_policy="median"))
    assert isinstance(asked.policy, MedianStoppingRule)


def noisy_null_loss(dataset_function):
    """The planted game, plus noise when "null" is removed: the null's Shapley value is that noise."""
    import random

    kept = set(dataset_function().feature_names)
    # Drawn after maggy seeded the trial with its repeat's seed: one draw per repeat.
    return planted_loss(dataset_function) + (0.0 if "null" in kept else random.gauss(0.0, 0.3))


def test_shapley_with_repeats_auto_adds_whole_repeats_until_every_value_has_a_verdict(spark, tmp_path):
    result = run(planted_study(), noisy_null_loss, tmp_path, ablator="shapley", repeats="auto",
                 min_repeats=3, max_repeats=5, min_effect=0.2)
    components = result["components"].set_index("component")
    # Rule: x1, x2 and x3 are settled at the first look; the null's value (noise of sd 0.3)
    # cannot be told apart from ±0.2, so whole repeats are added up to max_repeats.
    assert result["failed"] == 0 and result["num_trials"] == 16 * 5
    assert sorted(set(result["trials"]["repeat"])) == [0, 1, 2, 3, 4]
    assert components.loc[["feature x1", "feature x2", "feature x3"], "shapley_verdict"].tolist() == ["needed"] * 3
    assert components.loc["feature null", "shapley_verdict"] == "undetermined"
    assert components.loc["feature x1", "shapley"] == pytest.approx(2.0)


def test_pairs_with_repeats_auto_stop_once_components_and_interactions_are_settled(spark, tmp_path):
    result = run(planted_study(), planted_loss, tmp_path, ablator="pairs", repeats="auto", min_effect=0.5)
    # Rule: with no noise every delta and interaction is settled at the first look
    # (min_repeats = 3), so no repeat is added: 3 repeats of 1 + 4 + 6 trials.
    assert result["failed"] == 0 and result["num_trials"] == 3 * 11
    verdicts = result["components"].set_index("component")["verdict"].to_dict()
    assert verdicts == {"feature x1": "negligible", "feature x2": "negligible", "feature x3": "needed",
                        "feature null": "negligible"}
    redundant = result["interactions"][result["interactions"]["kind"] == "redundant"]
    assert list(zip(redundant["component_a"], redundant["component_b"])) == [("feature x1", "feature x2")]


def test_max_trials_is_checked_before_spark_starts(tmp_path):
    with pytest.raises(ValueError, match="max_trials must be at least 10"):
        run(planted_study(), planted_loss, tmp_path, ablator="shapley", max_trials=9)
    with pytest.raises(ValueError, match="max_trials is the budget of ablator='shapley'"):
        run(planted_study(), planted_loss, tmp_path, ablator="loco", max_trials=9)
    with pytest.raises(ValueError, match="max_trials must be an int >= 1"):
        AblationConfig(ablation_study=planted_study(), max_trials=0)
    with pytest.raises(ValueError, match="needs at least two"):
        study = AblationStudy(label_name="y", dataset_generator=planted_dataset)
        study.features.include("x1")
        run(study, planted_loss, tmp_path, ablator="pairs")


def test_adaptive_shapley_decides_from_the_records_alone_and_hands_out_each_repeat_once():
    def records_for(specs):
        # The planted game; the null's value is -0.3 or +0.3 by repeat: noise around 0.
        out = []
        for spec in specs:
            removed = set(spec["removed"])
            metric = 1.0 + 4.0 * ({"feature x1", "feature x2"} <= removed) + 1.0 * ("feature x3" in removed)
            metric += (0.3 if spec["repeat"] % 2 else -0.3) * ("feature null" in removed)
            out.append({**spec, "status": "finished", "metric": metric})
        return out

    config = AblationConfig(ablation_study=planted_study(), ablator="shapley", repeats="auto",
                            direction="min", min_repeats=3, max_repeats=6, min_effect=0.5)

    def fresh():
        ablator = experiment._make_ablator(config)
        ablator.configure(config)
        ablator.initialize()
        return ablator, list(iter(ablator.get_trial, None))

    ablator, first = fresh()
    assert {s["repeat"] for s in first} == {0, 1, 2} and len(first) == 3 * 16
    records = records_for(first)
    # Rule: while a repeat is running nothing is added; once it has every record, the next
    # whole repeat is (the null's interval is not yet inside ±0.5), and the same records add
    # nothing twice.
    assert ablator.more_trials(records[:-1]) == []
    added = ablator.more_trials(records)
    assert {s["repeat"] for s in added} == {3} and len(added) == 16
    assert ablator.more_trials(records) == []
    records += records_for(added)
    fifth = ablator.more_trials(records)
    assert {s["repeat"] for s in fifth} == {4}
    # Rule: once every value has a verdict (the null's interval fits inside ±0.5: negligible),
    # nothing more is added, though max_repeats (6) is not reached.
    records += records_for(fifth)
    assert ablator.more_trials(records) == []
    # A fresh ablator given the records (resume) reaches the same state.
    again, _ = fresh()
    assert [s["trial_id"] for s in again.more_trials(records[:3 * 16])] == [s["trial_id"] for s in added]
