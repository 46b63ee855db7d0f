"""Names users of upstream Maggy expect: result keys and maggy.tensorboard.logdir()."""

import os

import pytest

import maggy.tensorboard
from maggy import experiment, layout
from maggy.ablation import AblationStudy
from tiny_study import FeatureTag


def train(dataset_function):
    from torch.utils.tensorboard import SummaryWriter

    feature = dataset_function().ablated or "base"
    folder = maggy.tensorboard.logdir()
    with SummaryWriter(folder) as writer:
        writer.add_text("feature", feature)
    with open(os.path.join(folder, "feature.txt"), "w") as f:
        f.write(feature)
    return {"base": 2.0, "a": 1.0, "b": 3.0}[feature]


def test_upstream_result_keys_and_the_trial_tensorboard_folder(spark, tmp_path):
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="upstream", direction="min",
                              experiment_dir=str(tmp_path / "exp"), num_executors=2, es_policy="none",
                              verbose=False)
    ids = dict(zip(result["trials"]["ablated_feature"].fillna("base"), result["trials"]["trial_id"]))
    # Rule: best_id / worst_id are the trial ids of best_val / worst_val; metric_list the final metrics.
    assert (result["best_id"], result["best_val"]) == (ids["a"], 1.0)
    assert (result["worst_id"], result["worst_val"]) == (ids["b"], 3.0)
    assert sorted(result["metric_list"]) == [1.0, 2.0, 3.0]
    # Rule: logdir() inside train_fn is <run>/tensorboard/<trial_id>, beside maggy's own scalars.
    for feature, trial_id in ids.items():
        folder = layout.tensorboard_path(result["run_dir"], trial_id)
        assert open(os.path.join(folder, "feature.txt")).read() == feature
        assert any(name.startswith("events.out.tfevents") for name in os.listdir(folder))


def test_logdir_outside_a_trial_says_where_it_works():
    with pytest.raises(RuntimeError, match="inside the train_fn"):
        maggy.tensorboard.logdir()
