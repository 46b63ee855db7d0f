"""The result of an experiment as data: the result dict, the per-trial table, the per-component statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from maggy import statistics as _stats
from maggy.trial import TrialStatus, check_direction, component_label, layer_label, listed, removed_labels

TRIAL_COLUMNS = [
    "trial_id", "ablated_feature", "ablated_layers", "custom_model", "removed", "metric", "delta",
    "status", "steps", "duration_s", "executor", "error",
]
_REPEAT_COLUMNS = ["repeat", "seed"]
#: Where early stopping stopped a trial (see TrialScheduler._stop_info); columns of the trials
#: table when any trial was stopped.
_STOP_COLUMNS = ["stop_step", "stop_base_gap", "stop_base_delta", "stop_lower_bound"]
COMPONENT_COLUMNS = [
    "component", "n", "mean_delta", "std", "ci_low", "ci_high", "distinguishable", "status",
    "p_value", "p_adjusted", "effect_size", "verdict", "reason", "p_wilcoxon", "stopped",
    "within_noise", "lower_bound",
]
_TEXT_COLUMNS = {
    "shapley_verdict", "shapley_reason",
    "trial_id", "ablated_feature", "ablated_layers", "custom_model", "status", "executor",
    "error", "component", "removed", "component_a", "component_b", "kind", "verdict", "reason",
}
_INT_COLUMNS = {"steps", "repeat", "seed", "n", "stopped", "stop_step"}
_BOOL_COLUMNS = {"distinguishable", "within_noise", "lower_bound", "stop_lower_bound"}


# --------------------------------------------------------------------------- result


def build_result(
    records: Iterable[Mapping[str, Any]], direction: str, duration: float,
    judging: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the experiment's result dict from its trial records.

    ``best``/``worst``/``avg`` consider trials with status ``finished`` only: an early-stopped
    trial's metric is from partial training and a failed one has none. With repeats, best and
    worst compare each component's mean metric over its finished repeats; ``avg`` is over
    every finished trial (the base trial included). A record journaled twice (same
    ``trial_id`` and ``repeat``, e.g. after a resume) counts once, the last one wins.

    Args:
        records: trial records as in docs/architecture.md.
        direction: ``"min"`` or ``"max"``.
        duration: wall time of the experiment in seconds.
        judging: how components are judged: ``alpha`` (0.05), ``min_effect`` (None),
            and ``min_repeats``/``max_repeats`` when repeats adapt (see
            :mod:`maggy.statistics`). Kept in the result as ``statistics``, with
            ``noise_sd`` added (the sample std of the base trial's metrics, or None).

    Returns:
        A dict with ``best_config``, ``best_val``, ``worst_config``, ``worst_val``, ``avg``
        (``None`` when no trial finished), ``best_id`` and ``worst_id`` (the ``trial_id`` of
        the best and worst trial; with repeats, of the component's first finished repeat;
        ``None`` when no trial finished), ``metric_list`` (the final metrics ``avg`` is
        over, in table order, as upstream Maggy's result has them), ``num_trials``, ``early_stopped``, ``failed``,
        ``duration``, ``direction``, ``trials`` (DataFrame, columns :data:`TRIAL_COLUMNS`
        plus ``repeat`` and ``seed`` when any record has ``repeat > 0``; sorted by index,
        then repeat) and ``components`` (see :func:`components_table`).
        Configs read ``{"ablated_feature": "sibsp" or "None", "ablated_layer": "[4, 5]" or
        "None"}``, plus ``"custom_model"`` when one was used.

    Raises:
        ValueError: if ``direction`` is not ``"min"`` or ``"max"``.

    Example:
        >>> records = [
        ...     {"trial_id": "t0", "index": 0, "metric": 0.60, "status": "finished"},
        ...     {"trial_id": "t1", "index": 1, "ablated_feature": "sibsp", "metric": 0.58,
        ...      "status": "finished"},
        ... ]
        >>> result = build_result(records, "min", 51.0)
        >>> result["best_config"], round(float(result["trials"]["delta"][1]), 2)
        ({'ablated_feature': 'sibsp', 'ablated_layer': 'None'}, -0.02)
    """
    check_direction(direction)
    trials = _normalise(records)
    base = _base_metrics(trials)
    for trial in trials:
        trial["delta"] = _delta(trial["metric"], _base_for(base, trial["repeat"]), direction)

    rows = [{c: t[c] for c in TRIAL_COLUMNS + _REPEAT_COLUMNS + _STOP_COLUMNS} for t in trials]
    columns = list(TRIAL_COLUMNS)
    if any(t["repeat"] > 0 for t in trials):
        columns += _REPEAT_COLUMNS
    if any(t["stop_step"] is not None for t in trials):
        columns += _STOP_COLUMNS
    statuses = [t["status"] for t in trials]

    result: dict[str, Any] = {
        "best_id": None, "best_config": None, "best_val": None,
        "worst_id": None, "worst_config": None, "worst_val": None,
        "avg": None, "metric_list": [],
        "num_trials": len(trials),
        "early_stopped": statuses.count(TrialStatus.EARLY_STOPPED),
        "failed": statuses.count(TrialStatus.FAILED),
        "duration": float(duration),
        "direction": direction,
        "trials": _frame(rows, columns),
    }
    options = _statistics_options(judging, list(base.values()))
    result["statistics"] = options
    result["components"] = _components_from_groups(_groups_from_records(trials), options)
    ranked = _rank_components(trials, direction)
    if ranked:
        (best, best_val), (worst, worst_val) = ranked[0], ranked[-1]
        finished = [t["metric"] for t in trials if _counts(t)]
        result.update(
            best_id=best["trial_id"], best_config=_config(best), best_val=best_val,
            worst_id=worst["trial_id"], worst_config=_config(worst), worst_val=worst_val,
            avg=statistics.fmean(finished), metric_list=finished,
        )
    return result


