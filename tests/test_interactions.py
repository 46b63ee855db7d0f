"""Interaction and Shapley maths (pure functions) and the Shapley policy's coalition plan."""

import itertools
import math
import random

import pytest

from maggy.ablation.ablator.shapley import min_budget, plan_coalitions
from maggy.results import build_result, format_summary
from maggy.results.interactions import (
    add_analysis,
    interactions_table,
    shapley_exact,
    shapley_from_permutations,
    shapley_table,
)

PLAYERS = ["a", "b", "c", "d", "e"]


def random_game(players, rng):
    """Any set function with v(empty) = 0."""
    return {frozenset(c): (0.0 if not c else rng.uniform(-1, 3))
            for size in range(len(players) + 1) for c in itertools.combinations(players, size)}


def pairwise_game(players, rng):
    """Additive effects plus pairwise interactions (redundant and overlapping pairs)."""
    single = {p: rng.uniform(0, 1) for p in players}
    pair = {frozenset(q): rng.uniform(-1, 1) for q in itertools.combinations(players, 2)}
    return {frozenset(c): sum(single[p] for p in c) + sum(w for q, w in pair.items() if q <= set(c))
            for size in range(len(players) + 1) for c in itertools.combinations(players, size)}


@pytest.mark.parametrize("seed", range(5))
def test_exact_shapley_values_are_efficient(seed):
    game = random_game(PLAYERS, random.Random(seed))
    phi = shapley_exact(game, PLAYERS)
    # Rule (efficiency): the values sum to v(everything removed) - v(nothing removed).
    assert sum(phi.values()) == pytest.approx(game[frozenset(PLAYERS)])


@pytest.mark.parametrize("seed", range(5))
def test_each_sampled_permutation_is_efficient_and_the_mean_of_many_is_exact(seed):
    rng = random.Random(seed)
    game = random_game(PLAYERS, rng)
    orders = [rng.sample(PLAYERS, len(PLAYERS)) for _ in range(10)]
    for marginals in shapley_from_permutations(game, orders):
        assert sum(marginals.values()) == pytest.approx(game[frozenset(PLAYERS)])
    every = [list(p) for p in itertools.permutations(PLAYERS)]
    mean = {p: sum(m[p] for m in shapley_from_permutations(game, every)) / len(every) for p in PLAYERS}
    assert mean == pytest.approx(shapley_exact(game, PLAYERS))


def test_hand_computed_values_redundant_pair_and_null():
    # x1 and x2 redundant (either alone suffices, worth 4), x3 worth 1, null worth 0.
    players = ["x1", "x2", "x3", "null"]
    game = {frozenset(c): (4.0 if {"x1", "x2"} <= set(c) else 0.0) + (1.0 if "x3" in c else 0.0)
            for size in range(5) for c in itertools.combinations(players, size)}
    assert shapley_exact(game, players) == pytest.approx({"x1": 2.0, "x2": 2.0, "x3": 1.0, "null": 0.0})


def test_one_antithetic_pair_is_exact_for_pairwise_interactions():
    rng = random.Random(3)
    game = pairwise_game(PLAYERS, rng)
    order = rng.sample(PLAYERS, len(PLAYERS))
    values = {c: {0: v} for c, v in game.items()}
    table = shapley_table(values, PLAYERS, [order, order[::-1]])
    assert table["shapley"].tolist() == pytest.approx([shapley_exact(game, PLAYERS)[p] for p in PLAYERS])


def test_shapley_table_is_efficient_per_repeat_and_gives_intervals_over_repeats():
    rng = random.Random(1)
    games = [random_game(PLAYERS, rng) for _ in range(3)]
    values = {c: {r: g[c] for r, g in enumerate(games)} for c in games[0]}
    table = shapley_table(values, PLAYERS)
    everything = sum(g[frozenset(PLAYERS)] for g in games) / 3
    assert table["shapley"].sum() == pytest.approx(everything)
    assert (table["shapley_ci_low"] < table["shapley"]).all() and (table["shapley"] < table["shapley_ci_high"]).all()


