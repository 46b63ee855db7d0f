"""maggy.ablation.surgery over a zoo of layer types: CNNs, RNNs, transformers, residual nets.

Each ablation is followed by a forward pass and one training step. Cases where surgery must
refuse (a residual add whose branches differ, widths a layer cannot take) check the message.
"""

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from maggy.ablation.repair import find_repair_rule, unregister_repair_rule
from maggy.ablation.surgery import (
    RemovedLayer,
    RepairRule,
    ablate,
    prefix,
    register_repair_rule,
)
from maggy.exceptions import AblationError
from model_checks import same_weights, train_step


class TakeFirst(nn.Module):
    """RNNs return (output, state); keep the output so they fit in a Sequential."""

    def forward(self, x):
        return x[0][:, -1]


class SelfAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0].mean(1)


# ----------------------------------------------------------------------- CNN


def cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Flatten(), nn.Linear(16 * 64, 10),
    )


def test_cnn_remove_second_conv_repairs_batchnorm_and_linear():
    base = cnn()
    model = ablate(base, 3, input_shape=(3, 8, 8), verbose=False)
    # Rule: the BatchNorm after the removed conv and the Linear after Flatten follow the width.
    assert model[3].num_features == 8 and model[5].in_features == 8 * 64
    assert same_weights(model[0], base[0]) and same_weights(model[1], base[1])
    assert train_step(model, torch.randn(4, 3, 8, 8)).shape == (4, 10)


def test_cnn_remove_first_conv_repairs_next_conv_and_batchnorm():
    base = cnn()
    model = ablate(base, 0, input_shape=(3, 8, 8), verbose=False)
    assert model[0].num_features == 3
    assert (model[2].in_channels, model[2].out_channels, model[2].padding) == (3, 16, (1, 1))
    assert same_weights(model[3], base[4]) and same_weights(model[5], base[6])
    train_step(model, torch.randn(4, 3, 8, 8))


def test_input_channel_ablation_repairs_the_first_conv():
    base = cnn()
    model = ablate(base, None, input_shape=(2, 8, 8), verbose=False)
    assert (model[0].in_channels, model[0].kernel_size, model[0].padding) == (2, (3, 3), (1, 1))
    assert all(same_weights(model[i], base[i]) for i in range(1, 7))
    train_step(model, torch.randn(4, 2, 8, 8))


# ----------------------------------------------------------------------- RNN


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 16)
        self.lstm = nn.LSTM(16, 32, num_layers=2, batch_first=True, dropout=0.1)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.lstm(self.proj(x))
        return self.head(out[:, -1])


def test_lstm_after_removed_linear_is_rebuilt_with_its_settings():
    base = Recurrent()
    model = ablate(base, "proj", input_shape=(5, 8), verbose=False)
    lstm = model.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (8, 32, 2)
    assert lstm.batch_first and lstm.dropout == 0.1 and same_weights(model.head, base.head)
    train_step(model, torch.randn(3, 5, 8))


# ----------------------------------------------------------------------- transformers


class TextClassifier(nn.Module):
    def __init__(self, width=32, heads=4):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(100, width)
        layer = nn.TransformerEncoderLayer(width, heads, 64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, 3)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(1))


TOKENS = torch.randint(0, 100, (2, 7), generator=torch.Generator().manual_seed(0))


def test_transformer_remove_a_whole_encoder_layer():
    base = TextClassifier()
    model = ablate(base, "encoder.layers.1", sample_input=TOKENS, verbose=False)
    # Rule: the ModuleList keeps its length, the layer is an Identity taking the layer's kwargs.
    assert isinstance(model.encoder.layers[1], RemovedLayer) and len(model.encoder.layers) == 2
    assert same_weights(model.encoder.layers[0], base.encoder.layers[0])
    model.eval()
    with torch.no_grad():  # also the fused inference path
        assert model(TOKENS).shape == (2, 3)
    train_step(model, TOKENS)


def test_transformer_first_layer_cannot_go_because_the_encoder_reads_it():
    # nn.TransformerEncoder.forward reads self.layers[0].self_attn: a clear error, not a crash.
    with pytest.raises(AblationError, match=r"module 'encoder' \(TransformerEncoder\) failed on "
                                            r"input \(2, 7, 32\): AttributeError: .*self_attn"):
        ablate(TextClassifier(), "encoder.layers.0", sample_input=TOKENS, verbose=False)
    with pytest.raises(AblationError, match="'encoder' .TransformerEncoder."):
        ablate(TextClassifier(), prefix("encoder.layers"), sample_input=TOKENS, verbose=False)


