"""The result of an experiment as data: the result dict, the per-trial table, the per-component statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from maggy.trial import TrialStatus, check_direction, component_label, layer_label, listed, removed_labels

TRIAL_COLUMNS = [
    "trial_id", "ablated_feature", "ablated_layers", "custom_model", "removed", "metric", "delta",
    "status", "steps", "duration_s", "executor", "error",
]
_REPEAT_COLUMNS = ["repeat", "seed"]
COMPONENT_COLUMNS = [
    "component", "n", "mean_delta", "std", "ci_low", "ci_high", "distinguishable", "status",
]
_TEXT_COLUMNS = {
    "trial_id", "ablated_feature", "ablated_layers", "custom_model", "status", "executor",
    "error", "component", "removed", "component_a", "component_b", "kind",
}
_INT_COLUMNS = {"steps", "repeat", "seed", "n"}

# Two-sided 95% critical values of Student's t for df = 1..30.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
_Z975 = 1.959964


# --------------------------------------------------------------------------- result


def build_result(
    records: Iterable[Mapping[str, Any]], direction: str, duration: float
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

    Returns:
        A dict with ``best_config``, ``best_val``, ``worst_config``, ``worst_val``, ``avg``
        (``None`` when no trial finished), ``num_trials``, ``early_stopped``, ``failed``,
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

    rows = [{c: t[c] for c in TRIAL_COLUMNS + _REPEAT_COLUMNS} for t in trials]
    columns = list(TRIAL_COLUMNS)
    if any(t["repeat"] > 0 for t in trials):
        columns += _REPEAT_COLUMNS
    statuses = [t["status"] for t in trials]

    result: dict[str, Any] = {
        "best_config": None, "best_val": None, "worst_config": None, "worst_val": None,
        "avg": None,
        "num_trials": len(trials),
        "early_stopped": statuses.count(TrialStatus.EARLY_STOPPED),
        "failed": statuses.count(TrialStatus.FAILED),
        "duration": float(duration),
        "direction": direction,
        "trials": _frame(rows, columns),
        "components": _components_from_groups(_groups_from_records(trials)),
    }
    ranked = _rank_components(trials, direction)
    if ranked:
        (best, best_val), (worst, worst_val) = ranked[0], ranked[-1]
        finished = [t["metric"] for t in trials if _counts(t)]
        result.update(
            best_config=_config(best), best_val=best_val,
            worst_config=_config(worst), worst_val=worst_val,
            avg=statistics.fmean(finished),
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
    """One row per removed component: the mean effect of removing it and its 95% interval.

    Each component's deltas (see the module docstring for the sign) over its finished
    repeats give ``n``, ``mean_delta``, the sample ``std``, a Student-t 95% confidence
    interval ``ci_low``/``ci_high`` and ``distinguishable`` (the interval excludes 0). With
    repeats paired by seed this is a paired comparison with the base trial. Rows with
    ``n < 2`` have NaN ``std``/CI and ``distinguishable`` False. ``status`` is ``finished``
    if any repeat finished, else ``early_stopped`` or ``failed``. The base trial (nothing
    removed) has no row.

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
        return _components_from_groups(_groups_from_frame(source["trials"]))
    check_direction(direction)
    return build_result(list(source), direction, 0.0)["components"]


def _component_label(feature, layers, model) -> str:
    return component_label(*(None if _missing(v) else v for v in (feature, layers, model)))


def _groups_from_records(trials) -> dict[str, list[tuple[float, str]]]:
    """component label -> [(delta, status)] for every non-base trial, in declaration order."""
    groups: dict[str, list[tuple[float, str]]] = {}
    for t in trials:
        # The base trial and trials removing several components (pairs, coalitions) are
        # not one component's effect.
        if t["index"] == 0 or len(t["removed"]) != 1:
            continue
        groups.setdefault(t["removed"][0], []).append((t["delta"], t["status"]))
    return groups


def _groups_from_frame(frame: pd.DataFrame) -> dict[str, list[tuple[float, str]]]:
    # The trials table has no index column; the base trial is the one that removes nothing.
    groups: dict[str, list[tuple[float, str]]] = {}
    for row in frame.itertuples(index=False):
        removed = getattr(row, "removed", None)
        if isinstance(removed, (list, tuple)):
            if len(removed) == 1:
                groups.setdefault(removed[0], []).append((_float(row.delta), row.status))
            continue
        label = _component_label(row.ablated_feature, row.ablated_layers, row.custom_model)  # older tables
        if label != "base":
            groups.setdefault(label, []).append((_float(row.delta), row.status))
    return groups


def _components_from_groups(groups: Mapping[str, list[tuple[float, str]]]) -> pd.DataFrame:
    rows = []
    for label, runs in groups.items():
        deltas = [d for d, status in runs if status == TrialStatus.FINISHED and not math.isnan(d)]
        mean, std, low, high = _interval(deltas)
        statuses = {status for _, status in runs}
        best = (TrialStatus.FINISHED, TrialStatus.EARLY_STOPPED)
        status = next((s for s in best if s in statuses), TrialStatus.FAILED).value
        rows.append({
            "component": label, "n": len(deltas), "mean_delta": mean, "std": std,
            "ci_low": low, "ci_high": high,
            "distinguishable": bool(low > 0 or high < 0), "status": status,
        })
    return _frame(rows, COMPONENT_COLUMNS)


def _interval(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, sample std, 95% CI low, high); NaN where ``values`` is too short."""
    if not values:
        return (math.nan,) * 4
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    std = statistics.stdev(values)
    half = _t_critical(len(values) - 1) * std / math.sqrt(len(values))
    return mean, std, mean - half, mean + half


def _t_critical(df: int) -> float:
    """Two-sided 95% critical value of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df!r}")
    if df <= len(_T95):
        return _T95[df - 1]
    # Cornish-Fisher expansion around the normal quantile; within 1e-4 of the exact value
    # for df > 30, and tends to 1.96.
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


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
        elif column == "distinguishable":
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
