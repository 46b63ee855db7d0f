"""The vocabulary of trials: specs, statuses, directions and labels (docs/architecture.md).

A trial spec is the plain, JSON-serialisable description of one trial. This module sits in
the lowest layer so that the declaration, the runtime (``core/``) and the results all speak
the same words: one :class:`TrialStatus`, one :func:`check_direction`, one way to label
the layers a trial removes (:func:`layer_label`) and the component it leaves out
(:func:`component_label`).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

__all__ = [
    "TrialStatus", "DIRECTIONS", "check_direction", "make_spec", "spec_key", "describe",
    "layer_label", "component_label", "spec_label", "as_list", "listed", "removed_labels",
]


class TrialStatus(str, enum.Enum):
    """How a trial ended.

    A ``str``, so journals, ``result.json`` and DataFrame columns hold the plain words and
    ``df.status == "finished"`` keeps working.

    Example:
        >>> TrialStatus.EARLY_STOPPED == "early_stopped", f"{TrialStatus.FAILED}"
        (True, 'failed')
    """

    FINISHED = "finished"
    EARLY_STOPPED = "early_stopped"
    FAILED = "failed"

    # The value, not "TrialStatus.FAILED", in messages and f-strings on every Python version.
    __str__ = str.__str__
    __format__ = str.__format__


#: The optimisation directions: which way the metric is better.
DIRECTIONS = ("min", "max")


def check_direction(direction: Any, name: str = "direction") -> str:
    """Validate an optimisation direction.

    Args:
        direction: ``"min"`` or ``"max"``.
        name: what the error message calls the value, e.g. ``"direction in 'config.json'"``.

    Returns:
        The direction, unchanged.

    Raises:
        ValueError: for anything else.

    Example:
        >>> check_direction("max")
        'max'
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"{name} must be 'min' or 'max', got {direction!r}")
    return direction


def layer_label(layers: Any) -> Optional[str]:
    """How the layers a trial removes read in summaries: ``2``, ``[2, 3]``, ``encoder.layers.*``.

    Args:
        layers: a layer identifier (int position, str name, ``{"prefix": name}``) or a list
            of them; ``None`` when the trial removes no layer.

    Returns:
        One identifier as itself, several in brackets; a prefix gains ``.*`` (``*`` when it
        ends in ``.`` already). ``None`` for ``None``.

    Example:
        >>> layer_label([2, 3]), layer_label({"prefix": "encoder.layers."}), layer_label(["fc"])
        ('[2, 3]', 'encoder.layers.*', 'fc')
    """
    if layers is None:
        return None
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    names = [_prefix_label(x["prefix"]) if isinstance(x, Mapping) else str(x) for x in layers]
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


def _prefix_label(prefix: str) -> str:
    return f"{prefix}*" if prefix.endswith(".") else f"{prefix}.*"


def component_label(feature: Any = None, layers: Optional[str] = None, model: Any = None) -> str:
    """What a trial leaves out, as its component reads in tables: ``feature age, layer [2, 3]``.

    Args:
        feature: the removed feature, or ``None``.
        layers: the :func:`layer_label` of the removed layers, or ``None``.
        model: the custom model used instead of the base model, or ``None``.

    Returns:
        The parts that are not ``None`` joined by ``", "``; ``"base"`` when nothing is
        left out.

    Example:
        >>> component_label(feature="age"), component_label(layers="[4, 5]"), component_label()
        ('feature age', 'layer [4, 5]', 'base')
    """
    parts = [
        f"{kind} {value}"
        for kind, value in (("feature", feature), ("layer", layers), ("model", model))
        if value is not None
    ]
    return ", ".join(parts) if parts else "base"

#: Keys that define what a trial does; the trial id is a hash of them.
SPEC_KEYS = ("ablated_feature", "ablated_layers", "custom_model", "infer_activation", "repeat")


def spec_key(spec: dict) -> str:
    """A stable string identifying what a trial does (used to match trials on resume)."""
    return json.dumps({k: spec.get(k) for k in SPEC_KEYS}, sort_keys=True)


