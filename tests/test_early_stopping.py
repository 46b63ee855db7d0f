"""Median-rule early stopping, end to end on Spark: hopeless trials stop, the best one never does."""

import time

import pytest

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset

GOOD = {"g1": 1.0, "g2": 1.05, "g3": 1.1}
BAD = {"b1": 2.0, "b2": 2.2, "b3": 2.4, "b4": 2.6}
STEPS = 20


class Curve(MaggyDataset):
    """Carries the scale b of the trial's loss curve b * 0.9**t, chosen by the ablated feature."""

    def __init__(self):
        self.b = 1.02

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.b

    def ablate_feature(self, feature):
        self.b = {**GOOD, **BAD}[feature]


def curve(dataset_function, reporter):
    b = dataset_function().b
    for t in range(STEPS):
        time.sleep(0.03)
        reporter.broadcast(b * 0.9**t, step=t)
    return b * 0.9 ** (STEPS - 1)


def run(tmp_path, **kwargs):
    study = AblationStudy(dataset_generator=Curve)
    study.features.include(*GOOD, *BAD)
    return experiment.lagom(train_fn=curve, ablation_study=study, name="es", direction="min",
                            experiment_dir=str(tmp_path / "exp"), num_executors=2, hb_interval=0.05,
                            verbose=False, **kwargs)


def test_hopeless_trials_stop_early_and_the_best_survives(spark, tmp_path):
    result = run(tmp_path, es_policy="median", es_min=2)
    trials = result["trials"].set_index(result["trials"]["ablated_feature"].fillna("base"))
    # Rule: the base trial is never stopped, and neither is the best trial.
    for name in ("base", "g1"):
        assert trials.loc[name, "status"] == "finished" and trials.loc[name, "steps"] == STEPS
    assert result["best_config"]["ablated_feature"] == "g1"
    # Rule: trials clearly worse than the median of finished ones are stopped, their last metric kept.
    stopped = [name for name in BAD if trials.loc[name, "status"] == "early_stopped"]
    assert len(stopped) >= 3, trials[["status", "steps"]]
    for name in stopped:
        assert trials.loc[name, "steps"] < STEPS / 2
        assert trials.loc[name, "metric"] == pytest.approx(BAD[name] * 0.9 ** (trials.loc[name, "steps"] - 1))
    assert result["early_stopped"] == (trials["status"] == "early_stopped").sum() >= len(stopped)


def test_es_policy_none_runs_every_step(spark, tmp_path):
    result = run(tmp_path, es_policy="none")
    assert set(result["trials"]["status"]) == {"finished"}
    assert set(result["trials"]["steps"]) == {STEPS}


def test_base_rule_stops_only_trials_that_trail_the_base(spark, tmp_path):
    # GOOD trials are within 8% of the base (b = 1.02); BAD ones are twice as bad or worse.
    result = run(tmp_path, es_policy="base", es_margin=0.25, es_patience=2)
    trials = result["trials"].set_index(result["trials"]["ablated_feature"].fillna("base"))
    records = {r["ablated_feature"] or "base": r for r in _journal(result["run_dir"])}
    # Rule: the base trial and every trial within the margin run to the end.
    for name in ("base", *GOOD):
        assert trials.loc[name, "status"] == "finished" and trials.loc[name, "steps"] == STEPS, name
    # Rule: every trial that trails the base by more than the margin is stopped, early, and
    # its record says where and by how much it trailed (a lower bound of its effect).
    for name, b in BAD.items():
        assert trials.loc[name, "status"] == "early_stopped", trials[["status", "steps"]]
        assert trials.loc[name, "steps"] < STEPS / 2
        record = records[name]
        assert record["stop_step"] >= 1  # patience 2: never at the first report (step 0)
        assert record["stop_base_gap"] == pytest.approx(b / 1.02 - 1, abs=1e-6)
        # The result's trials table says it too.
        assert trials.loc[name, "stop_step"] == record["stop_step"]
        assert trials.loc[name, "stop_base_gap"] == pytest.approx(b / 1.02 - 1, abs=1e-6)
    # Rule: a component stopped this way is reported as needed, its delta (against the base
    # at the step it stopped) marked as a lower bound; the others are not.
    components = result["components"].set_index("component")
    for name, b in BAD.items():
        row = components.loc[f"feature {name}"]
        step = records[name]["stop_step"]
        assert row["verdict"] == "needed" and row["lower_bound"], row
        assert row["mean_delta"] == pytest.approx((b - 1.02) * 0.9**step, abs=1e-6)
    assert not components.loc[[f"feature {g}" for g in GOOD], "lower_bound"].any()


def test_grace_steps_keep_the_median_rule_quiet_early(spark, tmp_path):
    result = run(tmp_path, es_policy="median", es_min=2, es_grace_steps=8)
    trials = result["trials"]
    stopped = trials[trials["status"] == "early_stopped"]
    # Rule: no trial is stopped before it reported es_grace_steps metrics.
    assert len(stopped) >= 1
    assert (stopped["steps"] >= 8).all(), stopped[["ablated_feature", "steps"]]


def _journal(run_dir):
    import json
    import os

    with open(os.path.join(run_dir, "trials.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
