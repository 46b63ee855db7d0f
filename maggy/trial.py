"""Trial specs: the plain, JSON-serialisable description of one trial (docs/architecture.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional

__all__ = ["make_spec", "spec_key", "describe"]

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
    infer_activation: bool = False,
    repeat: int = 0,
    seed: Optional[int] = None,
) -> dict[str, Any]:
    """Builds a trial spec; its ``trial_id`` is a short hash of what it ablates.

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
        "infer_activation": bool(infer_activation),
        "repeat": repeat,
        "seed": seed,
    }
    digest = hashlib.sha1(spec_key(spec).encode()).hexdigest()[:8]
    spec["trial_id"] = f"t{index:03d}-{digest}" if repeat == 0 else f"t{index:03d}r{repeat}-{digest}"
    return spec


def describe(spec: dict) -> str:
    """One line saying what the trial leaves out, e.g. ``layers [2, 3]`` or ``base``."""
    parts = []
    if spec.get("ablated_feature"):
        parts.append(f"feature {spec['ablated_feature']}")
    if spec.get("layer_label"):
        parts.append(f"layers {spec['layer_label']}")
    if spec.get("custom_model"):
        parts.append(f"model {spec['custom_model']}")
    text = ", ".join(parts) or "base"
    if spec.get("repeat"):
        text += f" (repeat {spec['repeat']})"
    return text
