"""The repair-rule registry: one source of truth for how each layer type is re-sized.

A :class:`RepairRule` says which input width a module was built for, where that width sits in
the tensor about to enter it, and how to rebuild the module for another width while keeping
every other constructor argument. Users add rules for their own layer types with
:func:`register_repair_rule`; the built-in rules live in :mod:`maggy.ablation.repair_rules`.

Lookup walks the module's class MRO twice: first through the rules users registered, then
through the built-in ones, so a user rule for a base class wins over a built-in rule for a
more specific class, and unregistering a user override restores the built-in behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

__all__ = ["RepairRule", "register_repair_rule", "unregister_repair_rule", "find_repair_rule", "user_rules"]


@dataclass(frozen=True)
class RepairRule:
    """How to check one module type's input width and rebuild it for another width.

    Attributes:
        expected: ``module -> width`` the module was built for (an int, or a tuple when the
            width spans several dimensions, as for ``nn.LayerNorm``).
        rebuild: ``(module, width) -> nn.Module``, a freshly initialised module for the new
            width with every other setting of the old one. Raise :class:`AblationError` when
            no such module exists (surgery adds the module name and the shapes).
        incoming: where the width sits in the tensor about to enter the module: a dimension
            index (negative counts from the end; default ``-1``, the last dimension), or a
            function ``(module, tensor) -> width`` returning ``None`` to skip the check.

    Example:
        >>> class Scale(nn.Module):
        ...     def __init__(self, width):
        ...         super().__init__()
        ...         self.weight = nn.Parameter(torch.ones(width))
        ...     def forward(self, x):
        ...         return x * self.weight
        >>> rule = RepairRule(expected=lambda m: m.weight.shape[0],
        ...                   rebuild=lambda m, width: Scale(width))
        >>> rule.width(Scale(4), torch.zeros(2, 3))
        3
    """

    expected: Callable[[nn.Module], Any]
    rebuild: Callable[[nn.Module, Any], nn.Module]
    incoming: int | Callable[[nn.Module, torch.Tensor], Any] = -1

    def __post_init__(self) -> None:
        for field in ("expected", "rebuild"):
            if not callable(getattr(self, field)):
                raise TypeError(
                    f"RepairRule.{field} must be callable, got {getattr(self, field)!r}"
                )
        if isinstance(self.incoming, bool) or not (
            isinstance(self.incoming, int) or callable(self.incoming)
        ):
            raise TypeError(
                "RepairRule.incoming must be a dimension index (int) or a function "
                f"(module, tensor) -> width, got {self.incoming!r}"
            )

    def width(self, module: nn.Module, tensor: torch.Tensor) -> Any | None:
        """Width carried by ``tensor`` for ``module``; ``None`` when it cannot be read.

        Args:
            module: the module about to run.
            tensor: its first tensor input.

        Returns:
            The width to compare with ``expected(module)``, or ``None``.

        Example:
            >>> RepairRule(lambda m: 0, lambda m, w: m, incoming=1).width(None, torch.zeros(2, 5))
            5
        """
        if callable(self.incoming):
            return self.incoming(module, tensor)
        if not -tensor.dim() <= self.incoming < tensor.dim():
            return None
        return tensor.shape[self.incoming]


class _Registry:
    """User rules and built-in rules, looked up along the class MRO, users first."""

    def __init__(self) -> None:
        self.user: dict[type, RepairRule] = {}
        self.builtin: dict[type, RepairRule] = {}

    def lookup(self, module_type: type) -> RepairRule | None:
        for table in (self.user, self.builtin):
            for cls in module_type.__mro__:
                if cls in table:
                    return table[cls]
        return None


_REGISTRY = _Registry()


def _check_module_type(module_type: Any) -> None:
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(
            f"module_type must be a subclass of torch.nn.Module, got {module_type!r}"
        )


def register_repair_rule(module_type: type[nn.Module], rule: RepairRule) -> None:
    """Register how surgery repairs ``module_type`` (and its subclasses without own rule).

    A rule registered here takes precedence over the built-in rules, including the one for
    the same class, until :func:`unregister_repair_rule` removes it.

    Args:
        module_type: the layer class, a subclass of ``torch.nn.Module``.
        rule: the :class:`RepairRule` to use for it.

    Raises:
        TypeError: ``module_type`` is not an ``nn.Module`` subclass or ``rule`` not a
            :class:`RepairRule`.

    Example:
        >>> class Dense(nn.Linear):  # a layer type of the user's own
        ...     pass
        >>> rule = RepairRule(expected=lambda m: m.in_features,
        ...                   rebuild=lambda m, width: Dense(width, m.out_features))
        >>> register_repair_rule(Dense, rule)
        >>> find_repair_rule(Dense) is rule
        True
        >>> unregister_repair_rule(Dense)  # leave the registry as it was
    """
    _check_module_type(module_type)
    if not isinstance(rule, RepairRule):
        raise TypeError(f"rule must be a RepairRule, got {rule!r}")
    _REGISTRY.user[module_type] = rule


def unregister_repair_rule(module_type: type[nn.Module]) -> None:
    """Remove the user rule for ``module_type``; built-in rules stay in place.

    Args:
        module_type: a class passed to :func:`register_repair_rule` before.

    Raises:
        KeyError: no user rule is registered for ``module_type``.

    Example:
        >>> class Wide(nn.Linear):
        ...     pass
        >>> register_repair_rule(Wide, RepairRule(expected=lambda m: 0, rebuild=lambda m, w: m))
        >>> unregister_repair_rule(Wide)
        >>> find_repair_rule(Wide) is find_repair_rule(nn.Linear)  # the built-in rule again
        True
    """
    _check_module_type(module_type)
    if module_type not in _REGISTRY.user:
        raise KeyError(f"no user repair rule is registered for {module_type.__name__}")
    del _REGISTRY.user[module_type]


def find_repair_rule(module_type: type[nn.Module]) -> RepairRule | None:
    """The rule surgery uses for ``module_type``, or ``None`` if it has none.

    Args:
        module_type: a module class.

    Returns:
        The first user rule along the class MRO, else the first built-in one, else ``None``.

    Example:
        >>> find_repair_rule(nn.Linear).expected(nn.Linear(6, 2))
        6
    """
    return _REGISTRY.lookup(module_type)


def user_rules() -> dict[type, RepairRule]:
    """The rules users registered in this process (what the driver ships to its executors)."""
    return dict(_REGISTRY.user)
