"""Paired statistics and a verdict per component: plain numbers in, plain data out.

A component's *paired differences* are its deltas against the base trial of the same repeat
(same seed), so the seed's share of the noise cancels. From them:

* ``p_value``: two-sided one-sample (paired) t-test of the mean difference against 0
  (``scipy.stats.ttest_1samp``); ``p_wilcoxon``: the signed-rank test, from 6 differences on.
* ``p_adjusted``: Holm's step-down adjustment over every component of the study, times the
  number of looks when repeats adapt (below).
* ``effect_size``: mean difference / standard deviation of the differences (Cohen's d_z).
* ``verdict``: :class:`Verdict`, with a reason in plain words (:func:`verdict`).

Adaptive repeats (``repeats="auto"``) look at the data after every repeat from
``min_repeats`` to ``max_repeats`` and stop running a component once it has a verdict. Looking
many times and stopping on a "significant" result inflates false positives; maggy bounds it by
*spending* ``alpha`` over the looks: look ``k`` (``k`` repeats) tests at
``alpha * k**2 / sum(j**2 for every look j)`` (:func:`look_alpha`), so the levels of all looks
add up to ``alpha`` and, by the union bound, the chance of any false "needed"/"harmful" call
over the whole study is at most ``alpha`` (Holm bounds it over components within a look).
Weighting by ``k**2`` keeps most of ``alpha`` for the later looks, where a t-test has the
power to use it (an even split lost 10 points of power for 2-sd effects in
benchmarks/verdicts.py, with no fewer trials). :func:`sequential_verdicts` replays the looks
from the records, so the ablator deciding what to run next and the result table reporting
verdicts compute the same thing.

A component can also be given up before ``max_repeats`` (*futility*, :func:`futile`): when
even an optimistic reading of its differences so far (the far end of their one-sided 90%
interval) would not be significant at ``max_repeats`` at the most lenient level it could
still be tested at, and (with ``min_effect``) its interval could not shrink inside
±``min_effect`` by then. It stays ``undetermined``, with that reason, and gets no more trials.
Giving up never makes a call, so it cannot add false positives; it costs power only for
effects too small to show within ``max_repeats``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Optional

from maggy.trial import TrialStatus

__all__ = [
    "Verdict",
    "ComponentStats",
    "Judgement",
    "paired_stats",
    "holm",
    "verdict",
    "judge",
    "look_alpha",
    "futile",
    "FUTILITY_CONFIDENCE",
    "sequential_verdicts",
    "undetermined",
    "paired_deltas",
]

#: Fewest paired differences for which the signed-rank test is reported.
MIN_WILCOXON = 6


class Verdict(str, enum.Enum):
    """What the data say about one component."""

    NEEDED = "needed"  #: removing it makes the metric significantly worse
    HARMFUL = "harmful"  #: removing it makes the metric significantly better
    NEGLIGIBLE = "negligible"  #: its whole interval lies within ±min_effect
    UNDETERMINED = "undetermined"  #: anything else (the reason says why)

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class ComponentStats:
    """Summary of one component's paired differences (NaN where too few to compute)."""

    n: int
    mean_delta: float
    std: float
    ci_low: float
    ci_high: float
    p_value: float
    p_wilcoxon: float
    effect_size: float


@dataclasses.dataclass(frozen=True)
class Judgement:
    """A component's statistics, adjusted p-value, verdict and the look it was reached at."""

    stats: ComponentStats
    p_adjusted: float
    verdict: Verdict
    reason: str
    look: int  # number of repeats the verdict is based on (0: no look yet)
    final: bool = False  # no more repeats can change it: a verdict, or given up as futile


