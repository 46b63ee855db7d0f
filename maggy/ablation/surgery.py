"""Model surgery: remove layers from a PyTorch model and repair the shapes around them.

:func:`ablate` copies the model, removes the layers named by identifiers, and pushes one input
through the copy, rebuilding every module whose input width no longer matches what it was
built for (see :mod:`maggy.ablation.repair` for the per-type rules). :func:`resolve_layers`
turns identifiers into module names without copying anything, for the driver's pre-flight.

The repair pass (:func:`maggy.ablation.repair.repair_shapes`) restarts the forward after
each replacement, because PyTorch binds a call to the old module before its pre-hooks run.
A pre-flight builds every trial's model, so surgery is kept cheap: the copy leaves out the
removed modules (:mod:`maggy.ablation.model_copy`) and the passes run on an empty batch
first (:mod:`maggy.ablation.probe`); a ResNet-18 costs a fraction of one forward pass.
"""

from __future__ import annotations

import difflib
import numbers
from typing import Any, Callable, Iterable, Mapping, Optional

import torch
from torch import nn

from maggy.ablation.model_copy import copy_model
from maggy.ablation.probe import empty_batch
from maggy.ablation.repair import (
    RepairRule,
    register_repair_rule,
    repair_shapes,
    unregister_repair_rule,
)
from maggy.ablation.repair_registry import check_rules
from maggy.exceptions import AblationError

__all__ = [
    "ablate",
    "resolve_layers",
    "prefix",
    "RemovedLayer",
    "RepairRule",
    "register_repair_rule",
    "unregister_repair_rule",
]

_KINDS = ("an int (position in the flattened nn.Sequential), a str (a name from "
          "model.named_modules()) or {'prefix': str}")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class RemovedLayer(nn.Identity):
    """The ``nn.Identity`` put where a layer was removed outside an ``nn.Sequential``.

    Unlike ``nn.Identity`` it also accepts extra arguments (and ignores them), so it can
    stand in for a layer called as ``layer(x, src_mask=...)``, e.g. a transformer layer.

    Example:
        >>> RemovedLayer()(torch.ones(2), src_mask=None).shape
        torch.Size([2])
    """

    def forward(self, input: Any, *args: Any, **kwargs: Any) -> Any:
        return input


def prefix(name: str) -> dict[str, str]:
    """Identifier for every module whose name starts with ``name`` (outermost matches).

    Args:
        name: the start of the module names, e.g. ``"encoder.layers"`` or ``"fc"``.

    Returns:
        ``{"prefix": name}``, accepted wherever a layer identifier is.

    Example:
        >>> prefix("encoder.layers")
        {'prefix': 'encoder.layers'}
    """
    if not isinstance(name, str):
        raise TypeError(f"prefix name must be a str, got {name!r}")
    return {"prefix": name}


def _flatten(seq: nn.Sequential, base: str = "") -> list[str]:
    """Names of the leaf entries of a Sequential, nested Sequentials flattened depth-first."""
    names = []
    for key, child in seq._modules.items():
        name = f"{base}{key}"
        if isinstance(child, nn.Sequential):
            names += _flatten(child, f"{name}.")
        elif child is not None:
            names.append(name)
    return names


def _is_activation(module: nn.Module) -> bool:
    # MultiheadAttention lives in torch.nn.modules.activation too but is a layer.
    return not isinstance(module, nn.MultiheadAttention) and any(
        cls.__module__ == "torch.nn.modules.activation" for cls in type(module).__mro__
    )


def _covers(removed: Iterable[str], name: str) -> bool:
    return any(r == "" or name == r or name.startswith(f"{r}.") for r in removed)


def _identifiers(layers: Any) -> list[Any]:
    if layers is None:
        return []
    return list(layers) if isinstance(layers, (list, tuple)) else [layers]


def _suggest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.5)
    if close:
        return f"did you mean {', '.join(map(repr, close))}?"
    return f"module names look like {', '.join(map(repr, names[:6]))}"


