"""maggy.core.trial_builder: one trial's model, as the executors and pre-flight build it."""

import torch
from torch import nn

from maggy.ablation import AblationStudy
from maggy.core.trial_builder import build_model
from maggy.trial import make_spec


class Loud(nn.Module):
    """A layer that prints when it runs, as users' debugging code does."""

    def forward(self, x):
        print("Loud ran")
        return x


def test_surgery_reports_to_log_and_leaves_stdout_to_the_model(capsys):
    study = AblationStudy()
    study.model.set_base_model_generator(
        lambda: nn.Sequential(nn.Linear(6, 8), Loud(), nn.Linear(8, 4), nn.Linear(4, 1)))
    lines = []
    spec = make_spec(1, ablated_layers=[2], layer_label="2")

    class Dataset:
        input_shape = (6,)

    model = build_model(study, spec, Dataset(), log=lines.append)
    assert model[2].in_features == 8
    # Rule: surgery's report goes to log= only; stdout is not redirected while the model is
    # built, so what the model's own code prints (here during the repair pass) stays there.
    assert lines[0] == "Ablating layer 2 - Linear(in_features=8, out_features=4, bias=True)"
    assert lines[1].startswith("Repaired layer 2 - Linear(in_features=4, out_features=1")
    assert "Loud ran" in capsys.readouterr().out
    assert not any("Loud" in line for line in lines)


def test_a_feature_trial_infers_its_input_from_the_dataset_without_the_feature():
    study = AblationStudy()
    study.model.set_base_model_generator(lambda: nn.Sequential(nn.Linear(6, 4), nn.Linear(4, 1)))

    def items(width):
        return [(torch.tensor(1.0), torch.zeros(width))]  # (label, features), no input_shape

    built = []
    model = build_model(study, make_spec(1, ablated_feature="fare"), items(5),
                        base_dataset=lambda: built.append(1) or items(6))
    # Rule: the base model runs on the unablated item's features; the ablated item's
    # features (5 wide) are the trial's input.
    assert model[0].in_features == 5 and built == [1]
    # Rule: a trial that removes nothing and states no input gets the model as generated,
    # without building anything else.
    assert build_model(study, make_spec(0), items(6), base_dataset=lambda: built.append(1))[0].in_features == 6
    assert built == [1]
