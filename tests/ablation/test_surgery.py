"""maggy.ablation.surgery: identifiers, errors, and the Titanic model of the Maggy thesis.

Every ablation is followed by a forward pass and one training step, so a model that only
looks right but cannot learn fails here. Other layer types live in test_surgery_zoo.py.
"""

import pytest
import torch
from torch import nn

from maggy.ablation.surgery import RemovedLayer, ablate, prefix, resolve_layers
from maggy.exceptions import AblationError
from model_checks import same_weights, train_step


def titanic() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
        nn.Linear(32, 2), nn.ReLU(), nn.Linear(2, 1), nn.Sigmoid(),
    )


class MLP(nn.Module):
    """Custom forward: ints do not apply, names do."""

    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2, self.fc3 = (
            nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 16), nn.Linear(16, 1))

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


# ----------------------------------------------------------------------- argument checks


@pytest.mark.parametrize("bad", [2.5, True, b"0", ["0", 1.0], {"name": "fc"},
                                 {"prefix": 3}])
def test_wrong_identifier_type_is_type_error_naming_value_and_kinds(bad):
    # Rule: ints, strs and {"prefix": str} only; booleans are not ints.
    with pytest.raises(TypeError, match=r"layer identifier .* expected an int .*prefix"):
        resolve_layers(titanic(), bad)


def test_bool_is_not_an_int():
    with pytest.raises(TypeError, match="True"):
        ablate(titanic(), [True], verbose=False)


def test_index_out_of_range_names_the_range_and_length():
    with pytest.raises(AblationError, match=r"index 10 is out of range.* 10 layers.* 0\.\.9"):
        resolve_layers(titanic(), 10)
    with pytest.raises(AblationError, match=r"0\.\.9"):
        resolve_layers(titanic(), -1)


def test_int_on_custom_model_says_sequential_only_and_lists_names():
    with pytest.raises(AblationError, match=r"only work for nn.Sequential.*MLP.*'fc1', 'act'"):
        resolve_layers(MLP(), 1)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(AblationError, match=r"no module named 'fc_2' in MLP; did you mean 'fc2'"):
        resolve_layers(MLP(), "fc_2")


def test_prefix_matching_nothing_suggests_names():
    with pytest.raises(AblationError, match=r"prefix 'dense' matches no module in MLP"):
        resolve_layers(MLP(), prefix("dense"))


@pytest.mark.parametrize("everything", [list(range(10)), "", [prefix("")]])
def test_removing_every_layer_is_an_error(everything):
    with pytest.raises(AblationError, match="every layer"):
        ablate(titanic(), everything, input_shape=(6,), verbose=False)


def test_trial_id_prefixes_errors():
    with pytest.raises(AblationError, match=r"^trial 7: layer index 12"):
        ablate(titanic(), 12, verbose=False, trial="7")
    with pytest.raises(TypeError, match=r"^trial t1: "):
        resolve_layers(titanic(), 1.5, trial="t1")


@pytest.mark.parametrize("shape", [6, (0,), ("6",), (6.0,)])
def test_input_shape_must_be_positive_ints(shape):
    with pytest.raises(TypeError, match="input_shape must be a tuple of positive ints"):
        ablate(titanic(), 2, input_shape=shape, verbose=False)


def test_sample_input_kind_is_checked():
    with pytest.raises(TypeError, match="sample_input must be a tensor"):
        ablate(titanic(), 2, sample_input=1.0, verbose=False)


# ----------------------------------------------------------------------- resolve_layers


def test_resolve_layers_returns_names_in_model_order():
    # Rule: ints index the flattened Sequential; the result is sorted and de-duplicated.
    assert resolve_layers(titanic(), [3, 2, "2"]) == ["2", "3"]
    assert resolve_layers(titanic(), None) == []
    assert resolve_layers(titanic(), []) == []


def test_resolve_layers_collapses_descendants_into_their_ancestor():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    assert resolve_layers(model, ["1", "1.0"]) == ["1"]


def test_prefix_matches_outermost_modules_only():
    # Rule: "fc" matches fc1, fc2, fc3 but not act; the prefix itself is not a match.
    assert resolve_layers(MLP(), prefix("fc")) == ["fc1", "fc2", "fc3"]
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    assert resolve_layers(model, {"prefix": "1"}) == ["1.0", "1.1"]


