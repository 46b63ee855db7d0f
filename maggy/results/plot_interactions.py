"""Plots of the policies beyond leave-one-out: the interaction heat map, LOCO beside Shapley."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from maggy.results.image import DPI, save_figure
from maggy.results.table import _float

__all__ = ["plot_interactions", "plot_loco_and_shapley"]

def plot_interactions(result: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Heat map of ``result["interactions"]``: one cell per pair, red where removing both hurts
    more than the two singles add up to (redundant: each covers for the other), blue where it
    hurts less (overlapping). Cells read the interaction, with ``R``/``O`` for pairs called
    redundant/overlapping.

    Args:
        result: a result with ``interactions`` (``ablator="pairs"``).
        path: the image file to write.

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile, pandas as pd
        >>> table = pd.DataFrame({"component_a": ["x1"], "component_b": ["x2"], "interaction": [0.9],
        ...                       "kind": ["redundant"]})
        >>> out = plot_interactions({"interactions": table}, os.path.join(tempfile.mkdtemp(), "i.png"))
        >>> os.path.getsize(out) > 0
        True
    """
    import numpy as np
    from matplotlib.figure import Figure

    table = result["interactions"]
    labels: list[str] = []
    for a, b in zip(table["component_a"], table["component_b"]):
        labels += [x for x in (a, b) if x not in labels]
    n = len(labels)
    grid = np.full((n, n), np.nan)
    marks = {}
    for row in table.itertuples(index=False):
        i, j = labels.index(row.component_a), labels.index(row.component_b)
        grid[i, j] = grid[j, i] = _float(row.interaction)
        marks[(i, j)] = marks[(j, i)] = {"redundant": " R", "overlapping": " O"}.get(row.kind, "")
    size = max(3.5, 1.2 + 0.7 * n)
    figure = Figure(figsize=(size + 1.5, size), dpi=DPI)
    ax = figure.subplots()
    if n == 0:
        ax.text(0.5, 0.5, "no pair trial finished", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return save_figure(figure, path)
    finite = grid[np.isfinite(grid)]
    limit = float(np.abs(finite).max()) if finite.size else 1.0
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu_r", vmin=-(limit or 1.0), vmax=limit or 1.0)
    for (i, j), mark in marks.items():
        ax.text(j, i, f"{grid[i, j]:+.3g}{mark}", ha="center", va="center", fontsize="small")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    figure.colorbar(image, ax=ax, label="interaction = Δ(pair) − (Δa + Δb)")
    ax.set_title("Interactions of pairs (R: redundant, O: overlapping)")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_loco_and_shapley(result: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Each component's LOCO delta beside its Shapley value, with their 95% intervals.

    LOCO misses what another component covers for (a redundant feature looks useless);
    Shapley shares a joint effect among the components that carry it. Rows are sorted by
    Shapley value, the largest on top.

    Args:
        result: a result whose ``components`` has the Shapley columns (``ablator="shapley"``).
        path: the image file to write.

    Returns:
        ``path`` as a string.
    """
    from matplotlib.figure import Figure

    rows = sorted(result["components"].itertuples(index=False),
                  key=lambda r: _float(r.shapley) if math.isfinite(_float(r.shapley)) else -math.inf)
    figure = Figure(figsize=(10, max(2.5, 1.5 + 0.45 * len(rows))), dpi=DPI)
    axes = figure.subplots(1, 2, sharey=True)
    ys = list(range(len(rows)))
    for ax, (value, low, high, title) in zip(axes, (
            ("mean_delta", "ci_low", "ci_high", "LOCO: Δ when removed alone"),
            ("shapley", "shapley_ci_low", "shapley_ci_high", "Shapley value (sums to Δ of removing all)"))):
        values = [_float(getattr(r, value)) for r in rows]
        shown = [v if math.isfinite(v) else 0.0 for v in values]
        ax.barh(ys, shown, color=["tab:red" if v > 0 else "tab:blue" for v in shown], edgecolor="black")
        lows = [_float(getattr(r, low)) for r in rows]
        highs = [_float(getattr(r, high)) for r in rows]
        with_ci = [k for k in ys if math.isfinite(lows[k]) and math.isfinite(highs[k])]
        if with_ci:
            ax.errorbar([shown[k] for k in with_ci], with_ci, fmt="none", ecolor="black", capsize=4,
                        xerr=[[shown[k] - lows[k] for k in with_ci], [highs[k] - shown[k] for k in with_ci]])
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(title, fontsize="medium")
    axes[0].set_yticks(ys, [r.component for r in rows])
    sign = "metric − base" if result.get("direction", "min") == "min" else "base − metric"
    figure.supxlabel(f"Δ = {sign} (> 0: removing it made the metric worse)", fontsize="medium")
    figure.tight_layout()
    return save_figure(figure, path)
