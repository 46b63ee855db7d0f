"""Executor-side reading (maggy.core.data): description, projection, cache, streaming. No Spark."""

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from maggy.ablation import AblationStudy, PandasDataset, StreamingDataset
from maggy.core import data
from maggy.core.trial_builder import build_dataset
from maggy.core.validation import check_study

ROWS = 600


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "Label": rng.integers(0, 2, ROWS).astype(float),
        "row": np.arange(ROWS, dtype=float),  # tells which rows came back
        **{f"f{i}": rng.normal(size=ROWS) for i in range(3)},
        "flag": rng.integers(0, 2, ROWS).astype(bool),
    })


@pytest.fixture
def folder(tmp_path, frame):
    """The frame as two parquet files of 100-row row groups, with Spark's marker files beside them."""
    path = tmp_path / "ds"
    path.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 400), path / "part-0.parquet", row_group_size=100)
    pq.write_table(table.slice(400), path / "part-1.parquet", row_group_size=100)
    (path / "_SUCCESS").write_text("")
    (path / ".part-0.parquet.crc").write_text("x")
    return str(path)


def batches(dataset, **loader):
    return [tuple(t.clone() for t in b) for b in DataLoader(dataset, **loader)]


def assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (a1, a2), (b1, b2) in zip(got, expected):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)


def test_describe_reads_schema_and_row_count_only(folder):
    data.reset_read_stats()
    source = data.describe(folder)
    # Rule: the driver learns columns, rows and files from the footers; marker files are skipped.
    assert source.columns == ["Label", "row", "f0", "f1", "f2", "flag"]
    assert source.num_rows == ROWS and len(source.files) == 2
    assert data.read_stats() == []
    with pytest.raises(FileNotFoundError, match="no dataset at"):
        data.describe(folder + "-missing")


def test_a_trials_dataset_equals_pandas_dataset_batch_for_batch(folder, frame):
    expected = PandasDataset(frame, "label")
    expected.ablate_feature("F1")
    got = data.load_dataset(data.describe(folder), "label", "F1")
    # Rule: the executor-read dataset is a PandasDataset with the same rows, columns and order.
    assert isinstance(got, PandasDataset) and got.feature_names == ["row", "f0", "f2", "flag"]
    assert_same_batches(batches(got, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(5)),
                        batches(expected, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(5)))


def test_a_feature_trial_never_reads_its_column(folder):
    source = data.describe(folder)
    data.reset_read_stats()
    data.load_dataset(source, "label")
    data.load_dataset(source, "label", "f0")
    base, feature = data.read_stats()
    # Rule: feature ablation is a projection at read time: "f0" is not even requested.
    assert "f0" in base["columns"] and "f0" not in feature["columns"]
    assert 0 < feature["bytes"] < base["bytes"]


def test_the_worker_cache_serves_later_trials(folder):
    source = data.describe(folder)
    data.reset_read_stats()
    with data.worker_cache(64):
        data.load_dataset(source, "label", "f0")
        data.load_dataset(source, "label", "f1")
        data.load_dataset(source, "label")
    # Rule: a later trial reads only what the cache lacks: "f0" once, then nothing.
    assert [r["columns"] for r in data.read_stats()] == [["Label", "row", "f1", "f2", "flag"], ["f0"]]
    data.reset_read_stats()
    with data.worker_cache(0):  # a budget of 0 turns the cache off
        data.load_dataset(source, "label", "f0")
        data.load_dataset(source, "label", "f0")
    assert len(data.read_stats()) == 2
    # Outside a task nothing is cached (the driver, a test): every call reads.
    data.reset_read_stats()
    data.load_dataset(source, "label")
    data.load_dataset(source, "label")
    assert len(data.read_stats()) == 2


def test_the_cache_keeps_within_its_budget():
    cache = data.ColumnCache(budget_bytes=1000)
    column = pa.chunked_array([np.zeros(50)])  # 400 bytes
    for name in "abc":
        cache.put(("k",), name, column)
    # Rule: the least recently used column goes first; the total stays within the budget.
    assert cache.nbytes <= 1000 and cache.get(("k",), "a") is None and cache.get(("k",), "c") is not None
    cache.put(("k",), "huge", pa.chunked_array([np.zeros(500)]))  # larger than the budget: not cached
    assert cache.get(("k",), "huge") is None and cache.nbytes <= 1000


def test_streaming_in_file_order_equals_pandas_dataset(folder, frame):
    expected = PandasDataset(frame, "label")
    expected.ablate_feature("f2")
    stream = StreamingDataset(folder, "LABEL", shuffle_buffer=0)
    stream.ablate_feature("F2")
    # Rule: same items, same order, same batches as PandasDataset (label first, float32).
    assert stream.input_shape == expected.input_shape and stream.feature_names == expected.feature_names
    assert_same_batches(batches(stream, batch_size=32), batches(expected, batch_size=32))
    features, label = next(iter(StreamingDataset(folder, "label", label_first=False, shuffle_buffer=0)))
    assert label == frame["Label"][0] and features.dtype == np.float32


