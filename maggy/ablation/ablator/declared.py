"""A policy that runs exactly the trials it is given: the one-class API's (``maggy.ablation.Ablator``)."""

from __future__ import annotations

from typing import Optional

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.study import AblationStudy
from maggy.trial import layer_label, make_spec

__all__ = ["DeclaredTrials"]


class DeclaredTrials(AbstractAblator):
    """A policy that runs exactly the trials it is given, the base trial first.

    Args:
        ablation_study: the study holding the model and dataset generators.
        trials: one dict per trial with the trial-spec keys ``ablated_feature``,
            ``ablated_layers`` (a list or ``None``), ``layer_label`` (optional) and
            ``infer_activation``; the first must
            remove nothing (it is the base trial every other trial is compared with).
        repeats: how many times the sequence runs, with seeds ``seed``, ``seed + 1``, ...
        seed: the seed of the first repeat; ``None`` leaves the random state alone.

    Raises:
        ValueError: the first trial removes something.

    Example:
        >>> policy = DeclaredTrials(study, [{}, {"ablated_layers": [2, 3]}])  # doctest: +SKIP
        >>> policy.initialize(); policy.get_trial()["index"]                    # doctest: +SKIP
        0
    """

    title = "Ablation"

    def __init__(self, ablation_study: AblationStudy, trials: list[dict], repeats: int = 1,
                 seed: Optional[int] = 0):
        super().__init__(ablation_study, repeats=repeats, seed=seed)
        if not trials or trials[0].get("ablated_feature") or trials[0].get("ablated_layers"):
            raise ValueError("DeclaredTrials: the first trial must be the base trial, removing nothing")
        self.trials = [dict(t) for t in trials]

    def get_number_of_trials(self) -> int:
        return len(self.trials) * self.repeats

    def initialize(self) -> None:
        self.trial_buffer = []
        for repeat in range(self.repeats):
            seed = None if self.seed is None else self.seed + repeat
            for index, trial in enumerate(self.trials):
                layers = trial.get("ablated_layers")
                self.trial_buffer.append(make_spec(
                    index,
                    ablated_feature=trial.get("ablated_feature"),
                    ablated_layers=layers,
                    layer_label=trial.get("layer_label") or layer_label(layers or None),
                    infer_activation=bool(trial.get("infer_activation")),
                    repeat=repeat,
                    seed=seed,
                ))
