"""Exceptions raised by maggy.

Every error a user can cause derives from :class:`MaggyError`, so one ``except`` clause
catches them all; the standard base class (``ValueError``/``TypeError``) is kept where the
error is about a bad argument, so code written against the builtins keeps working.
"""

__all__ = [
    "MaggyError",
    "AblationError",
    "EarlyStopException",
    "TrialError",
]


class MaggyError(Exception):
    """Base class of every error maggy raises on purpose."""


class AblationError(MaggyError, ValueError):
    """A layer or feature ablation cannot be carried out.

    Raised by :func:`maggy.ablation.surgery.ablate` and by the driver's pre-flight check,
    which collects the problems of every trial into one error before any Spark job starts.
    The message names the trial (where known), the module and the shapes involved.
    """


class EarlyStopException(MaggyError):
    """Raised by ``reporter.broadcast`` once the driver decided to stop the trial.

    maggy catches it around ``train_fn`` and records the trial as ``early_stopped`` with the
    last metric it reported; user code does not need to handle it.

    Args:
        metric: the last metric the trial reported, if any.
    """

    def __init__(self, metric=None):
        super().__init__(f"trial stopped early by the driver (last metric {metric!r})")
        self.metric = metric


class TrialError(MaggyError):
    """A trial's ``train_fn`` returned something maggy cannot use as its final metric."""
