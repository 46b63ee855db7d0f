# %% [markdown]
# # Layer ablation of a sequence model: which parts of a small transformer matter?
#
# The task: tell balanced bracket strings such as `(()())` from unbalanced ones such as
# `())(()`, 12 to 20 brackets long. The model embeds the brackets, runs two transformer
# encoder layers with a causal mask (so position *i* sees the prefix up to *i*, where the
# running bracket balance lives), normalises, averages over positions and classifies.
#
# The model is not an `nn.Sequential`: its `forward` is custom, so layers are named as in
# `model.named_modules()`. The study removes `layers.1` (the second encoder layer),
# `head_norm` (the final LayerNorm), and — as one trial — every module under the prefix
# `layers`. A removed layer becomes an identity that ignores the extra arguments
# (`src_mask=...`), so the loop in `forward` keeps working.

# %%
import random

import torch
from torch import nn

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset

# %% [markdown]
# The data: half balanced strings, half broken ones — one bracket flipped (the counts no
# longer match) or an opening and a closing bracket swapped (the counts match, the order
# does not, which a model that only counts cannot see).

# %%
PAD, OPEN, CLOSE = 0, 1, 2
MAX_LEN = 20


def balanced(rng, pairs):
    text, depth, opens = [], 0, pairs
    while opens or depth:
        if opens and (depth == 0 or rng.random() < 0.5):
            text.append(OPEN)
            opens, depth = opens - 1, depth + 1
        else:
            text.append(CLOSE)
            depth -= 1
    return text


def broken(rng, pairs):
    text = balanced(rng, pairs)
    if rng.random() < 0.5:
        i = rng.randrange(len(text))
        text[i] = OPEN if text[i] == CLOSE else CLOSE
        return text
    while True:
        i, j = sorted(rng.sample(range(len(text)), 2))
        if text[i] == OPEN and text[j] == CLOSE:
            text[i], text[j] = CLOSE, OPEN
            return text


def is_balanced(text):
    depth = 0
    for token in text:
        depth += 1 if token == OPEN else -1
        if depth < 0:
            return False
    return depth == 0


class Brackets(MaggyDataset):
    def __init__(self, n=1600, seed=0):
        rng = random.Random(seed)
        self.ids = torch.full((n, MAX_LEN), PAD, dtype=torch.long)
        self.labels = torch.zeros(n, dtype=torch.long)
        for k in range(n):
            pairs = rng.randint(6, 10)  # 12 to 20 brackets
            text = balanced(rng, pairs) if k % 2 == 0 else broken(rng, pairs)
            self.ids[k, : len(text)] = torch.tensor(text)
            self.labels[k] = int(is_balanced(text))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.ids[i], self.labels[i]

    def ablate_feature(self, feature):
        raise ValueError("this study removes layers, not features")

    def sample_input(self):
        return self.ids[:4]  # token ids: what the embedding expects


def show(ids):
    return "".join("()"[t - 1] for t in ids.tolist() if t != PAD)


data = Brackets(n=6)
print(*(f"{show(x)}  balanced={bool(y)}" for x, y in zip(data.ids, data.labels)), sep="\n")

# %% [markdown]
# The model. Its encoder layers live in an `nn.ModuleList` of `nn.TransformerEncoderLayer`,
# called in a loop, rather than in an `nn.TransformerEncoder`, whose `forward` reads its
# first layer's settings and so refuses to lose `layers.0` (see docs/ablation.md).

# %%
class BracketTransformer(nn.Module):
    def __init__(self, dim=32, heads=4, num_layers=2):
        super().__init__()
        self.embedding = nn.Embedding(3, dim, padding_idx=PAD)
        self.position = nn.Embedding(MAX_LEN, dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=64, dropout=0.0, batch_first=True)
            for _ in range(num_layers)
        )
        self.head_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, ids):
        length = ids.shape[1]
        x = self.embedding(ids) + self.position(torch.arange(length, device=ids.device))
        causal = torch.ones(length, length, dtype=torch.bool, device=ids.device).triu(1)
        padding = ids == PAD
        for layer in self.layers:
            x = layer(x, src_mask=causal, src_key_padding_mask=padding)
        x = self.head_norm(x)
        keep = (~padding).unsqueeze(-1).float()
        return self.head((x * keep).sum(1) / keep.sum(1))


print([name for name, _ in BracketTransformer().named_children()])

# %% [markdown]
# The study: single layers by name, and one trial without any encoder layer (the prefix
# group). maggy seeds the random generators (`seed=0`, the default) right before it calls
# the model generator, so in every trial the layers that stay start from the same weights.

# %%
study = AblationStudy(dataset_generator=Brackets)
study.model.set_base_model_generator(BracketTransformer)
study.model.layers.include("layers.1", "head_norm")
study.model.layers.include_groups(prefix="layers")


def train(model_function, dataset_function, reporter):
    torch.set_num_threads(1)
    model, dataset = model_function(), dataset_function()
    x, y = dataset.ids[:1200], dataset.labels[:1200]
    x_val, y_val = dataset.ids[1200:], dataset.labels[1200:]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(10):
        model.train()
        for batch in torch.randperm(len(x)).split(64):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
        reporter.broadcast(metric=accuracy, step=epoch)
    return accuracy


result = experiment.lagom(
    train_fn=train,
    ablation_study=study,
    ablator="loco",
    name="Brackets-LOCO",
    direction="max",
    num_executors=2,
    seed=0,
    es_policy="none",
)

# %% [markdown]
# Without any encoder layer the model can only average bracket embeddings: it sees whether
# the counts match, not whether the order is right, and its accuracy drops towards the
# share of strings it can tell by counting. Removing only the second layer or the final
# LayerNorm costs a few points of accuracy.

# %%
print(result["trials"][["ablated_layers", "metric", "delta", "status"]].to_string())