def test_a_missing_coalition_leaves_its_repeat_out():
    players = ["a", "b"]
    values = {frozenset("a"): {0: 1.0, 1: 1.0}, frozenset("b"): {0: 1.0, 1: 1.0}, frozenset("ab"): {0: 4.0}}
    # Repeat 1 lacks {a, b}: only repeat 0 counts.
    assert shapley_table(values, players)["shapley"].tolist() == [2.0, 2.0]


@pytest.mark.parametrize("singles,pair,kind", [
    ((0.0, 0.01), 1.0, "redundant"),      # each covers for the other
    ((1.0, 1.0), 1.05, "overlapping"),    # either removal already loses it all
    ((1.0, 0.5), 1.52, "additive"),
])
def test_interactions_name_redundant_and_overlapping_pairs(singles, pair, kind):
    a, b = frozenset({"a"}), frozenset({"b"})
    row = interactions_table({a: {0: singles[0]}, b: {0: singles[1]}, a | b: {0: pair}}, ["a", "b"]).iloc[0]
    assert row["interaction"] == pytest.approx(pair - sum(singles))
    assert row["kind"] == kind


def test_with_repeats_an_interaction_needs_an_interval_that_excludes_zero():
    a, b = frozenset({"a"}), frozenset({"b"})
    noisy = {a: {0: 0.0, 1: 0.0, 2: 0.0}, b: {0: 0.0, 1: 0.0, 2: 0.0}, a | b: {0: 1.0, 1: -0.8, 2: 0.1}}
    row = interactions_table(noisy, ["a", "b"]).iloc[0]
    assert row["n"] == 3 and row["ci_low"] < 0 < row["ci_high"] and row["kind"] == "additive"


def test_plan_is_exact_within_budget_and_samples_antithetic_pairs_beyond():
    coalitions, permutations = plan_coalitions(4, 16)
    assert len(coalitions) == 16 and permutations is None and coalitions[0] == ()
    coalitions, permutations = plan_coalitions(8, 32, seed=0)
    # Rule: within budget, base/singles/everything always present, orders in reversed pairs.
    assert len(coalitions) <= 32
    assert {(), tuple(range(8))} | {(i,) for i in range(8)} <= set(coalitions)
    assert coalitions[1:9] == [(i,) for i in range(8)]
    assert all(permutations[i + 1] == permutations[i][::-1] for i in range(0, len(permutations), 2))
    needed = {tuple(sorted(p[:k])) for p in permutations for k in range(9)}
    assert needed <= set(coalitions)
    # Deterministic: a resumed run plans the same trials.
    assert plan_coalitions(8, 32, seed=0) == (coalitions, permutations)


def test_a_budget_below_the_minimum_is_refused_naming_max_trials():
    with pytest.raises(ValueError, match=f"max_trials must be at least {min_budget(8)}"):
        plan_coalitions(8, 20)


def test_result_and_summary_of_the_pairs_policy_name_the_redundant_pair():
    removed = [[], ["feature a"], ["feature b"], ["feature a", "feature b"]]
    metrics = [1.0, 1.0, 1.01, 3.0]
    records = [{"trial_id": f"t{i}", "index": i, "removed": r, "metric": m, "status": "finished"}
               for i, (r, m) in enumerate(zip(removed, metrics))]
    result = add_analysis(build_result(records, "min", 1.0), {"kind": "pairs", "components": ["feature a", "feature b"]})
    assert result["interactions"]["kind"].tolist() == ["redundant"]
    # The components table holds single removals only.
    assert result["components"]["component"].tolist() == ["feature a", "feature b"]
    assert "Redundant pairs (" in format_summary(result, "Pairs")
    assert "feature a + feature b (interaction +1.9900)" in format_summary(result, "Pairs")
    assert math.isnan(result["interactions"]["ci_low"][0])
