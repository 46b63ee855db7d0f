# %% [markdown]
# # Conclusions you can trust: single runs against `repeats="auto"`
#
# A planted task whose truth we know: a "training run" whose final loss is a base loss, plus
# the planted effect of the removed component, plus run-to-run noise (sd 0.02). Eight
# components: removing `need_small`, `need_mid` or `need_big` raises the loss by 1, 2 and 4
# noise sd; removing `harmful` lowers it by 2 sd; the four `idle_*` components do nothing.
#
# One run per component (the thesis default) ranks them by one draw of noise each. With
# `repeats="auto"` maggy runs paired repeats until every component has a verdict, and says
# which ones it could not settle. Nothing is trained here, so the two studies take seconds;
# with a real model the same calls apply.

# %%
import math
import random

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset

NOISE = 0.02
EFFECTS = {  # what removing each component does to the loss (lower is better)
    "need_small": 1 * NOISE, "need_mid": 2 * NOISE, "need_big": 4 * NOISE, "harmful": -2 * NOISE,
    "idle_a": 0.0, "idle_b": 0.0, "idle_c": 0.0, "idle_d": 0.0,
}

# %% [markdown]
# The dataset only says which component the trial removed. The noise has two halves: one
# shared by every trial of a repeat (maggy seeds `random` with the repeat's seed before the
# training function runs: same initial weights, same data order) and one of the trial's own.
# Pairing each trial with the base trial of its repeat cancels the shared half.

# %%
class Components(MaggyDataset):
    def __init__(self):
        self.removed = None

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.removed

    def ablate_feature(self, feature):
        self.removed = feature


def train(dataset_function):
    removed = dataset_function().removed
    shared = random.gauss(0.0, NOISE / math.sqrt(2))  # the same draw in every trial of a repeat
    own = random.Random(f"{removed}-{random.random()}").gauss(0.0, NOISE / math.sqrt(2))
    return 0.50 + EFFECTS.get(removed, 0.0) + shared + own


study = AblationStudy(dataset_generator=Components)
study.features.include(*EFFECTS)

# %% [markdown]
# ## One run per component
#
# The summary says what single runs are: one draw each, no noise estimate, no verdict.
# `noise_runs=3` runs the base trial three more times to estimate the noise, and flags the
# deltas that are within it.

# %%
single = experiment.lagom(train_fn=train, ablation_study=study, name="planted", direction="min",
                          es_policy="none", noise_runs=3, verbose=False)
print(single["components"][["component", "mean_delta", "within_noise", "verdict", "reason"]].to_string(index=False))

# %% [markdown]
# ## `repeats="auto"`
#
# Three paired repeats first; then each repeat runs the base trial and the components still
# undetermined. `min_effect=0.03` (1.5 noise sd) says which effects do not matter.

# %%
auto = experiment.lagom(train_fn=train, ablation_study=study, name="planted", direction="min",
                        es_policy="none", repeats="auto", min_effect=0.03)

# %%
table = auto["components"][["component", "n", "mean_delta", "ci_low", "ci_high", "p_adjusted", "verdict"]]
print(table.to_string(index=False))
print(f"{auto['num_trials']} trials; repeats=10 would have run {10 * (1 + len(EFFECTS))}")
verdicts = dict(zip(auto["components"]["component"], auto["components"]["verdict"]))
# What is worth a conclusion was found, and nothing idle was called needed or harmful.
assert verdicts["feature need_big"] == "needed" and verdicts["feature harmful"] == "harmful"
assert not any(verdicts[f"feature idle_{c}"] in ("needed", "harmful") for c in "abcd")
