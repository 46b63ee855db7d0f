"""What a user watches during and after a run: the progress bar, and repeats' intervals."""

import math
import random
import re

import torch

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset


class Columns(MaggyDataset):
    """A dataset that is only its feature names; trials see which ones are left."""

    def __init__(self):
        self.features = ["a", "b", "c"]

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.features

    def ablate_feature(self, feature):
        self.features.remove(feature)


def study_of(*features):
    study = AblationStudy(dataset_generator=Columns)
    study.features.include(*features)
    return study


def run(study, train_fn, tmp_path, **kwargs):
    return experiment.lagom(train_fn=train_fn, ablation_study=study, name=kwargs.pop("name", "progress"),
                            direction="max", num_executors=2, experiment_dir=str(tmp_path), **kwargs)


def score_unless_c_is_gone(dataset_function, reporter):
    features = dataset_function().features
    if "c" not in features:
        raise RuntimeError("cannot score without c")
    for step in range(2):
        reporter.broadcast(metric=0.1 * step + len(features), step=step)
    return float(len(features))


def test_the_progress_bar_counts_every_trial_and_shows_its_fields(spark, tmp_path, capsys):
    result = run(study_of("a", "b", "c"), score_unless_c_is_gone, tmp_path, es_policy="none", verbose=True)
    assert result["num_trials"] == 4 and result["failed"] == 1
    captured = capsys.readouterr()
    bar = captured.err + captured.out
    # Rule: the bar counts finished trials up to N/N, in trials.
    assert re.search(r"maggy: 100%\|.*\| 4/4 \[[^\]]*trial", bar), bar[-1500:]
    # Rule: its postfix shows running, stopped, failed and the best metric so far; at the end
    # nothing runs, the failed trial is counted and best is the best finished metric.
    final = [line for line in re.split(r"[\r\n]", bar) if "4/4" in line][-1]
    assert re.search(r"running=0 stopped=0 failed=1 best=3\b", final), final
    # Rule: a failed trial is announced above the bar with its reason.
    assert "failed: RuntimeError: cannot score without c" in bar
    assert "------ LOCO Results ------" in captured.out


def effect_plus_noise(dataset_function):
    """Removing "a" costs 0.3, "b" nothing; plus noise that depends on the trial's seed."""
    features = dataset_function().features
    noise = random.random() * 0.01 + 0.01 * torch.rand(len(features)).mean().item()
    return 0.9 - (0.3 if "a" not in features else 0.0) + noise


def test_repeats_give_each_component_a_confidence_interval(spark, tmp_path, capsys):
    result = run(study_of("a", "b"), effect_plus_noise, tmp_path, es_policy="none", repeats=3, seed=0)
    trials = result["trials"]
    # Rule: every trial runs `repeats` times, with seeds seed, seed + 1, seed + 2.
    assert len(trials) == 9 and sorted(set(trials["seed"])) == [0, 1, 2]
    base = trials[trials["ablated_feature"].isna()]
    assert base["metric"].nunique() == 3  # the seed differs per repeat, so does the noise

    components = result["components"].set_index("component")
    assert list(components.index) == ["feature a", "feature b"]
    # Rule: n counts each component's finished repeats; the 95% CI is finite with n >= 2.
    assert list(components["n"]) == [3, 3]
    assert all(math.isfinite(v) for v in components[["mean_delta", "std", "ci_low", "ci_high"]].to_numpy().ravel())
    assert components.loc["feature a", "ci_low"] > 0.25  # delta > 0: removing "a" made it worse
    assert components.loc["feature a", "distinguishable"]
    assert components.loc["feature b", "ci_low"] < 0 < components.loc["feature b", "ci_high"]
    assert not components.loc["feature b", "distinguishable"]

    # Rule: each component gets a verdict: removing "a" is needed, "b" is undetermined.
    assert list(components["verdict"]) == ["needed", "undetermined"]
    out = capsys.readouterr().out
    # Rule: the printed summary lists the components by verdict, with delta and interval.
    needed = next(line for line in out.splitlines() if line.startswith("  needed:"))
    undetermined = next(line for line in out.splitlines() if line.startswith("  undetermined:"))
    assert re.search(r"feature a \(\+0\.\d+, 95% CI \[0\.\d+, 0\.\d+\], n=3\)", needed)
    assert "feature b (" in undetermined and "feature b" not in needed
