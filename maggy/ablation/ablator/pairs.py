"""Pairs: the LOCO trials plus one trial per pair of components, to find interactions."""

from __future__ import annotations

import itertools
from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.ablator.coalitions import coalition_spec, removed_label
from maggy.ablation.study import AblationStudy

__all__ = ["Pairs"]


def check_components(study: AblationStudy, policy: str) -> list:
    """The study's components; a policy over coalitions needs at least two.

    Raises:
        ValueError: fewer than two components, naming the policy.
    """
    components = study.components
    if len(components) < 2:
        raise ValueError(
            f"ablator={policy!r} combines components and needs at least two, the study declares "
            f"{len(components)}; declare more or use ablator='loco'"
        )
    return components


class Pairs(AbstractAblator):
    """One base trial, one trial per component (as LOCO), then one trial per pair of components.

    ``n`` components cost ``1 + n + n (n - 1) / 2`` trials per repeat. The LOCO trials come
    first and keep LOCO's trial ids. The result gains ``result["interactions"]``: each pair's
    delta, the sum of its two single deltas and their difference, the *interaction*
    (:func:`maggy.results.interactions.interactions_table`).

    Early stopping is off unless the config asks for a rule: an early-stopped pair has no
    final metric to compare with its singles.

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
    default_es_policy = "none"

    def _coalitions(self) -> list[list]:
        components = check_components(self.ablation_study, "pairs")
        return [[]] + [[c] for c in components] + [list(p) for p in itertools.combinations(components, 2)]

    def get_number_of_trials(self) -> int:
        return len(self._coalitions()) * self.repeats

    def initialize(self) -> None:
        coalitions = self._coalitions()
        self.trial_buffer = [
            coalition_spec(index, coalition, repeat=repeat, seed=None if self.seed is None else self.seed + repeat)
            for repeat in range(self.repeats)
            for index, coalition in enumerate(coalitions)
        ]

    def analysis(self) -> dict:
        """``{"kind": "pairs", "components": [labels]}``, what the result adds."""
        return {"kind": "pairs", "components": [removed_label(c) for c in self.ablation_study.components]}
