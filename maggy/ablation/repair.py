"""Shape repair: the per-layer-type rules and the pass that applies them.

One registry, keyed by module class, is the single source of truth for shape repair. A
:class:`RepairRule` says which input width a module was built for, where that width sits in
the tensor about to enter it, and how to rebuild the module for another width while keeping
every other constructor argument. :func:`maggy.ablation.surgery.ablate` looks rules up here;
users add rules for their own layer types with :func:`register_repair_rule`.
:func:`repair_shapes` is the pass that applies them.

Lookup walks the module's class MRO twice: first through the rules users registered, then
through the built-in ones, so a user rule for a base class wins over a built-in rule for a
more specific class, and unregistering a user override restores the built-in behaviour.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from maggy.exceptions import AblationError

__all__ = [
    "RepairRule",
    "register_repair_rule",
    "unregister_repair_rule",
    "find_repair_rule",
    "repair_shapes",
]


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
        >>> register_repair_rule(Scale, RepairRule(
        ...     expected=lambda m: m.weight.shape[0],
        ...     rebuild=lambda m, width: Scale(width)))
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
        >>> unregister_repair_rule(Scale)
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


# ----------------------------------------------------------------------------- built-ins


def _factory(module: nn.Module) -> dict[str, Any]:
    """device/dtype of the old weights, so the new module lives where the old one did."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return {"device": tensor.device, "dtype": tensor.dtype}
    return {}


def _new(module: nn.Module, **kwargs: Any) -> nn.Module:
    # type(module), not the registered class, so subclasses with the same constructor
    # (e.g. MultiheadAttention's NonDynamicallyQuantizableLinear) keep their type.
    return type(module)(**kwargs, **_factory(module))


def _require_divides(what: str, divisor: int, width: int) -> None:
    if width % divisor:
        raise AblationError(f"{what}={divisor} does not divide the new width {width}")


def _channels(spatial_dims: int) -> Callable[[nn.Module, torch.Tensor], int]:
    """Channel dim is 1 for batched input (N, C, *spatial), 0 for unbatched (C, *spatial)."""
    return lambda module, x: x.shape[1 if x.dim() == spatial_dims + 2 else 0]


def _linear(m: nn.Linear, width: int) -> nn.Module:
    return _new(m, in_features=width, out_features=m.out_features, bias=m.bias is not None)


def _conv_kwargs(m: nn.Module, width: int) -> dict[str, Any]:
    _require_divides("groups", m.groups, width)
    return dict(
        in_channels=width, out_channels=m.out_channels, kernel_size=m.kernel_size,
        stride=m.stride, padding=m.padding, dilation=m.dilation, groups=m.groups,
        bias=m.bias is not None, padding_mode=m.padding_mode,
    )


def _conv(m: nn.Module, width: int) -> nn.Module:
    return _new(m, **_conv_kwargs(m, width))


def _conv_transpose(m: nn.Module, width: int) -> nn.Module:
    return _new(m, **_conv_kwargs(m, width), output_padding=m.output_padding)


def _norm(m: nn.Module, width: int) -> nn.Module:
    """BatchNorm and InstanceNorm share their constructor."""
    return _new(
        m, num_features=width, eps=m.eps, momentum=m.momentum, affine=m.affine,
        track_running_stats=m.track_running_stats,
    )


def _group_norm(m: nn.GroupNorm, width: int) -> nn.Module:
    _require_divides("num_groups", m.num_groups, width)
    return _new(m, num_groups=m.num_groups, num_channels=width, eps=m.eps, affine=m.affine)


def _trailing(m: nn.Module, x: torch.Tensor) -> tuple[int, ...] | None:
    """LayerNorm/RMSNorm normalise over the last len(normalized_shape) dims."""
    n = len(m.normalized_shape)
    return tuple(x.shape[-n:]) if x.dim() >= n else None


def _layer_norm(m: nn.LayerNorm, width: tuple[int, ...]) -> nn.Module:
    # bias=False only where it was used: torch < 2.1 has no such argument.
    no_bias = {"bias": False} if m.elementwise_affine and m.bias is None else {}
    return _new(m, normalized_shape=width, eps=m.eps,
                elementwise_affine=m.elementwise_affine, **no_bias)


def _rms_norm(m: nn.Module, width: tuple[int, ...]) -> nn.Module:
    return _new(m, normalized_shape=width, eps=m.eps, elementwise_affine=m.elementwise_affine)


