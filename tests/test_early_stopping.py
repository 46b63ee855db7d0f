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
