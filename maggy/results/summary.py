"""The printed summary of an experiment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd


def format_summary(result: Mapping[str, Any], title: str = "LOCO") -> str:
    """The text summary printed at the end of a run.

    Args:
        result: a result from :func:`build_result`.
        title: the ablator's name for the header line.

    Returns:
        The summary, lines joined by ``"\\n"`` (no trailing newline).

    Example:
        >>> from maggy.results import build_result
        >>> records = [{"trial_id": "t0", "index": 0, "metric": 0.6663, "status": "finished"}]
        >>> print(format_summary(build_result(records, "min", 51)))
        ------ LOCO Results ------
        BEST Config Excludes {"ablated_feature": "None", "ablated_layer": "None"} --- metric 0.6663
        WORST Config Excludes {"ablated_feature": "None", "ablated_layer": "None"} --- metric 0.6663
        AVERAGE metric -- 0.6663
        Total Job Time 0 hours, 0 minutes, 51 seconds
        1 trial: 1 finished, 0 early stopped, 0 failed
    """
    lines = [f"------ {title} Results ------"]
    if result.get("best_config") is None:
        lines.append("No trial finished: no BEST, WORST or AVERAGE metric")
    else:
        lines += [
            f"BEST Config Excludes {json.dumps(result['best_config'])} --- metric "
            f"{result['best_val']:.4f}",
            f"WORST Config Excludes {json.dumps(result['worst_config'])} --- metric "
            f"{result['worst_val']:.4f}",
            f"AVERAGE metric -- {result['avg']:.4f}",
        ]
    hours, rest = divmod(int(round(result.get("duration") or 0)), 3600)
    minutes, seconds = divmod(rest, 60)
    lines.append(f"Total Job Time {hours} hours, {minutes} minutes, {seconds} seconds")

    total, stopped, failed = result["num_trials"], result["early_stopped"], result["failed"]
    lines.append(
        f"{total} trial{'' if total == 1 else 's'}: {total - stopped - failed} finished, "
        f"{stopped} early stopped, {failed} failed"
    )
    lines += _effect_lines(result)
    lines += _shapley_lines(result.get("components"))
    lines += _interaction_lines(result.get("interactions"))
    return "\n".join(lines)


def _shapley_lines(components: pd.DataFrame | None) -> list[str]:
    """Under the Shapley policy: each component's value, largest first."""
    if components is None or "shapley" not in components.columns:
        return []
    rows = sorted(components.itertuples(index=False), key=lambda r: -r.shapley if r.shapley == r.shapley else 0.0)

    def describe(r) -> str:
        interval = "" if r.shapley_ci_low != r.shapley_ci_low else f" [{r.shapley_ci_low:+.4f}, {r.shapley_ci_high:+.4f}]"
        verdict = getattr(r, "shapley_verdict", None)
        said = f" {verdict}" if verdict and verdict != "undetermined" else ""
        return f"{r.component} {r.shapley:+.4f}{interval}{said}"

    return ["Shapley values (sum = delta of removing every component; 95% interval): "
            + "; ".join(describe(r) for r in rows)]


def _interaction_lines(interactions: pd.DataFrame | None) -> list[str]:
    """Under the pairs policy: the redundant and the overlapping pairs, in plain words."""
    if interactions is None:
        return []

    def pairs(kind: str) -> str:
        rows = interactions[interactions["kind"] == kind]
        return "; ".join(f"{r.component_a} + {r.component_b} (interaction {r.interaction:+.4f})"
                         for r in rows.itertuples(index=False)) or "none"

    return [
        "Redundant pairs (removing both hurts far more than the sum of removing each: each covers "
        "for the other): " + pairs("redundant"),
        "Overlapping pairs (removing either already loses what both give): " + pairs("overlapping"),
    ]


_VERDICTS = ("needed", "harmful", "negligible", "undetermined")


def _effect_lines(result: Mapping[str, Any]) -> list[str]:
    """Single runs say what they are; with repeats, the components grouped by verdict."""
    components = result.get("components")
    if components is None or components.empty:
        return []
    noise = (result.get("statistics") or {}).get("noise_sd")
    bounded = [r for r in components.itertuples(index=False) if getattr(r, "lower_bound", False)]
    if components["n"].max() < 2:
        lines = [
            "Single runs: each delta is one run against the base trial, with no noise estimate "
            "and no verdict (repeats=3 or repeats=\"auto\" give intervals and verdicts)"
        ]
        if bounded:
            lines.append("Clearly needed: " + "; ".join(f"{r.component} (delta >= {r.mean_delta:+.4f}: {r.reason})"
                                                        for r in bounded))
        if noise is not None:
            flagged = [r.component for r in components.itertuples(index=False) if r.within_noise]
            lines.append(
                f"Run-to-run noise of the base trial: sd {noise:.4f}; deltas within 2 sd of 0: "
                + (", ".join(flagged) or "none")
            )
        return lines
    alpha = (result.get("statistics") or {}).get("alpha", 0.05)

    def describe(r) -> str:
        if getattr(r, "lower_bound", False):
            return f"{r.component} (delta >= {r.mean_delta:+.4f}: {r.reason})"
        if r.n == 0:
            return f"{r.component} ({r.reason})"
        if r.n < 2:
            return f"{r.component} ({r.mean_delta:+.4f}, n=1: {r.reason})"
        text = f"{r.component} ({r.mean_delta:+.4f}, 95% CI [{r.ci_low:.4f}, {r.ci_high:.4f}], n={r.n}"
        return text + (f": {r.reason})" if r.verdict == "undetermined" else ")")

    rows = list(components.itertuples(index=False))
    lines = [f"Verdicts at alpha {alpha:g} (delta > 0: removing it made the metric worse):"]
    for verdict in _VERDICTS:
        named = [describe(r) for r in rows if r.verdict == verdict]
        lines.append(f"  {verdict}: " + ("; ".join(named) or "none"))
    return lines