def test_infer_activation_adds_the_following_activation():
    assert resolve_layers(titanic(), 2, infer_activation=True) == ["2", "3"]
    # Activations that are removed already, or not directly following, are not added twice.
    assert resolve_layers(titanic(), [2, 3], infer_activation=True) == ["2", "3"]
    assert resolve_layers(MLP(), "fc1", infer_activation=True) == ["fc1", "act"]
    assert resolve_layers(MLP(), "fc2", infer_activation=True) == ["fc2"]


# ----------------------------------------------------------------------- Titanic


def test_titanic_remove_2_3_matches_the_thesis_listing(capsys):
    base = titanic()
    model = ablate(base, [2, 3], input_shape=(6,))
    # Rule: removals print in descending index order, as in the thesis.
    assert capsys.readouterr().out.splitlines() == [
        "Ablating layer 3 - ReLU()",
        "Ablating layer 2 - Linear(in_features=64, out_features=64, bias=True)",
    ]
    # Rule: a Sequential drops its entries and is renumbered.
    assert [type(m).__name__ for m in model] == [
        "Linear", "ReLU", "Linear", "ReLU", "Linear", "ReLU", "Linear", "Sigmoid"]
    assert (model[2].in_features, model[2].out_features) == (64, 32)
    # Rule: nothing needed repair, so every remaining layer keeps its weights.
    for new, old in zip([0, 2, 4, 6], [0, 4, 6, 8]):
        assert same_weights(model[new], base[old])
    assert train_step(model, torch.randn(8, 6)).shape == (8, 1)


def test_titanic_remove_4_5_repairs_the_next_linear(capsys):
    base = titanic()
    model = ablate(base, [4, 5], input_shape=(6,))
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Repaired layer 4 - Linear(in_features=32, out_features=2, bias=True) -> "
        "Linear(in_features=64, out_features=2, bias=True)")
    assert (model[4].in_features, model[4].out_features) == (64, 2)
    assert len(model) == 8
    # Rule: untouched layers keep their weights exactly, the repaired one is new.
    assert same_weights(model[0], base[0]) and same_weights(model[2], base[2])
    assert same_weights(model[6], base[8])
    train_step(model, torch.randn(8, 6))


@pytest.mark.parametrize("index, kind, repaired", [
    (2, nn.ReLU, None),                 # Linear(64,64) removed: ReLU follows ReLU, widths fit
    (4, nn.ReLU, (64, 2)),              # Linear(64,32) removed: Linear(32,2) -> Linear(64,2)
])
def test_titanic_single_layer(index, kind, repaired):
    model = ablate(titanic(), index, input_shape=(6,), verbose=False)
    assert len(model) == 9 and isinstance(model[index], kind)
    if repaired:
        assert (model[index + 1].in_features, model[index + 1].out_features) == repaired
    train_step(model, torch.randn(4, 6))


def test_feature_ablation_adapts_the_first_layer():
    # Rule: layers=None still runs the repair pass; one column fewer -> Linear(5, 64).
    base = titanic()
    model = ablate(base, None, input_shape=(5,), verbose=False)
    assert (model[0].in_features, model[0].out_features) == (5, 64)
    assert all(same_weights(model[i], base[i]) for i in range(1, 10))
    train_step(model, torch.randn(4, 5))


def test_the_argument_is_never_modified():
    base = titanic()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    text = repr(base)
    model = ablate(base, [4, 5], input_shape=(5,), infer_activation=True, verbose=False)
    train_step(model, torch.randn(4, 5))
    assert repr(base) == text
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    # Rule: the copy shares no storage with the argument.
    pointers = {p.data_ptr() for p in base.parameters()}
    assert not pointers & {p.data_ptr() for p in model.parameters()}


def test_training_flags_are_kept():
    base = titanic().eval()
    base[0].train()
    model = ablate(base, 4, input_shape=(6,), verbose=False)
    assert not model.training and model[0].training and not model[4].training


def test_nested_sequentials_are_flattened_for_ints(capsys):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Sequential(nn.Linear(6, 64), nn.ReLU()),
                         nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)))
    assert resolve_layers(base, [2, 4]) == ["1.0", "1.2"]
    model = ablate(base, 2, input_shape=(6,))
    assert capsys.readouterr().out.splitlines() == [
        "Ablating layer 2 - Linear(in_features=64, out_features=32, bias=True)",
        "Repaired layer 3 - Linear(in_features=32, out_features=1, bias=True) -> "
        "Linear(in_features=64, out_features=1, bias=True)",
    ]
    # Rule: the nested Sequential drops the entry and is renumbered; the other is untouched.
    assert [type(m).__name__ for m in model[1]] == ["ReLU", "Linear"]
    assert model[1][1].in_features == 64 and same_weights(model[0], base[0])
    train_step(model, torch.randn(4, 6))


