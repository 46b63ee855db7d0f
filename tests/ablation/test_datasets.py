"""PandasDataset and the dataset catalog."""

import numpy as np
import pandas as pd
import pytest

import maggy.datasets
from maggy.ablation import PandasDataset


@pytest.fixture
def frame():
    return pd.DataFrame({"Survived": [0, 1, 1], "pclass": [3, 1, 2], "fare": [7.25, 71.3, 8.0], "age": [22.0, 38.0, 26.0]})


def test_items_are_label_then_features_as_in_the_thesis(frame):
    ds = PandasDataset(frame, "survived")  # label matched case-insensitively
    label, features = ds[1]
    assert label == 1 and list(features) == pytest.approx([1, 71.3, 38.0])
    assert len(ds) == 3 and ds.input_shape == (3,) and ds.feature_names == ["pclass", "fare", "age"]
    features, label = PandasDataset(frame, "Survived", label_first=False)[0]
    assert label == 0 and features.dtype == np.float32


def test_ablate_feature_drops_the_column_case_insensitively(frame):
    ds = PandasDataset(frame, "Survived")
    ds.ablate_feature("FARE")
    assert ds.input_shape == (2,) and ds.feature_names == ["pclass", "age"]
    assert list(ds[0][1]) == [3, 22.0]
    with pytest.raises(ValueError, match=r"feature 'deck' is not a column.*\['pclass', 'age'\]"):
        ds.ablate_feature("deck")


def test_bad_frames_are_refused(frame):
    with pytest.raises(ValueError, match=r"label 'alive' is not a column"):
        PandasDataset(frame, "alive")
    with pytest.raises(ValueError, match=r"numeric feature columns; encode these first: \['sex'\]"):
        PandasDataset(frame.assign(sex=["m", "f", "f"]), "Survived")


def test_spark_dataframes_are_accepted(spark, frame):
    ds = PandasDataset(spark.createDataFrame(frame), "Survived")
    assert ds.input_shape == (3,) and len(ds) == 3


def test_catalog_round_trip(catalog, frame, spark):
    path = maggy.datasets.register("titanic_train_dataset", 1, frame)
    assert path.startswith(str(catalog))
    pd.testing.assert_frame_equal(maggy.datasets.load("titanic_train_dataset", 1), frame)
    # A Spark DataFrame is written by Spark and read back the same.
    maggy.datasets.register("titanic_train_dataset", 2, spark.createDataFrame(frame))
    loaded = maggy.datasets.load("titanic_train_dataset", 2).sort_values("pclass").reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, frame.sort_values("pclass").reset_index(drop=True), check_dtype=False)
    with pytest.raises(ValueError, match="dataset version must be an int >= 1"):
        maggy.datasets.register("titanic_train_dataset", 0, frame)
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        maggy.datasets.register("titanic_train_dataset", 1, frame, overwrite=False)
