"""Checks run by ``lagom()`` before any Spark job starts, so bad input costs no cluster time."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Optional

from maggy.ablation.datasets import input_info
from maggy.ablation.study import AblationStudy
from maggy.core.executor import TRAIN_FN_ARGS
from maggy.core.trial_builder import build_dataset, build_model
from maggy.exceptions import AblationError
from maggy.trial import as_list, describe

__all__ = ["check_train_fn", "check_study", "check_picklable", "preflight"]


def check_train_fn(train_fn: Any) -> list[str]:
    """Checks the train_fn's signature; returns the maggy arguments it takes.

    Raises:
        TypeError: not callable, or it has a required parameter maggy cannot supply.
    """
    if train_fn is None:
        raise TypeError("lagom() needs train_fn=, the function that trains one trial")
    if not callable(train_fn):
        raise TypeError(f"train_fn must be a function, got {type(train_fn).__name__}: {train_fn!r}")
    try:
        params = inspect.signature(train_fn).parameters
    except (TypeError, ValueError):
        return list(TRAIN_FN_ARGS)
    unknown = [
        name for name, p in params.items()
        if name not in TRAIN_FN_ARGS
        and p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_ONLY)
    ]
    if unknown:
        raise TypeError(
            f"train_fn has parameter(s) {unknown} that maggy cannot supply; it may take any of "
            f"{list(TRAIN_FN_ARGS)} (in any order), or give the others default values"
        )
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return list(TRAIN_FN_ARGS)
    return [name for name in params if name in TRAIN_FN_ARGS]


def check_study(study: AblationStudy, train_args: list[str], dataframe: Any = None) -> None:
    """Checks that the study is complete and its features exist in the catalog dataset.

    Raises:
        ValueError: a missing generator, label or feature; the message says what to do.
    """
    components = study.components
    needs_model = "model_function" in train_args or any(c.kind in ("layer", "group", "prefix") for c in components)
    if needs_model and study.model.base_model_generator is None:
        raise ValueError(
            "the study has no base model: call study.model.set_base_model_generator(make_model) "
            "with a function returning the full torch.nn.Module"
        )
    features = [c.value for c in components if c.kind == "feature"]
    has_data = study.name is not None or study.dataframe is not None
    if study.dataset_generator is None and not has_data and (features or "dataset_function" in train_args):
        raise ValueError(
            "the study has no dataset: name a catalog dataset in AblationStudy(name, version, "
            "label_name=...), pass dataframe=, or call study.set_dataset_generator(make_dataset)"
        )
    if study.streaming and study.dataset_generator is not None:
        raise ValueError(
            "streaming=True streams a catalog dataset or dataframe=; a dataset generator can "
            "return a maggy.ablation.StreamingDataset itself"
        )
    if dataframe is None:
        return
    columns = [str(c) for c in dataframe.columns]
    lowered = [c.lower() for c in columns]
    if not study.label_name:
        raise ValueError(f"AblationStudy needs label_name= (the column to predict); columns: {columns}")
    if study.label_name.lower() not in lowered:
        raise ValueError(f"label {study.label_name!r} is not a column of {_dataset_name(study)}; columns: {columns}")
    for feature in features:
        if feature.lower() not in lowered or feature.lower() == study.label_name.lower():
            close = difflib.get_close_matches(feature, columns, n=3)
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(
                f"feature {feature!r} is not a feature of {_dataset_name(study)}{hint} "
                f"features: {[c for c in columns if c.lower() != study.label_name.lower()]}"
            )


def _dataset_name(study: AblationStudy) -> str:
    return f"dataset {study.name!r} v{study.version}" if study.name is not None else "the study's dataframe"


def check_picklable(objects: dict[str, Any]) -> None:
    """Checks that Spark can ship each object to the executors.

    Args:
        objects: ``{description: object}``, e.g. ``{"train_fn": train}``.

    Raises:
        TypeError: naming the object that cannot be serialised and why.
    """
    from pyspark import cloudpickle

    for what, obj in objects.items():
        if obj is None:
            continue
        try:
            cloudpickle.dumps(obj)
        except Exception as e:
            raise TypeError(
                f"{what} ({getattr(obj, '__qualname__', obj)!r}) cannot be sent to the Spark executors: "
                f"{type(e).__name__}: {e}. Create unpicklable things (open files, locks, sessions, "
                "clients) inside the function instead of capturing them"
            ) from e


def preflight(study: AblationStudy, specs: list[dict], dataframe: Any = None,
              log: Optional[Callable[[str], None]] = None, rules: Optional[dict] = None) -> None:
    """Builds every trial's dataset and model once, through the same code the executors use.

    Impossible ablations (an index out of range, an unknown name, a shape that cannot be
    repaired, an input that cannot be inferred, a trial removing every feature or every
    layer) are collected across all trials and raised together; trials removing several
    components are checked like any other, so a coalition that cannot be built stops the
    study before Spark starts.

    Args:
        study: the study.
        specs: the trial specs.
        dataframe: the catalog dataset (pandas) when the study names one.
        log: receives surgery's report; ``None`` discards it.
        rules: the experiment's repair rules; ``None`` uses this process's registry.

    Raises:
        AblationError: one message listing every invalid trial.
    """
    if study.model.base_model_generator is None and not study.model.custom_model_generators:
        return
    problems: list[str] = []
    has_dataset = study.dataset_generator is not None or dataframe is not None
    datasets: dict[tuple, tuple[Any, Any]] = {}  # removed features -> (dataset, _input_key of it)

    def dataset_for(features: tuple) -> tuple[Any, Any]:
        if features not in datasets:
            # The spec's own form: None, one name, or a list for a multi-component trial.
            field = None if not features else features[0] if len(features) == 1 else list(features)
            dataset = build_dataset(study, {"ablated_feature": field}, dataframe)
            datasets[features] = (dataset, _input_key(dataset, features))
        return datasets[features]

    built: set = set()  # model keys of models that built fine
    for spec in specs:
        if spec.get("repeat"):
            continue  # repeats build the same thing
        if spec.get("custom_model") is None and study.model.base_model_generator is None:
            continue
        feature = tuple(as_list(spec.get("ablated_feature")))  # several in a multi-component trial
        try:
            dataset, input_key = dataset_for(feature) if has_dataset else (None, None)
            # What a model is built from, besides the seed: equal keys build equal models.
            # (reprs: a coalition's fields may be lists)
            key = (repr(spec.get("custom_model")), repr(spec.get("ablated_layers")),
                   repr(spec.get("infer_activation")), input_key)
            if key in built:
                continue  # e.g. every feature trial of a study: one model, one input width
            build_model(study, spec, dataset, log=log, rules=rules,
                        base_dataset=lambda: dataset_for(())[0])
            built.add(key)
        except AblationError as e:
            problems.append(str(e))
        except Exception as e:
            problems.append(f"trial {spec['trial_id']} ({describe(spec)}): {type(e).__name__}: {e}")
    if problems:
        raise AblationError(
            f"{len(problems)} of {len(specs)} trials cannot run; nothing was started:\n  - " + "\n  - ".join(problems)
        )


def _input_key(dataset: Any, feature: Any) -> tuple:
    """What surgery learns from a dataset: its input shape and its sample input's shape and dtype.

    A sample input other than a tensor (or None) gives a key equal to no other. A dataset
    stating neither has its input inferred from its items, which differ with the feature.
    """
    shape, sample = input_info(dataset)
    if shape is None and sample is None:
        return None, ("inferred", feature)
    if sample is None:
        sample_key: Any = None
    elif hasattr(sample, "shape") and hasattr(sample, "dtype"):
        sample_key = (tuple(sample.shape), str(sample.dtype))
    else:
        sample_key = object()
    return shape, sample_key
