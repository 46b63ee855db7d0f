"""maggy: ablation studies for PyTorch, run on Apache Spark.

Example:
    >>> import warnings

# PySpark warns on every pandas conversion when pandas >= 3 is installed; maggy's own
# conversions are tested with pandas 3, so the warning is noise to a maggy user.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

from maggy import experiment  # noqa: E402
    >>> from maggy.ablation import AblationStudy
    >>> study = AblationStudy("titanic_train_dataset", 1, label_name="survived")  # doctest: +SKIP
    >>> result = experiment.lagom(train_fn=train, ablation_study=study, direction="min")  # doctest: +SKIP
"""

import warnings

# PySpark warns on every pandas conversion when pandas >= 3 is installed; maggy's own
# conversions are tested with pandas 3, so the warning is noise to a maggy user.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

from maggy import experiment  # noqa: E402
from maggy.config import AblationConfig  # noqa: E402
from maggy.exceptions import AblationError, EarlyStopException, MaggyError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["experiment", "AblationConfig", "AblationError", "EarlyStopException", "MaggyError", "__version__"]