def test_named_sequential_keeps_its_names():
    from collections import OrderedDict
    base = nn.Sequential(OrderedDict(
        fc1=nn.Linear(6, 8), act=nn.ReLU(), fc2=nn.Linear(8, 4), out=nn.Linear(4, 1)))
    model = ablate(base, "fc2", input_shape=(6,), verbose=False)
    assert list(model._modules) == ["fc1", "act", "out"] and model.out.in_features == 8
    train_step(model, torch.randn(4, 6))


def test_infer_activation_removes_the_activation_after_a_layer(capsys):
    model = ablate(titanic(), 4, input_shape=(6,), infer_activation=True)
    assert capsys.readouterr().out.splitlines()[:2] == [
        "Ablating layer 5 - ReLU()",
        "Ablating layer 4 - Linear(in_features=64, out_features=32, bias=True)",
    ]
    assert len(model) == 8 and model[4].in_features == 64
    train_step(model, torch.randn(4, 6))


def test_custom_forward_gets_identity_and_the_next_layer_repaired(capsys):
    base = MLP()
    model = ablate(base, "fc2", input_shape=(10,))
    assert capsys.readouterr().out.splitlines() == [
        "Ablating layer fc2 - Linear(in_features=32, out_features=16, bias=True)",
        "Repaired layer fc3 - Linear(in_features=16, out_features=1, bias=True) -> "
        "Linear(in_features=32, out_features=1, bias=True)",
    ]
    # Rule: outside a Sequential the removed module becomes an nn.Identity.
    assert isinstance(model.fc2, nn.Identity) and isinstance(model.fc2, RemovedLayer)
    assert model.fc3.in_features == 32 and same_weights(model.fc1, base.fc1)
    train_step(model, torch.randn(4, 10))


class Tower(nn.Module):
    """Blocks in a ModuleList, run in a loop: a prefix group removes them all."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 16)
        self.blocks = nn.ModuleList(nn.Linear(16, 16) for _ in range(3))
        self.out = nn.Linear(16, 1)

    def forward(self, x):
        x = self.inp(x)
        for block in self.blocks:
            x = torch.relu(block(x))
        return self.out(x)


def test_prefix_group_replaces_every_match_with_identity():
    base = Tower()
    assert resolve_layers(base, prefix("blocks")) == ["blocks.0", "blocks.1", "blocks.2"]
    model = ablate(base, prefix("blocks"), input_shape=(6,), verbose=False)
    # Rule: a ModuleList is not a Sequential, so its entries become Identity in place.
    assert len(model.blocks) == 3 and all(isinstance(b, nn.Identity) for b in model.blocks)
    assert same_weights(model.out, base.out)
    train_step(model, torch.randn(4, 6))


def test_without_input_only_removes():
    model = ablate(titanic(), [4, 5], verbose=False)
    assert model[4].in_features == 32  # not repaired: nothing told surgery the input shape


def test_verbose_false_prints_nothing(capsys):
    ablate(titanic(), [4, 5], input_shape=(6,), verbose=False)
    assert capsys.readouterr().out == ""


def test_log_receives_the_report_instead_of_stdout(capsys):
    lines = []
    ablate(titanic(), [4, 5], input_shape=(6,), log=lines.append)
    # Rule: with log=, each removal and repair goes to it, one line each, and nothing is printed.
    assert lines == [
        "Ablating layer 5 - ReLU()",
        "Ablating layer 4 - Linear(in_features=64, out_features=32, bias=True)",
        "Repaired layer 4 - Linear(in_features=32, out_features=2, bias=True) -> "
        "Linear(in_features=64, out_features=2, bias=True)",
    ]
    assert capsys.readouterr().out == ""


def test_model_errors_during_the_pass_name_trial_module_and_shapes():
    # A Linear(6, ...) fed 7 features is an input mismatch of the *first* layer: repaired.
    assert ablate(titanic(), None, input_shape=(7,), verbose=False)[0].in_features == 7
    # A model that raises for its own reasons is reported with the module and its input.
    class Picky(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 1)

        def forward(self, x):
            if x.shape[0] != 3:
                raise ValueError("wants a batch of 3")
            return self.fc(x)

    with pytest.raises(AblationError, match=r"^trial 2: after ablation, module '' \(Picky\) "
                                            r"failed on input \(2, 6\): ValueError: wants"):
        ablate(Picky(), None, input_shape=(6,), verbose=False, trial=2)
