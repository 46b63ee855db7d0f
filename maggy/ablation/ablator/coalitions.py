"""Trial specs that remove a set of components at once (a *coalition*).

Shared by the policies that go beyond leave-one-out (pairs, Shapley). A coalition of one
component gives exactly the spec LOCO gives for it, so its trial id is LOCO's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Optional, Sequence

from maggy.ablation.ablator.repeats import RepeatedAblator
from maggy.ablation.study import AblationStudy, Component
from maggy.trial import component_label, layer_label, make_spec

__all__ = ["CoalitionAblator", "check_components", "coalition_spec", "removed_label", "spec_fields"]


def removed_label(component: Component) -> str:
    """How a component reads in results: ``"feature x1"``, ``"layer [2, 3]"``, ``"model small"``.

    maggy's one label formatter (:func:`maggy.trial.component_label`), so the text equals
    the ``component`` column of ``result["components"]``.

    Example:
        >>> removed_label(Component("group", (2, 3)))
        'layer [2, 3]'
    """
    if component.kind == "feature":
        return component_label(feature=component.value)
    if component.kind == "model":
        return component_label(model=component.value)
    return component_label(layers=component.label)


def spec_fields(components: Sequence[Component]) -> dict:
    """The trial-spec fields that leave out every component of ``components`` together.

    One feature (or custom model) is a string, several a list; layers of every layer
    component are concatenated into one ``ablated_layers`` list, removed with one repair
    pass. ``infer_activation`` is a bool when all layer components agree, else a list with
    one flag per identifier in ``ablated_layers``.
    """
    features = [c.value for c in components if c.kind == "feature"]
    models = [c.value for c in components if c.kind == "model"]
    layer_components = [c for c in components if c.kind in ("layer", "group", "prefix")]
    fields: dict = {}
    if features:
        fields["ablated_feature"] = features[0] if len(features) == 1 else features
    if models:
        fields["custom_model"] = models[0] if len(models) == 1 else models
    if layer_components:
        layers, flags = [], []
        for c in layer_components:
            ids = {"layer": lambda v: [v], "group": list, "prefix": lambda v: [{"prefix": v}]}[c.kind](c.value)
            layers += ids
            flags += [c.infer_activation] * len(ids)
        fields["ablated_layers"] = layers
        fields["layer_label"] = layer_components[0].label if len(layer_components) == 1 else layer_label(layers)
        fields["infer_activation"] = flags[0] if len(set(flags)) == 1 else flags
    return fields


def coalition_spec(index: int, components: Sequence[Component], repeat: int = 0,
                   seed: Optional[int] = None) -> dict:
    """The trial spec that removes every component of ``components`` (none: the base trial).

    Example:
        >>> spec = coalition_spec(5, [Component("feature", "x1"), Component("layer", 2)])
        >>> spec["ablated_feature"], spec["ablated_layers"], spec["removed"]
        ('x1', [2], ['feature x1', 'layer 2'])
    """
    return make_spec(index, repeat=repeat, seed=seed, removed=[removed_label(c) for c in components],
                     **spec_fields(components))


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


class CoalitionAblator(RepeatedAblator):
    """A policy whose trials are coalitions: each repeat runs the same list of them.

    Subclasses say which coalitions (:meth:`coalitions`); the base trial (the empty
    coalition) must come first. Early stopping is off by default (``default_es_policy``):
    these policies combine several trials' final metrics into one number, and a trial
    stopped early has none.

    With ``repeats="auto"`` the policy is adaptive (:class:`RepeatedAblator`): it judges what
    the policy estimates (:meth:`judged_values`: a value per repeat, paired by repeat) and
    runs one more *whole* repeat while any of them is ``undetermined`` (every coalition
    feeds every estimate).
    """

    default_es_policy = "none"

    @abc.abstractmethod
    def coalitions(self) -> list[list[Component]]:
        """The coalitions one repeat runs, in run order, the empty one first."""

    def judged_values(self, values: Mapping[frozenset, Mapping[int, float]]) -> dict[str, dict[int, float]]:
        """What adaptive repeats judge: ``{name: {repeat: value}}`` from ``{coalition: {repeat: delta}}``.

        By default each component's delta when removed alone (where its single trial ran).
        """
        labels = [removed_label(c) for c in self.ablation_study.components]
        return {label: dict(values.get(frozenset({label}), {})) for label in labels}

    def get_number_of_trials(self) -> int:
        return len(self.coalitions()) * self.first_repeats

    def specs_for_repeat(self, repeat: int) -> list[dict]:
        """The trial specs of repeat ``repeat`` (seed ``seed + repeat``), in run order."""
        seed = None if self.seed is None else self.seed + repeat
        return [coalition_spec(index, coalition, repeat=repeat, seed=seed)
                for index, coalition in enumerate(self.coalitions())]

    def initialize(self) -> None:
        self.trial_buffer, self._issued = [], set()
        for repeat in range(self.first_repeats):
            self._issue(self.specs_for_repeat(repeat))
        self._produced = self.first_repeats

    def _next_specs(self, records: list) -> list[dict]:
        """The next whole repeat, while anything :meth:`judged_values` gives is undetermined."""
        from maggy import statistics  # a leaf module of plain functions (docs/architecture.md)

        deltas, _ = statistics.paired_deltas(records, self.direction)
        coalitions = self.coalitions()
        values = {frozenset(removed_label(c) for c in coalitions[index]): by_repeat
                  for index, by_repeat in deltas.items() if index < len(coalitions)}
        return self.specs_for_repeat(self._produced) if self._still_open(self.judged_values(values)) else []
