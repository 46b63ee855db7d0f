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
