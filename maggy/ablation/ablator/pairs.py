"""Pairs: the LOCO trials plus one trial per pair of components, to find interactions."""

from __future__ import annotations

import itertools

from collections.abc import Mapping

from maggy.ablation.ablator.coalitions import CoalitionAblator, check_components, removed_label
from maggy.games import interaction, per_repeat

__all__ = ["Pairs"]


class Pairs(CoalitionAblator):
    """One base trial, one trial per component (as LOCO), then one trial per pair of components.

    ``n`` components cost ``1 + n + n (n - 1) / 2`` trials per repeat. The LOCO trials come
    first and keep LOCO's trial ids. The result gains ``result["interactions"]``: each pair's
    delta, the sum of its two single deltas and their difference, the *interaction*
    (:func:`maggy.results.interactions.interactions_table`).

    Early stopping is off unless the config asks for a rule: an early-stopped pair has no
    final metric to compare with its singles. With ``repeats="auto"`` whole repeats are added
    until every component's delta and every pair's interaction has a verdict
    (:class:`CoalitionAblator`).

    Example:
        >>> from maggy.ablation import AblationStudy
        >>> study = AblationStudy("planted", 1, "y")
        >>> study.features.include("x1", "x2", "x3")
        >>> ablator = Pairs(study); ablator.initialize(); ablator.get_number_of_trials()
        7
        >>> [trial["removed"] for trial in ablator.trial_buffer][4:]
        [['feature x1', 'feature x2'], ['feature x1', 'feature x3'], ['feature x2', 'feature x3']]
    """

    title = "Pairs"

    def coalitions(self) -> list[list]:
        """The base, each component alone, then each pair in declaration order."""
        components = check_components(self.ablation_study, "pairs")
        return [[]] + [[c] for c in components] + [list(p) for p in itertools.combinations(components, 2)]

    def judged_values(self, values: Mapping[frozenset, Mapping[int, float]]) -> dict[str, dict[int, float]]:
        """Under ``repeats="auto"``: each component's delta alone, and each pair's interaction.

        Repeats are added until every component and every interaction has a verdict (or
        ``max_repeats``); the interactions are named ``"a x b"``.
        """
        judged = super().judged_values(values)
        games = per_repeat(values)
        labels = [removed_label(c) for c in self.ablation_study.components]
        for a, b in itertools.combinations(labels, 2):
            found = {r: interaction(game, a, b) for r, game in games.items()}
            judged[f"{a} x {b}"] = {r: v for r, v in found.items() if v == v}  # NaN: a trial of the three is missing
        return judged

    def analysis(self) -> dict:
        """``{"kind": "pairs", "components": [labels]}``, what the result adds."""
        return {"kind": "pairs", "components": [removed_label(c) for c in self.ablation_study.components]}
