"""The plot of each removed component's effect against the base trial."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping
from typing import Any

from maggy.results.table import EARLY_STOPPED, FAILED, components_table, _float, _groups_from_frame


#: Most bars one plot draws: beyond that a plot is unreadable and costs seconds to render.
MAX_BARS = 40

#: Resolution of the written image, dots per inch.
DPI = 100


def plot_effects(result: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Draw each removed component's effect against the base trial as a horizontal bar chart.

    Bars are sorted by delta, biggest at the top (at most :data:`MAX_BARS`: the largest
    effects, the title says how many were left out); error bars show the 95% interval when a
    component has repeats. Early-stopped components are hatched (their delta is from partial
    training), failed ones are grey with the word "failed". Uses ``matplotlib.figure.Figure``
    directly, so it neither needs nor changes pyplot's backend (Jupyter inline keeps working).

    Args:
        result: a result from :func:`build_result`.
        path: the image file to write (format from its extension, e.g. ``effects.png``).

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile, os
        >>> records = [{"trial_id": "t0", "index": 0, "metric": 0.60},
        ...            {"trial_id": "t1", "index": 1, "ablated_feature": "age", "metric": 0.70}]
        >>> out = plot_effects(build_result(records, "min", 1.0),
        ...                    os.path.join(tempfile.mkdtemp(), "effects.png"))
        >>> os.path.getsize(out) > 0
        True
    """
    from matplotlib.figure import Figure

    direction = result.get("direction", "min")
    bars = _bars(result)
    hidden = _keep_largest(bars, MAX_BARS)
    figure = Figure(figsize=(8, max(2.5, 1.5 + 0.45 * len(bars))))
    ax = figure.subplots()
    if not bars:
        ax.text(0.5, 0.5, "no component trials to compare with the base trial",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    for y, (label, value, low, high, status, note) in enumerate(bars):
        if note:
            ax.barh(y, 0.0, color="lightgrey")
            ax.text(0, y, f"  {note}", va="center", color="dimgrey")
            continue
        style = {"color": "tab:red" if value > 0 else "tab:blue", "edgecolor": "black"}
        if status == EARLY_STOPPED:
            style.update(color="white", edgecolor="tab:grey", hatch="///")
        finite_ci = math.isfinite(low) and math.isfinite(high)
        xerr = [[value - low], [high - value]] if finite_ci else None
        ax.barh(y, value, xerr=xerr, capsize=4, **style)
        if status == EARLY_STOPPED:  # beside the bar's outer end
            text, align = ("  early stopped (partial)", "left") if value >= 0 else (
                "early stopped (partial)  ", "right")
            ax.text(value, y, text, ha=align, va="center", color="tab:grey", fontsize=8)
    if bars:
        ax.set_yticks(range(len(bars)), [b[0] for b in bars])
        ax.axvline(0.0, color="black", linewidth=0.8)
        sign, moved = ("metric − base", "raised") if direction == "min" else (
            "base − metric", "lowered")
        ax.use_sticky_edges = False  # bars stick to 0, which would cancel the margin there
        ax.margins(x=0.15)  # room for the "early stopped" / "failed" notes
        # Title and x label are centred on the figure: the axes may be narrow beside long labels.
        figure.supxlabel(
            f"Δ = {sign}\n(> 0: removing it {moved} the metric, so the component helps)",
            fontsize="medium", y=0.1 / figure.get_figheight(), va="bottom")
        shown = f"\n(the {len(bars)} largest effects of {len(bars) + hidden} components)" if hidden else ""
        figure.suptitle(f"Effect of removing each component ({direction}imised metric){shown}",
                        y=1 - 0.1 / figure.get_figheight(), va="top")
    _set_margins(figure, [b[0] for b in bars], title_lines=2 if hidden else 1)
    path = os.fspath(path)
    options = {}
    if path.lower().endswith(".png"):
        # Fast zlib level: the image is written after every run, and level 1 halves the
        # encoding time for a file ~20% larger.
        options["pil_kwargs"] = {"compress_level": 1}
    figure.savefig(path, dpi=DPI, **options)
    return path


def _set_margins(figure, labels: list[str], title_lines: int) -> None:
    """Leaves room for the tick labels, x label and title from font metrics.

    ``tight_layout`` would find the same margins by drawing the whole figure once more (a
    third of the plot's cost); only the widest label needs measuring.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(1, 1, DPI)  # only its font metrics are used
    font = FontProperties(size="medium")
    label_width = max(
        (renderer.get_text_width_height_descent(label, font, ismath=False)[0] for label in labels),
        default=0.0,
    ) / DPI
    width, height = figure.get_size_inches()
    left = min(0.5 * width, label_width + 0.35)
    figure.subplots_adjust(
        left=left / width,
        right=1 - 0.25 / width,
        bottom=0.95 / height,  # tick labels and the two-line x label
        top=1 - (0.2 + 0.25 * title_lines) / height,
    )


def _keep_largest(bars: list, limit: int) -> int:
    """Keeps (in place, order preserved) the ``limit`` bars with the largest |delta|; returns how many were dropped."""
    if len(bars) <= limit:
        return 0
    size = [abs(b[1]) if math.isfinite(b[1]) else -1.0 for b in bars]
    keep = set(sorted(range(len(bars)), key=lambda i: size[i], reverse=True)[:limit])
    bars[:] = [b for i, b in enumerate(bars) if i in keep]
    return len(size) - limit


def _bars(result) -> list[tuple[str, float, float, float, str, str | None]]:
    """(label, delta, ci_low, ci_high, status, note) per component, sorted for a bottom-up barh.

    ``note`` is set for components that get no bar: failed, or no finite delta.
    """
    components = result.get("components")
    if components is None:
        components = components_table(result)
    partial = _groups_from_frame(result["trials"])
    bars = []
    for row in components.itertuples(index=False):
        value = _float(row.mean_delta)
        if row.status == EARLY_STOPPED:
            deltas = [d for d, _ in partial.get(row.component, []) if math.isfinite(d)]
            value = statistics.fmean(deltas) if deltas else math.nan
        note = None
        if row.status == FAILED:
            note = "failed"
        elif math.isnan(value):
            note = "no delta (no metric to compare)"
        elif math.isinf(value):
            note = f"delta {value:+}"
        bars.append((row.component, value, _float(row.ci_low), _float(row.ci_high), row.status,
                     note))
    # Components without a bar at the bottom, the rest by delta with the largest effect on top.
    return sorted(bars, key=lambda b: (b[5] is None, b[1] if b[5] is None else 0.0))


def show_plot(path: str | os.PathLike) -> bool:
    """Display an image inline when running under IPython/Jupyter; do nothing otherwise.

    Args:
        path: the image file.

    Returns:
        True if it was displayed.

    Example:
        >>> show_plot("effects.png")  # outside IPython
        False
    """
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:
        return False
    if get_ipython() is None:
        return False
    display(Image(filename=os.fspath(path)))
    return True


