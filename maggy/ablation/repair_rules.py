"""The built-in repair rules; :mod:`maggy.ablation.repair_registry` installs them on first lookup."""

from __future__ import annotations

import copy
from typing import Any, Callable

import torch
from torch import nn

from maggy.ablation.repair_registry import RepairRule
from maggy.exceptions import AblationError


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


#: ``(classes, rule)`` pairs; a class appears once.
BUILTIN_RULES: list[tuple[tuple[type, ...], RepairRule]] = [
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
