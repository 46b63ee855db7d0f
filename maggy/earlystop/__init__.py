"""Early-stopping rules: plain-data policies the driver consults on heartbeats.

``make_policy`` turns the ``es_policy`` / ``es_min`` fields of ``AblationConfig`` into a rule.
"""

from __future__ import annotations

import inspect

from maggy.earlystop.abstract import AbstractEarlyStop, Decision
from maggy.earlystop.base_relative import DEFAULT_MARGIN, DEFAULT_PATIENCE, BaseRelativeRule
from maggy.earlystop.median import DEFAULT_MIN_FINISHED, MedianEarlyStop, MedianStoppingRule
from maggy.earlystop.nostop import NoEarlyStop

__all__ = [
    "AbstractEarlyStop",
    "Decision",
    "DEFAULT_MIN_FINISHED",
    "MedianStoppingRule",
    "BaseRelativeRule",
    "DEFAULT_MARGIN",
    "DEFAULT_PATIENCE",
    "MedianEarlyStop",
    "NoEarlyStop",
    "POLICIES",
    "make_policy",
]

# Name -> class; names are what AblationConfig.es_policy accepts as strings.
POLICIES: dict[str, type[AbstractEarlyStop]] = {
    "median": MedianStoppingRule,
    "base": BaseRelativeRule,
    "none": NoEarlyStop,
}


def make_policy(
    es_policy: str | AbstractEarlyStop | type[AbstractEarlyStop] = "median",
    es_min: int | None = None,
    *,
    grace_steps: int = 0,
    margin: float = DEFAULT_MARGIN,
    patience: int = DEFAULT_PATIENCE,
) -> AbstractEarlyStop:
    """Build the early-stopping rule an experiment uses.

    Args:
        es_policy: ``"median"``, ``"base"`` or ``"none"`` (case-insensitive), an
            :class:`AbstractEarlyStop` instance (returned as is; the other arguments are then
            ignored), or a subclass (instantiated with ``min_finished=es_min`` and, when not
            0, ``grace_steps`` if it takes them; ``margin`` and ``patience`` go to subclasses
            of :class:`BaseRelativeRule` only).
        es_min: finished trials needed before the median rule applies; ``None`` means
            :data:`DEFAULT_MIN_FINISHED`.
        grace_steps: no decision before a trial reported this many values (``es_grace_steps``).
        margin: the base rule's relative margin (``es_margin``).
        patience: the base rule's consecutive trailing steps (``es_patience``).

    Returns:
        The rule.

    Raises:
        ValueError: for any other ``es_policy``, or an invalid ``es_min``.

    Example:
        >>> make_policy("median", 4)
        MedianStoppingRule(min_finished=4)
        >>> make_policy("none")
        NoEarlyStop()
        >>> make_policy("base", margin=0.1, patience=3)
        BaseRelativeRule(margin=0.1, patience=3, grace_steps=0)
    """
    if isinstance(es_policy, AbstractEarlyStop):
        return es_policy
    if isinstance(es_policy, str) and es_policy.lower() in POLICIES:
        es_policy = POLICIES[es_policy.lower()]
    if inspect.isclass(es_policy) and issubclass(es_policy, AbstractEarlyStop):
        if inspect.isabstract(es_policy):
            raise ValueError(f"es_policy {es_policy.__name__} is abstract: implement decide()")
        offered = {"min_finished": DEFAULT_MIN_FINISHED if es_min is None else es_min}
        if grace_steps:
            offered["grace_steps"] = grace_steps
        if issubclass(es_policy, BaseRelativeRule):
            # Only the base rule's family reads these: a user rule with its own `patience`
            # keeps its own default.
            offered.update(margin=margin, patience=patience)
        params = inspect.signature(es_policy).parameters
        return es_policy(**{name: value for name, value in offered.items() if name in params})
    raise ValueError(
        f"es_policy must be one of {sorted(POLICIES)}, an AbstractEarlyStop instance or "
        f"subclass, got {es_policy!r}"
    )
