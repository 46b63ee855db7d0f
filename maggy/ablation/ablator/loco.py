"""LOCO: Leave One Component Out."""

from __future__ import annotations

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.ablator.coalitions import coalition_spec

__all__ = ["LOCO"]


class LOCO(AbstractAblator):
    """One base trial with everything, then one trial per declared component.

    Trials run in declaration order with the base trial first, so every later trial can be
    compared with it as soon as it finishes. With ``repeats=k`` the whole sequence is
    produced k times, repeat by repeat.

    Example:
        >>> from maggy.ablation import AblationStudy
        >>> study = AblationStudy("titanic", 1, "survived")
        >>> study.model.layers.include(2, 4)
        >>> ablator = LOCO(study); ablator.initialize(); ablator.get_number_of_trials()
        3
        >>> [trial["ablated_layers"] for trial in ablator.trial_buffer]
        [None, [2], [4]]
    """

    title = "LOCO"

    def get_number_of_trials(self) -> int:
        return (1 + len(self.ablation_study.components)) * self.repeats

    def initialize(self) -> None:
        components: list = [None] + self.ablation_study.components
        self.trial_buffer = []
        for repeat in range(self.repeats):
            seed = None if self.seed is None else self.seed + repeat
            for index, component in enumerate(components):
                removed = [component] if component is not None else []
                self.trial_buffer.append(coalition_spec(index, removed, repeat=repeat, seed=seed))
