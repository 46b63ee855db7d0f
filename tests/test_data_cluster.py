"""On a standalone cluster the executors read the catalog themselves: the driver never holds the rows.

Run alone with ``python -m pytest -m cluster``.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from test_cluster import cluster  # noqa: F401  (the standalone master and two workers)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROWS, FEATURES = 15_000_000, 16  # float32: 1.02 GB of rows

STUDY = textwrap.dedent(
    """
    import json, os, resource, sys
    from pyspark.sql import SparkSession
    from maggy import experiment
    from maggy.ablation import AblationStudy
    from maggy.core import data

    MASTER, OUT = sys.argv[1], sys.argv[2]
    os.environ["MAGGY_DATASETS"] = os.path.join(OUT, "catalog")

    def train(dataset_function):
        dataset = dataset_function()
        return float(len(dataset)) + dataset.input_shape[0] / 100

    spark = (SparkSession.builder.master(MASTER).appName("maggy-data-cluster-test")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.executor.cores", "1").config("spark.cores.max", "2")
             .config("spark.executor.memory", "1g").config("spark.ui.enabled", "false").getOrCreate())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # imports and the session
    study = AblationStudy("big", 1, label_name="y")
    study.features.include("f0", "f1", "f2")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="big", direction="min",
                              experiment_dir=os.path.join(OUT, "exp"), num_executors=2, es_policy="none",
                              verbose=False, data_cache_mb=0)
    print("RESULT=" + json.dumps({"metrics": sorted(result["trials"]["metric"].tolist()),
                                  "executors": sorted(set(result["trials"]["executor"])),
                                  "driver_reads": data.read_stats(),
                                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                                  "rss_before": before}))
    spark.stop()
    """
)


def test_executors_read_the_catalog_and_the_driver_never_loads_the_rows(cluster, tmp_path):  # noqa: F811
    folder = tmp_path / "catalog" / "big" / "v1"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["y"] + [f"f{i}" for i in range(FEATURES)]
    with pq.ParquetWriter(folder / "data.parquet", pa.schema([(n, pa.float32()) for n in names])) as writer:
        for _ in range(ROWS // 1_000_000):
            writer.write_table(pa.table({n: rng.random(1_000_000, dtype=np.float32) for n in names}))
    dataset_bytes = ROWS * (FEATURES + 1) * 4
    script = tmp_path / "study.py"
    script.write_text(STUDY)
    out = subprocess.run([sys.executable, str(script), cluster, str(tmp_path)], capture_output=True, text=True,
                         timeout=400, env=dict(os.environ, PYSPARK_PYTHON=sys.executable))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("RESULT=")))
    # Rule: every trial saw all rows, read by the executors (of both workers), minus its feature.
    assert result["metrics"] == [ROWS + 0.15] * 3 + [ROWS + 0.16]
    assert len(result["executors"]) == 2
    # Rule: the driver read no rows; its peak memory stays far below the dataset's size.
    assert result["driver_reads"] == []
    # (What lagom() added to the driver's peak, beyond the imports and the session: a driver
    # that loaded the rows would add at least the dataset's size.)
    grown = result["peak_rss"] - result["rss_before"]
    assert grown < 0.2 * dataset_bytes, (result["rss_before"], result["peak_rss"], dataset_bytes)
