"""Building one trial's dataset and model from its spec.

Used by the executors to run trials and by the driver's pre-flight check, so both build
exactly the same thing.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import numpy as np

from maggy.ablation.datasets import PandasDataset, input_info
from maggy.ablation.repair_registry import user_rules
from maggy.ablation.study import AblationStudy
from maggy.core.data import DataSource, load_dataset
from maggy.exceptions import AblationError
from maggy.trial import as_list, describe
from maggy.util import set_seed

__all__ = ["build_dataset", "build_model", "accepts_parameter", "experiment_rules"]


def accepts_parameter(fn: Callable, name: str) -> bool:
    """True when ``fn`` can be called with the keyword argument ``name``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def build_dataset(study: AblationStudy, spec: dict, dataframe: Any = None) -> Any:
    """The trial's dataset, with its features (if any) already removed.

    A trial removing several features drops each of them: a ``PandasDataset`` loses
    several columns, a ``MaggyDataset`` gets ``ablate_feature`` once per feature, and a
    generator taking ``ablated_features=`` gets the list.

    Args:
        study: the study.
        spec: the trial spec.
        dataframe: the training data when the study names one: a ``DataSource`` (the
            trial reads its columns) or a pandas DataFrame.

    A ``PandasDataset`` left without any feature gets one all-zero column instead (no
    information), so that trial can still be built.

    Raises:
        TypeError: the dataset cannot remove features the way the trial needs.
    """
    features = as_list(spec.get("ablated_feature"))
    removes_features = bool(features)
    generator = study.dataset_generator
    if generator is None and isinstance(dataframe, DataSource):
        # The first feature is never read; a coalition's other features are dropped after.
        dataset = load_dataset(dataframe, study.label_name, features[0] if features else None,
                               streaming=study.streaming)
        features = features[1:]
    elif generator is None:
        dataset = PandasDataset(dataframe, study.label_name)
    elif accepts_parameter(generator, "ablated_features"):
        return generator(ablated_features=features)
    elif accepts_parameter(generator, "ablated_feature") and len(features) <= 1:
        return generator(ablated_feature=features[0] if features else None)
    elif accepts_parameter(generator, "ablated_feature"):
        dataset = generator(ablated_feature=None)
    else:
        dataset = generator()
    if features and not callable(getattr(dataset, "ablate_feature", None)):
        raise TypeError(
            f"the dataset generator returned a {type(dataset).__name__}, which has no "
            "ablate_feature(feature) method; return a maggy.ablation.MaggyDataset or let the "
            "generator take an `ablated_feature` argument"
            + ("" if len(features) <= 1 else " (or `ablated_features`, a list, for trials removing several)")
        )
    for feature in features:
        dataset.ablate_feature(feature)
    if isinstance(dataset, PandasDataset) and removes_features and not dataset.feature_names:
        # Every feature removed (a coalition of the Shapley policy always has this one): the
        # model gets one all-zero column, so it can be built and learns only what needs no
        # feature (the label's mean), the "no information" value such a coalition stands for.
        dataset.data = np.zeros((len(dataset), 1), dtype=dataset.data.dtype)
    return dataset


def experiment_rules(study: AblationStudy) -> dict:
    """The repair rules an experiment carries: this process's registered rules as
    ``lagom()`` starts, overridden by the study's own (``study.model.add_repair_rule``).

    Executors apply exactly these, passed along with the experiment, never a table of
    their own process: Spark reuses its Python workers from one experiment to the next.
    """
    return {**user_rules(), **study.model.repair_rules}


def build_model(
    study: AblationStudy,
    spec: dict,
    dataset: Any = None,
    log: Optional[Callable[[str], None]] = None,
    rules: Optional[dict] = None,
    base_dataset: Optional[Callable[[], Any]] = None,
):
    """The trial's model: generated, seeded, ablated and shape-repaired.

    The seed is set right before the generator runs, so untouched layers start from the
    same weights in every trial.

    Args:
        study: the study.
        spec: the trial spec.
        dataset: the trial's dataset; its ``input_shape`` / ``sample_input()`` drive the
            shape repair, else the input is inferred from its first item
            (:func:`maggy.ablation.model_input.infer_input`).
        log: receives surgery's report ("Ablating layer 3 - ReLU()"); ``None`` discards it.
        rules: the experiment's repair rules (:func:`experiment_rules`); ``None`` uses the
            rules registered in this process.
        base_dataset: builds the dataset without the trial's feature ablation, which input
            inference needs for a feature trial; called only then.

    Raises:
        AblationError: a removal or repair that cannot be made, or an input that can be
            neither read from the dataset nor inferred; the message names the trial.
    """
    from maggy.ablation.model_input import model_input
    from maggy.ablation.surgery import ablate

    trial = f"{spec.get('trial_id')} ({describe(spec)})"
    custom = as_list(spec.get("custom_model"))
    if len(custom) > 1:
        raise AblationError(
            f"trial {trial}: a trial trains one model and this one asks for the custom models "
            f"{custom}; custom models replace the whole model and cannot be removed together"
        )
    if custom:
        generator = study.model.custom_model_generators[custom[0]]
    else:
        generator = study.model.base_model_generator
    set_seed(spec.get("seed"))
    model = generator()
    layers = spec.get("ablated_layers")
    feature = spec.get("ablated_feature")
    input_shape, sample_input = input_info(dataset) if dataset is not None else (None, None)
    if input_shape is None and sample_input is None:
        if not layers and not feature:
            return model  # nothing removed and nothing stated to check the model against
        if dataset is not None:
            base = base_dataset() if feature and base_dataset is not None else None
            input_shape, sample_input = model_input(model, dataset, base, f"trial {trial}: ")
    infer_activation = spec.get("infer_activation", False)
    if isinstance(infer_activation, list):
        # Layer components that disagree on infer_activation: resolve each side by its own
        # flag, then remove the union of names in one pass.
        layers, infer_activation = _resolve_mixed(model, layers, infer_activation, trial), False
    return ablate(
        model,
        layers,
        input_shape=input_shape,
        sample_input=sample_input,
        infer_activation=infer_activation,
        trial=trial,
        rules=rules,
        log=log if log is not None else _discard,
    )


def _discard(line: str) -> None:
    """A log that keeps nothing (pre-flight builds models only to check them)."""


def _resolve_mixed(model, layers: list, flags: list, trial: str) -> list[str]:
    """Module names removed by ``layers`` where ``flags[i]`` is identifier i's infer_activation."""
    from maggy.ablation.surgery import resolve_layers

    names: list[str] = []
    for flag in (False, True):
        chosen = [ident for ident, f in zip(layers, flags) if bool(f) is flag]
        if chosen:
            names += [n for n in resolve_layers(model, chosen, flag, trial=trial) if n not in names]
    return names
