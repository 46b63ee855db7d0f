"""Which GPUs a trial slot uses, and making them the only ones its process sees.

Spark assigns GPU addresses to a task (``TaskContext.resources()["gpu"]``) when the task's
resource profile asks for them (``gpus_per_trial``) or the session sets
``spark.task.resource.gpu.amount``. A local master cannot schedule resources, so there the
slot takes its share of this machine's visible GPUs by partition number.

The trial then sees exactly those addresses: ``CUDA_VISIBLE_DEVICES`` lists them, so
``cuda:0`` (what :func:`maggy.util.get_device` returns) is the first of them and
``torch.cuda.device_count()`` is their number. CUDA reads that variable once per process,
so a reused Python worker that already served other GPUs cannot switch; it ends
(:class:`GpuWorkerStale`) and Spark runs the task again in a fresh worker.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

__all__ = ["GpuWorkerStale", "local_gpu_share", "task_gpus", "claim_gpus"]

#: The addresses this process made visible (None until a task claims GPUs).
_claimed: Optional[list[str]] = None
#: ``CUDA_VISIBLE_DEVICES`` as the process found it, before any claim.
_outer_visible: Optional[str] = None


class GpuWorkerStale(RuntimeError):
    """This Python worker's CUDA was set up for other GPUs; Spark retries the task in a new worker."""


def local_gpu_share(partition: int, gpus_per_trial: int, visible: Sequence[str]) -> list[str]:
    """The GPUs slot ``partition`` takes on a local master: consecutive, disjoint shares.

    Example:
        >>> local_gpu_share(1, 2, ["0", "1", "2", "3"])
        ['2', '3']
    """
    start = partition * gpus_per_trial
    if start + gpus_per_trial > len(visible):
        raise RuntimeError(
            f"trial slot {partition} needs GPUs {start}..{start + gpus_per_trial - 1} "
            f"(gpus_per_trial={gpus_per_trial}) but this machine shows only {len(visible)}"
        )
    return list(visible[start:start + gpus_per_trial])


def _visible_here() -> list[str]:
    """This machine's GPUs as the process found them (honouring an outer ``CUDA_VISIBLE_DEVICES``)."""
    outer = _outer_visible if _claimed is not None else os.environ.get("CUDA_VISIBLE_DEVICES")
    if outer is not None:
        return [a for a in outer.split(",") if a.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def task_gpus(resources: dict, partition: int, gpus_per_trial: Optional[int]) -> list[str]:
    """The GPU addresses of this task: Spark's, else (a local master) this slot's local share.

    Args:
        resources: ``TaskContext.resources()`` (``{}`` outside Spark or without GPUs).
        partition: the task's partition number (its trial slot).
        gpus_per_trial: the config field; ``None`` takes only what Spark assigned.
    """
    resource = resources.get("gpu")
    if resource is not None and list(resource.addresses):
        return list(resource.addresses)
    if gpus_per_trial:
        return local_gpu_share(partition, gpus_per_trial, _visible_here())
    return []


def claim_gpus(addresses: list[str]) -> str:
    """Makes ``addresses`` the process's only visible GPUs; returns the trial's device, ``"cuda:0"``.

    Raises:
        GpuWorkerStale: this process already claimed other GPUs, and CUDA (or the user's
            code) may have read the variable already (the task fails, its worker ends, Spark retries it).
    """
    global _claimed, _outer_visible
    if _claimed is not None and _claimed != addresses:
        raise GpuWorkerStale(
            f"this Python worker served GPUs {_claimed} before and cannot switch to {addresses}; "
            "Spark retries the task in a fresh worker"
        )
    if _claimed is None:
        _outer_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(addresses)
    _claimed = list(addresses)
    return "cuda:0"
