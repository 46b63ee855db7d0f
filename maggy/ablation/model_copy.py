"""Copying a model for surgery: ``copy.deepcopy`` semantics at a fraction of its cost.

``copy.deepcopy(model)`` reaches every module through the generic pickle protocol
(``__reduce_ex__``) and copies each of the dozen, mostly empty, hook dictionaries a module
carries the same way; on a ResNet-18 that costs about twice the copy of its 11.7 M weights.
:func:`copy_model` takes the same steps as ``deepcopy`` for a module (``__getstate__``, deep
copy of the state with one shared memo, ``__setstate__``) but copies empty containers and
immutable values directly, and leaves out the weights of modules that surgery removes anyway.
Modules that define their own copy protocol go through ``copy.deepcopy`` unchanged.
"""

from __future__ import annotations

import copy
import copyreg
import types
import weakref
from collections import OrderedDict
from typing import Any, Collection

import torch
from torch import nn

__all__ = ["copy_model"]

# Values deepcopy returns as they are (copy._deepcopy_atomic and friends).
_ATOMIC = frozenset({int, float, bool, complex, str, bytes, type(None), type, range,
                     types.FunctionType, types.BuiltinFunctionType, weakref.ref,
                     torch.dtype, torch.device, torch.layout, torch.memory_format})
_EMPTY = (dict, OrderedDict, set, list)  # empty ones are copied as a new empty one


def copy_model(model: nn.Module, drop: Collection[str] = ()) -> nn.Module:
    """A deep copy of ``model``, except that the modules named in ``drop`` are not copied.

    The copy shares no tensor with ``model``; tied weights and modules registered under
    several names stay tied/shared in the copy, as with ``copy.deepcopy``.

    Args:
        model: the model to copy; it is not modified.
        drop: names from ``model.named_modules()`` whose module is put into the copy as an
            ``nn.Identity`` placeholder instead of a copy (surgery removes these modules right
            after). A module also registered under a name not in ``drop`` is still copied there.

    Returns:
        The copy.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
        >>> twin = copy_model(model, drop=["1"])
        >>> twin[1], torch.equal(twin[0].weight, model[0].weight), twin[0].weight is model[0].weight
        (Identity(), True, False)
    """
    return _Copier(set(drop)).module(model, "")


class _Copier:
    """One copy: the deepcopy memo (original id -> copy) and the names to leave out."""

    def __init__(self, drop: set[str]) -> None:
        self.drop = drop
        self.memo: dict[int, Any] = {}

    def module(self, module: nn.Module, name: str | None) -> nn.Module:
        """The copy of ``module``; ``name`` is None where it is reached outside _modules."""
        done = self.memo.get(id(module))
        if done is not None:
            return done
        cls = type(module)
        state = module.__getstate__() if _plain(cls) else None
        if type(state) is not dict:  # own copy protocol, slots, ...: deepcopy knows best
            return copy.deepcopy(module, self.memo)
        new = cls.__new__(cls)
        self.memo[id(module)] = new
        copied = {}
        for key, value in state.items():
            if key == "_modules" and type(value) in (dict, OrderedDict):
                copied[key] = type(value)(
                    (child_name, self._child(child, name, child_name))
                    for child_name, child in value.items())
            else:
                copied[key] = self._value(value)
        new.__setstate__(copied)
        return new

    def _child(self, child: nn.Module | None, parent: str | None, key: str) -> Any:
        if child is None:
            return None
        name = None if parent is None else f"{parent}.{key}" if parent else key
        if name is not None and name in self.drop:
            return nn.Identity()
        return self.module(child, name)

    def _value(self, value: Any) -> Any:
        kind = type(value)
        if kind in _ATOMIC:
            return value
        if kind in _EMPTY and not value:  # the hook dictionaries, mostly
            return kind()
        if kind is dict and all(type(k) is str for k in value):
            # _parameters and _buffers: each tensor through the memo, so ties survive.
            return {k: self._value(v) for k, v in value.items()}
        if kind in (tuple, frozenset) and all(type(v) in _ATOMIC for v in value):
            return value  # a tuple of sizes: deepcopy returns the same object
        if isinstance(value, nn.Module):
            return self.module(value, None)
        if kind is torch.Tensor and _plain_tensor(value):
            return self._tensor(value)
        return copy.deepcopy(value, self.memo)

    def _tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """What ``Tensor.__deepcopy__`` makes of a plain buffer, without its ~60 us of checks
        (a ResNet-18 has 60 buffers): one copy per storage, shared by its views."""
        done = self.memo.get(id(tensor))
        if done is not None:
            return done
        storage = tensor.untyped_storage()
        storages = self.memo.setdefault("torch", {})  # the storage memo deepcopy keeps
        new_storage = storages.get(storage._cdata)
        if new_storage is None:
            new_storage = storages[storage._cdata] = storage.clone()
        new = tensor.new_empty([]).set_(new_storage, tensor.storage_offset(), tensor.size(),
                                        tensor.stride())
        self.memo[id(tensor)] = new
        return new


def _plain_tensor(tensor: torch.Tensor) -> bool:
    """A dense leaf tensor without gradient or Python attributes, as buffers are."""
    return (
        tensor.layout is torch.strided and tensor.device.type in ("cpu", "cuda")
        and tensor.is_leaf and not tensor.requires_grad and tensor.grad is None
        and not tensor.is_quantized and not tensor.is_conj() and not tensor.is_neg()
        and not tensor.__dict__
    )


def _plain(cls: type) -> bool:
    """True when deepcopy would copy ``cls`` through __getstate__/__setstate__ alone."""
    return (
        cls.__reduce_ex__ is object.__reduce_ex__
        and cls.__reduce__ is object.__reduce__
        and not hasattr(cls, "__deepcopy__")
        and not hasattr(cls, "__getnewargs_ex__")
        and not hasattr(cls, "__getnewargs__")
        and cls not in copyreg.dispatch_table
        and not issubclass(cls, (list, dict))
    )