def test_transformer_remove_linear1_repairs_linear2():
    # With an odd head count PyTorch never takes its fused path, so the layer runs its parts.
    base = TextClassifier(width=24, heads=3)
    model = ablate(base, "encoder.layers.0.linear1", sample_input=TOKENS, verbose=False)
    layer = model.encoder.layers[0]
    assert (layer.linear2.in_features, layer.linear2.out_features) == (24, 24)
    assert same_weights(layer.self_attn, base.encoder.layers[0].self_attn)
    train_step(model, TOKENS)
    # Both feed-forward Linears removed: the block is dropout(activation(x)), still d_model.
    model = ablate(base, ["encoder.layers.0.linear1", "encoder.layers.0.linear2"],
                   sample_input=TOKENS, verbose=False)
    train_step(model, TOKENS)


def test_transformer_remove_linear1_fails_where_the_fused_path_needs_it():
    # With an even head count, eval mode under no_grad takes the fused path, which reads
    # linear1.weight: surgery's final hook-free pass catches this before training starts.
    with pytest.raises(AblationError, match=r"'encoder.layers.0' \(TransformerEncoderLayer\).*"
                                            r"AttributeError.*fast path"):
        ablate(TextClassifier(), "encoder.layers.0.linear1", sample_input=TOKENS, verbose=False)


def projected_encoder() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(6, 32),
        nn.TransformerEncoderLayer(32, 4, 48, dropout=0.1, batch_first=True, norm_first=True),
        nn.Flatten(), nn.Linear(5 * 32, 1))


def test_transformer_layer_rebuilt_for_a_new_embedding_width():
    model = ablate(projected_encoder(), 0, input_shape=(5, 24), verbose=False)
    layer = model[0]
    assert (layer.self_attn.embed_dim, layer.self_attn.num_heads) == (24, 4)
    assert layer.linear1.out_features == 48 and layer.norm_first and layer.self_attn.batch_first
    assert model[2].in_features == 5 * 24
    train_step(model, torch.randn(2, 5, 24))


def test_transformer_layer_width_not_divisible_by_heads():
    with pytest.raises(AblationError, match=r"module '0' \(TransformerEncoderLayer\): it was built "
                                            r"for input width 32 but now receives 30.*nhead=4 "
                                            r"does not divide the new width 30"):
        ablate(projected_encoder(), 0, input_shape=(5, 30), verbose=False)


# ----------------------------------------------------------------------- residual nets


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c)
        self.conv2, self.bn2 = nn.Conv2d(2 * c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + x)


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer1, self.layer2 = Block(8), Block(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


def test_resnet_remove_a_whole_block():
    base = ResNet()
    model = ablate(base, "layer2", input_shape=(3, 8, 8), verbose=False)
    assert isinstance(model.layer2, nn.Identity) and same_weights(model.layer1, base.layer1)
    train_step(model, torch.randn(2, 3, 8, 8))


def test_resnet_remove_a_conv_that_keeps_the_block_width():
    model = ablate(ResNet(), "layer1.conv1", input_shape=(3, 8, 8), verbose=False)
    assert model.layer1.bn1.num_features == 8 and model.layer1.conv2.in_channels == 8
    train_step(model, torch.randn(2, 3, 8, 8))


def test_resnet_remove_a_width_changing_conv_names_block_and_shapes():
    # The residual add now sums 16 with 8 channels: not repairable, and said so.
    with pytest.raises(AblationError, match=(
            r"^trial 5: after ablation, module 'layer1' \(Block\) failed on input \(2, 8, 8, 8\) "
            r"after its submodule 'layer1.bn2' returned \(2, 16, 8, 8\): RuntimeError: .*"
            r"residual add")) as info:
        ablate(ResNet(), "layer1.conv2", input_shape=(3, 8, 8), verbose=False, trial=5)
    assert isinstance(info.value.__cause__, RuntimeError)


# ----------------------------------------------------------------------- layer-type table


def seq(*layers) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*layers)


