"""On a session the user built without maggy's settings, maggy's own job still forks its
workers from maggy's daemon and cuts its broadcasts into small blocks, and leaves the
session's configuration as it found it."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="reads /proc to find the worker's parent"),
]

SCRIPT = textwrap.dedent(
    """
    import os, sys, threading
    from pyspark.sql import SparkSession
    from maggy import experiment
    from maggy.ablation import AblationStudy

    builder = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    if sys.argv[2] != "-":
        builder = builder.config("spark.python.daemon.module", sys.argv[2])
        builder = builder.config("spark.broadcast.blockSize", "2m")
    spark = builder.getOrCreate()
    sc = spark.sparkContext

    def parent(_):
        with open(f"/proc/{os.getppid()}/cmdline") as f:
            yield f.read().replace(chr(0), " ")

    def user_job():
        return sorted(set(sc.parallelize(range(2), 2).mapPartitions(parent).collect()))

    def train(dataset_function):
        with open(f"/proc/{os.getppid()}/cmdline") as f:
            return float("maggy.core.worker_daemon" in f.read())

    print("BEFORE=" + "|".join(user_job()))
    block_sizes, done = set(), threading.Event()

    def watch():  # the broadcast block size the session has while lagom() runs
        while not done.wait(0.05):
            block_sizes.add(str(sc.getConf().get("spark.broadcast.blockSize")))

    watcher = threading.Thread(target=watch)
    watcher.start()
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="plain", direction="max",
                              experiment_dir=sys.argv[1], verbose=False)
    done.set()
    watcher.join()
    print("BLOCKS_DURING=" + ",".join(sorted(block_sizes)))
    print("BLOCKS_AFTER=" + str(sc.getConf().get("spark.broadcast.blockSize")))
    print("METRICS=" + ",".join(str(m) for m in result["trials"]["metric"]))
    print("CONF=" + str(spark.conf.get("spark.python.daemon.module", None)))
    print("AFTER=" + "|".join(user_job()))
    """
)


def _run(tmp_path, daemon_module: str) -> dict:
    from tiny_study import SOURCE

    script = tmp_path / "plain.py"
    script.write_text(SOURCE + SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "exp"), daemon_module],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def test_maggys_trials_fork_from_its_daemon_and_the_users_jobs_keep_sparks(tmp_path):
    seen = _run(tmp_path, "-")
    # The user's own jobs run pyspark.daemon, before and after lagom().
    assert "-m pyspark.daemon" in seen["BEFORE"] and "maggy" not in seen["BEFORE"]
    assert "-m pyspark.daemon" in seen["AFTER"] and "maggy" not in seen["AFTER"]
    # Every trial ran in a worker forked by maggy's daemon.
    assert seen["METRICS"] == "1.0,1.0,1.0"
    # While maggy's job ran, its task binary was broadcast in small blocks.
    assert "256k" in seen["BLOCKS_DURING"].split(",")
    # The session's configuration is as the user left it.
    assert seen["CONF"] == "None" and seen["BLOCKS_AFTER"] == "None"


def test_settings_the_user_chose_are_kept(tmp_path):
    seen = _run(tmp_path, "pyspark.daemon")
    assert seen["METRICS"] == "0.0,0.0,0.0"
    assert seen["CONF"] == "pyspark.daemon"
    # A broadcast block size the user chose is never changed, not even during the job.
    assert seen["BLOCKS_DURING"] == "2m" and seen["BLOCKS_AFTER"] == "2m"
