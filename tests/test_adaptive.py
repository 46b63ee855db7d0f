"""repeats="auto" on a real Spark run: the driver hands finished records to the ablator and
schedules what it returns, and resume=True rebuilds the ablator from the journal."""

import json
import os
import random

import pytest

from maggy import experiment
from maggy.ablation import AblationStudy
from tiny_study import FeatureTag

#: What removing each feature costs; the base trial scores 1.0 (direction "max").
EFFECTS = {"a": 0.3, "b": 0.04, "c": 0.0}


def make_train(out_dir):
    def train(dataset_function):
        feature = dataset_function().ablated
        # maggy seeded `random` with the trial's seed: noise differs per repeat and per feature.
        rng = random.Random(f"{feature}-{random.random()}")
        with open(os.path.join(out_dir, "ran.txt"), "a") as f:
            f.write(f"{feature or 'base'}\n")
        return 1.0 - EFFECTS.get(feature, 0.0) + rng.gauss(0.0, 0.02)

    return train


def study():
    s = AblationStudy(dataset_generator=FeatureTag)
    s.features.include("a", "b", "c")
    return s


def run(tmp_path, **kwargs):
    return experiment.lagom(train_fn=make_train(str(tmp_path)), ablation_study=study(), name="auto",
                            direction="max", num_executors=2, experiment_dir=str(tmp_path / "exp"),
                            es_policy="none", repeats="auto", min_repeats=2, max_repeats=4,
                            min_effect=0.05, verbose=False, **kwargs)


@pytest.fixture(scope="module")
def first(spark, tmp_path_factory):
    import sys

    from pyspark import cloudpickle

    # A module fixture runs before conftest's per-test one that ships test code by value.
    for name in (__name__, "tiny_study"):
        cloudpickle.register_pickle_by_value(sys.modules[name])
    tmp = tmp_path_factory.mktemp("adaptive")
    return tmp, run(tmp)


def test_auto_repeats_add_trials_while_running_and_stop_when_settled(first):
    tmp, result = first
    trials = result["trials"]
    components = result["components"].set_index("component")
    # Rule: min_repeats (2) full repeats first, then more trials added while the experiment ran.
    assert result["num_trials"] > 2 * 4
    assert (trials["repeat"] < 2).sum() == 8
    # Rule: the removal that costs 0.3 is needed; the others end with a verdict or at max_repeats.
    assert components.loc["feature a", "verdict"] == "needed"
    for name in ("feature b", "feature c"):
        assert components.loc[name, "verdict"] in ("negligible", "undetermined")
    # Rule: a repeat runs the base trial and only the components still undetermined, so a
    # settled component gets no more trials while the base trial runs every repeat.
    repeats = int(trials["repeat"].max()) + 1
    assert 2 < repeats <= 4
    base_runs = trials["ablated_feature"].isna().sum()
    assert base_runs == repeats
    assert components.loc["feature a", "n"] < repeats  # settled before the last repeat
    assert components.loc["feature b", "n"] == repeats  # close to min_effect: runs longest
    # Rule: every trial ran exactly once.
    assert len((tmp / "ran.txt").read_text().split()) == result["num_trials"]
    # Rule: config.json lists every trial scheduled, those added at run time included.
    config = json.loads((tmp / "exp" / "auto" / "run_1" / "config.json").read_text())
    assert len(config["trials"]) == result["num_trials"]


def test_resume_after_a_crash_mid_way_reruns_nothing_that_finished(first, tmp_path):
    tmp, full = first
    # A crash leaves the journal's first lines: keep the first 2 repeats and one trial of
    # the first added repeat, as if the driver died while that repeat ran.
    run_dir = tmp_path / "exp" / "auto" / "run_1"
    run_dir.mkdir(parents=True)
    lines = (tmp / "exp" / "auto" / "run_1" / "trials.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    kept = [r for r in records if r["repeat"] < 2] + [r for r in records if r["repeat"] == 2][:1]
    (run_dir / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))

    resumed = run(tmp_path, resume=True)

    # Rule: resume runs only trials without a record: what the crashed run had not finished.
    ran = (tmp_path / "ran.txt").read_text().split()
    assert len(ran) == full["num_trials"] - len(kept)
    # Rule: the ablator, rebuilt from the journal, decides the same trials and verdicts.
    assert sorted(resumed["trials"]["trial_id"]) == sorted(full["trials"]["trial_id"])
    assert list(resumed["components"]["verdict"]) == list(full["components"]["verdict"])
