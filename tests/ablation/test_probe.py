"""maggy.ablation.probe and the repair pass on an empty batch: when it decides, when the real
sample must, and that both give the model the real sample gives."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from maggy.ablation.probe import empty_batch, has_zero
from maggy.ablation.surgery import ablate
from maggy.exceptions import AblationError
from model_checks import same_weights, train_step


class Batches(nn.Module):
    """Records the batch size of every input it sees; passes the input on."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[0])
        return x


def watched(*layers) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(Batches(), *layers)


# ----------------------------------------------------------------------- empty_batch


def test_empty_batch_cuts_tensors_with_the_batch_size_and_keeps_the_rest():
    x, mask, ids = torch.randn(2, 5, 4), torch.ones(5, 5), torch.zeros(2, 5, dtype=torch.long)
    cut = empty_batch({"x": x, "mask": mask, "extra": [ids, 3, None]})
    # Rule: dim 0 is cut where it has the batch size (that of the first tensor found).
    assert cut["x"].shape == (0, 5, 4) and cut["extra"][0].shape == (0, 5)
    assert cut["extra"][0].dtype == torch.long
    # Rule: a tensor of another first size, and non-tensors, are kept as they are.
    assert cut["mask"] is mask and cut["extra"][1:] == [3, None]


@pytest.mark.parametrize("sample", [
    torch.tensor(3.0),                                       # no batch dimension
    (1, "a"),                                                # no tensor
    torch.zeros(0, 4),                                       # already empty
    pack_sequence([torch.ones(3, 2), torch.ones(2, 2)]),    # a container it cannot look into
])
def test_empty_batch_is_none_where_there_is_nothing_to_cut(sample):
    assert empty_batch(sample) is None


def test_has_zero_finds_a_zero_width_in_any_dimension():
    assert has_zero(0) and has_zero((4, 0)) and has_zero(torch.Size([0]))
    assert not has_zero(4) and not has_zero((4, 5)) and not has_zero(None)


# ----------------------------------------------------------------------- the pass


def test_the_empty_batch_decides_where_it_can():
    model = ablate(watched(nn.Linear(6, 8), nn.Linear(8, 1)), None, input_shape=(5,),
                   verbose=False)
    # Rule: a repair the empty batch can see never costs a pass over the real batch.
    assert model[0].seen and set(model[0].seen) == {0}
    assert model[1].in_features == 5
    train_step(model, torch.randn(3, 5))


def test_token_ids_are_probed_with_an_empty_batch_of_ids():
    torch.manual_seed(0)
    model = ablate(nn.Sequential(nn.Embedding(50, 8), Batches(), nn.Linear(6, 2)), None,
                   sample_input=torch.randint(0, 50, (2, 7)), verbose=False)
    assert set(model[1].seen) == {0} and model[2].in_features == 8


class Flat(nn.Module):
    """Old-style flattening: view(batch, -1) is ambiguous for an empty batch and fails."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.watch = Batches()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 16, 2)

    def forward(self, x):
        x = self.conv(self.watch(x))
        return self.fc(x.view(x.size(0), -1))


def test_a_model_failing_on_an_empty_batch_is_repaired_on_the_real_one():
    base = Flat()
    model = ablate(base, None, input_shape=(2, 4, 4), verbose=False)
    # Rule: the repair the empty batch made (conv) stays; the real batch finishes the pass.
    assert model.watch.seen[0] == 0 and 2 in model.watch.seen
    assert model.conv.in_channels == 2 and same_weights(model.fc, base.fc)
    train_step(model, torch.randn(3, 2, 4, 4))


class BatchAsWidth(nn.Module):
    """Reads its width from the batch dimension: an empty batch would rebuild fc for 0."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2, 3)

    def forward(self, x):
        return self.fc(x.t())


def test_a_width_of_zero_sends_the_pass_to_the_real_batch():
    base = BatchAsWidth()
    model = ablate(base, None, input_shape=(5,), verbose=False)
    # Rule: fc sees width 2 on the real batch of 2, as built: nothing is rebuilt.
    assert model.fc.in_features == 2 and same_weights(model.fc, base.fc)


def test_errors_name_the_real_batch_even_when_the_empty_one_found_them():
    # A conv whose groups do not divide the new width fails on the empty batch already.
    with pytest.raises(AblationError, match=r"module '1' \(Conv2d\): it was built for input "
                                            r"width 8 but now receives 6 \(input \(2, 6, 5, 5\)\)"):
        ablate(watched(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, groups=4)), 1,
               input_shape=(6, 5, 5), verbose=False)


def test_repaired_batchnorm_keeps_fresh_statistics():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))
    model = ablate(base, 1, input_shape=(3, 2, 2), verbose=False)
    norm = model[1]
    # Rule: a rebuilt module is freshly initialised; the probe input does not train it.
    assert norm.num_features == 8 and int(norm.num_batches_tracked) == 0
    assert torch.equal(norm.running_mean, torch.zeros(8))
    assert torch.equal(norm.running_var, torch.ones(8))


def test_same_seed_gives_the_same_repaired_weights():
    def build():
        torch.manual_seed(3)
        return ablate(nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.Linear(8, 1)), 0,
                      input_shape=(6,), verbose=False)

    assert same_weights(build(), build())
