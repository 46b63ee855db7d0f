"""Where an experiment's files live: the one module that names them.

::

    <experiment_dir>/<name>/            experiment_path(experiment_dir, name)
        run_1/, run_2/, ...             run_path(...), new_run(...), latest_run(...)
            config.json                 config_path(run): the config and the trial specs
            trials.jsonl                journal_path(run): one trial record per line
            logs/<trial_id>.log         log_path(run, trial_id): what reporter.log() wrote
            tensorboard/<trial_id>/     tensorboard_path(run, trial_id): the trial's scalars
            result.json                 result_path(run): the final result
            effects.png                 plot_path(run): each component's effect
            spark_errors.txt            spark_errors_path(run): full text of a failed Spark job
            data/                       staged_data_path(run): a study's dataframe= as parquet

A new run takes the next free number; ``resume=True`` and ``python -m maggy report`` read the
highest. Everything else asks this module for a path instead of spelling a name itself.
It imports nothing from maggy, so every layer may use it (docs/architecture.md).
"""

from __future__ import annotations

import os
import re
from typing import Optional, Union

__all__ = [
    "JOURNAL", "experiment_path", "run_path", "run_numbers", "latest_run", "new_run",
    "is_journal", "config_path", "journal_path", "result_path", "plot_path", "log_path",
    "tensorboard_path", "trial_tensorboard_path", "spark_errors_path",
    "tensorboard_path", "trial_tensorboard_path", "staged_data_path",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The journal's file name (the file that makes a folder a run).
JOURNAL = "trials.jsonl"
_CONFIG = "config.json"
_RESULT = "result.json"
_PLOT = "effects.png"
_INTERACTIONS_PLOT = "interactions.png"
_LOGS = "logs"
_TENSORBOARD = "tensorboard"
_SPARK_ERRORS = "spark_errors.txt"
_DATA = "data"
_RUN = re.compile(r"run_(\d+)")


def experiment_path(experiment_dir: PathLike, name: str) -> str:
    """The absolute folder holding an experiment's runs.

    Example:
        >>> experiment_path("/tmp/maggy_experiments", "Titanic-LOCO")
        '/tmp/maggy_experiments/Titanic-LOCO'
    """
    return os.path.join(os.path.abspath(experiment_dir), name)


def run_path(experiment: PathLike, number: int) -> str:
    """The folder of run ``number`` of an experiment.

    Example:
        >>> run_path("/tmp/e", 2)
        '/tmp/e/run_2'
    """
    return os.path.join(os.fspath(experiment), f"run_{number}")


def run_numbers(experiment: PathLike) -> list[int]:
    """The numbers of the experiment's ``run_N`` subfolders, ascending; ``[]`` if there are none."""
    path = os.fspath(experiment)
    if not os.path.isdir(path):
        return []
    return sorted(
        int(m.group(1))
        for name in os.listdir(path)
        if (m := _RUN.fullmatch(name)) and os.path.isdir(os.path.join(path, name))
    )


def latest_run(experiment: PathLike) -> Optional[str]:
    """The folder of the experiment's highest-numbered run, or ``None`` when it has no run."""
    numbers = run_numbers(experiment)
    return run_path(experiment, numbers[-1]) if numbers else None


def new_run(experiment: PathLike) -> str:
    """Creates the experiment's next run folder (``run_1`` for the first) and returns it."""
    numbers = run_numbers(experiment)
    path = run_path(experiment, numbers[-1] + 1 if numbers else 1)
    os.makedirs(path)
    return path


def is_journal(path: PathLike) -> bool:
    """Whether ``path`` is a run's journal file (by its name, and it exists)."""
    return os.path.isfile(path) and os.path.basename(os.fspath(path)) == JOURNAL


def config_path(run: PathLike) -> str:
    """The run's ``config.json``."""
    return os.path.join(os.fspath(run), _CONFIG)


def journal_path(run: PathLike) -> str:
    """The run's journal, ``trials.jsonl``."""
    return os.path.join(os.fspath(run), JOURNAL)


def result_path(run: PathLike) -> str:
    """The run's ``result.json``."""
    return os.path.join(os.fspath(run), _RESULT)


def staged_data_path(run: PathLike) -> str:
    """Where a study's ``dataframe=`` is written as parquet for the executors, ``data/``."""
    return os.path.join(os.fspath(run), _DATA)


def plot_path(run: PathLike) -> str:
    """The run's effect plot, ``effects.png``."""
    return os.path.join(os.fspath(run), _PLOT)


def interactions_plot_path(run: PathLike) -> str:
    """The run's heat map of pair interactions (``ablator="pairs"``)."""
    return os.path.join(os.fspath(run), _INTERACTIONS_PLOT)


def log_path(run: PathLike, trial_id: str) -> str:
    """The file holding what trial ``trial_id`` wrote through ``reporter.log()``.

    Example:
        >>> log_path("/tmp/e/run_1", "t001-ab12cd34")
        '/tmp/e/run_1/logs/t001-ab12cd34.log'
    """
    return os.path.join(os.fspath(run), _LOGS, f"{trial_id}.log")


def tensorboard_path(run: PathLike, trial_id: Optional[str] = None) -> str:
    """The run's TensorBoard folder, or with ``trial_id`` that trial's run inside it.

    Example:
        >>> tensorboard_path("/tmp/e/run_1", "t001-ab12cd34")
        '/tmp/e/run_1/tensorboard/t001-ab12cd34'
    """
    path = os.path.join(os.fspath(run), _TENSORBOARD)
    return path if trial_id is None else trial_tensorboard_path(path, trial_id)


def trial_tensorboard_path(tensorboard: PathLike, trial_id: str) -> str:
    """A trial's folder inside a TensorBoard log folder (``tensorboard_path(run)`` in a run)."""
    return os.path.join(os.fspath(tensorboard), str(trial_id))


def spark_errors_path(run: PathLike) -> str:
    """The run's ``spark_errors.txt``: the full text of each Spark job failure (only if one failed)."""
    return os.path.join(os.fspath(run), _SPARK_ERRORS)
