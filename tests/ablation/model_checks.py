"""Checks the surgery tests share: one training step, and weight equality."""

import torch
from torch import nn


def train_step(model: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """Forward, backward and one SGD step; every parameter must get a finite gradient."""
    model.train()
    out = model(*inputs)
    loss = out.float().pow(2).mean()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    return out


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    """True when both models have the same parameter and buffer tensors."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
