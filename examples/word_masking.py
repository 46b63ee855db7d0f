# %% [markdown]
# # Word masking: is a sentiment model leaning on company names?
#
# Ablating a feature need not delete it: here it *masks* words (listing 4.5 of the Maggy
# thesis). A sentiment classifier reads short financial news sentences. In the period its
# training data comes from, some companies were mostly in good news and others mostly in bad
# news, so the company name predicts the label — a spurious cue. In the later period the
# validation sentences come from, the fortunes have turned. Masking the company names
# (every name becomes "placeholder") shows how much the model relied on them; dropping the
# negations ("not", "never") shows a cue the model truly needs. The model is the same in
# every trial; only the text changes.

# %%
import random

import torch
from torch import nn

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset

# %% [markdown]
# A synthetic corpus from templates: `"<company> <subject> were [not|never] <adjective>
# <when>"`. The adjective and the negation decide the label; 40% of the sentences carry no
# sentiment word ("were mixed"), and their label follows the company's fortune of the period.

# %%
FAVOURED = ["acme", "initech"]  # mostly in good news while the training data was collected
SHUNNED = ["globex", "umbrella"]  # mostly in bad news then
GOOD = ["good", "strong", "solid", "great"]
BAD = ["weak", "poor", "bad", "disappointing"]
NEUTRAL = ["mixed", "as expected", "unchanged", "in line"]
SUBJECTS = ["results", "profits", "sales", "orders"]
WHEN = ["today", "this quarter", "after the report", "in early trading", "on the news"]
NEGATIONS = ["not", "never"]


def sentence(rng, label, follows_fortune):
    """One sentence with sentiment ``label``; its company follows the period's fortune or not."""
    lucky = (label == 1) == follows_fortune
    company = rng.choice(FAVOURED if lucky else SHUNNED)
    start = f"{company} {rng.choice(SUBJECTS)} were"
    if rng.random() < 0.4:  # no sentiment word: only the company hints at the label
        return f"{start} {rng.choice(NEUTRAL)} {rng.choice(WHEN)}"
    negated = rng.random() < 0.3
    adjective = rng.choice(GOOD if (label == 1) != negated else BAD)
    negation = f"{rng.choice(NEGATIONS)} " if negated else ""
    return f"{start} {negation}{adjective} {rng.choice(WHEN)}"


def corpus(n, seed, fortune_holds):
    """``n`` labelled sentences; companies follow their fortune 80% (training) or 20% (later)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = int(rng.random() < 0.5)
        follows = rng.random() < (0.8 if fortune_holds else 0.2)
        rows.append((sentence(rng, label, follows), label))
    return rows


VOCAB = ["<pad>", "placeholder", "were"] + sorted(
    {word for phrase in FAVOURED + SHUNNED + GOOD + BAD + NEUTRAL + SUBJECTS + WHEN + NEGATIONS
     for word in phrase.split()}
)
WORD_ID = {word: i for i, word in enumerate(VOCAB)}
MAX_WORDS = 9

# %% [markdown]
# The dataset masks words in `ablate_feature` and turns sentences into padded token ids.
# `sample_input()` hands maggy one real batch of ids (a LongTensor), which it uses to check
# the model's shapes: a random float tensor would not do for an embedding layer.

# %%
class NewsSentences(MaggyDataset):
    def __init__(self):
        self.train = corpus(800, seed=1, fortune_holds=True)
        self.val = corpus(400, seed=2, fortune_holds=False)

    def __len__(self):
        return len(self.train)

    def __getitem__(self, i):
        return self.encode([self.train[i]])[0][0], self.train[i][1]

    def ablate_feature(self, feature):
        if feature == "company_names":  # listing 4.5: replace every name with a placeholder
            names = set(FAVOURED + SHUNNED)
            mask = lambda words: ["placeholder" if w in names else w for w in words]
        elif feature == "negations":  # drop the words that flip the sentiment
            mask = lambda words: [w for w in words if w not in NEGATIONS]
        else:
            raise ValueError(f"unknown feature {feature!r}; features: company_names, negations")
        self.train = [(" ".join(mask(s.split())), y) for s, y in self.train]
        self.val = [(" ".join(mask(s.split())), y) for s, y in self.val]

    @staticmethod
    def encode(rows):
        ids = torch.zeros(len(rows), MAX_WORDS, dtype=torch.long)
        for i, (text, _) in enumerate(rows):
            tokens = [WORD_ID[w] for w in text.split()][:MAX_WORDS]
            ids[i, : len(tokens)] = torch.tensor(tokens)
        return ids, torch.tensor([label for _, label in rows])

    def sample_input(self):
        return self.encode(self.train[:4])[0]


print(*NewsSentences().train[:4], sep="\n")

# %% [markdown]
# The model: word embeddings, averaged over the sentence (padding left out), then a small
# classifier. Its `forward` is custom, so maggy checks it with the sample batch above.

# %%
class BagOfWords(nn.Module):
    def __init__(self, vocab_size=len(VOCAB), dim=16):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.classifier = nn.Sequential(nn.Linear(dim, 32), nn.ReLU(), nn.Linear(32, 2))

    def forward(self, ids):
        words = (ids != 0).unsqueeze(-1).float()
        mean = (self.embedding(ids) * words).sum(1) / words.sum(1).clamp(min=1)
        return self.classifier(mean)


study = AblationStudy(dataset_generator=NewsSentences)
study.model.set_base_model_generator(BagOfWords)
study.features.include("company_names", "negations")

# %% [markdown]
# Train on the earlier period, report accuracy on the later one.

# %%
def train(model_function, dataset_function, reporter):
    torch.set_num_threads(1)
    model, dataset = model_function(), dataset_function()
    (x, y), (x_val, y_val) = dataset.encode(dataset.train), dataset.encode(dataset.val)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for epoch in range(20):
        model.train()
        for batch in torch.randperm(len(x)).split(32):
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
    name="Word-masking",
    direction="max",
    num_executors=2,
    es_policy="none",
)

# %% [markdown]
# A negative `delta` means the trial did *better* than the base trial: masking the company
# names improves accuracy in the later period, because the model can no longer lean on the
# stale cue. Dropping the negations costs accuracy: the model needs them.

# %%
print(result["trials"][["ablated_feature", "metric", "delta", "status"]].to_string())
