"""Building one trial's dataset and model from its spec.

Used by the executors to run trials and by the driver's pre-flight check, so both build
exactly the same thing.
"""

from __future__ import annotations

import contextlib
import inspect
import io
from typing import Any, Callable, Optional

from maggy.ablation.datasets import PandasDataset, input_info
from maggy.ablation.study import AblationStudy
from maggy.core.data import DataSource, load_dataset
from maggy.trial import describe
from maggy.util import set_seed

__all__ = ["build_dataset", "build_model", "accepts_parameter"]


def accepts_parameter(fn: Callable, name: str) -> bool:
    """True when ``fn`` can be called with the keyword argument ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_dataset(study: AblationStudy, spec: dict, dataframe: Any = None) -> Any:
    """The trial's dataset, with its feature (if any) already removed.

    Args:
        study: the study.
        spec: the trial spec.
        dataframe: the training data when the study names one: a ``DataSource`` (the
            trial reads its columns) or a pandas DataFrame.
    """
    feature = spec.get("ablated_feature")
    generator = study.dataset_generator
    if generator is None and isinstance(dataframe, DataSource):
        return load_dataset(dataframe, study.label_name, feature, streaming=study.streaming)
    if generator is None:
        dataset = PandasDataset(dataframe, study.label_name)
        if feature:
            dataset.ablate_feature(feature)
        return dataset
    if accepts_parameter(generator, "ablated_feature"):
        return generator(ablated_feature=feature)
    dataset = generator()
    if feature:
        if not callable(getattr(dataset, "ablate_feature", None)):
            raise TypeError(
                f"the dataset generator returned a {type(dataset).__name__}, which has no "
                "ablate_feature(feature) method; return a maggy.ablation.MaggyDataset or let the "
                "generator take an `ablated_feature` argument"
            )
        dataset.ablate_feature(feature)
    return dataset


def build_model(
    study: AblationStudy,
    spec: dict,
    dataset: Any = None,
    log: Optional[Callable[[str], None]] = None,
):
    """The trial's model: generated, seeded, ablated and shape-repaired.

    The seed is set right before the generator runs, so untouched layers start from the
    same weights in every trial.

    Args:
        study: the study.
        spec: the trial spec.
        dataset: the trial's dataset; its ``input_shape`` / ``sample_input()`` drive the
            shape repair.
        log: receives the lines surgery prints ("Ablating layer 3 - ReLU()"); ``None``
            discards them.
    """
    from maggy.ablation.surgery import ablate

    custom = spec.get("custom_model")
    if custom:
        generator = study.model.custom_model_generators[custom]
    else:
        generator = study.model.base_model_generator
    set_seed(spec.get("seed"))
    model = generator()
    input_shape, sample_input = input_info(dataset) if dataset is not None else (None, None)
    layers = spec.get("ablated_layers")
    if not layers and input_shape is None and sample_input is None:
        return model
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model = ablate(
            model,
            layers,
            input_shape=input_shape,
            sample_input=sample_input,
            infer_activation=spec.get("infer_activation", False),
            verbose=True,
            trial=f"{spec.get('trial_id')} ({describe(spec)})",
        )
    if log is not None:
        for line in out.getvalue().splitlines():
            log(line)
    return model