def test_streaming_shuffles_reproducibly_within_a_bounded_buffer(folder):
    def rows(seed, **kwargs):
        torch.manual_seed(seed)
        return [int(x[:, 0].tolist()[i]) for x in (b[1] for b in batches(StreamingDataset(folder, "label", shuffle_buffer=50, **kwargs), batch_size=16)) for i in range(len(x))]

    first, again, other = rows(1), rows(1), rows(2)
    # Rule: the trial's seed (torch's generator, which maggy seeds) fixes the order; it is a permutation.
    assert first == again and first != other and sorted(first) == list(range(ROWS))
    assert first != list(range(ROWS))
    # Ready-made batches hold the same rows in the same order as batched single rows.
    torch.manual_seed(1)
    made = torch.cat([b[1][:, 0] for b in DataLoader(StreamingDataset(folder, "label", shuffle_buffer=50, batch_size=16), batch_size=None)])
    assert made.int().tolist() == first
    # An explicit seed fixes the order too, and set_epoch changes it.
    stream = StreamingDataset(folder, "label", shuffle_buffer=50, seed=3)
    one, two = [int(x[1][0]) for x in stream], [int(x[1][0]) for x in stream]
    stream.set_epoch(1)
    assert one == two != [int(x[1][0]) for x in stream]


def test_dataloader_workers_each_read_their_own_share(folder):
    torch.manual_seed(0)
    loader = DataLoader(StreamingDataset(folder, "label", shuffle_buffer=30), batch_size=25, num_workers=2)
    seen = torch.cat([b[1][:, 0] for b in loader]).int().tolist()
    # Rule: together the workers yield every row exactly once.
    assert sorted(seen) == list(range(ROWS))


def test_streaming_checks_its_arguments_and_columns(folder, frame, tmp_path):
    with pytest.raises(ValueError, match="shuffle_buffer must be an int >= 0, got -1"):
        StreamingDataset(folder, "label", shuffle_buffer=-1)
    with pytest.raises(ValueError, match="batch_size must be None or an int >= 1"):
        StreamingDataset(folder, "label", batch_size=0)
    with pytest.raises(ValueError, match=r"label 'alive' is not a column"):
        StreamingDataset(folder, "alive")
    with pytest.raises(ValueError, match=r"feature 'deck' is not a column"):
        StreamingDataset(folder, "label").ablate_feature("deck")
    text = tmp_path / "text.parquet"
    frame.assign(sex="m").to_parquet(text, index=False)
    with pytest.raises(ValueError, match=r"numeric feature columns; encode these first: \['sex'\]"):
        StreamingDataset(str(text), "label")


def test_studies_pick_the_in_memory_or_streaming_dataset(folder):
    source = data.describe(folder)
    streaming = AblationStudy("ds", 1, label_name="label", streaming=True)
    plain = AblationStudy("ds", 1, label_name="label")
    spec = {"ablated_feature": "f0"}
    # Rule: streaming=True gives the train_fn a StreamingDataset; either way the feature is gone.
    assert isinstance(build_dataset(streaming, spec, source), StreamingDataset)
    assert isinstance(build_dataset(plain, spec, source), PandasDataset)
    assert build_dataset(streaming, spec, source).feature_names == build_dataset(plain, spec, source).feature_names
    # The driver's pre-flight builds from the schema alone: no row is read.
    data.reset_read_stats()
    assert len(build_dataset(plain, spec, source.schema_only())) == 0
    assert data.read_stats() == []


def test_preflight_checks_run_on_the_schema(folder):
    source = data.describe(folder)
    study = AblationStudy("ds", 1, label_name="label")
    study.features.include("fare")
    with pytest.raises(ValueError, match=r"feature 'fare' is not a feature of dataset 'ds'"):
        check_study(study, ["dataset_function"], source)
    generated = AblationStudy(dataset_generator=lambda: None, streaming=True)
    with pytest.raises(ValueError, match="streaming=True streams a catalog dataset"):
        check_study(generated, ["dataset_function"], None)
    with pytest.raises(TypeError, match="streaming must be True or False"):
        AblationStudy("ds", streaming="yes")
    with pytest.raises(ValueError, match="not both"):
        AblationStudy("ds", dataframe=pd.DataFrame({"y": [1]}))


def test_a_dataframe_is_staged_as_parquet_and_not_pickled_with_the_study(tmp_path, frame):
    from pyspark import cloudpickle

    from maggy.core.data.plan import source_for, staged

    study = AblationStudy(dataframe=frame, label_name="label")
    planned = source_for(study)
    # Rule: before the run the driver knows the columns only; the rows go to <run_dir>/data.
    assert planned.columns == list(frame.columns) and planned.path is None
    source = staged(planned, study, str(tmp_path))
    assert source.path == os.path.join(str(tmp_path), "data") and source.num_rows == ROWS
    assert cloudpickle.loads(cloudpickle.dumps(study)).dataframe is None
    assert_same_batches(batches(data.load_dataset(source, "label"), batch_size=64),
                        batches(PandasDataset(frame, "label"), batch_size=64))
