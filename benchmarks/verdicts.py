"""How often the verdicts are wrong, how often they find what matters, and what repeats="auto" saves.

Planted task (issue 12): 8 components, 3 needed (removing them worsens the metric by 1, 2 and
4 noise standard deviations), 1 harmful (removing it improves the metric by 2 sd), 4 with no
effect; direction "min", run-to-run noise on every metric. The noise of one run has sd 1 and
is the sum of a part shared by every trial of a repeat (same seed: same initial weights, same
data order) and a part of its own; ``--shared`` is the shared share of the variance (0.5 by
default, so a paired difference has sd 1; 0 gives independent runs, differences of sd 1.41).

No Spark: the real LOCO ablator is fed simulated records (``repeats="auto"``: it decides which
trials run next from them, exactly as in ``lagom()``), and the real result table gives the
verdicts. Each study is also run with fixed ``repeats=10`` for comparison. Counted over
``--studies`` studies (200):

* false calls: studies in which any no-effect component is called needed or harmful (goal <= 5%);
* found: share of studies in which each needed component is called needed (goal >= 90% for >= 2 sd);
* harmful found, wrong sign calls, and the trials spent (fixed: 90 per study).

``--spark`` instead runs the planted task once for real: ``lagom(repeats="auto")`` on the
embedded Spark, each trial a Spark task drawing its metric as above (seeded by maggy), and
prints the summary and the verdicts.

Usage: ``python3 benchmarks/verdicts.py [--studies 200] [--shared 0.5] [--min-effect 1.5] [--seed 0] [--spark]``.
Prints one JSON line per policy.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy.ablation import AblationStudy  # noqa: E402
from maggy.ablation.ablator import LOCO  # noqa: E402
from maggy.config import AblationConfig  # noqa: E402
from maggy.results import build_result  # noqa: E402

#: Effect of removing each component, in noise sd (delta > 0: the metric gets worse).
EFFECTS = {"need1": 1.0, "need2": 2.0, "need4": 4.0, "harm2": -2.0,
           "null1": 0.0, "null2": 0.0, "null3": 0.0, "null4": 0.0}
BASE = 10.0


def planted_study() -> AblationStudy:
    study = AblationStudy(dataset_generator=lambda: None)
    study.features.include(*EFFECTS)
    return study


def simulate(config: AblationConfig, rng: random.Random, shared: float) -> tuple[dict, int]:
    """Runs one study through the ablator with simulated metrics; verdicts and trials spent."""
    ablator = LOCO(config.ablation_study, repeats=config.repeats, seed=0)
    ablator.configure(config)
    ablator.initialize()
    names = [None] + list(EFFECTS)
    seed_noise: dict[int, float] = {}
    records: list[dict] = []
    specs = ablator.more_trials([])
    while specs:
        for spec in specs:  # a repeat's trials all finish before the ablator looks again
            repeat = spec["repeat"]
            if repeat not in seed_noise:
                seed_noise[repeat] = rng.gauss(0.0, math.sqrt(shared))
            effect = EFFECTS.get(names[spec["index"]], 0.0)
            metric = BASE + effect + seed_noise[repeat] + rng.gauss(0.0, math.sqrt(1.0 - shared))
            records.append({**spec, "status": "finished", "metric": metric})
        specs = ablator.more_trials(records) if ablator.adaptive else []
    result = build_result(records, "min", 0.0, judging=config.judging())
    verdicts = {row.component.removeprefix("feature "): row.verdict for row in result["components"].itertuples()}
    return verdicts, len(records)


def measure(config: AblationConfig, studies: int, seed: int, shared: float) -> dict:
    rng = random.Random(seed)
    false_calls = wrong_sign = 0
    found = {name: 0 for name in EFFECTS if EFFECTS[name] != 0.0}
    negligible_nulls = 0
    trials = []
    started = time.perf_counter()
    for _ in range(studies):
        verdicts, spent = simulate(config, rng, shared)
        trials.append(spent)
        nulls = [verdicts[n] for n in EFFECTS if EFFECTS[n] == 0.0]
        false_calls += any(v in ("needed", "harmful") for v in nulls)
        negligible_nulls += sum(v == "negligible" for v in nulls)
        for name in found:
            expected = "needed" if EFFECTS[name] > 0 else "harmful"
            found[name] += verdicts[name] == expected
            wrong_sign += verdicts[name] == ("harmful" if expected == "needed" else "needed")
    return {
        "repeats": config.repeats,
        "min_effect": config.min_effect,
        "shared": shared,
        "studies": studies,
        "false_call_studies": round(false_calls / studies, 3),
        "found": {name: round(count / studies, 3) for name, count in found.items()},
        "wrong_sign_calls": wrong_sign,
        "nulls_negligible": round(negligible_nulls / (4 * studies), 3),
        "trials_mean": round(statistics.fmean(trials), 1),
        "trials_max": max(trials),
        "seconds": round(time.perf_counter() - started, 1),
    }


class _Removed:
    """The planted task's dataset: only which component the trial removed."""

    def __init__(self):
        self.removed = None

    def __len__(self):
        return 1

    def __getitem__(self, i):
        return self.removed

    def ablate_feature(self, feature):
        self.removed = feature


def _spark_run(shared: float, min_effect: float) -> int:
    """One real lagom() run of the planted task on the embedded Spark."""
    import tempfile

    from maggy import experiment

    def train(dataset_function):
        removed = dataset_function().removed
        # maggy seeded `random` with the repeat's seed: this draw is shared by the repeat.
        common = random.gauss(0.0, math.sqrt(shared))
        own = random.Random(f"{removed}-{random.random()}").gauss(0.0, math.sqrt(1.0 - shared))
        return BASE + EFFECTS.get(removed, 0.0) + common + own

    study = AblationStudy(dataset_generator=_Removed)
    study.features.include(*EFFECTS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = experiment.lagom(train_fn=train, ablation_study=study, name="planted", direction="min",
                                  es_policy="none", repeats="auto", min_effect=min_effect, experiment_dir=tmp)
    verdicts = {row.component.removeprefix("feature "): row.verdict for row in result["components"].itertuples()}
    print(json.dumps({"spark": True, "trials": result["num_trials"], "verdicts": verdicts,
                      "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--shared", type=float, default=0.5, help="share of the noise variance common to a repeat")
    parser.add_argument("--min-effect", type=float, default=1.5, help="min_effect for both policies (noise sd)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spark", action="store_true", help="one real lagom() run instead of the simulation")
    args = parser.parse_args(argv)
    if args.spark:
        return _spark_run(args.shared, args.min_effect)
    study = planted_study()
    for repeats in (10, "auto"):
        config = AblationConfig(ablation_study=study, direction="min", repeats=repeats, min_repeats=3,
                                max_repeats=10, alpha=0.05, min_effect=args.min_effect)
        print(json.dumps(measure(config, args.studies, args.seed, args.shared)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
