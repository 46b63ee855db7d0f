"""Early-stopping rules: plain-data policies the driver consults on heartbeats.

``make_policy`` turns the ``es_policy`` / ``es_min`` fields of ``AblationConfig`` into a rule.
"""

from __future__ import annotations

import inspect

from maggy.earlystop.abstract import AbstractEarlyStop, Decision
from maggy.earlystop.median import DEFAULT_MIN_FINISHED, MedianEarlyStop, MedianStoppingRule
from maggy.earlystop.nostop import NoEarlyStop

__all__ = [
    "AbstractEarlyStop",
    "Decision",
    "DEFAULT_MIN_FINISHED",
    "MedianStoppingRule",
    "MedianEarlyStop",
    "NoEarlyStop",
    "POLICIES",
    "make_policy",
]

# Name -> class; names are what AblationConfig.es_policy accepts as strings.
POLICIES: dict[str, type[AbstractEarlyStop]] = {
    "median": MedianStoppingRule,
    "none": NoEarlyStop,
}


def make_policy(
    es_policy: str | AbstractEarlyStop | type[AbstractEarlyStop] = "median",
    es_min: int | None = None,
) -> AbstractEarlyStop:
    """Build the early-stopping rule an experiment uses.

    Args:
        es_policy: ``"median"`` or ``"none"`` (case-insensitive), an
            :class:`AbstractEarlyStop` instance (returned as is; ``es_min`` is then ignored),
            or a subclass (instantiated, with ``min_finished=es_min`` if it takes that
            argument and ``es_min`` is given).
        es_min: finished trials needed before the median rule applies; ``None`` means
            :data:`DEFAULT_MIN_FINISHED`.

    Returns:
        The rule.

    Raises:
        ValueError: for any other ``es_policy``, or an invalid ``es_min``.

    Example:
        >>> make_policy("median", 4)
        MedianStoppingRule(min_finished=4)
        >>> make_policy("none")
        NoEarlyStop()
    """
    if isinstance(es_policy, AbstractEarlyStop):
        return es_policy
    if isinstance(es_policy, str) and es_policy.lower() in POLICIES:
        es_policy = POLICIES[es_policy.lower()]
    if inspect.isclass(es_policy) and issubclass(es_policy, AbstractEarlyStop):
        if inspect.isabstract(es_policy):
            raise ValueError(f"es_policy {es_policy.__name__} is abstract: implement decide()")
        if "min_finished" in inspect.signature(es_policy).parameters:
            min_finished = DEFAULT_MIN_FINISHED if es_min is None else es_min
            return es_policy(min_finished=min_finished)
        return es_policy()
    raise ValueError(
        f"es_policy must be one of {sorted(POLICIES)}, an AbstractEarlyStop instance or "
        f"subclass, got {es_policy!r}"
    )
