"""The one-class API of the Maggy thesis (section 3.5, listing 3.13), over the same engine.

:class:`Ablator` holds the model generator, the dataset generator and the training function,
takes one :meth:`~Ablator.new_trial` call per trial, and runs them with
:meth:`~Ablator.execute_trials`. It is a thin layer: it builds an :class:`AblationStudy` with
the two generators, a :class:`~maggy.ablation.ablator.declared.DeclaredTrials` policy that
yields exactly the declared trials, and calls :func:`maggy.experiment.lagom` — so
validation, pre-flight, Spark, early stopping, the journal and the result are the ones every
other study gets.

It is a façade on top of the entry point ``lagom()``, so it lives beside it (it is re-exported
lazily as ``maggy.ablation.Ablator``, the name the thesis uses).

Unlike LOCO, a trial may remove several things at once (layers and a feature together).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, Optional

from maggy.ablation.ablator.declared import DeclaredTrials
from maggy.ablation.study import AblationStudy, _check_layer_id
from maggy.trial import describe, layer_label, make_spec

__all__ = ["Ablator"]

#: AblationConfig fields the Ablator sets itself.
_OWN_FIELDS = ("ablation_study", "ablator", "name", "direction")


def _check_layers(layers: Any) -> Optional[list]:
    """``ablated_layers`` as the list a trial spec holds (``None`` when nothing is removed)."""
    if layers is None:
        return None
    if isinstance(layers, (list, tuple)):
        members = list(layers)
    else:
        members = [layers]
    checked = []
    for member in members:
        if isinstance(member, dict):
            if set(member) != {"prefix"} or not isinstance(member["prefix"], str) or not member["prefix"]:
                raise TypeError(
                    "new_trial: a prefix identifier is {'prefix': name} (see "
                    f"maggy.ablation.surgery.prefix), got {member!r}"
                )
            checked.append({"prefix": member["prefix"]})
        else:
            checked.append(_check_layer_id(member, "new_trial(ablated_layers=...)"))
    if len({repr(m) for m in checked}) != len(checked):
        raise ValueError(f"new_trial: ablated_layers names a layer twice: {list(members)!r}")
    return checked or None


def _check_input_shape(input_shape: Any) -> Optional[tuple]:
    if input_shape is None:
        return None
    if isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not input_shape or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d > 0 for d in input_shape
    ):
        raise TypeError(
            "new_trial: input_shape must be a tuple of positive ints, the shape of one sample "
            f"without the batch dimension (e.g. (6,) or (3, 32, 32)), got {input_shape!r}"
        )
    return tuple(int(d) for d in input_shape)


class Ablator:
    """Declare trials one by one and run them: the one-class API of the Maggy thesis.

    Args:
        model_fn: builds the full model: ``model_fn() -> torch.nn.Module``.
        dataset_fn: builds the training dataset, a :class:`~maggy.ablation.MaggyDataset`
            (or a function taking ``ablated_feature=``), exactly as
            ``AblationStudy(dataset_generator=...)`` takes it.
        train_fn: trains one trial, as for :func:`maggy.experiment.lagom`: it may take
            ``model_function``, ``dataset_function`` and ``reporter``.
        name: experiment name (the experiment directory is ``<experiment_dir>/<name>``).
        direction: ``"max"`` or ``"min"``: which way the metric is better.
        **config_fields: any other :class:`~maggy.config.AblationConfig` field
            (``num_executors``, ``es_policy``, ``seed``, ``repeats``, ``experiment_dir``,
            ``verbose``, ...), checked here.

    Raises:
        TypeError: a generator or ``train_fn`` that is not callable, or an unknown or
            reserved config field.
        ValueError: an invalid config value (e.g. ``direction``).

    The trials run in declaration order after the base trial (nothing removed). A trial
    declared with nothing removed *is* the base trial and runs first wherever it was
    declared; without one, :meth:`execute_trials` adds it, since every result is measured
    against it (``delta``). The study the trials run on is :attr:`study`.

    Example:
        >>> ablator = Ablator(make_model, make_dataset, train, direction="min")  # doctest: +SKIP
        >>> ablator.new_trial((6,), ablated_layers=None, ablated_features=None)  # doctest: +SKIP
        >>> ablator.new_trial((5,), None, "sex")                                  # doctest: +SKIP
        >>> ablator.new_trial((6,), 2, None, infer_activation=True)               # doctest: +SKIP
        >>> ablator.new_trial((6,), [3, 4, 5, 6], None)                           # doctest: +SKIP
        >>> result = ablator.execute_trials()                                     # doctest: +SKIP
    """

    def __init__(self, model_fn: Callable[[], Any], dataset_fn: Callable[..., Any],
                 train_fn: Callable, name: str = "ablator", direction: str = "max",
                 **config_fields: Any):
        from maggy.config import AblationConfig

        if not callable(train_fn):
            raise TypeError(f"Ablator: train_fn must be a function, got {train_fn!r}")
        reserved = sorted(set(config_fields) & set(_OWN_FIELDS))
        if reserved:
            raise TypeError(f"Ablator sets {reserved} itself; pass name= and direction= as arguments")
        fields = set(AblationConfig.__dataclass_fields__) - set(_OWN_FIELDS)
        unknown = sorted(set(config_fields) - fields)
        if unknown:
            raise TypeError(f"Ablator got unknown config field(s) {unknown}; accepted: {sorted(fields)}")
        self.study = AblationStudy(dataset_generator=dataset_fn)
        self.study.model.set_base_model_generator(model_fn)
        self.train_fn = train_fn
        # Built now so that a bad value fails here, not at execute_trials().
        self.config = AblationConfig(ablation_study=self.study, name=name, direction=direction, **config_fields)
        self._base: Optional[dict] = None
        self._trials: list[dict] = []
        self._shapes: list[tuple[dict, tuple]] = []

    def new_trial(self, input_shape: Any = None, ablated_layers: Any = None,
                  ablated_features: Optional[str] = None, infer_activation: bool = False) -> int:
        """Declares one trial.

        Args:
            input_shape: the shape of one model input after the trial's feature ablation,
                without the batch dimension, e.g. ``(5,)``. Optional and used only as a
                check: :meth:`execute_trials` compares it with the ``input_shape`` the
                dataset reports after ablation and stops on a mismatch. The shapes the
                model is repaired for always come from the dataset (``input_shape`` /
                ``sample_input()``), as in every maggy study.
            ablated_layers: ``None``, one layer identifier (an int position in an
                ``nn.Sequential``, a module name, or :func:`maggy.ablation.surgery.prefix`),
                or a list of them, all removed together in this one trial.
            ablated_features: ``None`` or the name of one feature to remove.
            infer_activation: also remove the activation right after each removed layer.

        Returns:
            The trial's position in the run order (0 is the base trial).

        Raises:
            TypeError: an argument of the wrong kind.
            ValueError: the same trial declared twice, or a layer named twice.

        Example:
            >>> ablator.new_trial(ablated_layers="layers.1")  # doctest: +SKIP
            1
        """
        shape = _check_input_shape(input_shape)
        layers = _check_layers(ablated_layers)
        if ablated_features is not None and (not isinstance(ablated_features, str) or not ablated_features):
            raise TypeError(
                "new_trial: ablated_features is the name of one feature (a non-empty str) or None; "
                f"declare one trial per feature, got {ablated_features!r}"
            )
        if not isinstance(infer_activation, bool):
            raise TypeError(f"new_trial: infer_activation must be a bool, got {infer_activation!r}")
        trial = {"ablated_feature": ablated_features, "ablated_layers": layers,
                 "layer_label": layer_label(layers or None),
                 "infer_activation": infer_activation if layers else False}
        if trial == self._base or trial in self._trials:
            raise ValueError(f"new_trial: this trial was declared already: {describe(trial)}")
        if shape is not None:
            self._shapes.append((trial, shape))
        if ablated_features is None and layers is None:
            self._base = trial
            return 0
        self._trials.append(trial)
        return len(self._trials)

    @property
    def trials(self) -> list[dict]:
        """The trials :meth:`execute_trials` will run, the base trial first."""
        base = self._base or {"ablated_feature": None, "ablated_layers": None, "layer_label": None,
                              "infer_activation": False}
        return [dict(base)] + [dict(t) for t in self._trials]

    def execute_trials(self) -> dict:
        """Runs the declared trials on Spark and returns the result.

        Returns:
            The result dict of :func:`maggy.experiment.lagom` (``best_config``, ``trials``,
            ``components``, ``run_dir``, ...).

        Raises:
            ValueError: a declared ``input_shape`` differs from the dataset's, or the
                dataset reports none to compare with; before any Spark job starts.
            AblationError, TypeError: whatever ``lagom()`` finds wrong with the trials.
        """
        from maggy import experiment

        self._check_shapes()
        config = dataclasses.replace(self.config, ablator=DeclaredTrials(
            self.study, self.trials, repeats=self.config.repeats, seed=self.config.seed))
        return experiment.lagom(self.train_fn, config)

    def _check_shapes(self) -> None:
        if not self._shapes:
            return
        from maggy.ablation.datasets import input_info
        from maggy.core.trial_builder import build_dataset

        shapes: dict[Optional[str], Optional[tuple]] = {}
        for trial, declared in self._shapes:
            feature = trial["ablated_feature"]
            if feature not in shapes:
                shapes[feature] = input_info(build_dataset(self.study, make_spec(0, ablated_feature=feature)))[0]
            actual = shapes[feature]
            if actual is None:
                raise ValueError(
                    f"new_trial(input_shape={declared}) for trial {describe(trial)}: the dataset has no "
                    "input_shape to check it against; give the dataset an `input_shape` property or "
                    "leave input_shape out"
                )
            if actual != declared:
                raise ValueError(
                    f"new_trial(input_shape={declared}) for trial {describe(trial)}: after ablation the "
                    f"dataset's input_shape is {actual}"
                )

    def __repr__(self) -> str:
        return f"Ablator(name={self.config.name!r}, trials={[describe(t) for t in self.trials]})"