def _rnn(*extra: str) -> Callable[[nn.Module, int], nn.Module]:
    """RNN/LSTM/GRU rebuilders; ``extra`` names the arguments only that class takes."""

    def rebuild(m: nn.RNNBase, width: int) -> nn.Module:
        kwargs = {name: getattr(m, name) for name in extra}
        return _new(
            m, input_size=width, hidden_size=m.hidden_size, num_layers=m.num_layers,
            bias=m.bias, batch_first=m.batch_first, dropout=m.dropout,
            bidirectional=m.bidirectional, **kwargs,
        )

    return rebuild


def _attention(m: nn.MultiheadAttention, width: int) -> nn.Module:
    _require_divides("num_heads", m.num_heads, width)
    # Separate key/value widths stay as they were; shared ones follow the new embed_dim.
    kdim, vdim = (None, None) if m._qkv_same_embed_dim else (m.kdim, m.vdim)
    return _new(
        m, embed_dim=width, num_heads=m.num_heads, dropout=m.dropout,
        bias=m.in_proj_bias is not None, add_bias_kv=m.bias_k is not None,
        add_zero_attn=m.add_zero_attn, kdim=kdim, vdim=vdim, batch_first=m.batch_first,
    )


def _transformer_layer(m: nn.Module, width: int) -> nn.Module:
    """TransformerEncoderLayer and TransformerDecoderLayer share their constructor."""
    _require_divides("nhead", m.self_attn.num_heads, width)
    activation = m.activation
    if isinstance(activation, nn.Module):
        activation = copy.deepcopy(activation)  # a module instance must not be shared
    return _new(
        m, d_model=width, nhead=m.self_attn.num_heads,
        dim_feedforward=m.linear1.out_features, dropout=m.dropout.p, activation=activation,
        layer_norm_eps=m.norm1.eps, batch_first=m.self_attn.batch_first,
        norm_first=m.norm_first, bias=m.linear1.bias is not None,
    )


def _embed_dim(m: nn.Module) -> int:
    return m.self_attn.embed_dim


_BUILTIN: list[tuple[tuple[type, ...], RepairRule]] = [
    ((nn.Linear,), RepairRule(lambda m: m.in_features, _linear)),
    ((nn.Conv1d,), RepairRule(lambda m: m.in_channels, _conv, _channels(1))),
    ((nn.Conv2d,), RepairRule(lambda m: m.in_channels, _conv, _channels(2))),
    ((nn.Conv3d,), RepairRule(lambda m: m.in_channels, _conv, _channels(3))),
    ((nn.ConvTranspose1d,), RepairRule(lambda m: m.in_channels, _conv_transpose, _channels(1))),
    ((nn.ConvTranspose2d,), RepairRule(lambda m: m.in_channels, _conv_transpose, _channels(2))),
    ((nn.ConvTranspose3d,), RepairRule(lambda m: m.in_channels, _conv_transpose, _channels(3))),
    # BatchNorm1d takes (N, C) or (N, C, L): the channels are always dim 1.
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm),
     RepairRule(lambda m: m.num_features, _norm, 1)),
    ((nn.InstanceNorm1d,), RepairRule(lambda m: m.num_features, _norm, _channels(1))),
    ((nn.InstanceNorm2d,), RepairRule(lambda m: m.num_features, _norm, _channels(2))),
    ((nn.InstanceNorm3d,), RepairRule(lambda m: m.num_features, _norm, _channels(3))),
    ((nn.GroupNorm,), RepairRule(lambda m: m.num_channels, _group_norm, 1)),
    ((nn.LayerNorm,), RepairRule(lambda m: tuple(m.normalized_shape), _layer_norm, _trailing)),
    # nn.RMSNorm exists from torch 2.4 on; the empty tuple registers nothing before.
    (tuple(filter(None, [getattr(nn, "RMSNorm", None)])),
     RepairRule(lambda m: tuple(m.normalized_shape), _rms_norm, _trailing)),
    # RNN input is (L, N, H), (N, L, H) or (L, H): the features are last either way.
    ((nn.RNN,), RepairRule(lambda m: m.input_size, _rnn("nonlinearity"))),
    ((nn.LSTM,), RepairRule(lambda m: m.input_size, _rnn("proj_size"))),
    ((nn.GRU,), RepairRule(lambda m: m.input_size, _rnn())),
    ((nn.MultiheadAttention,), RepairRule(lambda m: m.embed_dim, _attention)),
    ((nn.TransformerEncoderLayer, nn.TransformerDecoderLayer),
     RepairRule(_embed_dim, _transformer_layer)),
]