def paired_stats(deltas: Sequence[float], confidence: float = 0.95, wilcoxon: bool = True) -> ComponentStats:
    """Mean, std, Student-t interval, t-test and signed-rank p-values of paired differences.

    The t-test is ``scipy.stats.ttest_1samp``'s, computed through scipy's Student-t
    distribution functions directly (``scipy.special.stdtr``/``stdtrit``: the same numbers,
    a hundred times faster, which the replayed looks of adaptive repeats need).

    Args:
        deltas: the component's finite paired differences (NaNs must be removed first).
        confidence: the interval's coverage.
        wilcoxon: also run the signed-rank test (``scipy.stats.wilcoxon``).

    Returns:
        A :class:`ComponentStats`; ``std``, the interval and ``p_value`` are NaN with fewer
        than 2 differences, ``p_wilcoxon`` with fewer than :data:`MIN_WILCOXON`. Differences
        that are all equal give a zero-width interval and ``p_value`` 0 (1 if they are 0).

    Example:
        >>> s = paired_stats([0.2, 0.3, 0.1])
        >>> round(s.mean_delta, 4), round(s.ci_low, 4), round(s.p_value, 4)
        (0.2, -0.0484, 0.0742)
    """
    from scipy import special

    values = [float(d) for d in deltas]
    n = len(values)
    nan = math.nan
    if n == 0:
        return ComponentStats(0, nan, nan, nan, nan, nan, nan, nan)
    mean = math.fsum(values) / n
    if n == 1:
        return ComponentStats(1, mean, nan, nan, nan, nan, nan, nan)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    p_wilcoxon = nan
    if std == 0.0:
        # No spread: the t statistic is infinite (or 0/0); scipy would return NaN.
        p_value = 1.0 if mean == 0.0 else 0.0
        low = high = mean
        effect = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
    else:
        se = std / math.sqrt(n)
        p_value = float(2.0 * special.stdtr(n - 1, -abs(mean / se)))
        half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * se
        low, high = mean - half, mean + half
        effect = mean / std
    if wilcoxon and n >= MIN_WILCOXON and any(v != 0.0 for v in values):
        from scipy import stats

        p_wilcoxon = float(stats.wilcoxon(values).pvalue)
    return ComponentStats(n, mean, std, low, high, p_value, p_wilcoxon, effect)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count).

    Example:
        >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03, float("nan")])]
        [0.03, 0.06, 0.06, nan]
    """
    known = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    m = len(known)
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))  # adjusted p-values never decrease
        out[i] = running
    return out


def verdict(
    stats: ComponentStats,
    p_adjusted: float,
    alpha: float = 0.05,
    min_effect: Optional[float] = None,
    stopped: int = 0,
) -> tuple[Verdict, str]:
    """The verdict on one component and its reason in plain words.

    A ladder: no finished run, one run, negligible (only with ``min_effect``; it wins over a
    significant but smaller-than-``min_effect`` effect, which the user said does not
    matter), needed/harmful (``p_adjusted < alpha``), else undetermined.

    Args:
        stats: the component's :class:`ComponentStats`.
        p_adjusted: its adjusted p-value.
        alpha: significance level.
        min_effect: effects within ±this are negligible; ``None``: never negligible.
        stopped: its early-stopped runs (left out of the statistics), for the reason.

    Example:
        >>> verdict(paired_stats([0.5, 0.6, 0.4]), 0.01)
        (<Verdict.NEEDED: 'needed'>, 'p_adjusted 0.01 < 0.05, removing it makes the metric worse')
        >>> verdict(paired_stats([0.7]), float("nan"))[1]
        '1 run: no noise estimate'
    """
    if stats.n == 0:
        return Verdict.UNDETERMINED, "no finished run" + (f" ({stopped} early stopped)" if stopped else "")
    if stats.n == 1:
        return Verdict.UNDETERMINED, "1 run: no noise estimate"
    inside = min_effect is not None and -min_effect <= stats.ci_low and stats.ci_high <= min_effect
    if inside:
        return Verdict.NEGLIGIBLE, f"interval within ±{min_effect:g}"
    if p_adjusted < alpha and stats.mean_delta != 0.0:
        if stats.mean_delta > 0:
            return Verdict.NEEDED, f"p_adjusted {p_adjusted:.2g} < {alpha:g}, removing it makes the metric worse"
        return Verdict.HARMFUL, f"p_adjusted {p_adjusted:.2g} < {alpha:g}, removing it makes the metric better"
    if stats.ci_low <= 0.0 <= stats.ci_high:
        reason = "interval crosses 0"
    else:
        reason = f"p_adjusted {p_adjusted:.2g} >= {alpha:g}"
    if min_effect is not None:
        reason += f", not within ±{min_effect:g}"
    return Verdict.UNDETERMINED, reason


def judge(
    deltas: Mapping[str, Sequence[float]],
    alpha: float = 0.05,
    min_effect: Optional[float] = None,
    looks: int = 1,
    stopped: Optional[Mapping[str, int]] = None,
) -> dict[str, Judgement]:
    """One look at every component: statistics, Holm over components, verdicts.

    Args:
        deltas: component -> its finite paired differences (early-stopped runs left out).
        alpha: significance level of the whole study.
        min_effect: see :func:`verdict`.
        looks: p-values are multiplied by this after Holm: the number of looks ``alpha`` is
            split evenly over (1: a single look), or ``alpha`` / the level of this look.
        stopped: component -> early-stopped runs, for the reasons.

    Returns:
        component -> :class:`Judgement`, in the order of ``deltas``.

    Example:
        >>> j = judge({"a": [0.5, 0.6, 0.4], "b": [0.1, -0.1, 0.05]})
        >>> j["a"].verdict.value, j["b"].verdict.value, j["b"].reason
        ('needed', 'undetermined', 'interval crosses 0')
    """
    stats = {c: paired_stats(d) for c, d in deltas.items()}
    return _judge_stats(stats, alpha, min_effect, looks, stopped or {}, look=max((s.n for s in stats.values()), default=0))


def _judge_stats(stats, alpha, min_effect, looks, stopped, look) -> dict[str, Judgement]:
    names = list(stats)
    adjusted = holm([stats[c].p_value for c in names])
    out = {}
    for c, p in zip(names, adjusted):
        p = p if math.isnan(p) else min(1.0, p * looks)
        v, reason = verdict(stats[c], p, alpha, min_effect, stopped.get(c, 0))
        out[c] = Judgement(stats[c], p, v, reason, look)
    return out


def look_alpha(look: int, min_repeats: int, max_repeats: int, alpha: float = 0.05) -> float:
    """The share of ``alpha`` spent at the look taken after ``look`` repeats.

    Example:
        >>> round(look_alpha(10, 3, 10), 5), round(sum(look_alpha(k, 3, 10) for k in range(3, 11)), 10)
        (0.01316, 0.05)
    """
    return alpha * look**2 / sum(j * j for j in range(min_repeats, max_repeats + 1))


def sequential_verdicts(
    deltas: Mapping[str, Mapping[int, float]],
    completed: int,
    min_repeats: int,
    max_repeats: int,
    alpha: float = 0.05,
    min_effect: Optional[float] = None,
    stopped: Optional[Mapping[str, Sequence[int]]] = None,
    wilcoxon: bool = True,
) -> dict[str, Judgement]:
    """Replays the looks of adaptive repeats and returns each component's verdict.

    At look ``k`` (``min_repeats <= k <= min(completed, max_repeats)``) every component not
    yet settled is judged on its differences from repeats ``< k``, at :func:`look_alpha`
    (Holm over all components, settled ones with their frozen p-values; ``p_adjusted`` is
    the Holm p-value times ``alpha / look_alpha``, so it compares with ``alpha``); a component whose
    verdict is not ``undetermined`` is settled there and gets no more trials. Before the
    first look every component is undetermined with the reason "waiting for N repeats".

    Args:
        deltas: component -> {repeat: paired difference} over its finished runs.
        completed: repeats whose every trial has a record (the looks that can be taken).
        min_repeats: repeats before the first look.
        max_repeats: the last look.
        alpha: significance level of the whole study.
        min_effect: see :func:`verdict`.
        stopped: component -> repeats in which its trial was early stopped.
        wilcoxon: report the signed-rank test too (the decision does not use it).

    Returns:
        component -> :class:`Judgement` (``look`` is the look it was settled at, or the last
        look taken).

    Example:
        >>> d = {"a": {0: 2.1, 1: 1.9, 2: 2.0, 3: 2.05}, "b": {0: 0.3, 1: -0.2, 2: 0.1, 3: -0.1}}
        >>> v = sequential_verdicts(d, completed=4, min_repeats=3, max_repeats=5)
        >>> (v["a"].verdict.value, v["a"].look), (v["b"].verdict.value, v["b"].look, v["b"].final)
        (('needed', 3), ('undetermined', 3, True))
        >>> v["b"].reason.split("; ")[1]  # noise around 0: no verdict can come by 5 repeats
        'given up after 3 repeats: even an optimistic reading would give no verdict by 5'
    """
    stopped = stopped or {}
    settled: dict[str, Judgement] = {}
    current: dict[str, Judgement] = {}
    last = min(completed, max_repeats)
    for k in range(min_repeats, last + 1):
        stats = {
            c: settled[c].stats if c in settled
            else paired_stats([d for r, d in sorted(by_repeat.items()) if r < k], wilcoxon=False)
            for c, by_repeat in deltas.items()
        }
        counts = {c: sum(1 for r in stopped.get(c, ()) if r < k) for c in deltas}
        spend = alpha / look_alpha(k, min_repeats, max_repeats, alpha)
        current = _judge_stats(stats, alpha, min_effect, spend, counts, look=k)
        # The most lenient level a component still open can be tested at, at the last look.
        called = sum(1 for j in current.values() if j.verdict in (Verdict.NEEDED, Verdict.HARMFUL))
        last_level = look_alpha(max_repeats, min_repeats, max_repeats, alpha) / max(1, len(current) - called)
        for c, j in current.items():
            if c in settled:
                current[c] = settled[c]
            elif j.verdict is not Verdict.UNDETERMINED:
                settled[c] = current[c] = dataclasses.replace(j, final=True)
            elif k < max_repeats and futile(j.stats, max_repeats, last_level, min_effect):
                reason = (f"{j.reason}; given up after {k} repeats: even an optimistic reading would "
                          f"give no verdict by {max_repeats}")
                settled[c] = current[c] = dataclasses.replace(j, reason=reason, final=True)
    if current and wilcoxon:  # the signed-rank test only for what is reported
        current = {
            c: dataclasses.replace(j, stats=paired_stats([d for r, d in sorted(deltas[c].items()) if r < j.look]))
            for c, j in current.items()
        }
    elif not current:
        waiting = f"waiting for {min_repeats} repeats"
        current = {
            c: Judgement(paired_stats(list(d.values())), math.nan, Verdict.UNDETERMINED, waiting, 0)
            for c, d in deltas.items()
        }
    return current


#: One-sided coverage of the optimistic reading :func:`futile` projects to ``max_repeats``.
FUTILITY_CONFIDENCE = 0.9


def futile(stats: ComponentStats, max_repeats: int, level: float, min_effect: Optional[float] = None) -> bool:
    """Whether more repeats, up to ``max_repeats``, could not give this component a verdict.

    Optimistic: the mean difference is taken at the far end of its one-sided
    :data:`FUTILITY_CONFIDENCE` interval and the spread as observed; if even then the t-test
    with ``max_repeats`` differences would not reach ``level`` (two-sided), no "needed" or
    "harmful" call can come. With ``min_effect``, the 95% interval at ``max_repeats`` around
    the observed mean must also be unable to fit inside ±``min_effect`` ("negligible").

    Example:
        >>> futile(paired_stats([0.1, -0.2, 0.05, -0.1]), 10, 0.002)  # noise around 0
        True
        >>> futile(paired_stats([0.5, 0.9, 0.3, 0.7]), 10, 0.002)     # an effect on the way
        False
    """
    from scipy import special

    n = stats.n
    if n < 2 or not stats.std > 0 or n >= max_repeats:
        return False
    se = stats.std / math.sqrt(n)
    optimistic = abs(stats.mean_delta) + float(special.stdtrit(n - 1, FUTILITY_CONFIDENCE)) * se
    if optimistic / stats.std * math.sqrt(max_repeats) >= float(special.stdtrit(max_repeats - 1, 1 - level / 2)):
        return False
    if min_effect is not None:
        half = float(special.stdtrit(max_repeats - 1, 0.975)) * stats.std / math.sqrt(max_repeats)
        if abs(stats.mean_delta) + half <= min_effect:
            return False
    return True


def undetermined(verdicts: Mapping[str, Judgement], completed: int, max_repeats: int) -> list[str]:
    """The components that need another repeat: still undetermined, not given up, and repeats remain.

    Example:
        >>> v = sequential_verdicts({"a": {0: 2.1, 1: 1.9, 2: 2.0}, "b": {0: 0.5, 1: 0.1, 2: 0.3}}, 3, 3, 5)
        >>> undetermined(v, 3, 5)
        ['b']
        >>> undetermined(v, 5, 5)
        []
    """
    if completed >= max_repeats:
        return []
    return [c for c, j in verdicts.items() if j.verdict is Verdict.UNDETERMINED and not j.final]


def paired_deltas(
    records: Sequence[Mapping], direction: str
) -> tuple[dict[int, dict[int, float]], dict[int, list[int]]]:
    """Each component trial's paired difference with the base trial, from trial records.

    The base trial is ``index`` 0; a run of repeat ``r`` is paired with the base run of
    repeat ``r`` (the mean of the base runs when that one has no metric, as the result
    table does). Only finished runs with a metric count; early-stopped runs are listed apart.
    A record journaled twice (same index and repeat) counts once, the last one wins.

    Args:
        records: trial records (``index``, ``repeat``, ``status``, ``metric``).
        direction: ``"min"`` or ``"max"``; ``delta > 0`` means the run did worse than base.

    Returns:
        ``(deltas, stopped)``: component index -> {repeat: delta}, and component index ->
        repeats whose run was early stopped.

    Example:
        >>> recs = [{"index": 0, "repeat": 0, "status": "finished", "metric": 1.0},
        ...         {"index": 1, "repeat": 0, "status": "finished", "metric": 1.5},
        ...         {"index": 2, "repeat": 0, "status": "early_stopped", "metric": 3.0}]
        >>> paired_deltas(recs, "min")
        ({1: {0: 0.5}, 2: {}}, {1: [], 2: [0]})
    """
    latest = {(int(r.get("index") or 0), int(r.get("repeat") or 0)): r for r in records}
    base = {
        repeat: float(r["metric"]) for (index, repeat), r in latest.items()
        if index == 0 and r.get("status") != TrialStatus.FAILED and _finite(r.get("metric"))
    }
    base_mean = math.fsum(base.values()) / len(base) if base else math.nan
    deltas: dict[int, dict[int, float]] = {}
    stopped: dict[int, list[int]] = {}
    for (index, repeat), r in sorted(latest.items()):
        if index == 0:
            continue
        deltas.setdefault(index, {})
        stopped.setdefault(index, [])
        if r.get("status") == TrialStatus.EARLY_STOPPED:
            stopped[index].append(repeat)
        elif r.get("status") == TrialStatus.FINISHED and _finite(r.get("metric")):
            delta = float(r["metric"]) - base.get(repeat, base_mean)
            if not math.isnan(delta):
                deltas[index][repeat] = delta if direction == "min" else -delta
    return deltas, stopped


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