def resolve_layers(model: nn.Module, layers: Any, infer_activation: bool = False,
                   *, trial: str | None = None) -> list[str]:
    """Module names that ``ablate(model, layers, ...)`` would remove; copies nothing.

    Args:
        model: the base model.
        layers: ``None``/``[]`` (nothing), one identifier, or a list of identifiers removed
            together. Identifiers: ``int`` (position in the model's ``nn.Sequential``, nested
            Sequentials flattened depth-first), ``str`` (a name from ``named_modules()``) or
            ``{"prefix": str}`` (every module whose name starts with it, outermost only).
        infer_activation: also remove the activation directly following a removed layer.
        trial: trial id to put in front of error messages.

    Returns:
        The names to remove, in model order; a removed module's descendants are not listed.

    Raises:
        TypeError: an identifier of another kind (booleans are not ints).
        AblationError: an unknown name, an index out of range, an int on a model that is not
            an ``nn.Sequential``, a prefix matching nothing, or every layer removed.

    Example:
        >>> mlp = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 1))
        >>> resolve_layers(mlp, 0, infer_activation=True)
        ['0', '1']
    """
    where = f"trial {trial}: " if trial is not None else ""
    kind = type(model).__name__
    named = dict(model.named_modules(remove_duplicate=False))
    order = {name: i for i, name in enumerate(named)}
    names = [n for n in named if n]
    flat = _flatten(model) if isinstance(model, nn.Sequential) else None
    wanted: set[str] = set()
    for ident in _identifiers(layers):
        if isinstance(ident, numbers.Integral) and not isinstance(ident, bool):
            if flat is None:
                raise AblationError(
                    f"{where}layer {ident}: int identifiers only work for nn.Sequential models "
                    f"and {kind} is not one; use module names instead, e.g. "
                    f"{', '.join(map(repr, names[:6]))}")
            if not 0 <= ident < len(flat):
                raise AblationError(
                    f"{where}layer index {ident} is out of range: the model is an nn.Sequential "
                    f"of {len(flat)} layers (nested Sequentials flattened), so valid indices "
                    f"are 0..{len(flat) - 1}")
            wanted.add(flat[int(ident)])
        elif isinstance(ident, str):
            if ident not in named:
                raise AblationError(
                    f"{where}no module named {ident!r} in {kind}; {_suggest(ident, names)}")
            wanted.add(ident)
        elif isinstance(ident, dict) and set(ident) == {"prefix"} and isinstance(
                ident["prefix"], str):
            start = ident["prefix"]
            matches = {n for n in names if n.startswith(start) and n != start}
            if not matches:
                raise AblationError(
                    f"{where}prefix {start!r} matches no module in {kind}; "
                    f"{_suggest(start, names)}")
            wanted |= matches
        else:
            raise TypeError(
                f"{where}layer identifier {ident!r} ({type(ident).__name__}) is not valid; "
                f"expected {_KINDS}")
    removed = {n for n in wanted if not _covers(wanted - {n}, n)}
    if infer_activation:
        following = [_next_layer(model, name, flat) for name in removed]
        removed |= {n for n in following
                    if n is not None and _is_activation(named[n]) and not _covers(removed, n)}
    leaves = [n for n, m in named.items()
              if n and not any(True for _ in m.children()) and not isinstance(m, _CONTAINERS)]
    if "" in removed or (removed and all(_covers(removed, n) for n in leaves)):
        raise AblationError(
            f"{where}removing {layers!r} would remove every layer of {kind}; keep at least one")
    return sorted(removed, key=order.__getitem__)


def _next_layer(model: nn.Module, name: str, flat: list[str] | None) -> str | None:
    """The entry after ``name``: in the flattened Sequential, else the next sibling."""
    if flat is not None and name in flat:
        i = flat.index(name)
        return flat[i + 1] if i + 1 < len(flat) else None
    parent, _, key = name.rpartition(".")
    keys = [k for k, m in model.get_submodule(parent)._modules.items() if m is not None]
    i = keys.index(key)
    return f"{parent}.{keys[i + 1]}".lstrip(".") if i + 1 < len(keys) else None


def _short(module: nn.Module) -> str:
    lines = repr(module).splitlines()
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip('(')}(...)"


def _label(model: nn.Module, name: str) -> str:
    """Position in the flattened Sequential where there is one (as the user counts), else name."""
    flat = _flatten(model) if isinstance(model, nn.Sequential) else []
    return str(flat.index(name)) if name in flat else name or "(the model itself)"


def _remove(model: nn.Module, names: list[str]) -> None:
    keys_by_parent: dict[str, list[str]] = {}
    for name in names:
        parent, _, key = name.rpartition(".")
        keys_by_parent.setdefault(parent, []).append(key)
    # Look every parent up before changing any: dropping entries renumbers a Sequential.
    parents = {p: model.get_submodule(p) for p in keys_by_parent}
    for parent_name, keys in keys_by_parent.items():
        parent = parents[parent_name]
        if isinstance(parent, nn.Sequential):
            numbered = list(parent._modules) == [str(i) for i in range(len(parent._modules))]
            for key in keys:
                delattr(parent, key)
            if numbered:  # named (OrderedDict) Sequentials keep their names
                parent._modules = type(parent._modules)(
                    (str(i), m) for i, m in enumerate(parent._modules.values()))
        else:
            for key in keys:
                setattr(parent, key, RemovedLayer())


