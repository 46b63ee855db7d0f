"""Getting the user's code to the executors: by value where they cannot import it, as bytes.

A script often imports its ``train_fn`` and model from a helper module next to it. That module
is on the driver's ``sys.path`` but Spark's Python workers cannot import it, and cloudpickle
pickles functions and classes of importable modules *by reference* (module name + attribute),
so every trial used to fail with a ``ModuleNotFoundError`` cut off in a Spark error.
:func:`ship_by_value` registers such modules with cloudpickle for the length of one experiment,
so their code travels inside the task instead.

:func:`pack` / :func:`unpack` carry what the tasks need as bytes that the task unpickles
itself: a failure there (a module missing on the executors) would repeat on every attempt,
so the task reports it as data instead of letting Spark retry it (see
:func:`maggy.core.executor.run_task`).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import site
import sys
import sysconfig
import types
from typing import Any, Iterable, Iterator

__all__ = ["modules_to_ship", "ship_by_value", "pack", "unpack"]

#: Top-level packages that every executor has (or maggy cannot run at all): never by value.
_ALWAYS_IMPORTABLE = frozenset({"maggy", "pyspark", "py4j"})


def _installed_roots() -> tuple[str, ...]:
    """Folders holding the standard library and installed packages, as real paths."""
    paths = set(site.getsitepackages()) | {site.getusersitepackages()}
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        with contextlib.suppress(KeyError):
            paths.add(sysconfig.get_paths()[name])
    return tuple(os.path.join(os.path.realpath(p), "") for p in paths if p)


def _is_user_module(module: types.ModuleType, installed: tuple[str, ...]) -> bool:
    """True for a module the executors may not be able to import: the user's own source files.

    That is a module with a Python source file outside the standard library and
    site-packages, other than ``__main__`` (which cloudpickle always pickles by value) and
    maggy, pyspark and py4j themselves.
    """
    name = module.__name__
    if name == "__main__" or name.partition(".")[0] in _ALWAYS_IMPORTABLE:
        return False
    path = getattr(module, "__file__", None)
    if not path or path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return False  # built in, a namespace package, or compiled code: cannot go by value
    path = os.path.realpath(path)
    parts = set(path.split(os.sep))
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not path.startswith(installed)


def _modules_of(obj: Any) -> Iterator[types.ModuleType]:
    """The modules an object's pickle refers to: its own, its class's, its closure's."""
    if isinstance(obj, types.ModuleType):
        yield obj
        return
    owner = obj if isinstance(obj, (types.FunctionType, type)) else type(obj)
    module = sys.modules.get(getattr(owner, "__module__", None) or "")
    if module is not None:
        yield module
    if isinstance(obj, types.FunctionType):
        for cell in obj.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty cell
                yield from _modules_of(cell.cell_contents)


def modules_to_ship(objects: Iterable[Any]) -> list[str]:
    """Names of the user modules ``objects`` need, which must travel by value.

    Starts from the modules of ``objects`` (functions, classes, instances) and follows what
    those modules' namespaces refer to (``import helpers``, ``from model_lib import Net``),
    so a helper that imports another helper ships both. Standard-library and installed
    modules are neither shipped nor followed. ``__main__`` is followed but not listed:
    cloudpickle ships it by value already.

    Args:
        objects: the train_fn, the study's generators, anything else the tasks unpickle.

    Returns:
        Module names, in the order found.

    Example:
        >>> modules_to_ship([len, os.path.join])
        []
    """
    installed = _installed_roots()
    seen: set[str] = set()
    found: list[str] = []
    stack = list(objects)
    while stack:
        for module in _modules_of(stack.pop()):
            if module.__name__ in seen:
                continue
            seen.add(module.__name__)
            if _is_user_module(module, installed):
                found.append(module.__name__)
            elif module.__name__ != "__main__":
                continue  # installed code is importable where maggy runs; do not walk it
            stack.extend(vars(module).values())
    return found


@contextlib.contextmanager
def ship_by_value(objects: Iterable[Any]) -> Iterator[list[str]]:
    """Within the block, cloudpickle pickles the modules :func:`modules_to_ship` finds by value.

    Registration is process-wide in cloudpickle, so it is undone when the block ends: the
    next experiment (or the user's own Spark code) is not affected. Modules registered
    before the block stay registered.

    Yields:
        The names of the modules registered by this block.
    """
    from pyspark import cloudpickle

    added = []
    for name in modules_to_ship(objects):
        module = sys.modules[name]
        if not cloudpickle.cloudpickle._is_registered_pickle_by_value(module):
            cloudpickle.register_pickle_by_value(module)
            added.append(name)
    try:
        yield added
    finally:
        for name in added:
            with contextlib.suppress(ValueError):
                cloudpickle.unregister_pickle_by_value(sys.modules.get(name) or types.ModuleType(name))


def pack(obj: Any) -> bytes:
    """``obj`` pickled with the cloudpickle Spark uses (honouring :func:`ship_by_value`)."""
    from pyspark import cloudpickle

    return cloudpickle.dumps(obj)


def unpack(payload: bytes) -> Any:
    """The object :func:`pack` pickled."""
    import pickle

    return pickle.loads(payload)
