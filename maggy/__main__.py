"""Command line: ``python -m maggy report <dir>``.

Prints the summary and trial table of an experiment run from its journal and regenerates its
effect plot — also for a run that is still going or was interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from maggy import layout
from maggy.trial import check_direction, spec_label

__all__ = ["main", "find_run_dir"]

_JOURNAL = layout.JOURNAL


class _UsageError(Exception):
    """A problem with what the user pointed the command at (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``maggy`` command line.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 2 when the directory has no journal or the arguments
        are wrong.

    Example:
        >>> main(["report", "experiments/Titanic-LOCO"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(prog="python -m maggy", description="maggy tools")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser(
        "report",
        help="summarise an experiment run from its journal",
        description="Print the summary and trial table of a run and regenerate effects.png. "
        "DIR is a run folder (holding trials.jsonl) or an experiment folder whose run_N "
        "subfolders are runs (the highest N is read).",
    )
    report.add_argument("dir", help="run or experiment directory")
    report.add_argument("--no-plot", action="store_true", help="do not regenerate effects.png")
    args = parser.parse_args(argv)
    try:
        return _report(args.dir, plot=not args.no_plot)
    except _UsageError as e:
        parser.exit(2, f"{parser.prog} {args.command}: error: {e}\n")


def find_run_dir(path: str | os.PathLike) -> str:
    """The run folder to read for ``path``.

    Args:
        path: a run folder (has ``trials.jsonl``), the journal file itself, or an experiment
            folder whose subfolders ``run_1``, ``run_2``, ... are runs.

    Returns:
        The run folder: ``path`` itself, or its ``run_N`` with the highest N.

    Raises:
        FileNotFoundError: when no journal is found; the message names the path.

    Example:
        >>> find_run_dir("experiments/Titanic-LOCO")  # doctest: +SKIP
        'experiments/Titanic-LOCO/run_2'
    """
    path = os.fspath(path)
    if layout.is_journal(path):
        return os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path!r} is not a directory")
    if os.path.isfile(layout.journal_path(path)):
        return path
    latest = layout.latest_run(path)
    if latest is None:
        raise FileNotFoundError(f"no {_JOURNAL} in {path!r} and no run_N subfolder")
    if not os.path.isfile(layout.journal_path(latest)):
        raise FileNotFoundError(f"no {_JOURNAL} in {latest!r} (latest run of {path!r})")
    return latest


def _report(path: str, plot: bool) -> int:
    # Imported here so `python -m maggy --help` stays fast.
    import pandas as pd

    from maggy import results

    try:
        run_dir = find_run_dir(path)
    except FileNotFoundError as e:
        raise _UsageError(e) from e
    print(f"Reading run {run_dir}")

    config, notes = _read_config(run_dir)
    direction = config.get("direction", "min")
    try:
        check_direction(direction, name=f"direction in {layout.config_path(run_dir)!r}")
    except ValueError as e:
        raise _UsageError(e) from e
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = results.load_records(run_dir)
    notes += [f"{w.message}" for w in caught]

    duration, how = _duration(config, records, run_dir)
    if how:
        notes.append(how)
    result = results.add_analysis(
        results.build_result(records, direction, duration, judging=_judging(config)), config.get("analysis")
    )
    notes += _missing_trials(config.get("trials"), records)
    for note in notes:
        print(f"note: {note}")

    print()
    print(results.format_summary(result, title=_title(config)))
    print()
    table = result["trials"].copy()
    # object dtype keeps None as "None" (a plain assignment would infer str and show NaN).
    table["error"] = pd.Series([_last_line(e) for e in table["error"]], index=table.index,
                               dtype=object)
    with pd.option_context("display.width", 250, "display.max_columns", None,
                           "display.max_colwidth", 60):
        print(table.to_string(index=False))

    components = result["components"]
    if not components.empty:
        print()
        shown = components[["component", "n", "mean_delta", "ci_low", "ci_high", "p_adjusted", "verdict",
                            "reason", "stopped"]]
        with pd.option_context("display.width", 250, "display.max_columns", None,
                               "display.max_colwidth", 70, "display.float_format", "{:.4g}".format):
            print(shown.to_string(index=False))

    if plot:
        target = layout.plot_path(run_dir)
        try:
            print(f"\nEffects plot: {results.plot_effects(result, target)}")
            if "interactions" in result:
                target = layout.interactions_plot_path(run_dir)
                print(f"Interactions plot: {results.plot_interactions(result, target)}")
        except OSError as e:
            print(f"\nnote: could not write {target!r}: {e}")
    return 0


def _judging(config: Mapping[str, Any]) -> dict[str, Any]:
    """How the run judged its components, from its config.json (defaults where absent)."""
    adaptive = config.get("repeats") == "auto"
    return {
        "alpha": config.get("alpha", 0.05),
        "min_effect": config.get("min_effect"),
        "min_repeats": config.get("min_repeats", 3) if adaptive else None,
        "max_repeats": config.get("max_repeats", 10) if adaptive else None,
    }


def _read_config(run_dir: str) -> tuple[dict[str, Any], list[str]]:
    path = layout.config_path(run_dir)
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        return {}, [f"no config.json in {run_dir!r}: assuming direction 'min'"]
    except (OSError, ValueError) as e:
        return {}, [f"cannot read {path!r} ({e}): assuming direction 'min'"]
    if not isinstance(config, dict):
        return {}, [f"{path!r} is not a JSON object: assuming direction 'min'"]
    return config, []


def _title(config: Mapping[str, Any]) -> str:
    if config.get("title"):
        return str(config["title"])
    ablator = config.get("ablator") or "loco"
    name = str(ablator).lower()
    return "LOCO" if name in ("loco", "loco_pytorch") else str(ablator)


def _duration(config, records, run_dir) -> tuple[float, str | None]:
    """Experiment wall time and, when it is an estimate, a note saying how it was obtained.

    In order: config.json's ``start_time`` and ``end_time`` (seconds since the epoch, as
    lagom() writes them), result.json's ``duration`` (the run ended), start until the last
    journal write (the run did not end), the sum of the trials' durations.
    """
    start, end = _timestamp(config.get("start_time")), _timestamp(config.get("end_time"))
    if start is not None and end is not None:
        return max(0.0, end - start), None
    saved = _saved_duration(run_dir)
    if saved is not None:
        return saved, None
    if start is not None:
        # A run still going (or interrupted): time until the last journal write.
        end = os.path.getmtime(layout.journal_path(run_dir))
        return max(0.0, end - start), "job time is until the last journal write (run not ended)"
    total = sum(float(r.get("duration_s") or 0.0) for r in records)
    return total, "job time is the sum of trial durations (config.json has no timestamps)"


def _saved_duration(run_dir: str) -> float | None:
    """The duration in the run's result.json, written when the run ended."""
    try:
        with open(layout.result_path(run_dir), encoding="utf-8") as f:
            duration = json.load(f).get("duration")
    except (OSError, ValueError, AttributeError):
        return None
    return float(duration) if isinstance(duration, (int, float)) else None


def _timestamp(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _missing_trials(specs, records) -> list[str]:
    """A note listing the trial specs of config.json that have no record yet."""
    if not isinstance(specs, list) or not specs:
        return []
    done = {(r.get("trial_id"), int(r.get("repeat") or 0)) for r in records}
    missing = [
        s for s in specs
        if isinstance(s, Mapping) and (s.get("trial_id"), int(s.get("repeat") or 0)) not in done
    ]
    if not missing:
        return []
    have = len(specs) - len(missing)
    return [
        f"{have} of {len(specs)} trials have results; missing: "
        + ", ".join(_describe(s) for s in missing)
    ]


def _describe(spec: Mapping[str, Any]) -> str:
    what = spec_label(spec)
    repeat = f", repeat {spec['repeat']}" if spec.get("repeat") else ""
    return f"{spec.get('trial_id', '?')} ({what}{repeat})"


def _last_line(error: Any) -> Any:
    # A full traceback would wreck the table; its last line says what went wrong.
    if not isinstance(error, str):
        return error
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return lines[-1][:60] if lines else error


if __name__ == "__main__":
    sys.exit(main())
