"""The extension point for ablation policies."""

from __future__ import annotations

import abc
from typing import Any, Optional

from maggy.ablation.study import AblationStudy

__all__ = ["AbstractAblator"]


class AbstractAblator(abc.ABC):
    """Turns an :class:`AblationStudy` into trial specs (docs/architecture.md).

    ``lagom()`` calls :meth:`configure` with the experiment's config, :meth:`initialize`
    once, then :meth:`get_trial` until it returns ``None``, and :meth:`finalize_experiment`
    with every trial record at the end.

    Adaptive policies set :attr:`adaptive`: then, while the experiment runs, the driver calls
    ``get_trial(finished_trials)`` with every trial record so far (those of a resumed run
    included) each time a trial ends, and schedules every spec it returns until it returns
    ``None``. ``None`` means "nothing more given these records"; the experiment ends when
    every scheduled trial has a record and the policy has nothing more. On ``resume=True``
    the same calls with the journaled records rebuild the policy's state, so a policy must
    decide from the records alone (and hand out each spec once).

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

    #: True when :meth:`get_trial` may return more trials once it is given finished records.
    adaptive: bool = False

    #: True when the policy runs the config's ``noise_runs`` extra base trials; ``lagom()``
    #: refuses ``noise_runs`` for any other policy rather than ignore it.
    reads_noise_runs: bool = False

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

    def configure(self, config: Any) -> None:
        """Reads what the policy needs from the :class:`~maggy.config.AblationConfig`.

        Called by ``lagom()`` before :meth:`initialize`. No-op by default.
        """

    def more_trials(self, finished_trials: list) -> list[dict]:
        """Every spec :meth:`get_trial` returns for these records, until it returns ``None``."""
        specs = []
        while (spec := self.get_trial(finished_trials)) is not None:
            specs.append(spec)
        return specs

    def finalize_experiment(self, trials: list) -> None:
        """Called once with every trial record when the experiment ends. No-op by default."""

    def analysis(self) -> Optional[dict]:
        """What the result adds beyond the per-component table, as plain data; ``None`` by default.

        Kept in the run's config.json, so ``python -m maggy report`` rebuilds the same
        result; :func:`maggy.results.interactions.add_analysis` reads it.
        """
        return None
