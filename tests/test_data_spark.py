"""Executors read the training data themselves: catalog datasets, staged DataFrames, streaming (real local Spark)."""

import json
import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import maggy.datasets
from maggy import experiment
from maggy.ablation import AblationStudy
from maggy.core import data


def model():
    return nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1))


def make_train(out):
    """A train_fn that writes what its worker read from storage, and what its dataset holds."""

    def train(model_function, dataset_function, reporter):
        from maggy.core import data as executor_data

        dataset = dataset_function()
        net = model_function()
        if isinstance(dataset, torch.utils.data.IterableDataset):
            rows = 0
            for labels, features in DataLoader(dataset, batch_size=64):
                net(features)
                rows += len(labels)
        else:
            rows = len(dataset)
            net(torch.tensor(dataset.data[:4]))
        record = {"features": list(dataset.feature_names), "rows": rows, "pid": os.getpid(),
                  "type": type(dataset).__name__, "reads": executor_data.read_stats()}
        executor_data.reset_read_stats()
        with open(os.path.join(out, f"{len(dataset.feature_names)}-{os.getpid()}-{rows}-{'_'.join(dataset.feature_names)}.json"), "w") as f:
            json.dump(record, f)
        return float(len(dataset.feature_names))

    return train


def records(out):
    return [json.load(open(os.path.join(out, f))) for f in sorted(os.listdir(out))]


def lagom(study, tmp_path, **kwargs):
    return experiment.lagom(train_fn=make_train(str(tmp_path / "out")), ablation_study=study, name="data",
                            direction="min", experiment_dir=str(tmp_path / "exp"), es_policy="none",
                            verbose=False, **kwargs)


@pytest.fixture
def out(tmp_path):
    (tmp_path / "out").mkdir()
    return str(tmp_path / "out")


def test_executors_read_the_catalog_with_projection_and_cache(spark, catalog, titanic_df, tmp_path, out):
    maggy.datasets.register("titanic_train_dataset", 1, titanic_df)
    study = AblationStudy("titanic_train_dataset", 1, label_name="survived")
    study.model.set_base_model_generator(model)
    study.features.include("fare", "age")
    data.reset_read_stats()
    result = lagom(study, tmp_path, num_executors=1)
    assert result["failed"] == 0 and result["num_trials"] == 3
    # Rule: the driver never reads a row; the executors do.
    assert data.read_stats() == []
    trials = records(out)
    assert len({t["pid"] for t in trials}) == 1 and all(t["rows"] == len(titanic_df) for t in trials)
    first, *later = sorted(trials, key=lambda t: -len(t["features"]))  # the base trial runs first
    # Rule: the base trial reads every column once; the later feature trials find theirs in the cache.
    assert [sorted(r["columns"]) for r in first["reads"]] == [sorted(titanic_df.columns)]
    assert all(t["reads"] == [] for t in later)

    data_free = lagom(study, tmp_path, num_executors=1, data_cache_mb=0)
    assert data_free["failed"] == 0
    trials = [t for t in records(out) if t not in trials]
    # Rule: without the cache every trial reads, and a feature trial never reads its column.
    fare_trial = next(t for t in trials if "fare" not in t["features"])
    assert len(fare_trial["reads"]) == 1 and "fare" not in fare_trial["reads"][0]["columns"]


def test_a_spark_dataframe_is_staged_once_and_streamed_by_executors(spark, titanic_df, tmp_path, out):
    frame = spark.createDataFrame(titanic_df)
    study = AblationStudy(dataframe=frame, label_name="Survived", streaming=True)
    study.model.set_base_model_generator(model)
    study.features.include("sibsp")
    result = lagom(study, tmp_path, num_executors=2)
    assert result["failed"] == 0, result["trials"]["error"].tolist()
    # Rule: the DataFrame is written as parquet into the run directory, and the executors stream it.
    staged = os.path.join(result["run_dir"], "data")
    assert any(name.endswith(".parquet") for name in os.listdir(staged))
    trials = records(out)
    assert {t["type"] for t in trials} == {"StreamingDataset"}
    assert all(t["rows"] == len(titanic_df) for t in trials)
    assert sorted(len(t["features"]) for t in trials) == [5, 6]
    assert all("sibsp" not in r["columns"] for t in trials if "sibsp" not in t["features"] for r in t["reads"])