CASES = {
    "conv1d": (
        lambda: seq(nn.Conv1d(4, 8, 3, padding=1),
                    nn.Conv1d(8, 6, 3, stride=2, padding=1, bias=False, padding_mode="reflect"),
                    nn.Flatten(), nn.Linear(30, 1)),
        0, (4, 10),
        lambda m: (m[0].in_channels, m[0].stride, m[0].bias, m[0].padding_mode)
        == (4, (2,), None, "reflect")),
    "conv3d": (
        lambda: seq(nn.Conv3d(2, 4, 1), nn.Conv3d(4, 3, 3, padding=1, dilation=1),
                    nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(3, 1)),
        0, (2, 4, 4, 4), lambda m: (m[0].in_channels, m[0].padding) == (2, (1, 1, 1))),
    "conv_transpose2d": (
        lambda: seq(nn.Conv2d(3, 6, 1),
                    nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1),
                    nn.Flatten(), nn.Linear(4 * 8 * 8, 1)),
        0, (3, 4, 4), lambda m: (m[0].in_channels, m[0].output_padding) == (3, (1, 1))),
    "grouped_conv": (
        lambda: seq(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, groups=4, padding=1),
                    nn.Flatten(), nn.Linear(8 * 25, 1)),
        0, (4, 5, 5), lambda m: (m[0].in_channels, m[0].groups) == (4, 4)),
    "batchnorm1d": (
        lambda: seq(nn.Linear(4, 8), nn.BatchNorm1d(8, momentum=0.3), nn.ReLU(), nn.Linear(8, 6),
                    nn.BatchNorm1d(6, eps=1e-3, affine=False), nn.Linear(6, 1)),
        3, (4,), lambda m: (m[3].num_features, m[3].eps, m[3].affine) == (8, 1e-3, False)),
    "groupnorm": (
        lambda: seq(nn.Conv2d(3, 8, 1), nn.GroupNorm(2, 8), nn.Conv2d(8, 4, 1),
                    nn.GroupNorm(2, 4, eps=1e-3), nn.Flatten(), nn.Linear(4 * 9, 1)),
        2, (3, 3, 3), lambda m: (m[2].num_groups, m[2].num_channels, m[2].eps) == (2, 8, 1e-3)),
    "instancenorm2d": (
        lambda: seq(nn.Conv2d(3, 8, 1), nn.InstanceNorm2d(8, affine=True), nn.Conv2d(8, 4, 1),
                    nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
                    nn.Flatten(), nn.Linear(4 * 9, 1)),
        2, (3, 3, 3),
        lambda m: (m[2].num_features, m[2].affine, m[2].track_running_stats) == (8, True, True)),
    "layernorm": (
        lambda: seq(nn.Linear(4, 8), nn.LayerNorm(8, eps=1e-3), nn.Linear(8, 6),
                    nn.LayerNorm(6, bias=False), nn.Linear(6, 1)),
        2, (4,), lambda m: (m[2].normalized_shape, m[2].eps, m[2].bias) == ((8,), 1e-5, None)),
    "layernorm_2d_input_size": (
        lambda: seq(nn.Conv2d(3, 4, 1), nn.LayerNorm([4, 4]), nn.Flatten(), nn.Linear(64, 1)),
        None, (3, 5, 5), lambda m: m[1].normalized_shape == (5, 5) and m[3].in_features == 100),
    "rmsnorm": (
        lambda: seq(nn.Linear(4, 8), nn.RMSNorm(8, eps=1e-3), nn.Linear(8, 1)),
        0, (4,), lambda m: (m[0].normalized_shape, m[0].eps) == ((4,), 1e-3)),
    "gru": (
        lambda: seq(nn.Linear(4, 8), nn.GRU(8, 5, num_layers=2, batch_first=True,
                                            bidirectional=True), TakeFirst(), nn.Linear(10, 1)),
        0, (3, 4),
        lambda m: (m[0].input_size, m[0].num_layers, m[0].bidirectional) == (4, 2, True)),
    "rnn": (
        lambda: seq(nn.Linear(4, 8), nn.RNN(8, 5, nonlinearity="relu", batch_first=True),
                    TakeFirst(), nn.Linear(5, 1)),
        0, (3, 4), lambda m: (m[0].input_size, m[0].nonlinearity) == (4, "relu")),
    "lstm_proj": (
        lambda: seq(nn.Linear(4, 8), nn.LSTM(8, 6, proj_size=3, batch_first=True),
                    TakeFirst(), nn.Linear(3, 1)),
        0, (3, 4), lambda m: (m[0].input_size, m[0].proj_size) == (4, 3)),
    "lazy_linear_takes_any_width": (
        lambda: seq(nn.Linear(4, 8), nn.ReLU(), nn.LazyLinear(3)),
        0, (4,), lambda m: m[1].in_features == 4),
    "multihead_attention": (
        lambda: seq(nn.Linear(6, 8), SelfAttention(8, 2), nn.Linear(8, 1)),
        0, (3, 6), lambda m: (m[0].attn.embed_dim, m[0].attn.num_heads) == (6, 2)),
}