def _normalise(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fill defaults, dedupe by (trial_id, repeat) keeping the last, sort by (index, repeat)."""
    latest: dict[tuple, dict[str, Any]] = {}
    for position, record in enumerate(records):
        metric = _float(record.get("metric"))
        history = record.get("history") or []
        trial = {
            "trial_id": record.get("trial_id", str(position)),
            "index": int(_first(record.get("index"), position)),
            "ablated_feature": listed(record.get("ablated_feature")),
            "ablated_layers": _layer_label(record),
            "custom_model": listed(record.get("custom_model")),
            "removed": removed_labels(record),
            "metric": metric,
            "status": _status(record.get("status"), metric),
            "steps": int(_first(record.get("steps"), len(history))),
            "duration_s": _float(record.get("duration_s")),
            "executor": record.get("executor"),
            "error": record.get("error"),
            "repeat": int(record.get("repeat") or 0),
            "seed": record.get("seed"),
            "stop_step": record.get("stop_step"),
            "stop_base_gap": _float(record.get("stop_base_gap")),
            "stop_base_delta": _float(record.get("stop_base_delta")),
            "stop_lower_bound": bool(record.get("stop_lower_bound", False)),
        }
        latest.pop((trial["trial_id"], trial["repeat"]), None)
        latest[(trial["trial_id"], trial["repeat"])] = trial
    return sorted(latest.values(), key=lambda t: (t["index"], t["repeat"]))


def _status(status: Any, metric: float) -> str:
    """The status as the plain word (a record made in this process holds a TrialStatus)."""
    if not status:
        status = TrialStatus.FAILED if math.isnan(metric) else TrialStatus.FINISHED
    return str(status)


def _layer_label(record: Mapping[str, Any]) -> str | None:
    """The record's ``layer_label``, or one derived from ``ablated_layers`` the same way."""
    if record.get("layer_label") is not None:
        return str(record["layer_label"])
    return layer_label(record.get("ablated_layers"))


def _base_metrics(trials: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """repeat -> metric of the base trial (index 0), for base runs that produced a metric."""
    return {
        t["repeat"]: t["metric"]
        for t in trials
        if t["index"] == 0 and t["status"] != TrialStatus.FAILED and not math.isnan(t["metric"])
    }


def _base_for(base: Mapping[int, float], repeat: int) -> float:
    # Pairing repeat r with base repeat r cancels seed effects; without it, the base mean.
    if repeat in base:
        return base[repeat]
    return statistics.fmean(base.values()) if base else math.nan


def _delta(metric: float, base: float, direction: str) -> float:
    """Positive when ``metric`` is worse than ``base`` (NaN if either is missing)."""
    return metric - base if direction == "min" else base - metric


def _counts(trial: Mapping[str, Any]) -> bool:
    """Whether a trial enters best/worst/avg: finished with a metric."""
    return trial["status"] == TrialStatus.FINISHED and not math.isnan(trial["metric"])


def _rank_components(trials, direction) -> list[tuple[Mapping[str, Any], float]]:
    """(a trial of the component, mean finished metric), best first; ties keep declaration order."""
    by_index: dict[int, list] = {}
    for t in trials:
        if _counts(t):
            by_index.setdefault(t["index"], []).append(t)
    means = [
        (group[0], statistics.fmean(t["metric"] for t in group)) for group in by_index.values()
    ]
    return sorted(means, key=lambda m: m[1], reverse=direction == "max")


def _config(trial: Mapping[str, Any]) -> dict[str, str]:
    config = {
        "ablated_feature": str(trial["ablated_feature"]),
        "ablated_layer": str(trial["ablated_layers"]),
    }
    if trial.get("custom_model") is not None:
        config["custom_model"] = str(trial["custom_model"])
    return config


# --------------------------------------------------------------------------- components


def components_table(
    source: Mapping[str, Any] | Iterable[Mapping[str, Any]], direction: str | None = None
) -> pd.DataFrame:
    """One row per removed component: the effect of removing it, how sure we are, a verdict.

    Each component's deltas (see the module docstring for the sign) over its finished
    repeats, paired with the base trial of the same repeat, give ``n``, ``mean_delta``, the
    sample ``std``, a Student-t 95% confidence interval ``ci_low``/``ci_high``,
    ``distinguishable`` (the interval excludes 0), ``p_value`` (paired t-test),
    ``p_adjusted`` (Holm over the study's components; times the number of looks under
    adaptive repeats), ``effect_size`` (mean / std), ``p_wilcoxon`` (signed-rank, n >= 6),
    ``verdict`` (``needed``/``harmful``/``negligible``/``undetermined``) and its ``reason``
    (see :mod:`maggy.statistics`). Early-stopped runs are not paired differences:
    they are counted in ``stopped`` and left out. ``within_noise`` is True when
    ``|mean_delta|`` is at most twice the base trial's run-to-run std (``noise_runs``).
    Rows with ``n < 2`` have NaN ``std``/CI/p-values. ``status`` is ``finished`` if any
    repeat finished, else ``early_stopped`` or ``failed``. The base trial has no row.

    Args:
        source: a result from :func:`build_result` (its ``trials`` DataFrame is used) or a
            list of trial records.
        direction: ``"min"`` or ``"max"``; needed for records, taken from the result (where
            it is ignored) otherwise.

    Returns:
        A DataFrame with columns :data:`COMPONENT_COLUMNS`, in declaration order.

    Raises:
        ValueError: if ``direction`` is missing or invalid for records.

    Example:
        >>> records = [{"index": 0, "repeat": r, "trial_id": "b", "metric": m}
        ...            for r, m in enumerate([1.0, 1.1, 0.9])]
        >>> records += [{"index": 1, "repeat": r, "trial_id": "f", "ablated_feature": "age",
        ...              "metric": m} for r, m in enumerate([1.5, 1.7, 1.3])]
        >>> table = components_table(records, "min")
        >>> row = table.iloc[0]
        >>> row["component"], int(row["n"]), bool(row["distinguishable"])
        ('feature age', 3, True)
    """
    if isinstance(source, Mapping):
        options = source.get("statistics") or _statistics_options(None, _base_from_frame(source["trials"]))
        return _components_from_groups(_groups_from_frame(source["trials"]), options)
    check_direction(direction)
    return build_result(list(source), direction, 0.0)["components"]


def _component_label(feature, layers, model) -> str:
    return component_label(*(None if _missing(v) else v for v in (feature, layers, model)))


class _Run(NamedTuple):
    """One run of a component: its delta against the base trial, status and repeat.

    ``bound`` is set (else NaN) for a run stopped for trailing the base trial (a rule with
    ``marks_lower_bound``): its delta against the base at the step it stopped, a lower bound.
    """

    delta: float
    status: str
    repeat: int
    bound: float = math.nan
    stop_step: Any = None
    stop_gap: float = math.nan


def _run_of(delta: float, status: str, repeat: int, stop: Mapping[str, Any]) -> _Run:
    """A component's run, with its stop as a lower bound when the rule marks one."""
    if not stop.get("stop_lower_bound"):
        return _Run(delta, status, repeat)
    step = stop.get("stop_step")
    return _Run(delta, status, repeat, _float(stop.get("stop_base_delta")),
                None if _missing(step) else int(step), _float(stop.get("stop_base_gap")))


def _groups_from_records(trials) -> dict[str, list[_Run]]:
    """component label -> its runs, for every non-base trial, in declaration order."""
    groups: dict[str, list[_Run]] = {}
    for t in trials:
        # The base trial and trials removing several components (pairs, coalitions) are
        # not one component's effect.
        if t["index"] == 0 or len(t["removed"]) != 1:
            continue
        groups.setdefault(t["removed"][0], []).append(_run_of(t["delta"], t["status"], t["repeat"], t))
    return groups


def _groups_from_frame(frame: pd.DataFrame) -> dict[str, list[_Run]]:
    # The trials table has no index column; the base trial is the one that removes nothing.
    groups: dict[str, list[_Run]] = {}
    for row in frame.itertuples(index=False):
        removed = getattr(row, "removed", None)
        if isinstance(removed, (list, tuple)):
            if len(removed) == 1:
                repeat = getattr(row, "repeat", 0)
                groups.setdefault(removed[0], []).append(_run_of(
                    _float(row.delta), row.status, 0 if _missing(repeat) else int(repeat), row._asdict()))
            continue
        label = _component_label(row.ablated_feature, row.ablated_layers, row.custom_model)  # older tables
        if label != "base":
            repeat = getattr(row, "repeat", 0)
            groups.setdefault(label, []).append(_Run(_float(row.delta), row.status, 0 if _missing(repeat) else int(repeat)))
    return groups


def _base_from_frame(frame: pd.DataFrame) -> list[float]:
    """The base trial's metrics (finished or stopped runs with a metric), from a trials table."""
    return [
        _float(row.metric) for row in frame.itertuples(index=False)
        if _component_label(row.ablated_feature, row.ablated_layers, row.custom_model) == "base"
        and row.status != TrialStatus.FAILED and not math.isnan(_float(row.metric))
    ]


def _statistics_options(given: Mapping[str, Any] | None, base_metrics: Sequence[float]) -> dict[str, Any]:
    """The judging options with defaults filled in, plus the base trial's run-to-run ``noise_sd``."""
    options = {"alpha": 0.05, "min_effect": None, "min_repeats": None, "max_repeats": None}
    options.update({k: v for k, v in (given or {}).items() if k in options})
    finite = [m for m in base_metrics if math.isfinite(m)]
    options["noise_sd"] = statistics.stdev(finite) if len(finite) >= 2 else None
    return options


def _components_from_groups(groups: Mapping[str, list[_Run]], options: Mapping[str, Any]) -> pd.DataFrame:
    """One row per component; verdicts from :mod:`maggy.statistics`.

    Only finished runs are paired differences: an early-stopped run's metric is from partial
    training, so it is counted in ``stopped`` and left out of the statistics.
    """
    deltas = {
        label: {r.repeat: r.delta for r in runs if r.status == TrialStatus.FINISHED and not math.isnan(r.delta)}
        for label, runs in groups.items()
    }
    stopped = {label: [r.repeat for r in runs if r.status == TrialStatus.EARLY_STOPPED] for label, runs in groups.items()}
    completed = 1 + max((r.repeat for runs in groups.values() for r in runs), default=-1)
    judged = _judge_by_repeat(deltas, options, stopped, completed)
    noise = options.get("noise_sd")
    rows = []
    for label, runs in groups.items():
        j = judged[label]
        s = j.stats
        statuses = {r.status for r in runs}
        status = next((x for x in (TrialStatus.FINISHED, TrialStatus.EARLY_STOPPED) if x in statuses), TrialStatus.FAILED).value
        row = {
            "component": label, "n": s.n, "mean_delta": s.mean_delta, "std": s.std,
            "ci_low": s.ci_low, "ci_high": s.ci_high,
            "distinguishable": bool(s.ci_low > 0 or s.ci_high < 0), "status": status,
            "p_value": s.p_value, "p_adjusted": j.p_adjusted, "effect_size": s.effect_size,
            "verdict": j.verdict.value, "reason": j.reason, "p_wilcoxon": s.p_wilcoxon,
            "stopped": len(stopped[label]),
            # Within about two run-to-run standard deviations of the base trial: noise-sized.
            "within_noise": bool(noise is not None and s.n > 0 and abs(s.mean_delta) <= 2 * noise),
            "lower_bound": False,
        }
        bounded = [r for r in runs if math.isfinite(r.bound)]
        if s.n == 0 and bounded:
            row.update(_lower_bound(bounded))
        rows.append(row)
    return _frame(rows, COMPONENT_COLUMNS)


def _judge_by_repeat(values: Mapping[str, Mapping[int, float]], options: Mapping[str, Any] | None,
                     stopped: Mapping[str, Sequence[int]] | None = None, completed: int | None = None) -> dict:
    """Verdicts on ``{estimate: {repeat: value}}`` with the result's judging options.

    Under adaptive repeats (``min_repeats`` set) the looks are replayed as the policy took
    them, over ``completed`` repeats (default: up to the highest repeat in ``values``);
    otherwise one look. ``stopped``: estimate -> repeats whose run was early stopped.
    """
    options = options or {}
    alpha, min_effect, stopped = options.get("alpha", 0.05), options.get("min_effect"), stopped or {}
    if options.get("min_repeats") is not None:
        if completed is None:
            completed = 1 + max((r for by_repeat in values.values() for r in by_repeat), default=-1)
        return _stats.sequential_verdicts(values, completed, options["min_repeats"], options["max_repeats"],
                                          alpha, min_effect, stopped)
    return _stats.judge({c: list(v.values()) for c, v in values.items()}, alpha, min_effect,
                        stopped={c: len(s) for c, s in stopped.items()})


def _lower_bound(runs: Sequence[_Run]) -> dict[str, Any]:
    """The row of a component whose runs were stopped for trailing the base trial, none finished.

    The rule stops only trials worse than the base by more than its margin at the same step,
    so the component is needed; its delta is the smallest gap at a stop, a lower bound.
    """
    least = min(runs, key=lambda r: r.bound)
    gap = f", {least.stop_gap:.0%} worse than the base trial there" if math.isfinite(least.stop_gap) else ""
    times = "" if len(runs) == 1 else f" (in {len(runs)} runs; the smallest gap)"
    return {
        "mean_delta": least.bound, "lower_bound": True, "verdict": _stats.Verdict.NEEDED.value,
        "reason": f"stopped for trailing the base trial: at step {least.stop_step}{gap}{times}; "
                  f"the delta is at that step, a lower bound",
    }


# --------------------------------------------------------------------------- helpers


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _float(value: Any) -> float:
    """A float, NaN for None/NA/unparseable (0-d tensors and numpy scalars included)."""
    if _missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame with stable dtypes: text as object (None stays None), counts as Int64."""
    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if column in _TEXT_COLUMNS:
            data[column] = pd.Series([None if _missing(v) else v for v in values], dtype=object)
        elif column in _INT_COLUMNS:
            ints = [None if _missing(v) else int(v) for v in values]
            data[column] = pd.array(ints, dtype="Int64")
        elif column in _BOOL_COLUMNS:
            data[column] = pd.Series([bool(v) for v in values], dtype=bool)
        else:
            data[column] = pd.Series([_float(v) for v in values], dtype=float)
    return pd.DataFrame(data, columns=list(columns))


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN/inf/NA become None."""
    if isinstance(value, pd.DataFrame):
        return [_jsonable(row) for row in value.to_dict("records")]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if _missing(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
