"""maggy.ablation.model_input: the model input of a dataset that does not state it."""

import numpy as np
import pytest
import torch
from torch import nn

from maggy.ablation.model_input import infer_input, model_input
from maggy.exceptions import AblationError


def mlp(width=6):
    return nn.Sequential(nn.Linear(width, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 1))


class Items(torch.utils.data.Dataset):
    """Hands out the same item, like the thesis' datasets: no input_shape, no sample_input()."""

    def __init__(self, item):
        self.item = item

    def __getitem__(self, i):
        return self.item

    def __len__(self):
        return 1


@pytest.mark.parametrize("item, shape", [
    ((np.float32(1.0), np.zeros(6, np.float32)), (6,)),  # (label, features), the thesis' order
    ((np.zeros(6, np.float32), np.float32(1.0)), (6,)),  # (features, label)
    ({"label": 1, "x": torch.zeros(6)}, (6,)),           # a dict
    (torch.zeros(6), (6,)),                              # the input alone
    ([torch.zeros(6), "a note", None], (6,)),            # what is not a tensor is skipped
])
def test_the_element_the_base_model_runs_on_is_the_input(item, shape):
    assert infer_input(mlp(), Items(item)) == (shape, None)


def test_the_ablated_dataset_gives_the_shape_the_base_dataset_the_element():
    base, ablated = Items((1.0, np.zeros(6, np.float32))), Items((1.0, np.zeros(5, np.float32)))
    # Rule: the base model picks element 1 of the unablated item; its ablated form is 5 wide.
    assert infer_input(mlp(), ablated, base) == ((5,), None)


def test_integer_inputs_become_a_sample_batch():
    tokens = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 1))
    shape, sample = infer_input(tokens, Items((torch.tensor(1), torch.tensor([1, 2, 3]))))
    # Rule: a random float batch cannot stand in for token ids: two copies of the real one do.
    assert shape is None and sample.dtype == torch.int64 and sample.tolist() == [[1, 2, 3]] * 2


def test_the_probe_leaves_the_model_as_it_was():
    model = mlp()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    infer_input(model, Items((1.0, np.ones(6, np.float32))))
    # Rule: batch-norm statistics, training flags and the global RNG are untouched.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(m.training for m in model.modules())
    assert torch.equal(rng, torch.get_rng_state())


def test_a_lazy_model_is_probed_on_a_copy():
    model = nn.Sequential(nn.LazyLinear(4), nn.Linear(4, 1))
    assert infer_input(model, Items((1.0, np.ones(6, np.float32)))) == ((6,), None)
    assert model[0].has_uninitialized_params()


def test_what_the_dataset_states_wins():
    class Stated(Items):
        input_shape = (3,)

    assert model_input(mlp(), Stated((1.0, np.zeros(6, np.float32)))) == ((3,), None)


@pytest.mark.parametrize("dataset, match", [
    (Items({"text": "a sentence"}), "holds no tensor, array or number"),
    (Items((1.0, np.zeros(4, np.float32))), r"Sequential runs on no element of its first item "
                                            r"\(element 1 of shape \(4,\): RuntimeError"),
    ([], r"reading the first item of the list dataset failed with IndexError"),
])
def test_an_input_that_cannot_be_inferred_names_the_trial_and_the_fix(dataset, match):
    with pytest.raises(AblationError, match=match) as caught:
        infer_input(mlp(), dataset, where="trial t001 (layers 2): ")
    message = str(caught.value)
    assert message.startswith("trial t001 (layers 2): cannot infer the model input")
    assert "`input_shape`" in message and "`sample_input()`" in message
