"""How an experiment's Spark job ends on a session the user built: the report is written while
the tasks wait, the job ends after ``lagom()`` returns, and whatever comes next (another
experiment, ``spark.stop()``, the end of the script) finds it ended, without a word from Spark."""

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pyspark.sql import SparkSession
    import maggy.results
    from maggy import experiment
    from maggy.ablation import AblationStudy

    def session():
        return SparkSession.builder.master("local[2]").config("spark.ui.showConsoleProgress", "false").getOrCreate()

    def train(dataset_function):
        time.sleep(0.2)  # long enough that both slots run trials
        return float(os.getpid())  # which Python worker ran the trial

    def _load_late(flag):  # the second task to load the study waits 4 s first
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            time.sleep(4)
        return None

    class LateForOneTask:
        def __reduce__(self):
            return (_load_late, (os.path.join(sys.argv[1], "loaded"),))

    def ablate(name, late=False):
        study = AblationStudy(dataset_generator=FeatureTag)
        study.features.include("a", "b", "c", "d", "e", "f")
        if late:
            study.late = LateForOneTask()  # travels with the study to the tasks
        result = experiment.lagom(train_fn=train, ablation_study=study, name=name, direction="max",
                                  experiment_dir=os.path.join(sys.argv[1], name), verbose=False)
        return sorted({int(m) for m in result["trials"]["metric"]})

    spark = session()
    tracker = spark.sparkContext.statusTracker()
    draw = maggy.results.plot_effects

    def watched_draw(*args, **kwargs):  # whether maggy's job is still running while the plot is drawn
        time.sleep(0.5)
        print("JOBS_DURING_PLOT=" + str(len(tracker.getActiveJobsIds())))
        return draw(*args, **kwargs)

    maggy.results.plot_effects = watched_draw
    first = ablate("first")
    maggy.results.plot_effects = draw
    print("FIRST=" + ",".join(map(str, first)))
    print("SECOND=" + ",".join(map(str, ablate("second"))))
    spark.stop()  # at once: the job may still be ending
    print("STOPPED")
    session()
    ablate("third", late=True)  # one task has not even registered when lagom() returns
    print("END")  # and the interpreter exits at once
    """
)


def test_the_job_ends_after_the_report_and_nothing_that_follows_trips_over_it(tmp_path):
    from tiny_study import SOURCE

    script = tmp_path / "ends.py"
    script.write_text(SOURCE + SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "exp")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    # The plot is drawn while the tasks wait for their last answer (half a second into the
    # drawing the job is still running), not while Spark ends them.
    assert seen["JOBS_DURING_PLOT"] == "1"
    # The next experiment waits for the last one's job to end, so it reuses its Python workers.
    assert set(seen["SECOND"].split(",")) <= set(seen["FIRST"].split(","))
    # Stopping the session at once, and exiting right after lagom() while a task is still
    # starting, end cleanly: Spark logs no error about tasks it had to kill, the late task
    # gets its answer, and no traceback reaches the user.
    assert "STOPPED" in out.stdout and "END" in out.stdout
    noise = [line for line in out.stderr.splitlines() if "ERROR" in line or "Traceback" in line or "Exception" in line]
    assert not noise, out.stderr[-3000:]
