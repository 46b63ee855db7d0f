"""Coalition games as plain dicts: Shapley values and pair interactions.

A *game* maps each coalition of removed components (a frozenset of labels) to its value: the
delta of the trial that removes them (> 0: the trial did worse than the base trial); the
empty coalition, the base trial, is worth 0. Pure functions of plain data, importing nothing
from maggy, so that both the policies that decide trials while an experiment runs (adaptive
repeats of pairs and Shapley studies) and the results can use them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Optional

__all__ = ["shapley_exact", "shapley_from_permutations", "shapley_samples", "shapley_estimates", "interaction",
           "per_repeat"]

Game = Mapping[frozenset, float]


def shapley_exact(value: Game, players: Sequence[str]) -> dict[str, float]:
    """Exact Shapley values of the game ``value`` (every coalition of ``players`` present).

    ``phi_i = sum over S not holding i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``;
    the values sum to ``v(all) - v(none)``. A missing coalition gives NaN for everyone.

    Example:
        >>> v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 1.0, frozenset("ab"): 4.0}
        >>> shapley_exact(v, ["a", "b"])
        {'a': 2.0, 'b': 2.0}
    """
    n = len(players)
    weights = [math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) for k in range(n)]
    phi = {}
    for player in players:
        others = [p for p in players if p != player]
        total = 0.0
        for size in range(n):
            for subset in itertools.combinations(others, size):
                s = frozenset(subset)
                if s not in value or s | {player} not in value:
                    total = math.nan
                    break
                total += weights[size] * (value[s | {player}] - value[s])
        phi[player] = total
    return phi


def shapley_from_permutations(value: Game, permutations: Sequence[Sequence[str]]) -> list[dict[str, float]]:
    """Each permutation's marginal contributions: removing its players one after another.

    For a permutation, player i's marginal is ``v(players before i, and i) - v(players
    before i)``; the marginals of one permutation sum to ``v(all) - v(none)``. A permutation
    with a missing coalition is left out.

    Example:
        >>> v = {frozenset(): 0.0, frozenset("a"): 0.0, frozenset("b"): 0.0, frozenset("ab"): 1.0}
        >>> shapley_from_permutations(v, [["a", "b"], ["b", "a"]])
        [{'a': 0.0, 'b': 1.0}, {'b': 0.0, 'a': 1.0}]
    """
    out = []
    for order in permutations:
        prefix: frozenset = frozenset()
        marginals = {}
        for player in order:
            nxt = prefix | {player}
            if prefix not in value or nxt not in value:
                break
            marginals[player] = value[nxt] - value[prefix]
            prefix = nxt
        else:
            out.append(marginals)
    return out


def shapley_samples(value: Game, players: Sequence[str],
                    permutations: Optional[Sequence[Sequence[str]]] = None) -> list[dict[str, float]]:
    """The Shapley estimates one game gives: ``[exact values]``, or one per antithetic pair.

    Without ``permutations`` the values are exact (an empty list if a coalition is missing).
    With them (an order, then its reverse, adjacent), each complete pair of permutations is
    one sample: the mean of its two marginals per player.

    Example:
        >>> v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 1.0, frozenset("ab"): 4.0}
        >>> shapley_samples(v, ["a", "b"]), shapley_samples(v, ["a", "b"], [["a", "b"], ["b", "a"]])
        ([{'a': 2.0, 'b': 2.0}], [{'a': 2.0, 'b': 2.0}])
    """
    game = {frozenset(): 0.0, **value}
    if permutations is None:
        phi = shapley_exact(game, players)
        return [] if any(math.isnan(v) for v in phi.values()) else [phi]
    samples = []
    for pair in range(0, len(permutations), 2):
        marginals = shapley_from_permutations(game, permutations[pair:pair + 2])
        if len(marginals) == len(permutations[pair:pair + 2]):  # both halves complete
            samples.append({p: statistics.fmean(m[p] for m in marginals) for p in players})
    return samples


def shapley_estimates(values: Mapping[frozenset, Mapping[int, float]], players: Sequence[str],
                      permutations: Optional[Sequence[Sequence[str]]] = None
                      ) -> tuple[list[dict[str, float]], dict[str, dict[int, float]]]:
    """Every Shapley sample of every repeat, and each player's value per repeat (their mean).

    ``values`` is ``{coalition: {repeat: delta}}``; see :func:`shapley_samples`. A repeat that
    gives no complete sample has no per-repeat value.

    Example:
        >>> v = {frozenset("a"): {0: 1.0, 1: 1.2}, frozenset("b"): {0: 1.0, 1: 0.8},
        ...      frozenset("ab"): {0: 4.0, 1: 4.0}}
        >>> samples, by_repeat = shapley_estimates(v, ["a", "b"])
        >>> len(samples), {p: [round(x, 3) for x in r.values()] for p, r in by_repeat.items()}
        (2, {'a': [2.0, 2.2], 'b': [2.0, 1.8]})
    """
    samples: list[dict[str, float]] = []
    by_repeat: dict[str, dict[int, float]] = {p: {} for p in players}
    for repeat, game in per_repeat(values).items():
        found = shapley_samples(game, players, permutations)
        samples += found
        for player in players if found else ():
            by_repeat[player][repeat] = statistics.fmean(s[player] for s in found)
    return samples, by_repeat


def interaction(value: Game, a: str, b: str) -> float:
    """``v({a, b}) - (v({a}) + v({b}))``: > 0 when removing both hurts more than the two alone add up to.

    NaN when one of the three coalitions is missing.

    Example:
        >>> interaction({frozenset("a"): 1.0, frozenset("b"): 1.0, frozenset("ab"): 4.0}, "a", "b")
        2.0
    """
    keys = (frozenset((a, b)), frozenset((a,)), frozenset((b,)))
    if any(k not in value for k in keys):
        return math.nan
    return value[keys[0]] - (value[keys[1]] + value[keys[2]])


def per_repeat(values: Mapping[frozenset, Mapping[int, float]]) -> dict[int, dict[frozenset, float]]:
    """``{coalition: {repeat: delta}}`` turned into one game per repeat, ``{repeat: game}``.

    Example:
        >>> per_repeat({frozenset("a"): {0: 1.0, 1: 2.0}})
        {0: {frozenset({'a'}): 1.0}, 1: {frozenset({'a'}): 2.0}}
    """
    games: dict[int, dict[frozenset, float]] = {}
    for coalition, by_repeat in values.items():
        for repeat, delta in by_repeat.items():
            games.setdefault(repeat, {})[coalition] = delta
    return dict(sorted(games.items()))
