"""Shapley: each component's Shapley value of the metric over coalitions of removed components."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from typing import Optional

from maggy.ablation.ablator.coalitions import CoalitionAblator, check_components, removed_label
from maggy.ablation.study import AblationStudy
from maggy.games import shapley_estimates

__all__ = ["Shapley", "plan_coalitions", "min_budget"]

#: Draws of a permutation pair that add too many coalitions before sampling gives up.
_MAX_MISSES = 50


def min_budget(n: int) -> int:
    """The smallest ``max_trials`` for ``n`` components: every coalition (``2**n``) or, when
    that is more, the base, the n singles, everything removed and one antithetic pair of
    permutations (``3 n - 2``)."""
    return min(2 ** n, 3 * n - 2)


def plan_coalitions(n: int, budget: int, seed: Optional[int] = 0) -> tuple[list[tuple[int, ...]], Optional[list[list[int]]]]:
    """The coalitions (tuples of component positions) to run, and the sampled permutations.

    Exact when all ``2**n`` coalitions fit the budget (permutations ``None``). Otherwise
    the base, every single component and everything-removed are always run, and random
    permutations are drawn in antithetic pairs (a permutation, then its reverse) as long as
    the distinct coalitions their prefixes need still fit. Coalitions shared by several
    permutations run once. Deterministic for a given ``(n, budget, seed)``, so a resumed
    run finds the same trials.

    Returns:
        ``(coalitions, permutations)``: coalitions ordered base, singles, then by size and
        position; each sampled permutation as a list of positions.

    Raises:
        ValueError: ``budget`` below :func:`min_budget`.

    Example:
        >>> coalitions, permutations = plan_coalitions(3, 8)
        >>> len(coalitions), permutations
        (8, None)
        >>> coalitions, permutations = plan_coalitions(6, 24, seed=0)
        >>> len(coalitions) <= 24, permutations[1] == permutations[0][::-1]
        (True, True)
    """
    if budget < min_budget(n):
        raise ValueError(
            f"max_trials must be at least {min_budget(n)} for {n} components (the base trial, one "
            f"trial per component, everything removed and one pair of sampled orders), got {budget}"
        )
    if 2 ** n <= budget:
        coalitions = [c for size in range(n + 1) for c in itertools.combinations(range(n), size)]
        return _ordered(coalitions), None
    chosen = {(), tuple(range(n))} | {(i,) for i in range(n)}
    rng = random.Random(0 if seed is None else seed)
    permutations: list[list[int]] = []
    misses = 0
    most = math.factorial(n)
    while misses < _MAX_MISSES and len(permutations) < most:
        order = list(range(n))
        rng.shuffle(order)
        pair = [order, order[::-1]]
        if any(p in permutations for p in pair):
            misses += 1
            continue
        new = {tuple(sorted(p[:k])) for p in pair for k in range(n + 1)} - chosen
        if len(chosen) + len(new) > budget:
            misses += 1
            continue
        chosen |= new
        permutations += pair
    return _ordered(chosen), permutations


def _ordered(coalitions) -> list[tuple[int, ...]]:
    # Base first, then the singles in declaration order (LOCO's trials and ids), then by size.
    return sorted(coalitions, key=lambda c: (len(c) > 1, len(c), c))


class Shapley(CoalitionAblator):
    """Trials over coalitions of removed components, for each component's Shapley value.

    A component's Shapley value is its average marginal delta over every order in which the
    components could be removed; the values add up to the delta of removing them all. The
    policy runs every coalition when ``2**n <= max_trials`` (exact values); otherwise it
    samples orders in antithetic pairs (an order and its reverse, which makes pairwise
    interactions exact) until the budget is spent, running each distinct coalition once.
    The base trial and every single component are always run, so LOCO's deltas come for
    free and the singles keep LOCO's trial ids.

    ``result["components"]`` gains ``shapley``, ``shapley_ci_low`` and ``shapley_ci_high``
    (:func:`maggy.results.interactions.shapley_table`). Early stopping is off unless the
    config asks for a rule: a stopped coalition has no final metric.

    Args:
        ablation_study: the declared study (at least two components).
        repeats: how many times each coalition runs; ``"auto"``: whole repeats are added until
            every Shapley value has a verdict (:class:`CoalitionAblator`).
        seed: seed of the first repeat, and of the order sampling.
        max_trials: trials per repeat; ``None`` means ``4 n`` (exact up to 4 components).

    Raises:
        ValueError: fewer than two components, or ``max_trials`` below the minimum
            (:func:`min_budget`), when the trials are planned.

    Example:
        >>> from maggy.ablation import AblationStudy
        >>> study = AblationStudy("planted", 1, "y")
        >>> study.features.include("x1", "x2", "x3")
        >>> ablator = Shapley(study); ablator.initialize(); ablator.get_number_of_trials()
        8
        >>> ablator.trial_buffer[-1]["removed"]
        ['feature x1', 'feature x2', 'feature x3']
    """

    title = "Shapley"

    def __init__(self, ablation_study: AblationStudy, repeats: int = 1, seed: Optional[int] = 0,
                 max_trials: Optional[int] = None):
        super().__init__(ablation_study, repeats=repeats, seed=seed)
        if max_trials is not None and (isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1):
            raise ValueError(f"max_trials must be an int >= 1 or None, got {max_trials!r}")
        self.max_trials = max_trials

    def _plan(self) -> tuple[list, list[tuple[int, ...]], Optional[list[list[int]]]]:
        components = check_components(self.ablation_study, "shapley")
        budget = self.max_trials if self.max_trials is not None else 4 * len(components)
        coalitions, permutations = plan_coalitions(len(components), budget, self.seed)
        return components, coalitions, permutations

    def coalitions(self) -> list[list]:
        """The planned coalitions (:func:`plan_coalitions`), as lists of components."""
        components, coalitions, _ = self._plan()
        return [[components[i] for i in coalition] for coalition in coalitions]

    def judged_values(self, values: Mapping[frozenset, Mapping[int, float]]) -> dict[str, dict[int, float]]:
        """Under ``repeats="auto"``: each component's Shapley value per repeat (the mean of the
        repeat's antithetic samples when sampling); repeats are added until each has a verdict."""
        analysis = self.analysis()
        return shapley_estimates(values, analysis["components"], analysis["permutations"])[1]

    def analysis(self) -> dict:
        """``{"kind": "shapley", "components": [labels], "permutations": [[labels]] or None}``."""
        components, _, permutations = self._plan()
        labels = [removed_label(c) for c in components]
        return {"kind": "shapley", "components": labels,
                "permutations": None if permutations is None else [[labels[i] for i in p] for p in permutations]}
