"""Faults a long study must survive: lost executors, a crashed driver, and retries that run out."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time


from maggy import experiment, layout
from maggy.ablation import AblationStudy
from tiny_study import SOURCE, FeatureTag


def make_study(features):
    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include(*features)
    return study


def kill_own_worker_once(marker_dir):
    def train(dataset_function, reporter):
        feature = dataset_function().ablated or "base"
        reporter.broadcast(1.0, step=0)
        marker = os.path.join(marker_dir, f"{feature}.attempts")
        with open(marker, "a") as f:
            f.write("x")
        if feature == "b" and os.path.getsize(marker) == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the executor's Python worker dies mid-trial
        return {"base": 1.0, "a": 2.0, "b": 3.0, "c": 4.0}[feature]

    return train


def test_a_trial_whose_executor_dies_is_run_again(spark, tmp_path):
    result = experiment.lagom(train_fn=kill_own_worker_once(str(tmp_path)), ablation_study=make_study(["a", "b", "c"]),
                              name="lost", direction="min", experiment_dir=str(tmp_path / "exp"),
                              num_executors=2, es_policy="none", verbose=False)
    trials = result["trials"].set_index(result["trials"]["ablated_feature"].fillna("base"))
    # Rule: a lost executor loses no trial; Spark retries the task and maggy re-queues the trial.
    assert list(trials["status"]) == ["finished"] * 4
    assert trials.loc["b", "metric"] == 3.0
    journal = [json.loads(line) for line in open(os.path.join(result["run_dir"], "trials.jsonl"))]
    attempts = {r["ablated_feature"] or "base": r["attempts"] for r in journal}
    assert attempts == {"base": 1, "a": 1, "b": 2, "c": 1}


def always_kill(dataset_function):
    if dataset_function().ablated == "b":
        os.kill(os.getpid(), signal.SIGKILL)
    return 1.0


def test_a_trial_lost_more_often_than_allowed_fails_with_the_reason(spark, tmp_path):
    result = experiment.lagom(train_fn=always_kill, ablation_study=make_study(["a", "b"]), name="lost-twice",
                              direction="min", experiment_dir=str(tmp_path / "exp"), num_executors=2,
                              es_policy="none", max_trial_retries=1, verbose=False)
    trials = result["trials"].set_index(result["trials"]["ablated_feature"].fillna("base"))
    assert trials.loc["b", "status"] == "failed"
    assert "lost 2 times" in trials.loc["b", "error"]
    # The other trials are unaffected.
    assert trials.loc["base", "status"] == "finished" and trials.loc["a", "status"] == "finished"


DRIVER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from maggy import experiment
    from maggy.ablation import AblationStudy

    OUT, SLEEP = sys.argv[1], float(sys.argv[2])  # read here: executors have their own argv

    def train(dataset_function):
        feature = dataset_function().ablated or "base"
        with open(os.path.join(OUT, "ran.txt"), "a") as f:
            f.write(feature + "\\n")
        time.sleep(SLEEP)
        return {"base": 1.0, "a": 2.0, "b": 3.0, "c": 4.0, "d": 5.0}[feature]

    study = AblationStudy(dataset_generator=FeatureTag)
    study.features.include("a", "b", "c", "d")
    experiment.lagom(train_fn=train, ablation_study=study, name="crash", direction="min",
                     experiment_dir=os.path.join(sys.argv[1], "exp"), num_executors=1,
                     es_policy="none", resume=len(sys.argv) > 3, verbose=False)
    """
)


def test_resume_after_the_driver_died_runs_only_the_missing_trials(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(SOURCE + DRIVER_SCRIPT)
    journal = tmp_path / "exp" / "crash" / "run_1" / "trials.jsonl"
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path), "1.0"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (journal.exists() and len(journal.read_text().splitlines()) >= 2):
            time.sleep(0.1)
        assert journal.exists(), "the first run journaled nothing"
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver (and its Spark) dies mid-experiment
        driver.wait()
    done_before = [json.loads(line)["ablated_feature"] or "base" for line in journal.read_text().splitlines()]
    assert 2 <= len(done_before) < 5
    with open(journal, "a") as f:
        f.write('{"trial_id": "t00')  # a line cut off by the crash
    ran_before = (tmp_path / "ran.txt").read_text().split()

    subprocess.run([sys.executable, str(script), str(tmp_path), "0", "resume"], check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    ran_after = (tmp_path / "ran.txt").read_text().split()[len(ran_before):]
    # Rule: resume runs exactly the trials without a result; the cut-off line is ignored.
    assert sorted(ran_after) == sorted({"base", "a", "b", "c", "d"} - set(done_before))
    result = json.loads((journal.parent / "result.json").read_text())
    assert result["num_trials"] == 5 and result["best_val"] == 1.0 and result["worst_val"] == 5.0


def _load_on_executor(marker):
    # What unpickling the train_fn runs on an executor: it counts itself, then imports a
    # module that only the driver has.
    from pyspark import TaskContext

    if TaskContext.get() is not None:
        with open(marker, "a") as f:
            f.write("x")
        import importlib

        importlib.import_module("maggy_test_only_on_the_driver")
    return None


class _NeedsADriverOnlyModule:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return _load_on_executor, (self.marker,)


def test_a_train_fn_the_executors_cannot_load_fails_every_trial_once_with_the_cause(spark, tmp_path):
    marker = str(tmp_path / "loads")
    guard = _NeedsADriverOnlyModule(marker)

    def train(dataset_function):
        return 1.0 if guard else 0.0

    result = experiment.lagom(train_fn=train, ablation_study=make_study(["a", "b"]), name="unloadable",
                              direction="min", experiment_dir=str(tmp_path / "exp"), num_executors=1,
                              es_policy="none", verbose=False)
    errors = set(result["trials"]["error"])
    assert list(result["trials"]["status"]) == ["failed"] * 3 and len(errors) == 1
    error = errors.pop()
    # Rule: the error names the root cause (the traceback's last line) with a hint...
    assert "ModuleNotFoundError: No module named 'maggy_test_only_on_the_driver'" in error
    assert "cannot be imported on the executors" in error
    # ...the full traceback is in the run directory...
    saved = open(layout.spark_errors_path(result["run_dir"])).read()
    assert "Traceback (most recent call last)" in saved and "_load_on_executor" in saved
    # ...and a failure that would repeat is not retried: the one slot tried to load it once.
    assert open(marker).read() == "x"


def test_a_failed_spark_job_names_its_cause_in_each_remaining_trial(spark, tmp_path):
    # Trial b kills its Python worker each time, more often than Spark retries a task (the
    # fixture allows 3 attempts), so the Spark job itself fails.
    result = experiment.lagom(train_fn=always_kill, ablation_study=make_study(["a", "b"]), name="job-failed",
                              direction="min", experiment_dir=str(tmp_path / "exp"), num_executors=1,
                              es_policy="none", max_trial_retries=10, verbose=False)
    trials = result["trials"].set_index(result["trials"]["ablated_feature"].fillna("base"))
    assert list(trials["status"]) == ["finished", "finished", "failed"]
    error = trials.loc["b", "error"]
    # Rule: Spark's reason, not its first line, and what usually causes it.
    assert error.startswith("the Spark job failed: org.apache.spark.SparkException: Python worker exited unexpectedly")
    assert "hint: out of memory" in error
    assert os.path.exists(layout.spark_errors_path(result["run_dir"]))
