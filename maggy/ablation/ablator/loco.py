"""LOCO: Leave One Component Out."""

from __future__ import annotations

from typing import Any, Optional

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.ablator.coalitions import coalition_spec

__all__ = ["LOCO"]


class LOCO(AbstractAblator):
    """One base trial with everything, then one trial per declared component.

    Trials run in declaration order with the base trial first, so every later trial can be
    compared with it as soon as it finishes. With ``repeats=k`` the whole sequence is
    produced k times, repeat by repeat; ``noise_runs=j`` (config) adds j runs of the base
    trial alone after them.

    With ``repeats="auto"`` the policy is adaptive: it produces ``min_repeats`` repeats, and
    each time every trial of the repeats so far has a record, it judges the components
    (:func:`maggy.statistics.sequential_verdicts`) and produces one more repeat of
    the base trial and the components still ``undetermined``, until none is or
    ``max_repeats`` is reached. Its state is only which repeats it produced; the records
    rebuild it (resume).

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

    def __init__(self, ablation_study, repeats: Any = 1, seed: Optional[int] = 0):
        super().__init__(ablation_study, repeats=repeats, seed=seed)
        self.adaptive = repeats == "auto"
        self.direction = "max"
        self.alpha, self.min_effect = 0.05, None
        self.min_repeats, self.max_repeats = 3, 10
        self.noise_runs = 0
        self._produced = 0  # repeats produced so far (adaptive)
        self._issued: set[tuple[int, int]] = set()  # (index, repeat) of every trial produced

    def configure(self, config: Any) -> None:
        self.direction = config.direction
        self.alpha, self.min_effect = config.alpha, config.min_effect
        self.min_repeats, self.max_repeats = config.min_repeats, config.max_repeats
        self.noise_runs = config.noise_runs

    def get_number_of_trials(self) -> int:
        per_repeat = 1 + len(self.ablation_study.components)
        if self.adaptive:
            return per_repeat * self.min_repeats  # the least it runs; more as it goes
        return per_repeat * self.repeats + self.noise_runs

    def initialize(self) -> None:
        self.trial_buffer = []
        self._issued = set()
        count = self.min_repeats if self.adaptive else self.repeats
        everything = range(1 + len(self.ablation_study.components))
        for repeat in range(count):
            self._add_repeat(repeat, everything)
        self._produced = count
        if not self.adaptive:
            for repeat in range(count, count + self.noise_runs):
                self._add_repeat(repeat, [0])

    def get_trial(self, finished_trials: Optional[list] = None) -> Optional[dict]:
        if not self.trial_buffer and self.adaptive and finished_trials is not None:
            self._next_repeat(finished_trials)
        return self.trial_buffer.pop(0) if self.trial_buffer else None

    def _next_repeat(self, records: list) -> None:
        """Adds the next repeat's trials once every trial produced so far has a record."""
        from maggy import statistics  # a leaf module of plain functions (docs/architecture.md)

        if self._produced >= self.max_repeats:
            return
        deltas, stopped = statistics.paired_deltas(records, self.direction)
        done = {(int(r.get("index") or 0), int(r.get("repeat") or 0)) for r in records}
        if not self._issued <= done:
            return  # the current repeat is still running
        components = {i: deltas.get(i, {}) for i in range(1, 1 + len(self.ablation_study.components))}
        verdicts = statistics.sequential_verdicts(
            components, self._produced, self.min_repeats, self.max_repeats, self.alpha, self.min_effect, stopped, wilcoxon=False)
        todo = statistics.undetermined(verdicts, self._produced, self.max_repeats)
        if todo:
            self._add_repeat(self._produced, [0] + todo)
            self._produced += 1

    def _add_repeat(self, repeat: int, indices) -> None:
        components = [None] + self.ablation_study.components
        seed = None if self.seed is None else self.seed + repeat
        for index in indices:
            component = components[index]
            removed = [component] if component is not None else []
            self.trial_buffer.append(coalition_spec(index, removed, repeat=repeat, seed=seed))
            self._issued.add((index, repeat))
