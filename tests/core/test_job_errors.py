"""A failed Spark job explains itself: the root cause, a hint, and the full text in the run directory."""

import pytest

from maggy import layout
from maggy.core.job_errors import explain, hint, root_cause


def _import_missing(_):
    import maggy_test_missing_module  # noqa: F401  (not installed anywhere)


def test_the_root_cause_of_a_real_spark_failure_is_the_last_line_of_the_python_traceback(spark):
    with pytest.raises(Exception) as info:
        spark.sparkContext.parallelize([0], 1).foreach(_import_missing)
    text = f"{type(info.value).__name__}: {info.value}"
    # Rule: not Spark's first line ("An exception was thrown from the Python worker"), but
    # the exception the worker raised.
    assert root_cause(text) == "ModuleNotFoundError: No module named 'maggy_test_missing_module'"


@pytest.mark.parametrize(
    "text, advice",
    [
        ("ModuleNotFoundError: No module named 'helpers'", "cannot be imported on the executors"),
        ("[PYTHON_VERSION_MISMATCH] Python in worker has different version: 3.10 than that in driver 3.11",
         "different Python"),
        ("org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)", "out of memory"),
        ("Container killed by YARN for exceeding memory limits", "out of memory"),
        ("ValueError: bad value", None),
    ],
)
def test_common_causes_get_a_hint(text, advice):
    found = hint(text)
    assert (found is None) if advice is None else (advice in found)


def test_the_lost_task_reason_is_the_cause_when_there_is_no_python_traceback():
    text = ("Py4JJavaError: An error occurred while calling o1.collect.\n: org.apache.spark.SparkException: "
            "Job aborted due to stage failure: Task 0 in stage 1.0 failed 2 times, most recent failure: "
            "Lost task 0.1 in stage 1.0 (TID 6) (10.0.0.2 executor driver): org.apache.spark.SparkException: "
            "Python worker exited unexpectedly (crashed)\n\tat org.apache.spark...")
    assert root_cause(text) == "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)"


def test_explain_keeps_the_full_text_in_the_run_directory(tmp_path):
    text = "Traceback (most recent call last):\n  File \"x.py\", line 1\nMemoryError\n"
    message = explain("the Spark job failed", text, str(tmp_path))
    assert message.startswith("the Spark job failed: MemoryError (hint: out of memory")
    assert layout.spark_errors_path(tmp_path) in message
    assert "File \"x.py\", line 1" in open(layout.spark_errors_path(tmp_path)).read()
