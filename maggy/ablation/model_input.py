"""What the model takes as input, for datasets that do not say it.

A ``MaggyDataset`` may state its input with ``input_shape`` or ``sample_input()``. The Maggy
thesis' own datasets (listing 3.5) state neither: they implement ``__getitem__`` and
``ablate_feature`` only. For those, :func:`infer_input` looks at the first item: the element
the base model runs on is the model input (the features, not the label), and the same
element of the ablated dataset's first item gives the input after ablation.
"""

from __future__ import annotations

import copy
import numbers
from typing import Any, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from maggy.ablation.datasets import input_info
from maggy.exceptions import AblationError

__all__ = ["model_input", "infer_input"]

_FIX = ("give the dataset an `input_shape` property (the shape of one model input after "
        "ablation, e.g. (5,)) or a `sample_input()` method returning one input batch")


def model_input(model: nn.Module, dataset: Any, base_dataset: Any = None,
                where: str = "") -> tuple[Optional[tuple], Any]:
    """``(input_shape, sample_input)`` for shape repair: what the dataset states, else inferred.

    Args:
        model: the model before ablation (the base model, or a custom one).
        dataset: the trial's dataset, after feature ablation.
        base_dataset: the same dataset without feature ablation; ``None`` when ``dataset``
            has no feature removed.
        where: text to put in front of error messages, e.g. ``"trial t001 (layers 2): "``.

    Returns:
        The dataset's ``input_shape`` and ``sample_input()`` when it has either, else
        :func:`infer_input`'s answer.

    Raises:
        AblationError: the dataset states nothing and the input cannot be inferred.

    Example:
        >>> pairs = [(0.0, torch.zeros(6)), (1.0, torch.ones(6))]  # (label, features)
        >>> model_input(nn.Linear(6, 1), pairs)
        ((6,), None)
    """
    shape, sample = input_info(dataset)
    if shape is not None or sample is not None:
        return shape, sample
    return infer_input(model, dataset, base_dataset, where)


def infer_input(model: nn.Module, dataset: Any, base_dataset: Any = None,
                where: str = "") -> tuple[Optional[tuple], Any]:
    """The model input after ablation, from the first item of ``dataset``.

    The elements of ``base_dataset[0]`` (the item itself if it is a tensor or array, else
    the members of a tuple, list or dict) are tried largest first, each as a batch of two,
    on ``model`` in eval mode without gradients; the first one the model runs on is its
    input. The element at the same place in ``dataset[0]`` is the input after ablation.

    Args:
        model: the model before ablation; it is left as it was (weights, training flags).
        dataset: the trial's dataset, after feature ablation.
        base_dataset: the dataset without feature ablation (the one ``model`` was built
            for); ``None`` means ``dataset`` is that one.
        where: text to put in front of error messages.

    Returns:
        ``(input_shape, None)`` for a floating-point input (a random batch of that shape
        stands in for it, as for a dataset stating ``input_shape``), or ``(None, batch)``
        for any other, e.g. int64 token ids, where a batch of two copies of the element
        is the ``sample_input``.

    Raises:
        AblationError: no item can be read, or the model runs on none of its elements; the
            message says what was tried and how to state the input instead.

    Example:
        >>> class Listing35(torch.utils.data.Dataset):  # the thesis' style: no input_shape
        ...     def __getitem__(self, i):
        ...         return torch.tensor(1.0), torch.zeros(6)
        >>> infer_input(nn.Sequential(nn.Linear(6, 2)), Listing35())
        ((6,), None)
    """
    base = dataset if base_dataset is None else base_dataset
    kind = type(dataset).__name__
    candidates = _elements(_first_item(base, where, kind))
    if not candidates:
        raise AblationError(
            f"{where}cannot infer the model input: the first item of the {kind} dataset "
            f"holds no tensor, array or number; {_FIX}")
    key, failures = _accepted(model, candidates)
    if key is _NONE:
        tried = "; ".join(failures)
        raise AblationError(
            f"{where}cannot infer the model input: the {kind} dataset has no input_shape and "
            f"no sample_input(), and {type(model).__name__} runs on no element of its first "
            f"item ({tried}); {_FIX}")
    element = _element(_first_item(dataset, where, kind), key)
    if element is None:
        raise AblationError(
            f"{where}cannot infer the model input: the ablated {kind} dataset's first item has "
            f"no element {key!r} any more; {_FIX}")
    if element.is_floating_point():
        return tuple(element.shape), None
    return None, torch.stack([element, element])


_NONE = object()  # no element was accepted


def _first_item(dataset: Any, where: str, kind: str) -> Any:
    if isinstance(dataset, DataLoader):
        dataset = dataset.dataset  # its items, not its batches
    try:
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__getitem__"):
            return next(iter(dataset))
        return dataset[0]
    except Exception as e:
        raise AblationError(
            f"{where}cannot infer the model input: reading the first item of the {kind} "
            f"dataset failed with {type(e).__name__}: {e}; {_FIX}") from e


def _as_tensor(value: Any) -> Optional[torch.Tensor]:
    """A tensor for a tensor, a numpy array or a number; None for anything else."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return torch.tensor(value)
    if hasattr(value, "__array__") and getattr(value, "dtype", None) is not None:
        try:
            return torch.as_tensor(value)
        except (TypeError, RuntimeError):  # e.g. an array of strings
            return None
    return None


def _elements(item: Any) -> list[tuple[Any, torch.Tensor]]:
    """``(key, tensor)`` for each candidate input in an item, largest first, then in order."""
    whole = _as_tensor(item)
    if whole is not None:
        return [(None, whole)]
    if isinstance(item, dict):
        pairs = list(item.items())
    elif isinstance(item, (tuple, list)):
        pairs = list(enumerate(item))
    else:
        return []
    found = [(key, t) for key, value in pairs if (t := _as_tensor(value)) is not None]
    # The features usually outnumber the label; trying them first keeps a model that would
    # also run on the label (e.g. one starting with an nn.Embedding) from taking it.
    return sorted(found, key=lambda pair: -pair[1].numel())


def _element(item: Any, key: Any) -> Optional[torch.Tensor]:
    if key is None:
        return _as_tensor(item)
    try:
        return _as_tensor(item[key])
    except (KeyError, IndexError, TypeError):
        return None


def _accepted(model: nn.Module, candidates: list[tuple[Any, torch.Tensor]]) -> tuple[Any, list[str]]:
    """The key of the first candidate ``model`` runs on, and why the others failed."""
    # A lazy module would take its shape from the first input it sees: try on a copy.
    lazy = any(isinstance(m, nn.modules.lazy.LazyModuleMixin) and m.has_uninitialized_params()
               for m in model.modules())
    probe = copy.deepcopy(model) if lazy else model
    like = next((t for t in (*probe.parameters(), *probe.buffers()) if t.is_floating_point()),
                torch.empty(0))
    flags = {name: m.training for name, m in probe.named_modules()}
    failures = []
    probe.eval()  # no dropout draws, no batch-norm statistics updated
    try:
        for key, tensor in candidates:
            if tensor.is_floating_point():
                tensor = tensor.to(dtype=like.dtype)
            batch = torch.stack([tensor, tensor]).to(device=like.device)
            try:
                with torch.no_grad():
                    probe(batch)
            except Exception as e:
                reason = (str(e).splitlines() or [""])[0]
                where = "the item" if key is None else f"element {key!r}"
                failures.append(f"{where} of shape {tuple(tensor.shape)}: {type(e).__name__}: {reason}")
                continue
            return key, failures
    finally:
        for name, m in probe.named_modules():
            m.training = flags[name]
    return _NONE, failures
