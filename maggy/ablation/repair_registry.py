"""The repair-rule registry: one source of truth for how each layer type is re-sized.

A :class:`RepairRule` says which input width a module was built for, where that width sits in
the tensor about to enter it, and how to rebuild the module for another width while keeping
every other constructor argument. The built-in rules are defined in
:mod:`maggy.ablation.repair_rules` and installed by this module on first lookup, so what
:func:`find_repair_rule` answers does not depend on which modules were imported before.

User rules are scoped to the call or the experiment that uses them: ``ablate(..., rules=)``
and ``study.model.add_repair_rule``. :func:`register_repair_rule` adds a rule to this
process's table, which interactive ``ablate()`` calls consult and which ``lagom()`` copies
into the experiment when it starts; executors only ever apply the experiment's copy (Spark
reuses its Python workers, so a process-wide table there would outlive the experiment).

Lookup walks the module's class MRO twice: first through the user rules, then through the
built-in ones, so a user rule for a base class wins over a built-in rule for a more specific
class, and unregistering a user override restores the built-in behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

__all__ = ["RepairRule", "register_repair_rule", "unregister_repair_rule", "find_repair_rule", "user_rules",
           "check_rules"]


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
    """This process's user rules and the built-in rules, looked up along the class MRO, users first."""

    def __init__(self) -> None:
        self.user: dict[type, RepairRule] = {}
        self._builtin: Optional[dict[type, RepairRule]] = None

    @property
    def builtin(self) -> dict[type, RepairRule]:
        """The built-in rules by class, installed on first use."""
        if self._builtin is None:
            # Imported here, not at the top: repair_rules imports RepairRule from this module.
            from maggy.ablation.repair_rules import BUILTIN_RULES

            self._builtin = {cls: rule for classes, rule in BUILTIN_RULES for cls in classes}
        return self._builtin

    def lookup(self, module_type: type, user: Optional[Mapping[type, RepairRule]] = None,
               ) -> RepairRule | None:
        for table in (self.user if user is None else user, self.builtin):
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


def check_rules(rules: Any, where: str = "rules") -> dict[type, RepairRule]:
    """``rules`` as a dict, after checking that it maps ``nn.Module`` subclasses to repair rules.

    Args:
        rules: a mapping ``{module class: RepairRule}``.
        where: the argument's name, for the error message.

    Returns:
        A new dict with the same entries.

    Raises:
        TypeError: ``rules`` is not a mapping, or holds a key or value of the wrong kind.

    Example:
        >>> check_rules({nn.Linear: find_repair_rule(nn.Linear)}) == {nn.Linear: find_repair_rule(nn.Linear)}
        True
    """
    if not isinstance(rules, Mapping):
        raise TypeError(f"{where} must be a dict {{module class: RepairRule}}, got {rules!r}")
    for module_type, rule in rules.items():
        _check_module_type(module_type)
        if not isinstance(rule, RepairRule):
            raise TypeError(f"{where}[{module_type.__name__}] must be a RepairRule, got {rule!r}")
    return dict(rules)


def register_repair_rule(module_type: type[nn.Module], rule: RepairRule) -> None:
    """Register, in this process, how surgery repairs ``module_type`` (and its subclasses without own rule).

    A rule registered here takes precedence over the built-in rules, including the one for
    the same class, until :func:`unregister_repair_rule` removes it. It applies to
    ``ablate()`` calls without ``rules=``, and to each ``lagom()`` started while it is
    registered: the experiment takes a copy to its executors. To scope a rule to one study,
    use ``study.model.add_repair_rule`` instead.

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


def find_repair_rule(module_type: type[nn.Module],
                     rules: Optional[Mapping[type, RepairRule]] = None) -> RepairRule | None:
    """The rule surgery uses for ``module_type``, or ``None`` if it has none.

    Args:
        module_type: a module class.
        rules: the user rules to consult, e.g. one experiment's; ``None`` consults the rules
            registered in this process with :func:`register_repair_rule`.

    Returns:
        The first user rule along the class MRO, else the first built-in one, else ``None``.

    Example:
        >>> find_repair_rule(nn.Linear).expected(nn.Linear(6, 2))
        6
    """
    return _REGISTRY.lookup(module_type, rules)


def user_rules() -> dict[type, RepairRule]:
    """A copy of the rules registered in this process (what ``lagom()`` gives its experiment).

    Example:
        >>> user_rules()
        {}
    """
    return dict(_REGISTRY.user)
