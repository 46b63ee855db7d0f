"""Declaring an ablation study: what to leave out, on which model and which data.

An :class:`AblationStudy` records components in the order they are declared. It does no
work itself: an ablator (e.g. LOCO) turns the declaration into trials, and ``lagom()``
validates it against the real model and dataset before any Spark job starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Optional, Union

from maggy.trial import layer_label

__all__ = ["AblationStudy", "Component", "Features", "Layers", "Model"]

LayerId = Union[int, str]


@dataclasses.dataclass(frozen=True)
class Component:
    """One thing a trial leaves out.

    Attributes:
        kind: ``"feature"``, ``"layer"`` (one layer), ``"group"`` (several layers in one
            trial), ``"prefix"`` (every module under a name prefix) or ``"model"`` (a
            custom model used instead of the base model).
        value: the feature name, layer identifier, tuple of identifiers, prefix or
            custom model name.
        infer_activation: also remove the activation right after each removed layer.
    """

    kind: str
    value: Any
    infer_activation: bool = False

    @property
    def label(self) -> str:
        """How the component reads in summaries, e.g. ``"2"``, ``"[2, 3]"``, ``"enc.*"``."""
        if self.kind == "group":
            return layer_label(list(self.value))
        if self.kind == "prefix":
            return layer_label({"prefix": self.value})
        return str(self.value)


def _check_layer_id(value: Any, where: str) -> LayerId:
    # bool is an int subclass; True as "layer 1" is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(
            f"{where} takes layer positions (int) or module names (str), "
            f"got {value!r} of type {type(value).__name__}"
        )
    if isinstance(value, int) and value < 0:
        raise ValueError(f"{where}: layer positions start at 0, got {value}")
    if isinstance(value, str) and not value:
        raise ValueError(f"{where}: a module name must not be empty")
    return value


def _check_generator(generator: Any, where: str, returns: str) -> None:
    from torch import nn

    if isinstance(generator, nn.Module):
        raise TypeError(
            f"{where} takes a function returning {returns}, got a {type(generator).__name__} instance; "
            "pass the function that builds it, so every trial gets a fresh model"
        )
    if not callable(generator):
        raise TypeError(f"{where} takes a function returning {returns}, got {generator!r}")


def _flatten(args: Iterable[Any]) -> list:
    out = []
    for arg in args:
        if isinstance(arg, (list, tuple, set)):
            out.extend(arg)
        else:
            out.append(arg)
    return out


class _Registry:
    """The ordered list of declared components, shared by the parts of one study."""

    def __init__(self) -> None:
        self.components: list[Component] = []

    def add(self, component: Component) -> None:
        # A component declared twice is one trial, not two.
        if component not in self.components:
            self.components.append(component)

    def remove(self, component: Component) -> None:
        self.components = [
            c for c in self.components if (c.kind, c.value) != (component.kind, component.value)
        ]

    def of_kind(self, *kinds: str) -> list[Component]:
        return [c for c in self.components if c.kind in kinds]


class Features:
    """Dataset features to leave out, one trial each.

    Reach it as ``study.features`` (or ``study.model.features``).
    """

    def __init__(self, registry: _Registry):
        self._registry = registry

    def include(self, *features: Union[str, Iterable[str]]) -> None:
        """Adds one trial per feature; lists are unpacked.

        Example:
            >>> study.features.include("fare", ["sibsp", "parch"])  # doctest: +SKIP
        """
        for feature in _flatten(features):
            if not isinstance(feature, str) or not feature:
                raise TypeError(
                    f"features.include takes feature names (non-empty str) or lists of them, "
                    f"got {feature!r} of type {type(feature).__name__}"
                )
            self._registry.add(Component("feature", feature))

    def exclude(self, *features: Union[str, Iterable[str]]) -> None:
        """Removes features included earlier (names match case-insensitively)."""
        for feature in _flatten(features):
            if not isinstance(feature, str):
                raise TypeError(f"features.exclude takes feature names (str), got {feature!r}")
            for c in self._registry.of_kind("feature"):
                if c.value.lower() == feature.lower():
                    self._registry.remove(c)

    def list_all(self) -> list[str]:
        """The included features, in declaration order."""
        return [c.value for c in self._registry.of_kind("feature")]

    def __repr__(self) -> str:
        return f"Features({self.list_all()})"


class Layers:
    """Model layers to leave out: single layers, groups, or every module under a prefix.

    Identifiers are ints (positions in the flattened ``nn.Sequential``) or strs (names from
    ``model.named_modules()``).
    """

    def __init__(self, registry: _Registry):
        self._registry = registry

    def include(self, *layers: Union[LayerId, Iterable[LayerId]], infer_activation: bool = False) -> None:
        """Adds one trial per layer; lists are unpacked into single layers.

        Args:
            *layers: positions or module names.
            infer_activation: also remove the activation that follows each layer.

        Example:
            >>> study.model.layers.include(2, 4)                 # doctest: +SKIP
            >>> study.model.layers.include("encoder.layers.1")   # doctest: +SKIP
        """
        for layer in _flatten(layers):
            self._registry.add(Component("layer", _check_layer_id(layer, "layers.include"), infer_activation))

    def include_groups(
        self,
        *groups: Iterable[LayerId],
        prefix: Optional[str] = None,
        infer_activation: bool = False,
    ) -> None:
        """Adds one trial per group, each removing all of the group's layers together.

        Args:
            *groups: lists (or tuples) of positions or module names.
            prefix: one trial removing every module whose name starts with this prefix.
            infer_activation: also remove the activation that follows each layer.

        Example:
            >>> study.model.layers.include_groups([2, 3], [4, 5])           # doctest: +SKIP
            >>> study.model.layers.include_groups(prefix="encoder.layers")  # doctest: +SKIP
        """
        for group in groups:
            if isinstance(group, (str, int)) or not isinstance(group, (list, tuple, set)):
                raise TypeError(
                    "layers.include_groups takes lists of layer positions or names, one list "
                    f"per trial (e.g. include_groups([2, 3], [4, 5])), got {group!r}"
                )
            members = tuple(_check_layer_id(v, "layers.include_groups") for v in group)
            if len(members) < 2:
                raise ValueError(
                    f"layers.include_groups: a group needs at least two layers, got {list(group)!r}; "
                    "use layers.include() for single layers"
                )
            self._registry.add(Component("group", members, infer_activation))
        if prefix is not None:
            if not isinstance(prefix, str) or not prefix:
                raise TypeError(f"layers.include_groups: prefix must be a non-empty str, got {prefix!r}")
            self._registry.add(Component("prefix", prefix, infer_activation))

    def exclude(self, *layers: Union[LayerId, Iterable[LayerId]], prefix: Optional[str] = None) -> None:
        """Removes layers (or, given a list, a group; given ``prefix``, a prefix group) included earlier."""
        for layer in layers:
            if isinstance(layer, (list, tuple)):
                self._registry.remove(Component("group", tuple(layer)))
            else:
                self._registry.remove(Component("layer", _check_layer_id(layer, "layers.exclude")))
        if prefix is not None:
            self._registry.remove(Component("prefix", prefix))

    def list_all(self) -> list:
        """The included layer components (singles, groups as tuples, prefixes), in order."""
        return [c.value for c in self._registry.of_kind("layer", "group", "prefix")]

    def __repr__(self) -> str:
        return f"Layers({self.list_all()})"


class Model:
    """The model side of a study: the base model, custom variants, and layers to remove."""

    def __init__(self, registry: _Registry, features: Features):
        self._registry = registry
        self.layers = Layers(registry)
        self.features = features
        self.base_model_generator: Optional[Callable[[], Any]] = None
        self.custom_model_generators: dict[str, Callable[[], Any]] = {}
        #: Repair rules of this study (module class -> RepairRule), see :meth:`add_repair_rule`.
        self.repair_rules: dict[type, Any] = {}

    def set_base_model_generator(self, generator: Callable[[], Any]) -> None:
        """Sets the function that builds the full model: ``generator() -> torch.nn.Module``."""
        _check_generator(generator, "set_base_model_generator", "a torch.nn.Module")
        self.base_model_generator = generator

    def add_repair_rule(self, module_type: type, rule: Any) -> None:
        """Tells surgery how to repair ``module_type`` in this study's trials.

        The rule travels with the study to the executors and applies to its experiments
        only. It takes precedence over a rule registered with
        :func:`~maggy.ablation.surgery.register_repair_rule` and over the built-in rules.

        Args:
            module_type: the layer class, a subclass of ``torch.nn.Module``.
            rule: a :class:`~maggy.ablation.surgery.RepairRule` for it.

        Raises:
            TypeError: ``module_type`` is not an ``nn.Module`` subclass or ``rule`` not a
                ``RepairRule``.

        Example:
            >>> from torch import nn
            >>> from maggy.ablation.surgery import RepairRule
            >>> study = AblationStudy()
            >>> study.model.add_repair_rule(nn.Linear, RepairRule(
            ...     expected=lambda m: m.in_features,
            ...     rebuild=lambda m, width: nn.Linear(width, m.out_features)))
            >>> list(study.model.repair_rules)
            [<class 'torch.nn.modules.linear.Linear'>]
        """
        from maggy.ablation.repair_registry import check_rules

        self.repair_rules.update(check_rules({module_type: rule}, "add_repair_rule"))

    def add_custom_model_generator(self, generator: Callable[[], Any], name: str) -> None:
        """Adds one trial that trains ``generator()`` instead of the base model.

        Args:
            generator: function returning a ``torch.nn.Module``.
            name: how the trial is named in results.
        """
        _check_generator(generator, "add_custom_model_generator", "a torch.nn.Module")
        if not isinstance(name, str) or not name:
            raise TypeError(f"add_custom_model_generator: name must be a non-empty str, got {name!r}")
        self.custom_model_generators[name] = generator
        self._registry.add(Component("model", name))


class AblationStudy:
    """What to ablate, on which model and dataset.

    Args:
        training_dataset_name: name of a dataset in the catalog (``maggy.datasets``); not
            needed when a ``dataset_generator`` is given.
        training_dataset_version: version of that dataset.
        label_name: the column to predict; every other column is a feature.
        dataset_generator: function returning a ``MaggyDataset``; may take ``ablated_feature``.
        streaming: give each trial a ``StreamingDataset`` (an ``IterableDataset`` reading
            row groups one at a time) instead of a ``PandasDataset`` held in memory; for
            datasets larger than an executor's memory.
        dataframe: a pandas or Spark DataFrame to train on instead of a catalog dataset. It
            is written once as parquet (never collected on the driver) into the run's
            directory, or into ``staging_path``, and the executors read it from there.
        staging_path: where to write ``dataframe``: a folder every executor can read
            (shared storage, ``hdfs://``, ``s3a://``); by default ``<run_dir>/data``.

    Example:
        >>> study = AblationStudy("titanic_train_dataset", 1, label_name="survived")
        >>> study.features.include("fare")
        >>> study.model.layers.include(2, 4)
    """

    def __init__(
        self,
        training_dataset_name: Optional[str] = None,
        training_dataset_version: int = 1,
        label_name: Optional[str] = None,
        dataset_generator: Optional[Callable[..., Any]] = None,
        streaming: bool = False,
        dataframe: Any = None,
        staging_path: Optional[str] = None,
    ):
        if training_dataset_name is not None and not isinstance(training_dataset_name, str):
            raise TypeError(f"training_dataset_name must be a str, got {training_dataset_name!r}")
        if isinstance(training_dataset_version, bool) or not isinstance(training_dataset_version, int):
            raise TypeError(f"training_dataset_version must be an int, got {training_dataset_version!r}")
        if label_name is not None and not isinstance(label_name, str):
            raise TypeError(f"label_name must be a str, got {label_name!r}")
        if not isinstance(streaming, bool):
            raise TypeError(f"streaming must be True or False, got {streaming!r}")
        if dataframe is not None and not hasattr(dataframe, "columns"):
            raise TypeError(f"dataframe must be a pandas or Spark DataFrame, got {type(dataframe).__name__}")
        if dataframe is not None and training_dataset_name is not None:
            raise ValueError("give a catalog dataset name or dataframe=, not both")
        if staging_path is not None and not isinstance(staging_path, str):
            raise TypeError(f"staging_path must be a str, got {staging_path!r}")
        self.streaming = streaming
        self.dataframe = dataframe
        self.staging_path = staging_path
        self.name = training_dataset_name
        self.version = training_dataset_version
        self.label_name = label_name
        self._registry = _Registry()
        self.features = Features(self._registry)
        self.model = Model(self._registry, self.features)
        self.dataset_generator: Optional[Callable[..., Any]] = None
        if dataset_generator is not None:
            self.set_dataset_generator(dataset_generator)

    def set_dataset_generator(self, generator: Callable[..., Any]) -> None:
        """Sets the function that builds the training dataset (a ``MaggyDataset``)."""
        _check_generator(generator, "set_dataset_generator", "a MaggyDataset")
        self.dataset_generator = generator

    def __getstate__(self) -> dict:
        # The executors read the staged copy of a DataFrame, never the DataFrame itself
        # (a Spark one cannot travel, a pandas one would travel with every task).
        return {**self.__dict__, "dataframe": None}

    @property
    def components(self) -> list[Component]:
        """Every declared component, in declaration order."""
        return list(self._registry.components)

    def __repr__(self) -> str:
        return (
            f"AblationStudy(dataset={self.name!r} v{self.version}, label={self.label_name!r}, "
            f"components={[c.label for c in self.components]})"
        )
