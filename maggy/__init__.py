"""maggy: ablation studies for PyTorch, run on Apache Spark.

Example:
    >>> from maggy import experiment
    >>> from maggy.ablation import AblationStudy
    >>> study = AblationStudy("titanic_train_dataset", 1, label_name="survived")
    >>> result = experiment.lagom(train_fn=train, ablation_study=study, direction="min")  # doctest: +SKIP
"""

import importlib
import warnings
from typing import TYPE_CHECKING

from maggy.exceptions import AblationError, EarlyStopException, MaggyError

if TYPE_CHECKING:  # imported on first use at run time (see __getattr__)
    from maggy import experiment
    from maggy.config import AblationConfig

# PySpark warns on every pandas conversion when pandas >= 3 is installed; maggy's own
# conversions are tested with pandas 3, so the warning is noise to a maggy user.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

__version__ = "0.1.0"

__all__ = ["experiment", "AblationConfig", "AblationError", "EarlyStopException", "MaggyError", "spark_conf", "__version__"]


def __getattr__(name):
    # lagom() pulls in Spark and gRPC, the config torch and pandas: import them on first
    # use, so `python -m maggy report` starts fast and Spark's worker daemon
    # (maggy.core.worker_daemon) loads only what it means to.
    if name == "experiment":
        return importlib.import_module("maggy.experiment")
    if name == "AblationConfig":
        return importlib.import_module("maggy.config").AblationConfig
    if name == "spark_conf":
        return importlib.import_module("maggy.core.session").spark_conf
    raise AttributeError(f"module 'maggy' has no attribute {name!r}")
