"""Helpers a train_fn may use: the trial's device, and seeding."""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import random
import sys
import warnings
from typing import Any, Callable, Optional

__all__ = ["get_device", "set_seed", "pick_device", "to_pandas"]

_current_device = None


def pick_device(gpu_addresses: Optional[list] = None, slot: int = 0) -> str:
    """The device a trial slot should use.

    The GPU Spark assigned to the task (``TaskContext.resources()["gpu"]``) if any, else
    round-robin over the local CUDA devices by slot, else the CPU.

    Args:
        gpu_addresses: the addresses Spark assigned to the task, e.g. ``["1"]``.
        slot: the task's partition (trial slot) number.

    Example:
        >>> pick_device([], 0) in ("cpu", "cuda:0")
        True
    """
    if gpu_addresses:
        return f"cuda:{gpu_addresses[0]}"
    if "torch" not in sys.modules and not _may_have_gpu():
        # Importing torch only to learn there is no GPU took 1.5-3 s in a fresh Spark worker.
        return "cpu"
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() > 0:
        return f"cuda:{slot % torch.cuda.device_count()}"
    return "cpu"


def _may_have_gpu() -> bool:
    """False when this is Linux and no GPU device node exists (then torch would find none).

    CUDA needs ``/dev/nvidiactl`` and ROCm ``/dev/kfd``; elsewhere than Linux, or with
    either present, only torch can tell.
    """
    if not sys.platform.startswith("linux"):
        return True
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/kfd")


def _set_current_device(device: Optional[str]) -> None:
    """Makes ``device`` the trial's device; for a GPU also the process's current CUDA device,
    so ``tensor.cuda()`` in user code lands on the GPU Spark assigned to the task."""
    global _current_device
    _current_device = device
    if device is not None and device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():  # Spark may hand out addresses of GPUs this process cannot use
            torch.cuda.set_device(torch.device(device))


def get_device():
    """The ``torch.device`` the current trial runs on.

    Inside a trial this is the device maggy chose for the task (see :func:`pick_device`);
    outside one, the first CUDA device if there is one, else the CPU.

    Example:
        >>> def train(model_function, dataset_function):
        ...     device = maggy.util.get_device()
        ...     model = model_function().to(device)
    """
    import torch

    if _current_device is not None:
        return torch.device(_current_device)
    return torch.device(pick_device(None, 0))


def set_seed(seed: Optional[int]) -> None:
    """Seeds ``random``, numpy and torch (CPU and CUDA); ``None`` does nothing.

    String hashing is not seeded: ``PYTHONHASHSEED`` is read once, when an interpreter
    starts, so setting it in a running one has no effect. numpy and torch are seeded now if
    they are imported, else right after their first import: a trial that never uses them
    does not pay their import (numpy ~0.1 s, torch 1.5-3 s in a fresh Spark worker) to be
    seeded, and draws the same numbers as if they had been seeded now.
    """
    if seed is None:
        return
    random.seed(seed)
    for name, seed_module in _SEEDERS.items():
        if name in sys.modules:
            seed_module(sys.modules[name], seed)
        else:
            _SeedOnImport.arm(name, seed)


#: How to seed each module :func:`set_seed` seeds, by module name.
_SEEDERS = {
    "numpy": lambda np, seed: np.random.seed(seed % (2**32)),
    "torch": lambda torch, seed: torch.manual_seed(seed),
}


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules it waits for with the other finders and seeds each right after its first import.

    At most one instance is on ``sys.meta_path``; arming it again for a module replaces that
    module's seed. It leaves ``sys.meta_path`` once every module it waited for is imported.
    """

    def __init__(self):
        self.pending: dict[str, int] = {}

    @classmethod
    def arm(cls, name: str, seed: int) -> None:
        finder = next((f for f in sys.meta_path if isinstance(f, cls)), None)
        if finder is None:
            finder = cls()
            sys.meta_path.insert(0, finder)
        finder.pending[name] = seed

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self.pending:
            return None
        seed = self.pending.pop(fullname)
        sys.meta_path.remove(self)  # the other finders must not see this one
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            if self.pending:
                sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            spec.loader = _SeedAfterExec(spec.loader, lambda module: _SEEDERS[fullname](module, seed))
        return spec


class _SeedAfterExec(importlib.abc.Loader):
    """Runs ``loader``'s ``exec_module``, then ``seed(module)``; otherwise it is ``loader``."""

    def __init__(self, loader, seed: Callable[[Any], Any]):
        self._loader, self._seed = loader, seed

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._seed(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


def to_pandas(df: Any):
    """A Spark DataFrame as pandas (a pandas DataFrame is returned as is).

    PySpark's conversion warns about pandas deprecations it has not caught up with; those
    say nothing about the user's data, so they are silenced here.
    """
    if not hasattr(df, "toPandas"):
        return df
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
        return df.toPandas()
