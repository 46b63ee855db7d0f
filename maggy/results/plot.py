"""The plot of each removed component's effect against the base trial."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

from maggy.results.image import DPI, save_figure
from maggy.results.plot_interactions import plot_loco_and_shapley
from maggy.results.table import components_table, _float, _groups_from_frame
from maggy.trial import TrialStatus


#: Most bars one plot draws: beyond that a plot is unreadable and costs seconds to render.
MAX_BARS = 40

def plot_effects(result: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Draw each removed component's effect against the base trial as a horizontal bar chart.

    Bars are sorted by delta, biggest at the top (at most :data:`MAX_BARS`: the largest
    effects, the title says how many were left out). Components with repeats are coloured by
    verdict (:data:`VERDICT_COLOURS`, the verdict written beside the bar) with their 95%
    interval as error bars; single runs are dashed outlines marked "1 run, no noise estimate"
    (said once in the title when every bar is one), not drawn like measured effects.
    Early-stopped components are hatched (their delta is from partial training; one stopped
    for trailing the base trial shows its delta at the stop, marked "at least this"), failed
    ones are grey with the word "failed". Uses ``matplotlib.figure.Figure`` directly, so it
    neither needs nor changes pyplot's backend (Jupyter inline keeps working).
    Under the Shapley policy (``components`` has a ``shapley`` column) it draws each
    component's LOCO delta beside its Shapley value instead (:func:`plot_loco_and_shapley`).

    Args:
        result: a result from :func:`build_result`.
        path: the image file to write (format from its extension, e.g. ``effects.png``).

    Returns:
        ``path`` as a string.

    Example:
        >>> import tempfile, os
        >>> from maggy.results import build_result
        >>> records = [{"trial_id": "t0", "index": 0, "metric": 0.60},
        ...            {"trial_id": "t1", "index": 1, "ablated_feature": "age", "metric": 0.70}]
        >>> out = plot_effects(build_result(records, "min", 1.0),
        ...                    os.path.join(tempfile.mkdtemp(), "effects.png"))
        >>> os.path.getsize(out) > 0
        True
    """
    components = result.get("components")
    if components is not None and "shapley" in components.columns:
        return plot_loco_and_shapley(result, path)  # the Shapley policy: LOCO delta beside Shapley value
    from matplotlib.figure import Figure

    direction = result.get("direction", "min")
    bars = _bars(result)
    hidden = _keep_largest(bars, MAX_BARS)
    # When every measured bar is a single run, the title says so once instead of each bar.
    measured = [b for b in bars if b.note is None and b.status != TrialStatus.EARLY_STOPPED]
    single_only = bool(measured) and all(b.single for b in measured)
    figure = Figure(figsize=(8, max(2.5, 1.5 + 0.45 * len(bars))), dpi=DPI)
    ax = figure.subplots()
    metrics = _TextMetrics()
    _set_margins(figure, metrics.widest([b.label for b in bars]), title_lines=1 + bool(hidden) + single_only)
    if bars:
        _draw_bars(ax, bars, metrics, note_singles=not single_only)
        sign, moved = ("metric − base", "raised") if direction == "min" else ("base − metric", "lowered")
        # Title and x label are centred on the figure: the axes may be narrow beside long labels.
        figure.supxlabel(
            f"Δ = {sign}\n(> 0: removing it {moved} the metric, so the component helps)",
            fontsize="medium", y=0.1 / figure.get_figheight(), va="bottom")
        shown = f"\n(the {len(bars)} largest effects of {len(bars) + hidden} components)" if hidden else ""
        if single_only:
            shown += "\nsingle runs (dashed): no noise estimate; repeats=3 or \"auto\" give intervals"
        figure.suptitle(f"Effect of removing each component ({direction}imised metric){shown}",
                        y=1 - 0.1 / figure.get_figheight(), va="top")
    else:
        ax.text(0.5, 0.5, "no component trials to compare with the base trial",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    return save_figure(figure, path)


class _Bar(NamedTuple):
    label: str
    delta: float
    ci_low: float
    ci_high: float
    status: str
    note: Optional[str]  # set for components drawn as a note instead of a bar
    verdict: str = "undetermined"
    single: bool = False  # one run: no noise estimate, drawn as an outline
    lower_bound: bool = False  # stopped for trailing the base trial: the delta at the stop, a lower bound


#: Bar colours by verdict (single runs and early-stopped ones are outlines instead).
VERDICT_COLOURS = {
    "needed": "tab:red",
    "harmful": "tab:blue",
    "negligible": "lightgrey",
    "undetermined": "khaki",
}


#: Font size of the "early stopped" notes beside their bars, points.
_NOTE_SIZE = 8.0


class _TextMetrics:
    """Widths of text in inches, from the font metrics alone (nothing is drawn)."""

    def __init__(self):
        from matplotlib.backends.backend_agg import RendererAgg

        self._renderer = RendererAgg(1, 1, DPI)

    def width(self, text: str, size: Any = "medium") -> float:
        from matplotlib.font_manager import FontProperties

        font = FontProperties(size=size)
        return self._renderer.get_text_width_height_descent(text, font, ismath=False)[0] / DPI

    def widest(self, texts: list[str]) -> float:
        return max((self.width(t) for t in texts), default=0.0)


def _draw_bars(ax, bars: list[_Bar], metrics: _TextMetrics, note_singles: bool = True) -> None:
    """Draws the bars, their intervals, labels and notes, one artist call per kind of mark.

    The component names are text beside the axes rather than y tick labels: a tick is five
    artists, and drawing ~25 of them was a third of the plot's cost.
    """
    import matplotlib.transforms as mtransforms

    rows = list(enumerate(bars))
    plain = [(y, b) for y, b in rows if b.note is None and b.status != TrialStatus.EARLY_STOPPED and not b.single]
    single = [(y, b) for y, b in rows if b.note is None and b.status != TrialStatus.EARLY_STOPPED and b.single]
    stopped = [(y, b) for y, b in rows if b.note is None and b.status == TrialStatus.EARLY_STOPPED]
    # Collections rather than barh: barh adds each bar as a patch and updates the data
    # limits from it, which the explicit limits set below make wasted work.
    if plain:
        ax.add_collection(_bar_collection(plain, edgecolor="black",
                                          facecolor=[VERDICT_COLOURS.get(b.verdict, "white") for _, b in plain]),
                          autolim=False)
    if single:  # not drawn like measured effects: an outline, and a note saying so
        ax.add_collection(_bar_collection(single, facecolor="none", linestyle="--",
                                          edgecolor=["tab:red" if b.delta > 0 else "tab:blue" for _, b in single]),
                          autolim=False)
    if stopped:
        ax.add_collection(_bar_collection(stopped, facecolor="white", edgecolor="tab:grey", hatch="///"),
                          autolim=False)
    with_ci = [(y, b) for y, b in rows if b.note is None and math.isfinite(b.ci_low) and math.isfinite(b.ci_high)]
    if with_ci:
        ax.errorbar([b.delta for _, b in with_ci], [y for y, _ in with_ci], fmt="none", ecolor="black",
                    capsize=4, xerr=[[b.delta - b.ci_low for _, b in with_ci], [b.ci_high - b.delta for _, b in with_ci]])
    notes = [(0.0, y, f"  {b.note}", "left", "medium", "dimgrey") for y, b in rows if b.note is not None]
    for y, b in stopped:  # beside the bar's outer end
        said = "needed: stopped, at least this" if b.lower_bound else "early stopped (partial)"
        text, align = (f"  {said}", "left") if b.delta >= 0 else (f"{said}  ", "right")
        notes.append((b.delta, y, text, align, _NOTE_SIZE, "tab:grey"))
    for y, b in single if note_singles else ():
        text, align = ("  1 run, no noise estimate", "left") if b.delta >= 0 else ("1 run, no noise estimate  ", "right")
        notes.append((b.delta, y, text, align, _NOTE_SIZE, "dimgrey"))
    for y, b in plain:
        text, align = (f"  {b.verdict}", "left") if b.ci_high >= 0 or b.delta >= 0 else (f"{b.verdict}  ", "right")
        end = max(b.delta, b.ci_high) if align == "left" else min(b.delta, b.ci_low)
        notes.append((end if math.isfinite(end) else b.delta, y, text, align, _NOTE_SIZE, "black"))
    for x, y, text, align, size, color in notes:
        ax.text(x, y, text, ha=align, va="center", color=color, fontsize=size)

    label_at = mtransforms.offset_copy(ax.get_yaxis_transform(), fig=ax.figure, x=-4, units="points")
    for y, b in rows:
        ax.text(0, y, b.label, transform=label_at, ha="right", va="center", fontsize="medium")
    ax.set_yticks([])
    ax.set_ylim(-0.5 - 0.6, len(bars) - 0.5 + 0.6)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlim(*_x_limits(bars, [(x, metrics.width(t, s), a) for x, _, t, a, s, _ in notes],
                           axes_width=ax.get_position().width * ax.figure.get_figwidth()))


def _bar_collection(rows: list[tuple[int, _Bar]], **style):
    """One artist holding a horizontal bar (height 0.8, from 0 to the delta) per ``(y, bar)``."""
    from matplotlib.collections import PolyCollection

    boxes = [[(0.0, y - 0.4), (b.delta, y - 0.4), (b.delta, y + 0.4), (0.0, y + 0.4)] for y, b in rows]
    return PolyCollection(boxes, closed=True, linewidth=1.0, **style)


def _x_limits(bars: list[_Bar], notes: list[tuple[float, float, str]], axes_width: float) -> tuple[float, float]:
    """x limits that hold every bar and interval, 0, and each note ``(x, width in inches, side)``."""
    values = [0.0]
    for b in bars:
        values += [v for v in (b.delta, b.ci_low, b.ci_high) if math.isfinite(v)]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    low, high = low - 0.05 * span, high + 0.05 * span
    for _ in range(8):  # each widening changes the data units an inch of text takes
        per_inch = (high - low) / axes_width
        new_low = min([low] + [x - (w + 0.05) * per_inch for x, w, side in notes if side == "right"])
        new_high = max([high] + [x + (w + 0.05) * per_inch for x, w, side in notes if side == "left"])
        if (new_low, new_high) == (low, high):
            break
        low, high = new_low, new_high
    return low, high


def _set_margins(figure, label_width: float, title_lines: int) -> None:
    """Leaves room for the component names, x label and title (``label_width`` in inches).

    ``tight_layout`` would find the same margins by drawing the whole figure once more (a
    third of the plot's cost); only the widest label needs measuring.
    """
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


def _bars(result) -> list[_Bar]:
    """One bar per component, in drawing order from the bottom up.

    ``note`` is set for components that get no bar: failed, or no finite delta.
    """
    components = result.get("components")
    if components is None:
        components = components_table(result)
    partial = _groups_from_frame(result["trials"])
    bars = []
    for row in components.itertuples(index=False):
        value = _float(row.mean_delta)
        lower_bound = bool(getattr(row, "lower_bound", False))  # tables of older runs have no such column
        if row.status == TrialStatus.EARLY_STOPPED and not lower_bound:
            deltas = [d for d, *_ in partial.get(row.component, []) if math.isfinite(d)]
            value = statistics.fmean(deltas) if deltas else math.nan
        note = None
        if row.status == TrialStatus.FAILED:
            note = "failed"
        elif math.isnan(value):
            note = "no delta (no metric to compare)"
        elif math.isinf(value):
            note = f"delta {value:+}"
        verdict = getattr(row, "verdict", None) or "undetermined"
        bars.append(_Bar(row.component, value, _float(row.ci_low), _float(row.ci_high), row.status, note,
                         verdict, int(row.n) < 2, lower_bound))
    # Components without a bar at the bottom, the rest by delta with the largest effect on top.
    return sorted(bars, key=lambda b: (b.note is None, b.delta if b.note is None else 0.0))


def load_matplotlib() -> bool:
    """Readies matplotlib for :func:`plot_effects`: ~0.4 s the first time in a process.

    Imports matplotlib and draws a small study's plot to a temporary file, which loads the
    fonts, the glyphs, the PNG encoder and the drawing code. ``lagom()`` calls this on a background thread while the
    trials run, so the first plot of a process takes no longer than later ones.

    Returns:
        False if matplotlib cannot be imported (the plot will say why), else True.

    Example:
        >>> load_matplotlib()
        True
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    import tempfile

    from maggy.results.table import build_result

    # The real drawing code on a small study: fonts, glyphs of the usual characters at the
    # sizes used, collections and the PNG encoder are all loaded afterwards.
    records = [{"trial_id": "b", "index": 0, "metric": 1.0},
               {"trial_id": "a", "index": 1, "ablated_feature": "abcdefghijklmnopqrstuvwxyz_0123456789", "metric": 1.5},
               {"trial_id": "c", "index": 2, "ablated_layers": [2, 3], "metric": 0.5}]
    with tempfile.TemporaryDirectory(prefix="maggy-warm-") as tmp:
        plot_effects(build_result(records, "min", 0.0), os.path.join(tmp, "effects.png"))
    return True


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


