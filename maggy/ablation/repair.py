"""Shape repair: the pass that pushes one input through the model and re-sizes mismatched layers.

Rules come from one registry keyed by module class (:mod:`maggy.ablation.repair_registry`,
built-ins in :mod:`maggy.ablation.repair_rules`), or from the ``rules=`` a call passes; this
module re-exports the registry's public API, so ``from maggy.ablation.repair import
register_repair_rule`` keeps working.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from maggy.ablation.probe import has_zero
from maggy.ablation.repair_registry import (
    RepairRule,
    find_repair_rule,
    register_repair_rule,
    unregister_repair_rule,
    user_rules,
)
from maggy.exceptions import AblationError

__all__ = [
    "RepairRule",
    "register_repair_rule",
    "unregister_repair_rule",
    "find_repair_rule",
    "user_rules",
    "repair_shapes",
]



_GETATTR = nn.Module.__getattr__.__code__


class _Restart(BaseException):
    """Aborts a pass after a module was replaced; a BaseException so that model code which
    catches ``Exception`` does not swallow it."""


class _ProbeFailed(BaseException):
    """The probe cannot decide (it failed, or the batch reached a width): ask the sample."""


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
                  probe: Any = None,
                  rules: Optional[Mapping[type, RepairRule]] = None) -> nn.Module:
    """Rebuild, in place, every module of ``model`` whose input width no longer fits.

    Pushes ``sample`` through ``model`` (eval mode, ``torch.no_grad()``) with hooks on every
    module. PyTorch binds a call to a module before its pre-hooks run, so a hook that finds a
    mismatch installs the rebuilt module in the parent and aborts the pass, which then starts
    again; each pass repairs a module not repaired before, so this ends. A final pass without
    hooks checks the result as it will run (some fused fast paths only run hook-free).

    With a ``probe`` (the sample with an empty batch, see :mod:`maggy.ablation.probe`) the
    passes run on the probe first, at a fraction of the cost; only where the probe fails, or
    a width it reads is 0, do they continue on ``sample``, keeping the repairs made so far,
    so errors always name the shapes of the real sample.

    Args:
        model: the model to repair (modified in place, training flags restored).
        sample: a tensor, a tuple/list of positional arguments or a dict of keyword
            arguments; or a function returning one, called only if the probe cannot decide.
        where: text to put in front of error messages, e.g. ``"trial 3: "``.
        on_repair: called as ``on_repair(model, name, old, new)`` after each replacement.
        probe: ``sample`` with an empty batch, tried first; ``None`` runs ``sample`` only.
        rules: user rules ``{module class: RepairRule}`` to use besides the built-in ones;
            ``None`` uses those registered in this process (:func:`register_repair_rule`).

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
    return _RepairPass(model, sample, where, on_repair, probe, rules).run()


class _RepairPass:
    """State of the repair passes over one model."""

    def __init__(self, model: nn.Module, sample: Any, where: str, on_repair: Any,
                 probe: Any = None, rules: Optional[Mapping[type, RepairRule]] = None) -> None:
        self.model, self.sample, self.where, self.on_repair = model, sample, where, on_repair
        self.probe = probe
        self.probing = False  # True while the passes run on the probe
        self.rules = rules  # the user rules in force; None: this process's registry
        self.inputs: dict[str, str] = {}  # module name -> shapes of its last input
        self.last_output = ("", "")  # the module that returned last, and its output shapes
        self.repaired: dict[str, Any] = {}  # module name -> width it was rebuilt for
        self.handles: list[Any] = []

    def run(self) -> nn.Module:
        flags = {name: m.training for name, m in self.model.named_modules()}
        self.model.eval()
        try:
            if self.probe is None or not self._settle(self.probe, probing=True):
                # Repairs the probe made stay: the sample runs through the same code up to
                # where the probe gave up, so it would have made them too, in this order.
                sample = self.sample() if callable(self.sample) else self.sample
                self._settle(sample, probing=False)
        finally:
            self._unwatch()
            # Rebuilt modules take the flag of the module they replace (same name).
            for name, m in self.model.named_modules():
                m.training = flags.get(name, flags[""])
        return self.model

    def _settle(self, sample: Any, probing: bool) -> bool:
        """Hooked passes until one runs through, then one without hooks; False: the probe
        could not decide."""
        self.probing = probing
        self.inputs.clear()
        self.last_output = ("", "")
        try:
            self._watch(self.model, "")
            for _ in range(sum(1 for _ in self.model.modules()) + 1):
                try:
                    self._forward(sample, hooked=True)
                    break
                except _Restart:
                    continue
            else:  # a guard: every pass repairs a module not repaired before
                raise AblationError(f"{self.where}shape repair did not converge")
            self._unwatch()
            self._forward(sample, hooked=False)
        except _ProbeFailed:
            return False
        finally:
            self._unwatch()
        return True

    def _forward(self, sample: Any, hooked: bool) -> None:
        try:
            with torch.no_grad():
                if isinstance(sample, dict):
                    self.model(**sample)
                elif isinstance(sample, (tuple, list)):
                    self.model(*sample)
                else:
                    self.model(sample)
        except AblationError as e:
            if self.probing:  # the message must name the real sample's shapes
                raise _ProbeFailed from e
            raise
        except Exception as e:
            if self.probing:
                raise _ProbeFailed from e
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
        rule = find_repair_rule(type(module), self.rules)
        x = _first_tensor(args, kwargs)
        if rule is None or x is None or _is_lazy(module):
            return
        try:
            expected = rule.expected(module)
        except AttributeError:
            return  # a part the rule reads was removed; the remaining parts are checked
        got = rule.width(module, x)
        if self.probing and has_zero(got):
            raise _ProbeFailed  # the empty batch dimension is where this width is read
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
        # The rest of the pass runs it in eval mode too: in training mode a BatchNorm would
        # learn running statistics from the sample and dropout would draw from the global RNG.
        new.eval()
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
        elif find_repair_rule(type(module), self.rules) is None:
            message += (f" (no repair rule is registered for {kind}; add one with "
                        f"register_repair_rule({kind}, RepairRule(...)))")
        return AblationError(message)
