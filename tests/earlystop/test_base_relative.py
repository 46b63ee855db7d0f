"""The base-relative rule (es_policy="base") and the median rule's warm-up, as plain data."""

import math

import pytest

from maggy.config import AblationConfig
from maggy.ablation import AblationStudy
from maggy.earlystop import BaseRelativeRule, Decision, MedianStoppingRule, make_policy
from maggy.earlystop.base_relative import relative_gap

CONTINUE, STOP = Decision.CONTINUE, Decision.STOP
BASE = [1.0, 0.9, 0.8, 0.7]


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("kwargs, name", [
    ({"margin": -0.1}, "es_margin"), ({"margin": "0.1"}, "es_margin"), ({"margin": math.nan}, "es_margin"),
    ({"patience": 0}, "es_patience"), ({"patience": 1.5}, "es_patience"),
    ({"grace_steps": -1}, "es_grace_steps"), ({"grace_steps": True}, "es_grace_steps"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BaseRelativeRule(**kwargs)


@pytest.mark.parametrize("field, value", [("es_margin", -1), ("es_patience", 0), ("es_grace_steps", -2)])
def test_config_checks_the_new_fields(field, value):
    with pytest.raises(ValueError, match=field):
        AblationConfig(ablation_study=AblationStudy(), **{field: value})


def test_make_policy_builds_the_base_rule_from_config_fields():
    rule = make_policy("base", grace_steps=3, margin=0.1, patience=4)
    assert isinstance(rule, BaseRelativeRule)
    assert (rule.margin, rule.patience, rule.grace_steps) == (0.1, 4, 3)
    assert make_policy("median", 2, grace_steps=5).grace_steps == 5


# --------------------------------------------------------------------------- the gap


@pytest.mark.parametrize("value, base, direction, gap", [
    (1.5, 1.0, "min", 0.5), (0.5, 1.0, "min", -0.5), (0.6, 0.8, "max", 0.25), (-2.0, -1.0, "min", -1.0),
])
def test_relative_gap_is_positive_when_worse_than_the_base(value, base, direction, gap):
    assert relative_gap(value, base, direction) == pytest.approx(gap)


@pytest.mark.parametrize("value, base", [(math.nan, 1.0), (1.0, math.nan), (1.0, 0.0)])
def test_relative_gap_is_undefined_without_a_scale(value, base):
    assert math.isnan(relative_gap(value, base, "min"))


# --------------------------------------------------------------------------- decisions


def test_stops_after_patience_consecutive_trailing_steps():
    rule = BaseRelativeRule(margin=0.25, patience=2)
    # Rule: one trailing step is not enough; two in a row are.
    assert rule.decide([2.0], [], "min", base=BASE) is CONTINUE
    assert rule.decide([2.0, 1.8], [], "min", base=BASE) is STOP


def test_a_recovering_trial_is_not_stopped():
    rule = BaseRelativeRule(margin=0.25, patience=2)
    # Rule: the streak must be the latest reports; a trial back within the margin continues.
    assert rule.decide([2.0, 1.8, 0.95], [], "min", base=BASE) is CONTINUE


def test_trials_within_the_margin_or_better_are_never_stopped():
    rule = BaseRelativeRule(margin=0.25, patience=1)
    assert rule.decide([1.2, 1.1, 0.99, 0.87], [], "min", base=BASE) is CONTINUE  # <= 24% behind
    assert rule.decide([0.5, 0.4], [], "min", base=BASE) is CONTINUE  # ahead of the base


def test_direction_max_compares_the_other_way():
    rule = BaseRelativeRule(margin=0.1, patience=2)
    assert rule.decide([0.5, 0.5], [], "max", base=[0.8, 0.9]) is STOP
    assert rule.decide([0.9, 0.95], [], "max", base=[0.8, 0.9]) is CONTINUE


def test_waits_for_the_base_to_reach_the_step():
    rule = BaseRelativeRule(margin=0.25, patience=2)
    # Rule: reports the base has not made yet cannot be compared: no decision.
    assert rule.decide([2.0, 1.8, 1.6], [], "min", base=[1.0, 0.9]) is CONTINUE
    assert rule.decide([2.0, 1.8], [], "min", base=None) is CONTINUE


def test_grace_steps_delay_the_decision():
    rule = BaseRelativeRule(margin=0.25, patience=1, grace_steps=3)
    assert rule.decide([2.0, 1.8], [], "min", base=BASE) is CONTINUE
    assert rule.decide([2.0, 1.8, 1.6], [], "min", base=BASE) is STOP


def test_nan_breaks_the_streak():
    rule = BaseRelativeRule(margin=0.25, patience=2)
    assert rule.decide([2.0, math.nan], [], "min", base=BASE) is CONTINUE


def test_median_rule_warm_up():
    finished = [[1.0, 0.9, 0.8], [1.1, 1.0, 0.9], [1.2, 1.1, 1.0]]
    # Rule: without a warm-up a clearly worse trial stops at its first report; with
    # es_grace_steps=2, not before its second.
    assert MedianStoppingRule(3).decide([5.0], finished, "min") is STOP
    assert MedianStoppingRule(3, grace_steps=2).decide([5.0], finished, "min") is CONTINUE
    assert MedianStoppingRule(3, grace_steps=2).decide([5.0, 4.0], finished, "min") is STOP
