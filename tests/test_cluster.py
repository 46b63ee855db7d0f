"""A real Spark standalone cluster on loopback: one master, two workers, one executor killed mid-trial.

Run alone with ``python -m pytest -m cluster``.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from standalone import standalone_cluster
from tiny_study import SOURCE

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# The train_fn lives in a helper module next to the script, as in a user's project; the
# workers' Python cannot import that module, so it must travel by value.
HELPERS = textwrap.dedent(
    """
    import os, signal, sys, time

    MASTER, OUT = sys.argv[1], sys.argv[2]

    def parent_of(pid):
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])

    def train(dataset_function, reporter):
        feature = dataset_function().ablated or "base"
        marker = os.path.join(OUT, feature + ".attempts")
        with open(marker, "a") as f:
            f.write(f"{os.getpid()}\\n")
        reporter.broadcast(0.0, step=0)
        time.sleep(1.0)
        if feature == "b" and len(open(marker).read().split()) == 1:
            # worker -> pyspark daemon -> executor JVM: kill the whole executor mid-trial.
            os.kill(parent_of(os.getppid()), signal.SIGKILL)
            time.sleep(30)
        return {"base": 1.0, "a": 2.0, "b": 3.0, "c": 4.0, "d": 5.0}[feature]
    """
)

STUDY = textwrap.dedent(
    """
    import os, sys, threading
    from pyspark.sql import SparkSession
    from maggy import experiment
    from maggy.ablation import AblationStudy
    from cluster_helpers import FeatureTag, MASTER, OUT, train

    spark = (SparkSession.builder.master(MASTER).appName("maggy-cluster-test")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.executor.cores", "1").config("spark.cores.max", "2")
             .config("spark.executor.memory", "1g").config("spark.task.maxFailures", "4")
             .config("spark.ui.enabled", "false").getOrCreate())
    block_sizes, done = set(), threading.Event()

    def watch():  # the broadcast block size the session has while lagom() runs
        while not done.wait(0.05):
            block_sizes.add(str(spark.sparkContext.getConf().get("spark.broadcast.blockSize")))

    watcher = threading.Thread(target=watch)
    watcher.start()
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b", "c", "d")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="cluster", direction="min",
                              experiment_dir=os.path.join(OUT, "exp"), num_executors=2, es_policy="none",
                              verbose=False)
    done.set()
    watcher.join()
    print("BLOCKS_DURING=" + ",".join(sorted(block_sizes)))
    print("RUN_DIR=" + result["run_dir"])
    print("ERRORS=" + repr(sorted(set(result["trials"]["error"].dropna()))))
    spark.stop()
    """
)


@pytest.fixture
def cluster(tmp_path):
    """A standalone master and two 1-core workers from the installed pyspark; stopped afterwards."""
    with standalone_cluster(tmp_path, workers=2, cores=1) as master:
        yield master


def test_a_helper_module_study_has_every_result_after_an_executor_is_killed(cluster, tmp_path):
    (tmp_path / "cluster_helpers.py").write_text(SOURCE + HELPERS)
    script = tmp_path / "study.py"
    script.write_text(STUDY)
    out = subprocess.run([sys.executable, str(script), cluster, str(tmp_path)], capture_output=True, text=True,
                         timeout=400, env=dict(os.environ, PYSPARK_PYTHON=sys.executable), cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = next(line[8:] for line in out.stdout.splitlines() if line.startswith("RUN_DIR="))
    records = {(r["ablated_feature"] or "base"): r for r in map(json.loads, open(os.path.join(run_dir, "trials.jsonl")))}
    # Rule: the helper module reaches the executors, and every trial has a result although
    # an executor died mid-trial.
    assert sorted(records) == ["a", "b", "base", "c", "d"]
    assert {r["status"] for r in records.values()} == {"finished"}, out.stdout
    assert records["b"]["metric"] == 3.0 and records["b"]["attempts"] == 2
    # Trials ran on both workers' executors (two distinct executor processes before the kill).
    first_pids = {open(tmp_path / f"{f}.attempts").read().split()[0] for f in records}
    assert len(first_pids) >= 2
    # On a cluster maggy leaves the broadcast block size alone (executors fetch block by block).
    assert "BLOCKS_DURING=None" in out.stdout.splitlines(), out.stdout
