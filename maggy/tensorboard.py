"""TensorBoard for a train_fn's own summaries, as upstream Maggy offered it.

maggy writes each trial's broadcast metrics as TensorBoard scalars to
``<run>/tensorboard/<trial_id>/``. :func:`logdir` hands a train_fn that folder, so its own
summaries (histograms, images, more scalars) land beside maggy's and one
``tensorboard --logdir <run>/tensorboard`` shows them all.
"""

from __future__ import annotations

from maggy.core import current_trial

__all__ = ["logdir"]


def logdir() -> str:
    """The TensorBoard folder of the trial being run; call it inside ``train_fn``.

    Returns:
        ``<experiment_dir>/<name>/<run>/tensorboard/<trial_id>`` (created), when the executor
        shares the driver's filesystem, as on the embedded session, a standalone cluster on
        one machine, or any cluster whose ``experiment_dir`` is on a shared mount. On an
        executor that cannot see the driver's run directory it is a folder under that
        executor's temporary directory, and the trial's log says which.

    Raises:
        RuntimeError: called outside a trial.

    Example:
        >>> from torch.utils.tensorboard import SummaryWriter   # doctest: +SKIP
        >>> def train(model_function, reporter):
        ...     writer = SummaryWriter(maggy.tensorboard.logdir())
        ...     ...
    """
    return current_trial.tensorboard_dir()
