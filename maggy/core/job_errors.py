"""Explaining a failed Spark job: its root cause, a hint for the common causes, the full text kept.

A Spark job's error is a JVM stack trace wrapping, somewhere inside, the Python traceback
of the worker that failed. Its first lines say only that "an exception was thrown from the
Python worker"; what went wrong is the *last* line of the Python traceback. Plain text in,
plain text out, so the rules can be tested on real Spark messages.
"""

from __future__ import annotations

import os
import re
import time
from typing import Optional

from maggy import layout

__all__ = ["root_cause", "hint", "explain"]

_TRACEBACK = "Traceback (most recent call last):"
# The JVM's summary of the last failed task attempt, when no Python traceback is present.
_LOST_TASK = re.compile(r"most recent failure: Lost task \S+ in stage \S+ \([^)]*\) \([^)]*\): (.+)")

# (pattern, hint): the first pattern found in the error's text gives the hint.
_HINTS = (
    (
        re.compile(r"ModuleNotFoundError|ImportError|No module named"),
        "a module the train_fn, the study or maggy needs cannot be imported on the executors: "
        "install it there (the version the driver has), or ship it with SparkContext.addPyFile "
        "or spark-submit --py-files",
    ),
    (
        re.compile(r"PYTHON_VERSION_MISMATCH|Python in worker has different version"),
        "the executors run a different Python than the driver: point PYSPARK_PYTHON (or "
        "spark.pyspark.python) at the same Python version, with the same packages, on every node",
    ),
    (
        re.compile(
            r"MemoryError|OutOfMemoryError|memory limit|Container killed|exit code 137|OOMKilled"
            r"|Python worker exited unexpectedly"
        ),
        "out of memory, or a crash in native code, killed a Python worker: give the executors "
        "more memory (spark.executor.memory, spark.executor.memoryOverhead), run fewer trials "
        "at once (num_executors=), or use smaller batches",
    ),
    (
        re.compile(r"Can't get attribute|AttributeError: module"),
        "the executors have a different version of the code than the driver: install the same "
        "versions on every node",
    ),
)


def root_cause(text: str) -> str:
    """The line of a Spark or Python error that says what went wrong.

    That is the exception line of the last Python traceback in ``text``; without one, the
    JVM's reason for the last lost task attempt; else the first line.

    Example:
        >>> root_cause('''An exception was thrown from the Python worker:
        ... Traceback (most recent call last):
        ...   File "worker.py", line 7, in main
        ...     import helpers
        ... ModuleNotFoundError: No module named 'helpers'
        ... ''')
        "ModuleNotFoundError: No module named 'helpers'"
    """
    if _TRACEBACK in text:
        frames = text.rsplit(_TRACEBACK, 1)[1].splitlines()[1:]
        for line in frames:
            if line.strip() and not line[0].isspace():
                return line.strip()[:500]
    match = _LOST_TASK.search(text)
    if match:
        return match.group(1).strip()[:500]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:500] if lines else "unknown error"


def hint(text: str) -> Optional[str]:
    """What usually causes an error like ``text`` and how to fix it; None if nothing fits.

    Example:
        >>> hint("ModuleNotFoundError: No module named 'helpers'").split(":")[0]
        'a module the train_fn, the study or maggy needs cannot be imported on the executors'
    """
    for pattern, advice in _HINTS:
        if pattern.search(text):
            return advice
    return None


def explain(what: str, text: str, run_dir: Optional[str]) -> str:
    """A one-paragraph explanation of a failure, after appending its full text to the run directory.

    Args:
        what: what failed, e.g. ``"the Spark job failed"``.
        text: the full error text (Spark's message or a Python traceback).
        run_dir: the run directory, whose ``spark_errors.txt`` keeps ``text``; None: not kept.

    Returns:
        ``"<what>: <root cause> (hint: <hint>). Full traceback: <file>"``.
    """
    cause = root_cause(text)
    message = f"{what}: {cause}"
    advice = hint(cause) or hint(text)
    if advice:
        message += f" (hint: {advice})"
    if run_dir is not None:
        path = layout.spark_errors_path(run_dir)
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n{text.rstrip()}\n\n")
            message += f". Full traceback: {path}"
        except OSError:  # the explanation matters more than the file
            pass
    return message
