# %% [markdown]
# # Beyond leave-one-out: a redundant pair that LOCO cannot see
#
# A planted task with known truth: the label depends on `x1`, on `x2 = x1 + small noise`
# (so `x1` and `x2` carry the same information), and on `x3`; `null` carries none.
# We run three policies on the same study and compare what they conclude:
#
# * `ablator="loco"`: removing `x1` alone costs almost nothing, because `x2` covers for it
#   (and the other way round), so LOCO calls both negligible.
# * `ablator="pairs"`: removing `x1` and `x2` together costs far more than the two single
#   removals add up to, so the pair is reported as redundant.
# * `ablator="shapley"`: the joint effect of `x1` and `x2` is shared between them, about
#   half each; `null` gets about 0.

# %%
import numpy as np
import pandas as pd
import torch
from torch import nn

from maggy import experiment
from maggy.ablation import AblationStudy, PandasDataset

# %% [markdown]
# The data: y = x1 + x2 + x3 + noise, with x2 a noisy copy of x1.

# %%
rng = np.random.default_rng(0)
n = 1000
x1 = rng.normal(size=n)
x2 = x1 + 0.05 * rng.normal(size=n)
x3 = rng.normal(size=n)
null = rng.normal(size=n)
y = x1 + x2 + x3 + 0.1 * rng.normal(size=n)
planted = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "null": null})


def make_dataset():
    return PandasDataset(planted, "y")


def make_model():
    return nn.Sequential(nn.Linear(4, 1))


study = AblationStudy(label_name="y", dataset_generator=make_dataset)
study.model.set_base_model_generator(make_model)
study.features.include("x1", "x2", "x3", "null")

# %% [markdown]
# The train function fits on the first 800 rows and returns the mean squared error on the
# other 200 (lower is better). maggy hands it the model already repaired for the features
# the trial removed.

# %%
def train(model_function, dataset_function):
    model, dataset = model_function(), dataset_function()
    features = torch.tensor(dataset.data)
    labels = torch.tensor(dataset.labels).unsqueeze(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(150):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(features[:800]), labels[:800])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return nn.functional.mse_loss(model(features[800:]), labels[800:]).item()


# %% [markdown]
# LOCO: one trial per feature.

# %%
loco = experiment.lagom(train, ablation_study=study, ablator="loco", name="planted-loco", direction="min")
loco["components"][["component", "mean_delta"]]

# %% [markdown]
# Pairs: the LOCO trials plus one trial per pair of features; `interaction` is the pair's
# delta minus the sum of the two single deltas.

# %%
pairs = experiment.lagom(train, ablation_study=study, ablator="pairs", name="planted-pairs", direction="min")
pairs["interactions"][["component_a", "component_b", "pair_delta", "sum_of_singles", "interaction", "kind"]]

# %% [markdown]
# Shapley: with 4 features, all 16 coalitions fit the default budget (4 per feature), so
# the values are exact. They add up to the delta of removing every feature.

# %%
shapley = experiment.lagom(train, ablation_study=study, ablator="shapley", name="planted-shapley", direction="min")
shapley["components"][["component", "mean_delta", "shapley"]]
