"""LOCO: Leave One Component Out."""

from __future__ import annotations

from typing import Any, Optional

from maggy.ablation.ablator.coalitions import coalition_spec
from maggy.ablation.ablator.repeats import RepeatedAblator

__all__ = ["LOCO"]


class LOCO(RepeatedAblator):
    """One base trial with everything, then one trial per declared component.

    Trials run in declaration order with the base trial first, so every later trial can be
    compared with it as soon as it finishes. With ``repeats=k`` the whole sequence is
    produced k times, repeat by repeat; ``noise_runs=j`` (config) adds j runs of the base
    trial alone after them.

    With ``repeats="auto"`` the policy is adaptive (:class:`RepeatedAblator`): each further
    repeat runs the base trial and the components still ``undetermined``, until none is or
    ``max_repeats`` is reached.

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

    reads_noise_runs = True

    def __init__(self, ablation_study, repeats: Any = 1, seed: Optional[int] = 0):
        super().__init__(ablation_study, repeats=repeats, seed=seed)
        self.noise_runs = 0

    def configure(self, config: Any) -> None:
        super().configure(config)
        self.noise_runs = config.noise_runs

    def get_number_of_trials(self) -> int:
        per_repeat = 1 + len(self.ablation_study.components)
        if self.adaptive:
            return per_repeat * self.min_repeats  # the least it runs; more as it goes
        return per_repeat * self.repeats + self.noise_runs

    def initialize(self) -> None:
        self.trial_buffer, self._issued = [], set()
        everything = range(1 + len(self.ablation_study.components))
        for repeat in range(self.first_repeats):
            self._issue(self._repeat(repeat, everything))
        self._produced = self.first_repeats
        if not self.adaptive:
            for repeat in range(self._produced, self._produced + self.noise_runs):
                self._issue(self._repeat(repeat, [0]))

    def _next_specs(self, records: list) -> list[dict]:
        """The base trial and the components still undetermined, for the next repeat."""
        from maggy import statistics  # a leaf module of plain functions (docs/architecture.md)

        deltas, stopped = statistics.paired_deltas(records, self.direction)
        components = {i: deltas.get(i, {}) for i in range(1, 1 + len(self.ablation_study.components))}
        todo = self._still_open(components, stopped)
        return self._repeat(self._produced, [0] + todo) if todo else []

    def _repeat(self, repeat: int, indices) -> list[dict]:
        """The specs of repeat ``repeat`` for the trials at ``indices`` (0: the base trial)."""
        components = [None] + self.ablation_study.components
        seed = None if self.seed is None else self.seed + repeat
        return [coalition_spec(index, [components[index]] if index else [], repeat=repeat, seed=seed)
                for index in indices]
