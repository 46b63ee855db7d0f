"""maggy.ablation.model_copy: deepcopy semantics for models, minus the removed modules."""

import copy

import torch
from torch import nn

from maggy.ablation.model_copy import copy_model
from maggy.ablation.surgery import ablate
from model_checks import same_weights, train_step


def pointers(model: nn.Module) -> set[int]:
    return {t.data_ptr() for t in (*model.parameters(), *model.buffers()) if t.numel()}


class Tied(nn.Module):
    """A language-model head tied to its embedding, and one block registered twice."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 4)
        self.block = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        self.again = self.block
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight
        self.scale = torch.ones(4)  # a plain tensor attribute, not a buffer
        self.names = ["a", "b"]

    def forward(self, ids):
        return self.head(self.again(self.block(self.embed(ids))) * self.scale)


def test_copy_equals_deepcopy_and_shares_nothing():
    base = Tied()
    base.block[0].register_forward_hook(lambda m, args, out: out * 2)
    ours, theirs = copy_model(base), copy.deepcopy(base)
    # Rule: same structure, weights, plain attributes and hooks as copy.deepcopy.
    assert repr(ours) == repr(theirs) and same_weights(ours, base)
    assert torch.equal(ours.scale, base.scale) and ours.scale is not base.scale
    assert ours.names == base.names and ours.names is not base.names
    ids = torch.tensor([[1, 2, 3]])
    ours.eval(), theirs.eval()
    assert torch.equal(ours(ids), theirs(ids))
    # Rule: no storage is shared with the original.
    assert not pointers(ours) & pointers(base)


def test_ties_and_shared_modules_stay_tied_in_the_copy():
    twin = copy_model(Tied())
    assert twin.head.weight is twin.embed.weight
    assert twin.again is twin.block
    train_step(twin, torch.tensor([[1, 2, 3], [4, 5, 6]]))


def test_recurrent_layers_run_on_their_own_copied_weights():
    base = nn.Sequential(nn.LSTM(3, 5, num_layers=2, batch_first=True))
    twin = copy_model(base)
    lstm = twin[0]
    # Rule: the LSTM's flat weight list points at the copy's parameters, not the original's.
    assert all(w is getattr(lstm, n) for w, n in zip(lstm._flat_weights, lstm._flat_weights_names))
    with torch.no_grad():
        lstm.weight_ih_l0.zero_()
    x = torch.randn(2, 4, 3)
    assert not torch.equal(lstm(x)[0], base[0](x)[0])


def test_dropped_modules_are_not_copied():
    base = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 1))
    twin = copy_model(base, drop=["1"])
    assert isinstance(twin[1], nn.Identity) and same_weights(twin[2], base[2])
    assert base[1].weight.data_ptr() not in pointers(twin)


def test_a_dropped_module_registered_under_another_name_is_copied_there():
    base = Tied()
    twin = copy_model(base, drop=["again"])
    assert isinstance(twin.again, nn.Identity) and same_weights(twin.block, base.block)


def test_a_module_with_its_own_copy_protocol_is_deep_copied():
    class Custom(nn.Linear):
        def __deepcopy__(self, memo):
            twin = nn.Linear(self.in_features, self.out_features)
            twin.copied_by_itself = True
            return twin

    twin = copy_model(nn.Sequential(Custom(2, 3)))
    assert twin[0].copied_by_itself


def test_ablate_leaves_the_argument_unchanged_and_keeps_untouched_weights_exactly():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Flatten(), nn.Linear(16 * 16, 4))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    text = repr(base)
    model = ablate(base, 3, input_shape=(3, 4, 4), verbose=False)
    # Rule: the argument is unchanged, in structure and in every tensor.
    assert repr(base) == text
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    # Rule: every module that was neither removed nor repaired has the base weights.
    assert same_weights(model[0], base[0]) and same_weights(model[1], base[1])
    assert model[3].num_features == 8 and model[6].in_features == 8 * 16
    assert not pointers(model) & pointers(base)


def test_buffers_that_view_one_storage_still_do_in_the_copy():
    base = nn.BatchNorm1d(4)
    base.register_buffer("middle", base.running_mean[1:3])
    twin = copy_model(base)
    # Rule: as with deepcopy, one storage copied once; the view still sees its base buffer.
    with torch.no_grad():
        twin.running_mean.add_(1)
    assert torch.equal(twin.middle, torch.ones(2)) and torch.equal(base.middle, torch.zeros(2))
    assert twin.num_batches_tracked.dtype == torch.long and not pointers(twin) & pointers(base)
