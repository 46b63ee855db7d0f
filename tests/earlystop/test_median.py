"""The median stopping rule, its maths, and the policy factory."""

import math

import pytest

from maggy.earlystop import (
    DEFAULT_MIN_FINISHED,
    AbstractEarlyStop,
    Decision,
    MedianEarlyStop,
    MedianStoppingRule,
    NoEarlyStop,
    make_policy,
)
from maggy.earlystop.median import (
    _best_so_far,
    _is_worse,
    _median,
)

NAN = math.nan
INF = math.inf
CONTINUE, STOP = Decision.CONTINUE, Decision.STOP

# Three finished "min" trials; running averages over the first 2 steps: 0.95, 1.05, 1.15
# -> median 1.05; over 1 step: 1.0, 1.1, 1.2 -> median 1.1.
FINISHED = [[1.0, 0.9, 0.8], [1.1, 1.0, 0.9], [1.2, 1.1, 1.0]]


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", None, True])
def test_min_finished_must_be_positive_int(bad):
    with pytest.raises(ValueError, match=r"min_finished must be an int >= 1.*got"):
        MedianStoppingRule(min_finished=bad)


@pytest.mark.parametrize("rule", [MedianStoppingRule(), NoEarlyStop()])
@pytest.mark.parametrize("bad", ["minimize", "MAX", None, ""])
def test_direction_is_checked(rule, bad):
    with pytest.raises(ValueError, match=r"direction must be 'min' or 'max', got"):
        rule.decide([1.0], FINISHED, bad)
    with pytest.raises(ValueError, match="direction"):
        rule.earlystop_check({"t": [1.0]}, FINISHED, bad)


def test_default_and_alias():
    assert MedianStoppingRule().min_finished == DEFAULT_MIN_FINISHED
    assert MedianEarlyStop is MedianStoppingRule
    assert repr(MedianStoppingRule(2)) == "MedianStoppingRule(min_finished=2)"


# --------------------------------------------------------------------------- the rule

CASES = [
    # (id, history, finished, direction, min_finished, expected)
    ("no history yet", [], FINISHED, "min", 3, CONTINUE),
    ("no finished trials", [5.0], [], "min", 1, CONTINUE),
    ("fewer finished than min_finished", [5.0, 5.0], FINISHED[:2], "min", 3, CONTINUE),
    ("worse than median -> stop", [1.2, 1.1], FINISHED, "min", 3, STOP),
    ("better than median -> continue", [1.1, 1.0], FINISHED, "min", 3, CONTINUE),
    ("equal to median is not worse", [1.05, 1.05], FINISHED, "min", 3, CONTINUE),
    ("best so far counts, not the last value", [1.0, 1.3], FINISHED, "min", 3, CONTINUE),
    ("step 1 compares first values", [1.15], FINISHED, "min", 3, STOP),
    # Finished trials shorter than the running trial do not count.
    ("finished shorter than s do not count", [9.0, 9.0, 9.0, 9.0], FINISHED, "min", 1, CONTINUE),
    ("only long-enough finished count", [9.0, 9.0, 9.0], FINISHED[:1] + [[1.0, 1.0]], "min", 2,
     CONTINUE),
    ("one long-enough trial meets min_finished=1", [9.0, 9.0, 9.0], [[1.0, 1.0, 1.0], [1.0]],
     "min", 1, STOP),
    # max: running averages over 2 steps 0.55, 0.65, 0.75 -> median 0.65.
    ("max: worse (lower) than median -> stop", [0.5, 0.6],
     [[0.5, 0.6], [0.6, 0.7], [0.7, 0.8]], "max", 3, STOP),
    ("max: better (higher) than median -> continue", [0.6, 0.7],
     [[0.5, 0.6], [0.6, 0.7], [0.7, 0.8]], "max", 3, CONTINUE),
]


