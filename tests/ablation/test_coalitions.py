"""Trials that remove several components at once: specs, datasets and surgery (no Spark)."""

import pandas as pd
import pytest
from torch import nn

from maggy.ablation import AblationStudy, MaggyDataset
from maggy.ablation.ablator import LOCO, Pairs, Shapley
from maggy.ablation.ablator.coalitions import coalition_spec
from maggy.ablation.study import Component
from maggy.ablation.surgery import ablate
from maggy.core.trial_builder import build_dataset, build_model
from maggy.core.validation import preflight
from maggy.exceptions import AblationError


def planted_frame():
    return pd.DataFrame({"y": [0.0, 1.0, 2.0], "x1": [1.0, 2.0, 3.0], "x2": [4.0, 5.0, 6.0], "x3": [7.0, 8.0, 9.0]})


def study_of(*features, generator=None):
    study = AblationStudy(label_name="y", dataset_generator=generator or (lambda: _pandas()))
    study.features.include(*features)
    return study


def _pandas():
    from maggy.ablation import PandasDataset

    return PandasDataset(planted_frame(), "y")


class Recording(MaggyDataset):
    """Remembers every ablate_feature call."""

    def __init__(self):
        self.calls = []

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return i

    def ablate_feature(self, feature):
        self.calls.append(feature)


def test_pairs_and_shapley_keep_the_loco_trial_ids_of_the_single_components():
    study = study_of("x1", "x2", "x3")
    ids = {}
    for policy in (LOCO, Pairs, Shapley):
        ablator = policy(study, repeats=2)
        ablator.initialize()
        ids[policy] = [t["trial_id"] for t in ablator.trial_buffer]
    loco = ids[LOCO]
    # Rule: the base and single-component trials are LOCO's, with LOCO's ids (resume relies on them).
    assert set(loco) <= set(ids[Pairs]) and set(loco) <= set(ids[Shapley])
    assert len(ids[Pairs]) == 2 * (1 + 3 + 3) and len(ids[Shapley]) == 2 * 8
    assert len(set(ids[Shapley])) == len(ids[Shapley])


def test_a_coalition_spec_lists_what_it_removes_and_keeps_loco_columns():
    components = [Component("feature", "x1"), Component("feature", "x2"), Component("layer", 2),
                  Component("group", (4, 5), infer_activation=True)]
    spec = coalition_spec(7, components)
    # Rule: several features are a list; layers are the union; labels say what is removed.
    assert spec["ablated_feature"] == ["x1", "x2"]
    assert spec["ablated_layers"] == [2, 4, 5]
    assert spec["infer_activation"] == [False, True, True]
    assert spec["removed"] == ["feature x1", "feature x2", "layer 2", "layer [4, 5]"]
    assert coalition_spec(0, [])["removed"] == []


def test_a_pandas_dataset_drops_every_feature_of_the_trial():
    study = study_of("x1", "x2")
    dataset = build_dataset(study, coalition_spec(3, [Component("feature", "x1"), Component("feature", "X3")]))
    # Rule: both columns go, matched case-insensitively.
    assert dataset.feature_names == ["x2"] and dataset.input_shape == (1,)


def test_a_maggy_dataset_gets_ablate_feature_once_per_feature():
    study = study_of("a", "b", generator=Recording)
    dataset = build_dataset(study, coalition_spec(3, [Component("feature", "a"), Component("feature", "b")]))
    assert dataset.calls == ["a", "b"]


def test_a_generator_taking_ablated_features_gets_the_list():
    study = study_of("a", "b", generator=lambda ablated_features: list(ablated_features))
    assert build_dataset(study, coalition_spec(3, [Component("feature", "a"), Component("feature", "b")])) == ["a", "b"]


def test_a_generator_taking_one_ablated_feature_cannot_drop_two_unless_it_returns_a_maggy_dataset():
    study = study_of("a", "b", generator=lambda ablated_feature=None: [ablated_feature])
    with pytest.raises(TypeError, match="ablated_features"):
        build_dataset(study, coalition_spec(3, [Component("feature", "a"), Component("feature", "b")]))


def test_removing_every_feature_leaves_one_zero_column_so_the_model_can_be_built():
    study = study_of("x1", "x2", "x3")
    spec = coalition_spec(7, [Component("feature", f) for f in ("x1", "x2", "x3")])
    dataset = build_dataset(study, spec)
    # Rule (documented convention): no information left, one all-zero column in its place.
    assert dataset.feature_names == [] and dataset.input_shape == (1,) and not dataset.data.any()
    study.model.set_base_model_generator(lambda: nn.Sequential(nn.Linear(3, 1)))
    assert build_model(study, spec, dataset)[0].in_features == 1


def mlp():
    return nn.Sequential(nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                         nn.Linear(16, 1))


def test_surgery_removes_the_union_of_layers_with_one_repair_pass():
    study = AblationStudy()
    study.model.set_base_model_generator(mlp)
    spec = coalition_spec(5, [Component("layer", 2), Component("layer", 4)])
    lines = []
    model = build_model(study, spec, _Shaped((6,)), log=lines.append)
    # Rule: both layers go in one pass, and only the layer after the union is repaired once
    # (removing one at a time would repair layer 2's successor and then remove it).
    assert [m.in_features for m in model if isinstance(m, nn.Linear)] == [6, 64]
    assert [line for line in lines if line.startswith("Repaired")] == [
        "Repaired layer 4 - Linear(in_features=16, out_features=1, bias=True) -> "
        "Linear(in_features=64, out_features=1, bias=True)"]
    assert str(model) == str(ablate(mlp(), [2, 4], input_shape=(6,), verbose=False))


class _Shaped(MaggyDataset):
    def __init__(self, shape):
        self.input_shape = shape

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return i

    def ablate_feature(self, feature):
        raise AssertionError("no feature is removed here")


def test_layer_components_that_disagree_on_infer_activation_each_keep_their_flag():
    study = AblationStudy()
    study.model.set_base_model_generator(mlp)
    spec = coalition_spec(5, [Component("layer", 2, infer_activation=True), Component("layer", 4)])
    model = build_model(study, spec, _Shaped((6,)))
    # Rule: layer 2 takes its ReLU (3) with it, layer 4 leaves its ReLU (5) in place.
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "ReLU", "Linear"]


def test_two_custom_models_in_one_trial_cannot_be_built():
    study = AblationStudy()
    study.model.add_custom_model_generator(mlp, "a")
    study.model.add_custom_model_generator(mlp, "b")
    with pytest.raises(AblationError, match="custom models"):
        build_model(study, coalition_spec(3, [Component("model", "a"), Component("model", "b")]))
    ablator = Pairs(study)
    ablator.initialize()
    # Pre-flight finds it, with the same reason.
    with pytest.raises(AblationError, match=r"(?s)1 of 4 trials cannot run.*model a \+ model b.*custom models"):
        preflight(study, ablator.trial_buffer, None)


def test_preflight_finds_a_coalition_that_removes_every_layer():
    study = AblationStudy()
    study.model.set_base_model_generator(lambda: nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 1)))
    study.model.layers.include(0, 1)
    ablator = Pairs(study)
    ablator.initialize()
    # Rule (documented convention): a coalition that cannot be built stops the study before
    # Spark starts, naming the trial; the single removals are fine.
    with pytest.raises(AblationError, match=r"(?s)1 of 4 trials cannot run.*layer 0 \+ layer 1.*every layer"):
        preflight(study, ablator.trial_buffer, None)
