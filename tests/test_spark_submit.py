"""A study submitted as a batch job with spark-submit runs on the master the job names."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

JOB = textwrap.dedent(
    """
    import sys
    from maggy import experiment
    from maggy.ablation import AblationStudy, MaggyDataset

    class Nothing(MaggyDataset):
        def __len__(self):
            return 0
        def __getitem__(self, i):
            raise IndexError(i)
        def ablate_feature(self, feature):
            pass

    def train(dataset_function):
        from pyspark import TaskContext
        return float(TaskContext.get().partitionId())

    study = AblationStudy(dataset_generator=Nothing)
    study.features.include("a", "b")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="job", direction="max",
                              experiment_dir=sys.argv[1], verbose=False)
    from pyspark.sql import SparkSession
    print("MASTER=" + SparkSession.getActiveSession().sparkContext.master)
    print("STATUS=" + ",".join(result["trials"]["status"]))
    """
)


def test_spark_submit_keeps_the_jobs_master(tmp_path):
    import pyspark

    script = tmp_path / "job.py"
    script.write_text(JOB)
    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    out = subprocess.run([submit, "--master", "local[3]", "--conf", "spark.ui.enabled=false", str(script), str(tmp_path / "exp")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    # Rule: maggy uses the job's master (local[3]) instead of starting its own local[N].
    assert "MASTER=local[3]" in out.stdout
    assert "STATUS=finished,finished,finished" in out.stdout


OWN_SESSION = textwrap.dedent(
    """
    import os, sys
    import maggy
    from pyspark.sql import SparkSession
    from maggy import experiment
    from maggy.ablation import AblationStudy

    spark = SparkSession.builder.appName("own").config(map=maggy.spark_conf()).getOrCreate()

    def train(dataset_function):
        # The Python worker running this trial was forked by maggy's worker daemon.
        with open(f"/proc/{os.getppid()}/cmdline") as f:
            return float("maggy.core.worker_daemon" in f.read())

    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="own", direction="max",
                              experiment_dir=sys.argv[1], verbose=False)
    print("METRICS=" + ",".join(str(m) for m in result["trials"]["metric"]))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="reads /proc to find the worker's parent")
def test_a_session_built_with_spark_conf_runs_under_spark_submit(tmp_path):
    import pyspark

    from tiny_study import SOURCE

    script = tmp_path / "own.py"
    script.write_text(SOURCE + OWN_SESSION)
    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    out = subprocess.run([submit, "--master", "local[2]", "--conf", "spark.ui.enabled=false", str(script), str(tmp_path / "exp")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    # Rule: both trials ran, each in a worker forked by maggy's daemon (torch imported once).
    assert "METRICS=1.0,1.0" in out.stdout