# PyTorch warns that oneDNN lacks projected LSTMs; that is its business, not this test's.
QUIET = {"lstm_proj": pytest.mark.filterwarnings("ignore:LSTM with projections")}


@pytest.mark.parametrize("case", [pytest.param(c, marks=QUIET.get(c, ())) for c in CASES])
def test_layer_type_is_repaired_keeping_its_settings(case):
    build, layers, shape, check = CASES[case]
    model = ablate(build(), layers, input_shape=shape, verbose=False)
    assert check(model), model
    train_step(model, torch.randn(2, *shape))


@pytest.mark.parametrize("build, layers, shape, message", [
    (lambda: seq(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, groups=4)), 0, (6, 5, 5),
     r"module '0' \(Conv2d\): it was built for input width 8 but now receives 6 .*"
     r"groups=4 does not divide the new width 6"),
    (lambda: seq(nn.Conv2d(3, 6, 1), nn.Conv2d(6, 8, 1), nn.GroupNorm(4, 8)), 1, (3, 2, 2),
     r"module '1' \(GroupNorm\).*num_groups=4 does not divide the new width 6"),
    (lambda: seq(nn.Linear(6, 8), SelfAttention(8, 2)), 0, (3, 5),
     r"module '0.attn' \(MultiheadAttention\).*num_heads=2 does not divide the new width 5"),
])
def test_impossible_widths_name_module_and_widths(build, layers, shape, message):
    with pytest.raises(AblationError, match=message):
        ablate(build(), layers, input_shape=shape, verbose=False)


# ----------------------------------------------------------------------- user rules


class Scale(nn.Module):
    """A custom layer that rejects a wrong width (via broadcasting)."""

    def __init__(self, width):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * self.weight


SCALE_RULE = RepairRule(expected=lambda m: m.weight.shape[0], rebuild=lambda m, w: Scale(w))


@pytest.fixture
def scale_rule():
    register_repair_rule(Scale, SCALE_RULE)
    yield
    unregister_repair_rule(Scale)


def scaled():
    return seq(nn.Linear(4, 8), Scale(8), nn.Linear(8, 2))


def test_unknown_layer_rejecting_the_shape_says_how_to_fix():
    with pytest.raises(AblationError, match=r"module '0' \(Scale\) failed on input \(2, 4\): "
                                            r"RuntimeError: .*register_repair_rule\(Scale"):
        ablate(scaled(), 0, input_shape=(4,), verbose=False)


def test_user_rule_repairs_a_custom_layer(scale_rule, capsys):
    model = ablate(scaled(), 0, input_shape=(4,))
    assert capsys.readouterr().out.splitlines()[-2].startswith("Repaired layer 0 - Scale()")
    assert model[0].weight.shape == (4,) and model[1].in_features == 4
    train_step(model, torch.randn(2, 4))


def test_user_rule_beats_the_builtin_and_unregister_restores_it():
    calls = []

    def rebuild(m, width):
        calls.append(width)
        return nn.Linear(width, m.out_features)

    builtin = find_repair_rule(nn.Linear)
    register_repair_rule(nn.Linear, RepairRule(lambda m: m.in_features, rebuild))
    try:
        ablate(seq(nn.Linear(6, 2)), None, input_shape=(5,), verbose=False)
    finally:
        unregister_repair_rule(nn.Linear)
    assert calls == [5] and find_repair_rule(nn.Linear) is builtin