def _sample(model: nn.Module, input_shape: Any, sample_input: Any, where: str,
            ) -> tuple[Any, Any]:
    """The sample for shape repair (a function where it is built on demand) and its probe."""
    if sample_input is not None:
        if not isinstance(sample_input, (torch.Tensor, tuple, list, dict)):
            raise TypeError(f"{where}sample_input must be a tensor, a tuple/list of model arguments or "
                            f"a dict of keyword arguments, got {type(sample_input).__name__}")
        return sample_input, empty_batch(sample_input)
    if not isinstance(input_shape, (tuple, list, torch.Size)) or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0
            for d in input_shape):
        raise TypeError(f"{where}input_shape must be a tuple of positive ints, the shape of one sample "
                        f"without the batch dimension (e.g. (6,) or (3, 32, 32)), got "
                        f"{input_shape!r}")
    like = next((t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()),
                torch.empty(0))
    shape = tuple(map(int, input_shape))

    def sample() -> torch.Tensor:
        # A private generator leaves the global RNG, which seeds the trials, untouched.
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((2, *shape), generator=generator)
        return x.to(device=like.device, dtype=like.dtype)

    return sample, torch.empty((0, *shape), device=like.device, dtype=like.dtype)


def ablate(model: nn.Module, layers: Any = None, input_shape: Any = None,
           sample_input: Any = None, infer_activation: bool = False, verbose: bool = True,
           trial: str | None = None, *, rules: Optional[Mapping[type, RepairRule]] = None,
           log: Optional[Callable[[str], None]] = None) -> nn.Module:
    """Copy ``model``, remove ``layers`` and repair the shapes around them.

    In an ``nn.Sequential`` (at any depth) removed entries are dropped and the rest
    renumbered; anywhere else a removed module is replaced by :class:`RemovedLayer` (an
    ``nn.Identity``). With ``input_shape`` or ``sample_input``, one input is then pushed
    through the copy and every module whose input width changed is rebuilt for the new width
    (freshly initialised, other settings kept); untouched modules keep their weights. Without
    either, shapes are not checked. The input is tried with an empty batch first, which
    costs a small fraction of a forward pass; where that cannot decide, the real batch of 2
    (or ``sample_input``) is used, so error messages always name its shapes.

    Args:
        model: the base model; it is not modified.
        layers: what to remove, as for :func:`resolve_layers`; ``None`` removes nothing but
            still repairs, e.g. the first layer after a feature was dropped from the input.
        input_shape: shape of one input sample without the batch dimension, e.g. ``(6,)``;
            a random float batch of 2 is built from it.
        sample_input: a real input batch (tensor, tuple of arguments, or dict of keyword
            arguments), used as-is, e.g. int64 token ids; takes precedence over input_shape.
        infer_activation: also remove the activation directly following a removed layer.
        verbose: report each removal and repair on one line (to ``log``).
        trial: trial id to put in front of error messages.
        rules: repair rules ``{module class: RepairRule}`` for this call, used besides (and
            before) the built-in ones; ``None`` uses the rules registered in this process
            with :func:`register_repair_rule`.
        log: receives each line of the report; ``None`` prints it, for interactive use.
            maggy's trials pass their own, so a trial's report goes to its log.

    Returns:
        The ablated, repaired copy, with the training flags of ``model``.

    Raises:
        TypeError: an identifier, ``input_shape``, ``sample_input`` or ``rules`` of the
            wrong kind.
        AblationError: an identifier that matches nothing, every layer removed, or a shape
            that cannot be repaired; the message names the module and the shapes.

    Example:
        >>> titanic = nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
        ...                         nn.Linear(32, 1), nn.Sigmoid())
        >>> ablate(titanic, [2, 3], input_shape=(6,))[2]
        Ablating layer 3 - ReLU()
        Ablating layer 2 - Linear(in_features=64, out_features=32, bias=True)
        Repaired layer 2 - Linear(in_features=32, out_features=1, bias=True) -> Linear(in_features=64, out_features=1, bias=True)
        Linear(in_features=64, out_features=1, bias=True)
        >>> lines = []
        >>> _ = ablate(titanic, 5, input_shape=(6,), log=lines.append)
        >>> lines
        ['Ablating layer 5 - Sigmoid()']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if rules is not None:
        rules = check_rules(rules)
    if log is None:
        log = print
    names = resolve_layers(model, layers, infer_activation, trial=trial)
    where = f"trial {trial}: " if trial is not None else ""
    sample = probe = None
    if input_shape is not None or sample_input is not None:
        sample, probe = _sample(model, input_shape, sample_input, where)
    ablated = copy_model(model, drop=names)  # removed modules are not worth copying
    if verbose:
        for name in reversed(names):
            log(f"Ablating layer {_label(model, name)} - {_short(model.get_submodule(name))}")
    _remove(ablated, names)
    if sample is None:
        return ablated

    def report(current: nn.Module, name: str, old: nn.Module, new: nn.Module) -> None:
        log(f"Repaired layer {_label(current, name)} - {_short(old)} -> {_short(new)}")

    return repair_shapes(ablated, sample, where, report if verbose else None, probe=probe,
                         rules=rules)