def make_spec(
    index: int,
    ablated_feature: Optional[str] = None,
    ablated_layers: Optional[list] = None,
    layer_label: Optional[str] = None,
    custom_model: Optional[str] = None,
    infer_activation: Union[bool, list] = False,
    repeat: int = 0,
    seed: Optional[int] = None,
    removed: Optional[list] = None,
) -> dict[str, Any]:
    """Builds a trial spec; its ``trial_id`` is a short hash of what it ablates.

    A trial that removes several components holds a list in ``ablated_feature`` (and
    ``custom_model``) and the union of their identifiers in ``ablated_layers``
    (:func:`maggy.ablation.ablator.coalitions.coalition_spec` builds such specs).
    ``removed``, the labels of what the trial removes, is not part of the id; without it,
    the trial counts as removing one component (:func:`removed_labels`).

    Example:
        >>> make_spec(1, ablated_layers=[2], layer_label="2")["layer_label"]
        '2'
    """
    spec = {
        "index": index,
        "ablated_feature": ablated_feature,
        "ablated_layers": ablated_layers,
        "layer_label": layer_label,
        "custom_model": custom_model,
        # a list (one flag per layer identifier) when the removed components disagree
        "infer_activation": list(infer_activation) if isinstance(infer_activation, list) else bool(infer_activation),
        "repeat": repeat,
        "seed": seed,
    }
    spec["removed"] = list(removed) if removed is not None else removed_labels(spec)
    digest = hashlib.sha1(spec_key(spec).encode()).hexdigest()[:8]
    spec["trial_id"] = f"t{index:03d}-{digest}" if repeat == 0 else f"t{index:03d}r{repeat}-{digest}"
    return spec


def spec_label(spec: Mapping[str, Any]) -> str:
    """The :func:`component_label` of a trial spec or record.

    Its layers read as its ``layer_label``, else as the :func:`layer_label` of its
    ``ablated_layers``.

    Example:
        >>> spec_label({"ablated_layers": [{"prefix": "encoder.layers."}]})
        'layer encoder.layers.*'
    """
    layers = spec.get("layer_label") or layer_label(spec.get("ablated_layers"))
    # A trial removing several features (or naming several models) lists them: "[x1, x2]".
    feature, model = (listed(spec.get(key)) or None for key in ("ablated_feature", "custom_model"))
    return component_label(feature, layers, model)


def listed(value: Any) -> Any:
    """A spec field holding several items (a multi-component trial) as one string: ``"[x1, x2]"``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return value


def describe(spec: Mapping[str, Any]) -> str:
    """One line saying what the trial leaves out, e.g. ``layer [2, 3]`` or ``base``.

    The :func:`spec_label` of the spec, plus the repeat when there is one.

    Example:
        >>> describe(make_spec(3, ablated_feature="age", repeat=1))
        'feature age (repeat 1)'
    """
    removed = spec.get("removed") or []
    # A trial removing several components (pairs, Shapley) names each: "feature x1 + layer 2".
    text = " + ".join(removed) if len(removed) > 1 else spec_label(spec)
    if spec.get("repeat"):
        text += f" (repeat {spec['repeat']})"
    return text


def as_list(value: Any) -> list:
    """A spec field that holds one item or a list of them (several components), as a list.

    Example:
        >>> as_list("x1"), as_list(["x1", "x2"]), as_list(None)
        (['x1'], ['x1', 'x2'], [])
    """
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def removed_labels(record: Mapping[str, Any]) -> list[str]:
    """What a trial removes, as component labels (``[]`` for the base trial).

    The record's ``removed`` when it has one; otherwise (journals written before that key
    existed, trials of the one-class API) the trial counts as one component: its
    :func:`spec_label`, e.g. ``["feature age"]`` or ``["feature age, layer 2"]``.

    Example:
        >>> removed_labels({"ablated_feature": "age"}), removed_labels({"removed": []})
        (['feature age'], [])
    """
    if record.get("removed") is not None:
        return list(record["removed"])
    label = spec_label(record)
    return [] if label == "base" else [label]
