"""Beyond one component at a time: pair interactions and Shapley values, as pure functions.

Both work on *coalition values*: the delta (sign as everywhere in maggy: > 0 means the trial
did worse than the base trial) of a trial that removes a set of components, per repeat.
The base trial is the empty coalition, with value 0 by definition.

* Pairs: ``interaction = delta(a and b removed) - (delta(a removed) + delta(b removed))``.
  Positive: removing both hurts more than the two removals alone add up to, so each covers
  for the other (*redundant*). Negative: removing either already loses most of what both
  give (*overlapping*).
* Shapley: each component's average marginal delta over orders of removal. The values sum
  to the delta of removing every component (*efficiency*), per repeat and overall.

:func:`add_analysis` adds what a policy's ``analysis()`` asks for to a result from
:func:`~maggy.results.table.build_result`.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import pandas as pd

from maggy import statistics as _stats
from maggy.games import shapley_estimates, shapley_exact, shapley_from_permutations
from maggy.results.table import _float, _frame, _judge_by_repeat
from maggy.trial import TrialStatus

__all__ = [
    "INTERACTION_COLUMNS",
    "SHAPLEY_COLUMNS",
    "coalition_values",
    "interactions_table",
    "shapley_exact",
    "shapley_from_permutations",
    "shapley_table",
    "redundant_pairs",
    "add_analysis",
]


def _interval(values) -> tuple[float, float, float, float]:
    """(mean, sample std, 95% Student-t interval low, high); NaN where ``values`` is too short."""
    s = _stats.paired_stats(values, wilcoxon=False)
    return s.mean_delta, s.std, s.ci_low, s.ci_high


INTERACTION_COLUMNS = [
    "component_a", "component_b", "pair_delta", "sum_of_singles", "interaction",
    "ci_low", "ci_high", "n", "kind",
]
SHAPLEY_COLUMNS = ["shapley", "shapley_ci_low", "shapley_ci_high", "shapley_p_adjusted", "shapley_verdict",
                   "shapley_reason"]

#: An interaction counts as large when it is at least this share of the pair's own scale
#: (the larger of |pair delta| and |delta a| + |delta b|) ...
_RELATIVE = 0.25
#: ... and at least this share of the largest delta in the study (below it: noise).
_FLOOR = 0.1

Values = Mapping[frozenset, Mapping[int, float]]


def coalition_values(trials: pd.DataFrame) -> dict[frozenset, dict[int, float]]:
    """``{coalition: {repeat: delta}}`` from a result's trials table (finished trials only).

    The coalition is the ``removed`` labels as a frozenset; the base trial is the empty set.

    Example:
        >>> from maggy.results import build_result
        >>> records = [{"trial_id": "b", "index": 0, "metric": 1.0, "removed": []},
        ...            {"trial_id": "p", "index": 1, "metric": 1.5, "removed": ["feature a", "feature b"]}]
        >>> coalition_values(build_result(records, "min", 0)["trials"])[frozenset({"feature a", "feature b"})]
        {0: 0.5}
    """
    has_repeat = "repeat" in trials.columns
    values: dict[frozenset, dict[int, float]] = {}
    for row in trials.itertuples(index=False):
        delta = _float(row.delta)
        if row.status != TrialStatus.FINISHED or math.isnan(delta) or not isinstance(row.removed, (list, tuple)):
            continue
        repeat = int(row.repeat) if has_repeat else 0
        values.setdefault(frozenset(row.removed), {})[repeat] = delta
    return values


# --------------------------------------------------------------------------- pairs


def interactions_table(values: Values, components: Sequence[str]) -> pd.DataFrame:
    """One row per pair of ``components`` whose pair trial and both single trials finished.

    Per repeat, ``interaction = pair - (single a + single b)``; the row holds the means over
    the repeats where all three finished (``n``), a Student-t 95% interval of the
    interaction (NaN for ``n < 2``), and ``kind``: ``"redundant"`` (large and positive:
    each covers for the other), ``"overlapping"`` (large and negative: removing either
    already loses what both give) or ``"additive"``. Large means at least a quarter of the
    pair's own scale and a tenth of the largest delta in the study, and, with ``n >= 2``, an
    interval that excludes 0.

    Args:
        values: ``{coalition: {repeat: delta}}`` (see :func:`coalition_values`).
        components: the component labels, in declaration order.

    Example:
        >>> a, b = frozenset({"x1"}), frozenset({"x2"})
        >>> table = interactions_table({a: {0: 0.0}, b: {0: 0.01}, a | b: {0: 1.0}}, ["x1", "x2"])
        >>> round(float(table.loc[0, "interaction"]), 2), table.loc[0, "kind"]
        (0.99, 'redundant')
    """
    study_scale = max((abs(v) for by_repeat in values.values() for v in by_repeat.values()), default=0.0)
    rows = []
    for a, b in itertools.combinations(components, 2):
        single_a, single_b = values.get(frozenset({a}), {}), values.get(frozenset({b}), {})
        pair = values.get(frozenset({a, b}), {})
        repeats = sorted(set(single_a) & set(single_b) & set(pair))
        if not repeats:
            continue
        pairs = [pair[r] for r in repeats]
        sums = [single_a[r] + single_b[r] for r in repeats]
        inter = [p - s for p, s in zip(pairs, sums)]
        mean, _, low, high = _interval(inter)
        pair_mean, sum_mean = statistics.fmean(pairs), statistics.fmean(sums)
        scale = max(abs(pair_mean), statistics.fmean(abs(single_a[r]) + abs(single_b[r]) for r in repeats))
        large = abs(mean) >= max(_RELATIVE * scale, _FLOOR * study_scale) and abs(mean) > 0
        if len(repeats) >= 2:
            large = large and (low > 0 or high < 0)
        kind = "additive" if not large else ("redundant" if mean > 0 else "overlapping")
        rows.append({"component_a": a, "component_b": b, "pair_delta": pair_mean, "sum_of_singles": sum_mean,
                     "interaction": mean, "ci_low": low, "ci_high": high, "n": len(repeats), "kind": kind})
    return _frame(rows, INTERACTION_COLUMNS)


def redundant_pairs(interactions: Optional[pd.DataFrame], kind: str = "redundant") -> list[tuple[str, str]]:
    """The ``(component_a, component_b)`` pairs of an interactions table with that ``kind``."""
    if interactions is None or interactions.empty:
        return []
    rows = interactions[interactions["kind"] == kind]
    return list(zip(rows["component_a"], rows["component_b"]))


# --------------------------------------------------------------------------- Shapley


def shapley_table(values: Values, players: Sequence[str],
                  permutations: Optional[Sequence[Sequence[str]]] = None,
                  options: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
    """Each player's Shapley value with a 95% interval over repeats and sampling, and a verdict.

    Without ``permutations`` the values are exact per repeat, and the interval is over
    repeats. With them (sampled in antithetic pairs: a permutation, then its reverse), each
    pair of permutations in each repeat is one sample, so the interval covers both the
    sampling and the repeats. Intervals are Student-t, NaN with fewer than two samples.
    The means sum to the mean delta of removing every player (efficiency). Each value is
    judged like a component's delta (:mod:`maggy.statistics`), on its per-repeat values
    paired by repeat: ``shapley_p_adjusted`` (Holm over the players), ``shapley_verdict``
    (``needed``: it makes the metric better, so removing it hurts; ``harmful``; ``negligible``;
    ``undetermined``) and ``shapley_reason``.

    Args:
        values: ``{coalition: {repeat: delta}}``; the empty coalition may be absent (it is 0).
        players: the component labels.
        permutations: the sampled orders, antithetic pairs adjacent; ``None`` for exact.
        options: the result's ``statistics`` (``alpha``, ``min_effect``, and
            ``min_repeats``/``max_repeats`` under adaptive repeats).

    Returns:
        A DataFrame with columns ``component`` and :data:`SHAPLEY_COLUMNS`, one row per player.

    Example:
        >>> v = {frozenset("a"): {0: 1.0, 1: 1.2}, frozenset("b"): {0: 1.0, 1: 0.8},
        ...      frozenset("ab"): {0: 4.0, 1: 4.0}}
        >>> shapley_table(v, ["a", "b"])["shapley"].round(3).tolist()
        [2.1, 1.9]
    """
    samples, by_repeat = shapley_estimates(values, players, permutations)
    judged = _judge_by_repeat(by_repeat, options)
    rows = []
    for player in players:
        mean, _, low, high = _interval([s[player] for s in samples])
        j = judged[player]
        rows.append({"component": player, "shapley": mean, "shapley_ci_low": low, "shapley_ci_high": high,
                     "shapley_p_adjusted": j.p_adjusted, "shapley_verdict": j.verdict.value,
                     "shapley_reason": j.reason})
    return _frame(rows, ["component"] + SHAPLEY_COLUMNS)


# --------------------------------------------------------------------------- result


def add_analysis(result: dict[str, Any], analysis: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Adds what a policy's analysis asks for to a result; returns the result.

    ``{"kind": "pairs", "components": [...]}`` adds ``result["interactions"]``;
    ``{"kind": "shapley", "components": [...], "permutations": [...] or None}`` adds the
    :data:`SHAPLEY_COLUMNS` to ``result["components"]``. ``None`` (LOCO) changes nothing.

    Args:
        result: a result from :func:`~maggy.results.table.build_result`.
        analysis: what ``AbstractAblator.analysis()`` returned (plain data, also kept in
            the run's config.json).
    """
    if not analysis:
        return result
    kind, players = analysis.get("kind"), list(analysis.get("components") or [])
    values = coalition_values(result["trials"])
    if kind == "pairs":
        result["interactions"] = interactions_table(values, players)
    elif kind == "shapley":
        table = shapley_table(values, players, analysis.get("permutations"), result.get("statistics"))
        components = result["components"]
        merged = components.merge(table, on="component", how="outer", sort=False)
        # Declaration order, as everywhere else in the result.
        order = {label: i for i, label in enumerate(players)}
        merged = merged.sort_values("component", key=lambda c: c.map(lambda x: order.get(x, len(order))), kind="stable")
        result["components"] = merged.reset_index(drop=True)
    return result