@pytest.mark.parametrize(
    "history, finished, direction, min_finished, expected",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(history, finished, direction, min_finished, expected):
    assert MedianStoppingRule(min_finished).decide(history, finished, direction) is expected


NAN_CASES = [
    # A trial whose own values are all NaN is not stopped by this rule.
    ("own values all NaN -> continue", [NAN, NAN], FINISHED, "min", 3, CONTINUE),
    # NaN in the trial's history is ignored in best-so-far: best is 1.2 -> stop.
    ("NaN ignored in best so far", [NAN, 1.2], FINISHED, "min", 3, STOP),
    ("NaN ignored in best so far (better)", [1.0, NAN], FINISHED, "min", 3, CONTINUE),
    # A finished trial whose first s values are all NaN does not count towards min_finished.
    ("all-NaN finished trial does not count", [9.0, 9.0],
     FINISHED[:2] + [[NAN, NAN, 0.1]], "min", 3, CONTINUE),
    # ...but it counts at a step where it has a value.
    ("partly NaN finished trial counts", [9.0, 9.0, 9.0],
     FINISHED[:2] + [[NAN, NAN, 0.1]], "min", 3, STOP),
    # NaN in finished histories is skipped in their running average, so the rule still
    # works for the other trials: averages 0.95, 1.05, 1.1 -> median 1.05.
    ("NaN in finished averages ignored", [1.2, 1.2],
     FINISHED[:2] + [[NAN, 1.1]], "min", 3, STOP),
    # A diverged trial (inf loss) is stopped once a finite median exists.
    ("inf loss is worse", [INF, INF], FINISHED, "min", 3, STOP),
    ("-inf accuracy is worse", [-INF], [[0.5], [0.6], [0.7]], "max", 3, STOP),
    ("-inf loss is the best possible", [-INF], FINISHED, "min", 3, CONTINUE),
    # Finished trials that diverged push the median up, they do not stop good trials.
    ("diverged finished trials", [1.0], [[INF], [INF], [1.0]], "min", 3, CONTINUE),
    ("inf vs inf median is not worse", [INF], [[INF], [INF], [1.0]], "min", 3, CONTINUE),
    # inf and -inf in one average is undefined: that trial does not count.
    ("inf and -inf average undefined", [9.0, 9.0],
     FINISHED[:2] + [[INF, -INF]], "min", 3, CONTINUE),
    ("None reads as NaN", [None, None], FINISHED, "min", 3, CONTINUE),
]


@pytest.mark.parametrize(
    "history, finished, direction, min_finished, expected",
    [c[1:] for c in NAN_CASES],
    ids=[c[0] for c in NAN_CASES],
)
def test_decide_non_finite(history, finished, direction, min_finished, expected):
    assert MedianStoppingRule(min_finished).decide(history, finished, direction) is expected


def test_nan_trial_does_not_disable_rule_for_others():
    # One trial reports only NaN: it continues, and a bad trial is still stopped.
    rule = MedianStoppingRule(3)
    to_check = {"nan": [NAN, NAN], "bad": [2.0, 1.9], "good": [0.9, 0.8]}
    assert rule.earlystop_check(to_check, FINISHED, "min") == ["bad"]


def test_earlystop_check_returns_ids_in_order():
    to_check = {"b": [5.0], "a": [0.1], "c": [5.0]}
    assert MedianStoppingRule(3).earlystop_check(to_check, FINISHED, "min") == ["b", "c"]
    assert NoEarlyStop().earlystop_check(to_check, FINISHED, "min") == []


# --------------------------------------------------------------------------- the maths


@pytest.mark.parametrize(
    "values, steps, expected",
    [
        ([1.0, 2.0, 3.0, 4.0], 2, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 4, 2.5),
        ([1.0, NAN, 3.0], 3, 2.0),  # NaN skipped, not counted as a step's value
        ([1.0, INF], 2, INF),
    ],
)
def test_the_reference_is_the_finished_trials_running_average(values, steps, expected):
    # One finished trial: the median of its running average over `steps` is that average,
    # so a running "min" trial whose best is just above it stops, and one at it continues.
    rule = MedianStoppingRule(min_finished=1)
    above = expected + 0.01 if not math.isinf(expected) else expected
    assert rule.decide([expected] * steps, [values], "min") is CONTINUE
    assert rule.decide([above] * steps, [values], "min") is (CONTINUE if math.isinf(expected) else STOP)


@pytest.mark.parametrize("values", [[NAN, NAN, 3.0], [INF, -INF]])
def test_an_undefined_running_average_does_not_count(values):
    # All NaN over the steps, or inf and -inf together: no average, so no reference trial.
    assert MedianStoppingRule(min_finished=1).decide([1e9, 1e9], [values], "min") is CONTINUE


def test_trials_too_short_or_without_an_average_are_left_out():
    finished = [[1.0, 3.0], [NAN, NAN], [5.0], [2.0, NAN, 7.0]]
    # [5.0] is too short for 2 steps and [NaN, NaN] has no average: two references remain,
    # with averages 2.0 and 2.0, so three are too few and a best of 2.5 is worse than 2.0.
    assert MedianStoppingRule(min_finished=3).decide([2.5, 2.5], finished, "min") is CONTINUE
    assert MedianStoppingRule(min_finished=2).decide([2.5, 2.5], finished, "min") is STOP
    assert MedianStoppingRule(min_finished=2).decide([2.0, 2.0], finished, "min") is CONTINUE


@pytest.mark.parametrize(
    "values, expected",
    [([3.0, 1.0, 2.0], 2.0), ([4.0, 1.0, 2.0, 3.0], 2.5), ([INF, 1.0, INF], INF)],
)
def test_median(values, expected):
    assert _median(values) == expected


def test_median_undefined_is_nan():
    assert math.isnan(_median([-INF, INF]))


@pytest.mark.parametrize(
    "values, direction, expected",
    [([3.0, 1.0, 2.0], "min", 1.0), ([3.0, 1.0, 2.0], "max", 3.0), ([NAN, 2.0], "min", 2.0)],
)
def test_best_so_far(values, direction, expected):
    assert _best_so_far(values, direction) == expected


def test_best_so_far_all_nan():
    assert math.isnan(_best_so_far([NAN, NAN], "max"))


@pytest.mark.parametrize(
    "value, reference, direction, expected",
    [
        (2.0, 1.0, "min", True),
        (1.0, 1.0, "min", False),  # strictly worse only
        (1.0, 2.0, "max", True),
        (2.0, NAN, "min", False),  # NaN never stops
        (NAN, 2.0, "max", False),
    ],
)
def test_is_worse(value, reference, direction, expected):
    assert _is_worse(value, reference, direction) is expected


# --------------------------------------------------------------------------- factory


class _Custom(AbstractEarlyStop):
    def decide(self, history, finished, direction):
        return STOP


class _WithMin(MedianStoppingRule):
    pass


def test_make_policy_names_instances_and_classes():
    assert make_policy("median", 5).min_finished == 5
    assert make_policy("Median").min_finished == DEFAULT_MIN_FINISHED
    assert isinstance(make_policy("none"), NoEarlyStop)
    rule = MedianStoppingRule(2)
    assert make_policy(rule, 7) is rule  # an instance is used as is
    assert isinstance(make_policy(_Custom), _Custom)
    assert make_policy(_WithMin, 4).min_finished == 4


@pytest.mark.parametrize("bad", ["mean", None, 3, object(), AbstractEarlyStop, int])
def test_make_policy_rejects_others(bad):
    with pytest.raises(ValueError, match=r"es_policy .*(\['base', 'median', 'none'\]|abstract)"):
        make_policy(bad)


def test_make_policy_checks_es_min():
    with pytest.raises(ValueError, match="min_finished"):
        make_policy("median", 0)


def test_decisions_on_growing_histories_match_fresh_ones():
    # The driver hands the rule the same finished lists and one growing list per running
    # trial on every call; what the rule remembers between calls must not change a decision.
    import random

    rng = random.Random(7)

    def value():
        r = rng.random()
        return NAN if r < 0.05 else INF if r < 0.07 else -INF if r < 0.08 else rng.uniform(0.0, 2.0)

    finished = [[value() for _ in range(rng.randint(1, 60))] for _ in range(6)]
    for direction in ("min", "max"):
        remembering = MedianStoppingRule(2)
        running = [[], [], []]
        for _ in range(60):
            for history in running:
                history.append(value())
                fresh = MedianStoppingRule(2).decide(list(history), [list(h) for h in finished], direction)
                assert remembering.decide(history, finished, direction) is fresh
        finished.append(running[0])  # a trial finishing mid-run joins the reference set
        assert remembering.decide(running[1], finished, direction) is MedianStoppingRule(2).decide(
            list(running[1]), [list(h) for h in finished], direction)
