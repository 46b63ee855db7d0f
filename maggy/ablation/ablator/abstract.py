"""The extension point for ablation policies."""

from __future__ import annotations

import abc
from typing import Optional

from maggy.ablation.study import AblationStudy

__all__ = ["AbstractAblator"]


class AbstractAblator(abc.ABC):
    """Turns an :class:`AblationStudy` into trial specs (docs/architecture.md).

    The driver calls :meth:`initialize` once, then :meth:`get_trial` until it returns
    ``None``, and :meth:`finalize_experiment` with every trial record at the end.

    Args:
        ablation_study: the declared study.
        repeats: how many times each trial runs, with seeds ``seed``, ``seed + 1``, ...
        seed: the seed of the first repeat; ``None`` leaves the random state alone.

    Example:
        >>> class BaseOnly(AbstractAblator):
        ...     def get_number_of_trials(self):
        ...         return self.repeats
        ...     def initialize(self):
        ...         self.trial_buffer = [make_spec(0, repeat=r) for r in range(self.repeats)]
    """

    #: How the policy is named in summaries ("------ LOCO Results ------"); defaults to the class name.
    title: Optional[str] = None

    #: The early-stopping rule used when the config leaves ``es_policy`` unset (``None``).
    #: Policies whose trials are combined into one number (pairs, Shapley) say ``"none"``:
    #: a stopped trial has no final metric to combine.
    default_es_policy: str = "median"

    def __init__(self, ablation_study: AblationStudy, repeats: int = 1, seed: Optional[int] = 0):
        self.ablation_study = ablation_study
        self.repeats = repeats
        self.seed = seed
        self.trial_buffer: list[dict] = []

    @abc.abstractmethod
    def get_number_of_trials(self) -> int:
        """How many trials the policy will produce (repeats included)."""

    @abc.abstractmethod
    def initialize(self) -> None:
        """Fills ``self.trial_buffer`` with the trial specs, in the order they should run."""

    def get_trial(self, finished_trials: Optional[list] = None) -> Optional[dict]:
        """The next trial spec, or ``None`` when the policy has no more.

        Args:
            finished_trials: records of the trials finished so far, for adaptive policies.
        """
        return self.trial_buffer.pop(0) if self.trial_buffer else None

    def finalize_experiment(self, trials: list) -> None:
        """Called once with every trial record when the experiment ends. No-op by default."""

    def analysis(self) -> Optional[dict]:
        """What the result adds beyond the per-component table, as plain data; ``None`` by default.

        Kept in the run's config.json, so ``python -m maggy report`` rebuilds the same
        result; :func:`maggy.results.interactions.add_analysis` reads it.
        """
        return None
