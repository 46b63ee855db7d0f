"""LOCO: Leave One Component Out."""

from __future__ import annotations

from maggy.ablation.ablator.abstract import AbstractAblator
from maggy.ablation.study import Component
from maggy.trial import make_spec

__all__ = ["LOCO"]


def _spec_fields(component: Component) -> dict:
    """The trial-spec fields that leave out ``component``."""
    if component.kind == "feature":
        return {"ablated_feature": component.value}
    if component.kind == "model":
        return {"custom_model": component.value}
    layers = {
        "layer": lambda v: [v],
        "group": lambda v: list(v),
        "prefix": lambda v: [{"prefix": v}],
    }[component.kind](component.value)
    return {
        "ablated_layers": layers,
        "layer_label": component.label,
        "infer_activation": component.infer_activation,
    }


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
        components = [None] + self.ablation_study.components
        self.trial_buffer = []
        for repeat in range(self.repeats):
            seed = None if self.seed is None else self.seed + repeat
            for index, component in enumerate(components):
                fields = _spec_fields(component) if component is not None else {}
                self.trial_buffer.append(make_spec(index, repeat=repeat, seed=seed, **fields))
