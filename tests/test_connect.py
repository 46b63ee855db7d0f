"""lagom() on a Spark Connect session: a real local Connect server in its own process.

A Connect client and a classic session cannot share a process, so the study runs in a
script of its own; one server serves every check below (it takes a while to start).
"""

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from tiny_study import SOURCE

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, sys, threading, time
    from pyspark.sql import SparkSession
    from maggy import datasets, experiment
    from maggy.ablation import AblationStudy
    from maggy.core.launch import make_launch

    OUT = sys.argv[1]
    spark = SparkSession.builder.remote("local[2]").getOrCreate()
    report = {"session": type(spark).__module__}

    def train(dataset_function, reporter):
        from pyspark import TaskContext
        feature = dataset_function().ablated or "base"
        reporter.broadcast(1.0, step=0)
        return {"base": 1.0, "a": 2.0, "b": 3.0}[feature] + 10 * TaskContext.get().partitionId()

    # 1. A study on the session passed to lagom().
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b")
    result = experiment.lagom(train_fn=train, ablation_study=study, spark=spark, name="connect", direction="min",
                              experiment_dir=OUT, es_policy="none", verbose=False)
    report["passed"] = result["trials"][["ablated_feature", "status", "metric", "executor"]].to_dict("records")

    # 2. A catalog dataset (no broadcast variables through Connect), on the active session.
    def columns(dataset_function):
        return float(len(dataset_function().columns))

    named = AblationStudy("tiny", 1, label_name="y")
    named.features.include("a")
    result = experiment.lagom(train_fn=columns, ablation_study=named, name="catalog", direction="min",
                              experiment_dir=OUT, es_policy="none", verbose=False)
    report["catalog"] = result["trials"][["ablated_feature", "status", "metric"]].to_dict("records")

    # 3. What the session cannot do fails before any trial: GPUs this machine does not have.
    try:
        experiment.lagom(train_fn=train, ablation_study=study, spark=spark, name="gpus", direction="min",
                         experiment_dir=OUT, verbose=False, gpus_per_trial=64)
    except ValueError as e:
        report["gpus_error"] = str(e)

    # 4. Cancelling through the job's tag ends a running job.
    launch = make_launch(spark)
    def forever(_):
        time.sleep(600)
    threading.Timer(3.0, launch.cancel).start()
    started = time.time()
    try:
        launch.run(2, forever, "cancel me")
    except Exception as e:
        report["cancel_error"] = type(e).__name__
    report["cancel_s"] = time.time() - started
    print("REPORT=" + json.dumps(report))
    """
)


def test_lagom_runs_on_a_spark_connect_session(tmp_path):
    pytest.importorskip("pyspark.sql.connect.session")
    catalog = tmp_path / "catalog"
    from maggy import datasets

    datasets.register("tiny", 1, pd.DataFrame({"y": [0.0, 1.0], "a": [1.0, 2.0], "b": [3.0, 4.0]}), root=str(catalog))
    script = tmp_path / "study.py"
    script.write_text(SOURCE + SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, MAGGY_DATASETS=str(catalog))
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "exp")], capture_output=True, text=True,
                         timeout=900, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(next(line[7:] for line in out.stdout.splitlines() if line.startswith("REPORT=")))
    assert report["session"].startswith("pyspark.sql.connect")
    # Rule: every trial of a Connect session runs and reports, on Spark's tasks (two slots).
    trials = {r["ablated_feature"] or "base": r for r in report["passed"]}
    assert sorted(trials) == ["a", "b", "base"]
    assert {r["status"] for r in trials.values()} == {"finished"}
    assert {trials[f]["metric"] % 10 for f in trials} == {1.0, 2.0, 3.0}
    # The catalog dataset reached the executors, minus the ablated column, on the active session.
    assert {(r["ablated_feature"], r["metric"]) for r in report["catalog"]} == {(None, 2.0), ("a", 1.0)}
    # What the session cannot do is named before any trial runs.
    assert "gpus_per_trial=64" in report["gpus_error"]
    assert not (tmp_path / "exp" / "gpus" / "run_1" / "trials.jsonl").exists()
    # interruptTag stopped a job whose tasks would have slept ten minutes.
    assert report["cancel_s"] < 120 and "cancel_error" in report
