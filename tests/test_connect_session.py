"""A Spark Connect session gets a clear error from lagom() before anything is written.

The session lives in its own process: Connect and classic sessions are never mixed in one.
"""

import os
import subprocess
import sys
import textwrap

from tiny_study import SOURCE

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pyspark.sql import SparkSession
    from maggy import experiment
    from maggy.ablation import AblationStudy

    def train(dataset_function):
        return 1.0

    spark = SparkSession.builder.remote("local[1]").getOrCreate()
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a")
    exp = os.path.join(sys.argv[1], "exp")
    for passed in ({"spark": spark}, {}):   # passed to lagom(), or only active
        try:
            experiment.lagom(train_fn=train, ablation_study=study, name="connect", direction="min",
                             experiment_dir=exp, verbose=False, **passed)
            print("ERROR=none")
        except Exception as e:
            print("ERROR=" + type(e).__name__ + ": " + str(e).replace("\\n", " "))
    print("WRITTEN=" + repr(os.path.exists(exp)))
    spark.stop()
    """
)


def test_a_connect_session_is_refused_before_the_run_directory_exists(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(SOURCE + SCRIPT)
    out = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                         timeout=300, env={k: v for k, v in os.environ.items() if k != "SPARK_REMOTE"})
    assert out.returncode == 0, out.stderr[-3000:]
    errors = [line[6:] for line in out.stdout.splitlines() if line.startswith("ERROR=")]
    # Rule: passed or active, a Connect session gets an error that says what to use instead...
    assert len(errors) == 2
    for error in errors:
        assert error.startswith("TypeError: lagom() needs a classic SparkSession"), error
        assert "Spark Connect" in error
    # ...before lagom() creates the experiment's directory.
    assert "WRITTEN=False" in out.stdout