for _types, _rule in _BUILTIN:
    for _type in _types:
        _REGISTRY.builtin[_type] = _rule


# ----------------------------------------------------------------------------- the pass


_GETATTR = nn.Module.__getattr__.__code__


class _Restart(BaseException):
    """Aborts a pass after a module was replaced; a BaseException so that model code which
    catches ``Exception`` does not swallow it."""


def _shapes(value: Any) -> str:
    if isinstance(value, PackedSequence):
        value = value.data
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(s for s in map(_shapes, value[:3]) if s)
    if isinstance(value, dict):
        return _shapes(list(value.values()))
    return ""


def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, PackedSequence):
            return value.data
        if isinstance(value, torch.Tensor):
            return value
    return None


def _is_lazy(module: nn.Module) -> bool:
    """Lazy modules (nn.LazyLinear, ...) not run yet take whatever width comes."""
    return isinstance(module, nn.modules.lazy.LazyModuleMixin) and \
        module.has_uninitialized_params()


def _inside(parent: str, name: str) -> bool:
    return parent == "" or name.startswith(f"{parent}.")


def repair_shapes(model: nn.Module, sample: Any, where: str = "",
                  on_repair: Callable[[nn.Module, str, nn.Module, nn.Module], None] | None = None,
                  ) -> nn.Module:
    """Rebuild, in place, every module of ``model`` whose input width no longer fits.

    Pushes ``sample`` through ``model`` (eval mode, ``torch.no_grad()``) with hooks on every
    module. PyTorch binds a call to a module before its pre-hooks run, so a hook that finds a
    mismatch installs the rebuilt module in the parent and aborts the pass, which then starts
    again; each pass repairs a module not repaired before, so this ends. A final pass without
    hooks checks the result as it will run (some fused fast paths only run hook-free).

    Args:
        model: the model to repair (modified in place, training flags restored).
        sample: a tensor, a tuple/list of positional arguments or a dict of keyword arguments.
        where: text to put in front of error messages, e.g. ``"trial 3: "``.
        on_repair: called as ``on_repair(model, name, old, new)`` after each replacement.

    Returns:
        The repaired model: ``model`` itself unless the model as a whole was rebuilt.

    Raises:
        AblationError: a module cannot be rebuilt, or the model fails on the sample; the
            message names the module and the shapes.

    Example:
        >>> repair_shapes(nn.Sequential(nn.Linear(6, 8)), torch.zeros(2, 5))
        Sequential(
          (0): Linear(in_features=5, out_features=8, bias=True)
        )
    """
    return _RepairPass(model, sample, where, on_repair).run()


