"""GPUs per trial, assigned by Spark: a standalone worker with two fake GPUs (no real GPU needed).

The worker declares ``gpu`` addresses "0" and "1" through a discovery script; maggy asks for
``gpus_per_trial`` with a task ResourceProfile, the session itself sets no task GPU amount.
Run alone with ``python -m pytest -m cluster``.
"""

import itertools
import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from standalone import standalone_cluster
from tiny_study import SOURCE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

STUDY = textwrap.dedent(
    """
    import json, os, sys, time
    from pyspark.sql import SparkSession
    import maggy.util
    from maggy import experiment
    from maggy.ablation import AblationStudy

    MASTER, OUT, SCRIPT = sys.argv[1], sys.argv[2], sys.argv[3]

    def make_train(gpus):
        def train(dataset_function):
            from pyspark import TaskContext
            feature = dataset_function().ablated or "base"
            start = time.time()
            time.sleep(1.5)
            seen = {"spark": sorted(TaskContext.get().resources()["gpu"].addresses),
                    "cuda_visible": os.environ["CUDA_VISIBLE_DEVICES"], "device": str(maggy.util.get_device()),
                    "start": start, "end": time.time()}
            with open(os.path.join(OUT, f"{gpus}-{feature}.json"), "w") as f:
                json.dump(seen, f)
            return 0.0
        return train

    spark = (SparkSession.builder.master(MASTER).appName("maggy-gpu-test")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.executor.cores", "2").config("spark.executor.memory", "1g")
             .config("spark.executor.resource.gpu.amount", "2")
             .config("spark.executor.resource.gpu.discoveryScript", SCRIPT)
             .config("spark.task.maxFailures", "8").config("spark.ui.enabled", "false").getOrCreate())
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b", "c")
    for gpus in (1, 2):
        result = experiment.lagom(train_fn=make_train(gpus), ablation_study=study, name=f"gpus{gpus}", direction="min",
                                  experiment_dir=os.path.join(OUT, "exp"), num_executors=2, es_policy="none",
                                  verbose=False, gpus_per_trial=gpus)
        print(f"STATUS{gpus}=" + ",".join(result["trials"]["status"]))
    spark.stop()
    """
)


def _overlap(a, b):
    return a["start"] < b["end"] and b["start"] < a["end"]


def test_each_trial_sees_the_gpus_spark_assigned_it(tmp_path):
    script = tmp_path / "gpus.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    opts = f"-Dspark.worker.resource.gpu.amount=2 -Dspark.worker.resource.gpu.discoveryScript={script}"
    study = tmp_path / "study.py"
    study.write_text(SOURCE + STUDY)
    with standalone_cluster(tmp_path, workers=1, cores=2, worker_opts=opts) as master:
        out = subprocess.run([sys.executable, str(study), master, str(tmp_path), str(script)], capture_output=True,
                             text=True, timeout=600, env=dict(os.environ, PYSPARK_PYTHON=sys.executable))
    assert out.returncode == 0, out.stderr[-4000:]
    assert "STATUS1=finished,finished,finished,finished" in out.stdout
    assert "STATUS2=finished,finished,finished,finished" in out.stdout
    seen = {g: [json.load(open(tmp_path / f"{g}-{f}.json")) for f in ("base", "a", "b", "c")] for g in (1, 2)}
    for gpus, trials in seen.items():
        for trial in trials:
            # Rule: a trial sees exactly the addresses Spark assigned it, gpus_per_trial of them,
            # as CUDA_VISIBLE_DEVICES, and get_device() is the first of them.
            assert len(trial["spark"]) == gpus
            assert sorted(trial["cuda_visible"].split(",")) == trial["spark"]
            assert trial["device"] == "cuda:0"
    # Rule: two trials that ran at the same time never shared a GPU...
    pairs = [(a, b) for a, b in itertools.combinations(seen[1], 2) if _overlap(a, b)]
    assert pairs, "no two single-GPU trials ran at the same time"
    assert all(a["spark"] != b["spark"] for a, b in pairs)
    # ...so with both GPUs per trial, the trials ran one after another.
    assert not any(_overlap(a, b) for a, b in itertools.combinations(seen[2], 2))
