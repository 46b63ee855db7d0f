"""What a train_fn may ask about the trial it runs: its TensorBoard folder.

A Python worker runs one trial at a time, so the executor sets the current trial here while
``train_fn`` runs (any thread of the train_fn sees it) and clears it afterwards.
:func:`maggy.tensorboard.logdir` is the public face of :func:`tensorboard_dir`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import tempfile
from typing import Callable, Iterator, Optional

from maggy import layout

__all__ = ["running", "tensorboard_dir"]


@dataclasses.dataclass
class _Trial:
    trial_id: str
    tensorboard_root: Optional[str]  # the driver's <run>/tensorboard folder
    log: Callable[[str], None]
    logdir: Optional[str] = None  # decided on the first tensorboard_dir() call


_current: Optional[_Trial] = None


@contextlib.contextmanager
def running(trial_id: str, tensorboard_root: Optional[str], log: Callable[[str], None]) -> Iterator[None]:
    """Marks ``trial_id`` as the trial this process runs, for the length of the block.

    Args:
        trial_id: the trial's id.
        tensorboard_root: the run's ``tensorboard`` folder as the driver sees it.
        log: writes a line to the trial's log (shown on the driver).
    """
    global _current
    _current = _Trial(trial_id, tensorboard_root, log)
    try:
        yield
    finally:
        _current = None


def tensorboard_dir() -> str:
    """The running trial's TensorBoard folder, created if needed.

    ``<run>/tensorboard/<trial_id>/`` of the driver's run directory when the executor sees
    that directory (same machine, or a shared filesystem); otherwise a folder under the
    executor's temporary directory, which the trial's log names once (an executor on
    another machine cannot write into the driver's disk).

    Raises:
        RuntimeError: called outside a trial (e.g. on the driver).
    """
    trial = _current
    if trial is None:
        raise RuntimeError(
            "maggy.tensorboard.logdir() names the folder of the trial being run: call it inside "
            "the train_fn, while lagom() runs the trial"
        )
    if trial.logdir is None:
        root = trial.tensorboard_root
        # The driver created the run directory before any trial started: seeing it here
        # means the executor shares the driver's filesystem.
        if root is not None and os.path.isdir(os.path.dirname(root)):
            trial.logdir = layout.trial_tensorboard_path(root, trial.trial_id)
        else:
            # <experiment name>/<run>, so experiments do not share folders there either.
            run = os.path.normpath(os.path.dirname(root)).split(os.sep)[-2:] if root else ["run"]
            trial.logdir = layout.trial_tensorboard_path(
                os.path.join(tempfile.gettempdir(), "maggy-tensorboard", *run), trial.trial_id)
            trial.log(
                f"maggy.tensorboard.logdir(): the driver's run directory is not visible on executor "
                f"{socket.gethostname()}; TensorBoard files of this trial go to {trial.logdir} there"
            )
        os.makedirs(trial.logdir, exist_ok=True)
    return trial.logdir
