"""Writing and reading results: result.json, the journal, TensorBoard scalars."""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
from collections.abc import Mapping
from typing import Any

from maggy import layout
from maggy.core.journal import read_journal
from maggy.results.interactions import INTERACTION_COLUMNS
from maggy.results.table import COMPONENT_COLUMNS, TRIAL_COLUMNS, _REPEAT_COLUMNS, _frame, _jsonable


#: Numbers the event files this process writes (part of each file's name).
_event_files = itertools.count()


def write_tensorboard(record: Mapping[str, Any], logdir: str | os.PathLike) -> bool:
    """Write a trial's metric history as TensorBoard scalars under ``logdir/<trial_id>/``.

    Each ``[step, value]`` of ``record["history"]`` becomes scalar ``metric`` at that step. A
    trial that broadcast nothing gets no run (there would be nothing to show).

    The event file is written directly with TensorBoard's record writer: ``SummaryWriter``
    starts a thread and a queue per file, and cost the driver 4x as much per trial, on the
    thread that competes with the RPC handlers while trials run.

    Args:
        record: a trial record.
        logdir: the experiment run's ``tensorboard`` folder.

    Returns:
        True if written; False (silently) when tensorboard is not installed or the trial has
        no intermediate metric.

    Example:
        >>> import tempfile
        >>> write_tensorboard({"trial_id": "t1", "history": [[0, 0.9], [1, 0.7]]},
        ...                   tempfile.mkdtemp())
        True
    """
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        return False
    scalars = []
    for position, entry in enumerate(record.get("history") or []):
        step, value = entry if isinstance(entry, (list, tuple)) else (position, entry)
        if value is not None:
            scalars.append((position if step is None else int(step), float(value)))
    if not scalars:
        return False
    run = layout.trial_tensorboard_path(logdir, record["trial_id"])
    os.makedirs(run, exist_ok=True)
    now = time.time()
    # The name TensorBoard looks for; the counter keeps a re-run's file from replacing this one.
    name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.{next(_event_files)}"
    with open(os.path.join(run, name), "wb") as f:
        writer = RecordWriter(f)
        writer.write(Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
        for step, value in scalars:
            summary = Summary(value=[Summary.Value(tag="metric", simple_value=value)])
            writer.write(Event(wall_time=now, step=step, summary=summary).SerializeToString())
    return True


def save_result(result: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Write a result as strict JSON: DataFrames as lists of records, NaN and inf as null.

    Written to a temporary file first and renamed, so a crash leaves the old file or the new
    one, never half of one.

    Args:
        result: a result from :func:`build_result`.
        path: the file to write, usually ``<run>/result.json``.

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile
        >>> from maggy.results import build_result
        >>> records = [{"trial_id": "t0", "index": 0, "metric": 0.5}]
        >>> out = save_result(build_result(records, "max", 3.0),
        ...                   os.path.join(tempfile.mkdtemp(), "result.json"))
        >>> load_result(out)["best_val"]
        0.5
    """
    path = os.fspath(path)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(dict(result)), f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def load_result(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``result.json`` written by :func:`save_result`, DataFrames rebuilt.

    Args:
        path: the file.

    Returns:
        The result; ``trials`` and ``components`` are DataFrames again (nulls read as NaN
        in numeric columns and ``None`` in text columns).

    Example:
        >>> result = load_result("run_1/result.json")  # doctest: +SKIP
        >>> result["trials"].columns[0]  # doctest: +SKIP
        'trial_id'
    """
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    trials = result.get("trials") or []
    columns = list(TRIAL_COLUMNS) + (_REPEAT_COLUMNS if trials and "repeat" in trials[0] else [])
    result["trials"] = _frame(trials, columns)
    components = result.get("components") or []
    # Columns a policy added (Shapley values) come back too.
    extra = [c for c in (components[0] if components else {}) if c not in COMPONENT_COLUMNS]
    result["components"] = _frame(components, COMPONENT_COLUMNS + extra)
    if "interactions" in result:
        result["interactions"] = _frame(result["interactions"] or [], INTERACTION_COLUMNS)
    return result


def load_records(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Read the trial records of a run from its journal.

    Args:
        run_dir: the run folder (holding ``trials.jsonl``) or the journal file itself.

    Returns:
        The records in journal order; cut-off or invalid lines skipped with a warning.

    Raises:
        FileNotFoundError: if there is no journal.

    Example:
        >>> records = load_records("experiments/Titanic-LOCO/run_1")  # doctest: +SKIP
        >>> records[0]["status"]  # doctest: +SKIP
        'finished'
    """
    path = os.fspath(run_dir)
    if os.path.isdir(path):
        path = layout.journal_path(path)
    return read_journal(path)