def test_rules_passed_to_ablate_apply_to_that_call_only(scale_rule):
    # Rule: with rules=, exactly those user rules (and the built-in ones) apply; the rules
    # registered in the process do not.
    with pytest.raises(AblationError, match=r"no repair rule is registered for Scale"):
        ablate(scaled(), 0, input_shape=(4,), verbose=False, rules={})
    unregister_repair_rule(Scale)
    try:
        model = ablate(scaled(), 0, input_shape=(4,), verbose=False, rules={Scale: SCALE_RULE})
        assert model[0].weight.shape == (4,)
        assert find_repair_rule(Scale) is None  # nothing was registered on the way
    finally:
        register_repair_rule(Scale, SCALE_RULE)  # the fixture unregisters it


@pytest.mark.parametrize("rules, match", [
    ([Scale], "rules must be a dict"),
    ({int: SCALE_RULE}, "module_type must be a subclass of torch.nn.Module"),
    ({Scale: lambda m, w: Scale(w)}, r"rules\[Scale\] must be a RepairRule"),
])
def test_rules_passed_to_ablate_are_checked(rules, match):
    with pytest.raises(TypeError, match=match):
        ablate(scaled(), 0, input_shape=(4,), verbose=False, rules=rules)


def test_built_in_rules_do_not_depend_on_what_was_imported_first():
    # A fresh interpreter that imports the registry and nothing else of maggy's surgery.
    code = ("from torch import nn\n"
            "from maggy.ablation.repair_registry import find_repair_rule\n"
            "print(find_repair_rule(nn.Linear) is not None, find_repair_rule(nn.Conv2d) is not None)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]


def test_rule_registration_checks_its_arguments():
    with pytest.raises(TypeError, match="module_type must be a subclass of torch.nn.Module"):
        register_repair_rule(int, SCALE_RULE)
    with pytest.raises(TypeError, match="rule must be a RepairRule"):
        register_repair_rule(Scale, lambda m, w: Scale(w))
    with pytest.raises(TypeError, match="RepairRule.incoming must be"):
        RepairRule(lambda m: 0, lambda m, w: m, incoming=True)
    with pytest.raises(KeyError, match="no user repair rule"):
        unregister_repair_rule(Scale)


def test_failing_user_rule_is_reported_with_the_module():
    def broken(m, width):
        raise ValueError("cannot")

    register_repair_rule(Scale, RepairRule(lambda m: m.weight.shape[0], broken))
    try:
        with pytest.raises(AblationError, match=r"module '0' \(Scale\): it was built for input "
                                                r"width 8 but now receives 4.*ValueError: cannot"):
            ablate(scaled(), 0, input_shape=(4,), verbose=False)
    finally:
        unregister_repair_rule(Scale)


# ----------------------------------------------------------------------- the pass itself


def test_no_hooks_are_left_behind():
    base = ResNet()
    model = ablate(base, "layer1.conv1", input_shape=(3, 8, 8), verbose=False)
    for m in (*base.modules(), *model.modules()):
        assert not m._forward_pre_hooks and not m._forward_hooks


def test_shared_module_used_at_two_widths_is_an_error():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.norm = nn.Linear(4, 8), nn.Linear(8, 8), nn.LayerNorm(8)

        def forward(self, x):
            return self.norm(self.fc2(self.norm(self.fc1(x))))

    with pytest.raises(AblationError, match=r"'norm' \(LayerNorm\).*already rebuilt for width "
                                            r"\(4,\).*several places"):
        ablate(Shared(), "fc1", input_shape=(4,), verbose=False)


def test_repairs_keep_dtype_and_the_probe_keeps_the_global_rng():
    base = seq(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 1)).double()
    model = ablate(base, None, input_shape=(5,), verbose=False)
    assert model[0].weight.dtype == torch.float64
    torch.manual_seed(1)
    ablate(base, 1, input_shape=(6,), verbose=False)  # nothing to rebuild
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(3))


def test_sample_input_tuple_and_kwargs():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(2, 4)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    x, y = torch.randn(2, 3), torch.randn(2, 1)  # y lost a feature
    model = ablate(TwoInputs(), None, sample_input=(x, y), verbose=False)
    assert model.b.in_features == 1
    model = ablate(TwoInputs(), None, sample_input={"x": x, "y": y}, verbose=False)
    train_step(model, x, y)
