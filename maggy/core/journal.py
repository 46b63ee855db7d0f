"""The experiment journal: one JSON line per finished trial, durable as soon as it is written.

The driver appends each trial record (see docs/architecture.md) to ``trials.jsonl`` when the
trial ends; ``resume=True`` and ``python -m maggy report`` read it back. A crash can cut the
last line off mid-write; readers skip such a line with a warning instead of failing.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from typing import Any

__all__ = ["Journal", "read_journal"]


class Journal:
    """Append-only JSON-lines file of trial records.

    ``append`` is safe to call from several threads (the driver's RPC handlers); each call
    writes one whole line, flushes and fsyncs it before returning, so a finished trial
    survives a crash of the driver right after. NaN and infinite floats are written as
    Python's ``json`` writes them (``NaN``, ``Infinity``) and read back unchanged.

    Args:
        path: the journal file (created with its parent folders on first append).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "trials.jsonl")
        >>> journal = Journal(path)
        >>> journal.append({"trial_id": "a1", "metric": float("nan")})
        >>> Journal.read(path)
        [{'trial_id': 'a1', 'metric': nan}]
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as one line, flushed and fsynced.

        Values JSON cannot hold (numpy scalars, 0-d tensors, paths) are converted: ``item()``
        where the object has it, else ``str``.

        Args:
            record: the trial record.

        Raises:
            TypeError: if ``record`` is not a dict.
            OSError: if the file cannot be written.

        Example:
            >>> import tempfile
            >>> journal = Journal(os.path.join(tempfile.mkdtemp(), "run_1", "trials.jsonl"))
            >>> journal.append({"trial_id": "b2", "status": "finished"})
        """
        if not isinstance(record, dict):
            raise TypeError(f"record must be a dict, got {type(record).__name__}")
        line = json.dumps(record, default=_to_json) + "\n"
        with self._lock:
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
            with open(self.path, "ab+") as f:
                # A line cut off by an earlier crash must not swallow this record: start a
                # fresh line so only the broken one is lost.
                if f.seek(0, os.SEEK_END) > 0 and _last_byte(f) != b"\n":
                    line = "\n" + line
                f.write(line.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())

    @staticmethod
    def read(path: str | os.PathLike) -> list[dict[str, Any]]:
        """Read every record of a journal; see :func:`read_journal`.

        Example:
            >>> Journal.read(os.devnull)
            []
        """
        return read_journal(path)

    def __repr__(self) -> str:
        return f"Journal({self.path!r})"


def read_journal(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read the records of a journal, skipping lines that are not valid records.

    A last line cut off mid-write and any line that is not a JSON object are skipped with a
    ``warnings.warn`` that names the line number; blank lines are skipped silently. Never
    raises for the file's content.

    Args:
        path: the ``trials.jsonl`` file.

    Returns:
        The records, in file order.

    Raises:
        FileNotFoundError: if there is no such file.

    Example:
        >>> read_journal(os.devnull)
        []
    """
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    # split() leaves "" after a final newline; anything else there was cut off mid-write.
    last = len(lines) - 1
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            record = None
        if isinstance(record, dict):
            records.append(record)
            continue
        reason = (
            "is incomplete (cut off mid-write?)" if number - 1 == last else "is not a JSON object"
        )
        warnings.warn(f"{os.fspath(path)}: line {number} {reason}; skipped", stacklevel=2)
    return records


def _last_byte(f) -> bytes:
    f.seek(-1, os.SEEK_END)
    return f.read(1)


def _to_json(value: Any) -> Any:
    # numpy scalars and 0-d tensors have item(); anything else is kept readable as text
    # rather than making the whole record (and the user's result) unwritable.
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)
