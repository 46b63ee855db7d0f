"""Policies whose trials run in repeats: a fixed number, or as many as the verdicts need."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, Hashable, Optional

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.study import AblationStudy

__all__ = ["RepeatedAblator"]


class RepeatedAblator(AbstractAblator):
    """Runs the trials of a policy repeat by repeat (seeds ``seed``, ``seed + 1``, ...).

    With ``repeats="auto"`` the policy is adaptive: it produces ``min_repeats`` repeats, and
    each time every trial produced so far has a record, :meth:`_next_specs` decides the next
    repeat's trials from the records (usually through :meth:`_still_open`, the estimates
    :func:`maggy.statistics.sequential_verdicts` leaves ``undetermined``), until it returns
    none or ``max_repeats`` repeats were produced. Its state is only which trials it
    produced; the records rebuild it (resume).

    Args:
        ablation_study: the declared study.
        repeats: an int >= 1, or ``"auto"``.
        seed: the seed of the first repeat; ``None`` leaves the random state alone.
    """

    def __init__(self, ablation_study: AblationStudy, repeats: Any = 1, seed: Optional[int] = 0):
        super().__init__(ablation_study, repeats=repeats, seed=seed)
        self.adaptive = repeats == "auto"
        self.direction = "max"
        self.alpha, self.min_effect = 0.05, None
        self.min_repeats, self.max_repeats = 3, 10
        self._produced = 0  # repeats produced so far
        self._issued: set[tuple[int, int]] = set()  # (index, repeat) of every trial produced

    def configure(self, config: Any) -> None:
        self.direction = config.direction
        self.alpha, self.min_effect = config.alpha, config.min_effect
        self.min_repeats, self.max_repeats = config.min_repeats, config.max_repeats

    @property
    def first_repeats(self) -> int:
        """The repeats :meth:`initialize` produces: ``min_repeats`` when adaptive, else ``repeats``."""
        return self.min_repeats if self.adaptive else self.repeats

    def get_trial(self, finished_trials: Optional[list] = None) -> Optional[dict]:
        if not self.trial_buffer and self.adaptive and finished_trials is not None:
            self._next_repeat(finished_trials)
        return self.trial_buffer.pop(0) if self.trial_buffer else None

    @abc.abstractmethod
    def _next_specs(self, records: list) -> list[dict]:
        """The trials of repeat ``self._produced`` given every record so far; ``[]``: no more."""

    def _issue(self, specs: Sequence[dict]) -> None:
        """Queues ``specs`` and remembers them, so the next repeat waits for their records."""
        self.trial_buffer += specs
        self._issued |= {(spec["index"], spec["repeat"]) for spec in specs}

    def _next_repeat(self, records: list) -> None:
        """Adds the next repeat once every trial produced so far has a record."""
        if self._produced >= self.max_repeats:
            return
        done = {(int(r.get("index") or 0), int(r.get("repeat") or 0)) for r in records}
        if not self._issued <= done:
            return  # the current repeat is still running
        specs = self._next_specs(records)
        if specs:
            self._issue(specs)
            self._produced += 1

    def _still_open(self, values: Mapping[Hashable, Mapping[int, float]],
                    stopped: Optional[Mapping[Hashable, Sequence[int]]] = None) -> list:
        """The estimates that need another repeat: ``values`` is ``{estimate: {repeat: value}}``."""
        from maggy import statistics  # a leaf module of plain functions (docs/architecture.md)

        verdicts = statistics.sequential_verdicts(values, self._produced, self.min_repeats, self.max_repeats,
                                                  self.alpha, self.min_effect, stopped, wilcoxon=False)
        return statistics.undetermined(verdicts, self._produced, self.max_repeats)
