"""Paired statistics and verdicts: against scipy and hand-computed values, every verdict,
the looks of adaptive repeats and their bound on false positives."""

import math
import random

import pytest
from scipy import stats as sps

from maggy.statistics import (
    Verdict,
    holm,
    judge,
    look_alpha,
    paired_deltas,
    paired_stats,
    sequential_verdicts,
    undetermined,
    verdict,
)

DELTAS = [0.12, 0.31, -0.05, 0.22, 0.18, 0.09, 0.27]


def test_paired_stats_match_scipy():
    s = paired_stats(DELTAS)
    t = sps.ttest_1samp(DELTAS, 0.0)
    # Rule: p_value is scipy's two-sided one-sample t-test of the paired differences.
    assert s.p_value == pytest.approx(t.pvalue, rel=1e-12)
    ci = t.confidence_interval(0.95)
    assert (s.ci_low, s.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert s.std == pytest.approx(sps.tstd(DELTAS))
    assert s.effect_size == pytest.approx(s.mean_delta / s.std)
    # Rule: the signed-rank test from 6 differences on.
    assert s.p_wilcoxon == pytest.approx(sps.wilcoxon(DELTAS).pvalue)
    assert math.isnan(paired_stats(DELTAS[:5]).p_wilcoxon)


def test_paired_stats_by_hand():
    # mean 0.2, sd 0.1, t = 0.2 / (0.1 / sqrt 3) = 3.4641, df 2: p = 0.07418, half width
    # t(0.975, 2) * 0.1 / sqrt 3 = 4.302653 * 0.0577350 = 0.248414.
    s = paired_stats([0.2, 0.3, 0.1])
    assert s.p_value == pytest.approx(0.074180, abs=1e-6)
    assert (s.ci_low, s.ci_high) == pytest.approx((-0.048414, 0.448414), abs=1e-6)
    assert s.effect_size == pytest.approx(2.0)


def test_paired_stats_edge_cases():
    # Rule: no run, one run: NaN where there is nothing to compute.
    assert paired_stats([]).n == 0 and math.isnan(paired_stats([]).mean_delta)
    one = paired_stats([0.4])
    assert one.n == 1 and one.mean_delta == 0.4 and math.isnan(one.p_value) and math.isnan(one.ci_low)
    # Rule: identical differences: a zero-width interval, p 0 (or 1 when they are 0).
    same = paired_stats([0.3, 0.3, 0.3])
    assert (same.ci_low, same.ci_high, same.p_value) == (0.3, 0.3, 0.0)
    assert paired_stats([0.0, 0.0]).p_value == 1.0


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06.
    assert holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert math.isnan(holm([math.nan, 0.02])[0]) and holm([math.nan, 0.02])[1] == pytest.approx(0.02)
    assert holm([]) == []


@pytest.mark.parametrize(
    "deltas, p_adjusted, min_effect, stopped, expected, reason",
    [
        ([0.5, 0.6, 0.4], 0.01, None, 0, Verdict.NEEDED, "removing it makes the metric worse"),
        ([-0.5, -0.6, -0.4], 0.01, None, 0, Verdict.HARMFUL, "removing it makes the metric better"),
        ([0.01, -0.01, 0.0], 0.9, 0.05, 0, Verdict.NEGLIGIBLE, "interval within ±0.05"),
        ([0.3, -0.2, 0.1], 0.6, None, 0, Verdict.UNDETERMINED, "interval crosses 0"),
        ([0.3, -0.2, 0.1], 0.6, 0.05, 0, Verdict.UNDETERMINED, "interval crosses 0, not within ±0.05"),
        ([0.5, 0.6, 0.4], 0.08, None, 0, Verdict.UNDETERMINED, "p_adjusted 0.08 >= 0.05"),
        ([0.7], math.nan, None, 0, Verdict.UNDETERMINED, "1 run: no noise estimate"),
        ([], math.nan, None, 2, Verdict.UNDETERMINED, "no finished run (2 early stopped)"),
        # A significant effect smaller than min_effect is what the user called negligible.
        ([0.010, 0.011, 0.012], 0.001, 0.05, 0, Verdict.NEGLIGIBLE, "interval within ±0.05"),
    ],
)
def test_every_verdict(deltas, p_adjusted, min_effect, stopped, expected, reason):
    got, why = verdict(paired_stats(deltas), p_adjusted, 0.05, min_effect, stopped)
    assert got is expected
    assert reason in why


def test_judge_adjusts_over_all_components():
    deltas = {"a": [0.5, 0.6, 0.4, 0.55], "b": [0.1, -0.1, 0.05, 0.0], "c": [0.2, 0.25, 0.15, 0.22]}
    j = judge(deltas)
    raw = [sps.ttest_1samp(d, 0.0).pvalue for d in deltas.values()]
    # Rule: p_adjusted is Holm over every component of the study.
    assert [j[c].p_adjusted for c in deltas] == pytest.approx(holm(raw))
    # Rule: a look at level alpha / 8 multiplies them by 8 (capped at 1).
    j8 = judge(deltas, looks=8)
    assert [j8[c].p_adjusted for c in deltas] == pytest.approx([min(1.0, 8 * p) for p in holm(raw)])
    assert j["a"].verdict is Verdict.NEEDED and j["b"].verdict is Verdict.UNDETERMINED


def test_sequential_verdicts_settle_and_freeze():
    deltas = {"a": {0: 2.1, 1: 1.9, 2: 2.0, 3: 2.05, 4: 2.0}, "b": {0: 0.5, 1: 0.0, 2: 0.3, 3: 0.45, 4: 0.1}}
    # Before min_repeats: nothing judged yet.
    early = sequential_verdicts(deltas, completed=2, min_repeats=3, max_repeats=5)
    assert all(j.verdict is Verdict.UNDETERMINED and "waiting for 3 repeats" in j.reason for j in early.values())
    v = sequential_verdicts(deltas, completed=5, min_repeats=3, max_repeats=5)
    # Rule: "a" is settled at the first look, on its first 3 differences, and stays so.
    assert (v["a"].verdict, v["a"].look, v["a"].stats.n) == (Verdict.NEEDED, 3, 3)
    assert v["b"].verdict is Verdict.UNDETERMINED and v["b"].look == 5
    assert undetermined(v, 5, 5) == [] and undetermined(v, 4, 5) == ["b"]


def test_a_component_that_cannot_be_settled_by_max_repeats_is_given_up():
    noise = {r: (-1) ** r * 0.2 for r in range(5)}  # no effect, and no min_effect to call it negligible
    trend = {0: 0.5, 1: 0.1, 2: 0.3, 3: 0.45, 4: 0.2}  # an effect that may still show
    v = sequential_verdicts({"noise": noise, "trend": trend}, completed=3, min_repeats=3, max_repeats=5)
    # Rule: given up at the first look: undetermined, says why, and gets no more repeats;
    # the component that could still be settled does.
    assert (v["noise"].verdict, v["noise"].look, v["noise"].final) == (Verdict.UNDETERMINED, 3, True)
    assert "given up after 3 repeats" in v["noise"].reason
    assert undetermined(v, 3, 5) == ["trend"]
    # Rule: with min_effect, a component whose interval can still shrink inside it is kept.
    v = sequential_verdicts({"noise": noise}, completed=3, min_repeats=3, max_repeats=5, min_effect=0.4)
    assert undetermined(v, 3, 5) == ["noise"]
    # Rule: alpha is spent over the looks in proportion to k**2, and adds up to alpha.
    assert [look_alpha(k, 3, 5) for k in (3, 4, 5)] == pytest.approx([0.05 * 9 / 50, 0.05 * 16 / 50, 0.05 * 25 / 50])


def test_paired_deltas_pair_by_repeat_and_leave_out_stopped_runs():
    records = [
        {"index": 0, "repeat": 0, "status": "finished", "metric": 0.8},
        {"index": 0, "repeat": 1, "status": "finished", "metric": 0.9},
        {"index": 1, "repeat": 0, "status": "finished", "metric": 0.7},
        {"index": 1, "repeat": 1, "status": "early_stopped", "metric": 0.1},
        {"index": 2, "repeat": 1, "status": "failed", "metric": None},
    ]
    deltas, stopped = paired_deltas(records, "max")
    # Rule: delta > 0 means worse than the base trial of the same repeat.
    assert deltas[1] == {0: pytest.approx(0.1)}
    assert stopped == {1: [1], 2: []} and deltas[2] == {}


def _simulate(rng, effects, min_repeats=3, max_repeats=10, noise=1.0):
    """One adaptive study of simulated paired differences; returns verdicts and trials."""
    deltas = {c: {} for c in effects}
    trials = 0
    todo = list(effects)
    for repeat in range(max_repeats):
        for c in todo:
            deltas[c][repeat] = effects[c] + rng.gauss(0.0, noise)
        trials += 1 + len(todo)
        if repeat + 1 >= min_repeats:
            v = sequential_verdicts(deltas, repeat + 1, min_repeats, max_repeats, wilcoxon=False)
            todo = undetermined(v, repeat + 1, max_repeats)
            if not todo:
                break
    return v, trials


def test_adaptive_looks_keep_false_positives_below_alpha():
    # 4 components with no effect, 100 simulated studies: alpha spent over the looks keeps
    # the share of studies with any false "needed"/"harmful" near or below 5%.
    rng = random.Random(7)
    false = 0
    for _ in range(100):
        v, _ = _simulate(rng, {c: 0.0 for c in "abcd"})
        false += any(j.verdict in (Verdict.NEEDED, Verdict.HARMFUL) for j in v.values())
    assert false <= 9