class _RepairPass:
    """State of the repair passes over one model."""

    def __init__(self, model: nn.Module, sample: Any, where: str, on_repair: Any) -> None:
        self.model, self.sample, self.where, self.on_repair = model, sample, where, on_repair
        self.inputs: dict[str, str] = {}  # module name -> shapes of its last input
        self.last_output = ("", "")  # the module that returned last, and its output shapes
        self.repaired: dict[str, Any] = {}  # module name -> width it was rebuilt for
        self.handles: list[Any] = []

    def run(self) -> nn.Module:
        flags = {name: m.training for name, m in self.model.named_modules()}
        self.model.eval()
        try:
            self._watch(self.model, "")
            for _ in range(sum(1 for _ in self.model.modules()) + 1):
                try:
                    self._forward(hooked=True)
                    break
                except _Restart:
                    continue
            else:  # a guard: every pass repairs a module not repaired before
                raise AblationError(f"{self.where}shape repair did not converge")
            self._unwatch()
            self._forward(hooked=False)
        finally:
            self._unwatch()
            # Rebuilt modules take the flag of the module they replace (same name).
            for name, m in self.model.named_modules():
                m.training = flags.get(name, flags[""])
        return self.model

    def _forward(self, hooked: bool) -> None:
        sample = self.sample
        try:
            with torch.no_grad():
                if isinstance(sample, dict):
                    self.model(**sample)
                elif isinstance(sample, (tuple, list)):
                    self.model(*sample)
                else:
                    self.model(sample)
        except AblationError:
            raise
        except Exception as e:
            raise self._failure(e, hooked) from e

    def _watch(self, module: nn.Module, base: str) -> None:
        for name, m in module.named_modules(prefix=base):
            self.handles.append(m.register_forward_pre_hook(
                lambda mod, args, kwargs, name=name: self._check(name, mod, args, kwargs),
                with_kwargs=True))
            self.handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: setattr(self, "last_output",
                                                          (name, _shapes(out)))))

    def _unwatch(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def _check(self, name: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self.inputs[name] = _shapes((*args, *kwargs.values()))
        rule = find_repair_rule(type(module))
        x = _first_tensor(args, kwargs)
        if rule is None or x is None or _is_lazy(module):
            return
        try:
            expected = rule.expected(module)
        except AttributeError:
            return  # a part the rule reads was removed; the remaining parts are checked
        got = rule.width(module, x)
        if got is not None and got != expected:
            self._repair(name, module, rule, expected, got)

    def _repair(self, name: str, module: nn.Module, rule: RepairRule, expected: Any,
                got: Any) -> None:
        kind = type(module).__name__
        what = (f"{self.where}cannot repair module {name!r} ({kind}): it was built for input "
                f"width {expected} but now receives {got} (input {self.inputs[name]})")
        if name in self.repaired:
            raise AblationError(
                f"{what}, after it was already rebuilt for width {self.repaired[name]}; a "
                "module called at several places with different widths cannot be repaired")
        try:
            new = rule.rebuild(module, got)
        except AblationError as e:
            raise AblationError(f"{what}: {e}") from e
        except Exception as e:
            raise AblationError(
                f"{what}: its repair rule failed with {type(e).__name__}: {e}; register a "
                f"rule for {kind} with register_repair_rule({kind}, RepairRule(...))") from e
        if not isinstance(new, nn.Module):
            raise AblationError(f"{what}: its repair rule returned {new!r}, not an nn.Module")
        old = next((t for t in (*module.parameters(), *module.buffers())), None)
        if old is not None:
            new.to(old.device)  # user rules need not know the device
        if name:
            parent, _, key = name.rpartition(".")
            setattr(self.model.get_submodule(parent), key, new)
        else:
            self.model = new
        self.repaired[name] = got
        if self.on_repair is not None:
            self.on_repair(self.model, name, module, new)
        self._watch(new, name)
        raise _Restart

    def _failure(self, error: Exception, hooked: bool) -> AblationError:
        """Blame the innermost module of the model whose code was running in the traceback."""
        names = {id(m): n for n, m in self.model.named_modules()}
        name, tb = "", error.__traceback__
        while tb is not None:
            # Module.__getattr__ runs on the module read from, not the one whose code failed.
            if tb.tb_frame.f_code is not _GETATTR:
                name = names.get(id(tb.tb_frame.f_locals.get("self")), name)
            tb = tb.tb_next
        module = self.model.get_submodule(name)
        kind = type(module).__name__
        message = (f"{self.where}after ablation, module {name!r} ({kind}) failed on input "
                   f"{self.inputs.get(name)}")
        child, shapes = self.last_output
        if hooked and child != name and _inside(name, child):
            message += f" after its submodule {child!r} returned {shapes}"
        reason = (str(error).splitlines() or [""])[0]
        message += f": {type(error).__name__}: {reason}"
        if not hooked:
            message += (" (in eval mode under torch.no_grad(), some PyTorch modules such as "
                        "nn.TransformerEncoderLayer take a fused fast path that reads their "
                        "submodules' weights directly, so a removed submodule breaks them)")
        elif isinstance(error, AttributeError):
            message += (f" (its code reads an attribute of a submodule that was removed; remove "
                        f"{name or 'the model'} as a whole, or another layer, instead)")
        elif any(True for _ in module.children()):
            message += (" (the shapes inside this module no longer agree, e.g. a residual add "
                        "whose branches now differ; remove the whole module, or a layer that "
                        "keeps the width, instead)")
        elif find_repair_rule(type(module)) is None:
            message += (f" (no repair rule is registered for {kind}; add one with "
                        f"register_repair_rule({kind}, RepairRule(...)))")
        return AblationError(message)
