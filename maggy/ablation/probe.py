"""The empty-batch probe: shape repair without the cost of a forward pass.

Shape repair needs the shape of the tensor entering every module, not its values. A batch of
zero samples has the same shape as a real one in every other dimension, and PyTorch's own
kernels check it as strictly (a wrong channel count, a residual add whose branches differ,
a weight of the wrong width all fail as they would), but no kernel has anything to compute:
a ResNet-18 at 224x224 runs an empty batch in about 1/20 of the time of one image.

The meta device would give the same without values, but its kernels are Python reference
implementations here (about 1 ms per operation, a ResNet-18 forward slower than the real one).

An empty batch is a probe, not the answer: where it fails (model code that reduces over the
batch, ``x.view(-1, n)``, a value-dependent check) or where a width it reads is 0 (the batch
dimension ended up where a module reads its width), surgery decides on the real sample
instead (:mod:`maggy.ablation.repair`). What it cannot see is model code that branches on the
batch size without failing, e.g. returns early for an empty batch, and values: token ids
beyond an embedding's vocabulary fail on the real batch only.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["empty_batch", "has_zero"]


def empty_batch(sample: Any) -> Any | None:
    """``sample`` with its batch dimension (dim 0) emptied; ``None`` if that cannot be done.

    Tensors whose first dimension is the batch size (that of the first tensor found) are
    cut to zero rows; other tensors (a mask over positions) and other values are kept.
    Plain tuples, lists and dicts are followed; anything else holding tensors (a
    ``PackedSequence``) gives ``None``.

    Args:
        sample: a tensor, or a tuple/list/dict of model arguments.

    Returns:
        The empty batch, or ``None`` when there is no tensor with a batch dimension.

    Example:
        >>> ids, lengths = torch.zeros(2, 7, dtype=torch.long), torch.tensor([7, 5])
        >>> [tuple(t.shape) for t in empty_batch((ids, lengths))]
        [(0, 7), (0,)]
    """
    batch = _first_batch_size(sample)
    if batch is None or batch == 0:
        return None
    try:
        return _cut(sample, batch)
    except _Opaque:
        return None


class _Opaque(Exception):
    """A container the probe cannot look into."""


def _first_batch_size(value: Any) -> int | None:
    if isinstance(value, torch.Tensor):
        return value.shape[0] if value.dim() else None
    if type(value) in (tuple, list):
        items = value
    elif type(value) is dict:
        items = value.values()
    else:
        return None
    for item in items:
        size = _first_batch_size(item)
        if size is not None:
            return size
    return None


def _cut(value: Any, batch: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value[:0] if value.dim() and value.shape[0] == batch else value
    if type(value) in (tuple, list):
        return type(value)(_cut(item, batch) for item in value)
    if type(value) is dict:
        return {key: _cut(item, batch) for key, item in value.items()}
    if isinstance(value, (tuple, list, dict)):  # namedtuple, PackedSequence, ...
        raise _Opaque
    return value


def has_zero(width: Any) -> bool:
    """True when a width read from the probe is 0 in some dimension (the batch leaked in).

    Example:
        >>> has_zero(0), has_zero((0, 5)), has_zero(6), has_zero(None)
        (True, True, False, False)
    """
    if isinstance(width, (tuple, list, torch.Size)):
        return any(has_zero(w) for w in width)
    return isinstance(width, int) and width == 0
