"""Pairs and Shapley: how well the sampled Shapley ranking finds the truth, what each policy
costs in trials, and whether trials removing several components cost more to run.

Part 1 (no Spark, seconds): planted games with known truth on n = 6, 8 and 10 components — a
redundant pair (either one suffices), an overlapping pair (both needed), independent effects
of different sizes and null components — each coalition's value perturbed by Gaussian noise
(training noise). The truth is the exact Shapley value of the noiseless game; the estimate is
what ``ablator="shapley"`` computes within a budget of ``4 n`` trials per repeat
(:func:`maggy.ablation.ablator.shapley.plan_coalitions` +
:func:`maggy.results.interactions.shapley_table`). Reported: mean and worst Spearman
correlation over ``--seeds`` draws, LOCO's Spearman for comparison, and the trials per repeat
of LOCO, pairs and Shapley.

Part 2 (Spark, ``--no-spark`` skips it): the makespan of a 64-coalition Shapley study (6
components, exact) on 2 slots against 64 LOCO-sized trials (a base and 63 single-feature
trials) with the same train_fn (sleeps ``--sleep`` s), alternating, ``--repeats`` times each.

    python benchmarks/interactions.py [--seeds 50] [--noise 0.05] [--sleep 0.25] [--repeats 2]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time

from scipy.stats import spearmanr

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from maggy.ablation.ablator.shapley import plan_coalitions  # noqa: E402
from maggy.results.interactions import shapley_exact, shapley_table  # noqa: E402


def planted_game(n: int, rng: random.Random):
    """``(players, value)``: components 0-1 redundant, 2-3 overlapping, then effects and nulls."""
    players = [f"c{i}" for i in range(n)]
    nulls = 1 if n < 8 else 2
    effects = {p: rng.uniform(0.2, 1.5) for p in players[4:n - nulls]}  # the rest are null

    def value(coalition: frozenset) -> float:
        v = 2.0 if {"c0", "c1"} <= coalition else 0.0          # redundant: either suffices
        v += 1.2 if coalition & {"c2", "c3"} else 0.0          # overlapping: both needed
        return v + sum(w for p, w in effects.items() if p in coalition)

    return players, value


def shapley_accuracy(n: int, seeds: int, noise: float) -> dict:
    rhos, loco_rhos, trials = [], [], []
    for seed in range(seeds):
        rng = random.Random(seed)
        players, value = planted_game(n, rng)
        every = [frozenset(c) for k in range(n + 1) for c in itertools.combinations(players, k)]
        truth = shapley_exact({c: value(c) for c in every}, players)
        coalitions, permutations = plan_coalitions(n, 4 * n, seed=seed)
        measured = {frozenset(players[i] for i in c): {0: value(frozenset(players[i] for i in c))
                                                      + (rng.gauss(0, noise) if c else 0.0)}
                    for c in coalitions}
        named = None if permutations is None else [[players[i] for i in p] for p in permutations]
        estimate = shapley_table(measured, players, named)["shapley"].tolist()
        rhos.append(spearmanr([truth[p] for p in players], estimate).statistic)
        loco = [measured[frozenset({p})][0] for p in players]
        loco_rhos.append(spearmanr([truth[p] for p in players], loco).statistic)
        trials.append(len(coalitions))
    return {
        "n": n, "budget": 4 * n, "shapley_trials": max(trials),
        "spearman_mean": round(statistics.fmean(rhos), 3), "spearman_min": round(min(rhos), 3),
        "loco_spearman_mean": round(statistics.fmean(loco_rhos), 3),
        "trials_per_repeat": {"loco": 1 + n, "pairs": 1 + n + n * (n - 1) // 2, "shapley": max(trials),
                              "shapley_exact": 2 ** n},
    }


def spark_makespans(sleep: float, repeats: int) -> dict:
    from pyspark import cloudpickle

    from maggy import experiment
    from maggy.core.spark import get_session
    import trivial_study

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spark, _ = get_session(2, 2)

    def train():
        time.sleep(sleep)
        return 0.0

    shapley_study = trivial_study.make_study(7)  # a base and 6 feature components: 2**6 = 64 coalitions
    loco_study = trivial_study.make_study(64)   # a base and 63 single-feature trials
    out: dict = {"loco": [], "shapley": []}
    with tempfile.TemporaryDirectory() as tmp:
        def run(kind: str) -> float:
            study, extra = (shapley_study, {"ablator": "shapley", "max_trials": 64}) if kind == "shapley" else (loco_study, {"ablator": "loco"})
            started = time.perf_counter()
            result = experiment.lagom(train, ablation_study=study, name=kind, experiment_dir=tmp, num_executors=2,
                                      verbose=False, es_policy="none", **extra)
            elapsed = time.perf_counter() - started
            assert result["num_trials"] == 64 and result["failed"] == 0, result["failed"]
            return elapsed

        run("loco")  # warm-up: Python workers and the plotting code
        for _ in range(repeats):
            for kind in ("loco", "shapley"):
                out[kind].append(run(kind))
    loco, shapley = statistics.median(out["loco"]), statistics.median(out["shapley"])
    return {"trials": 64, "slots": 2, "sleep_s": sleep, "ideal_s": 32 * sleep,
            "loco_makespan_s": round(loco, 2), "shapley_makespan_s": round(shapley, 2),
            "shapley_over_loco": round(shapley / loco, 3), "runs": {k: [round(v, 2) for v in vs] for k, vs in out.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--noise", type=float, default=0.05, help="sd of the noise on each coalition's value")
    parser.add_argument("--sleep", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-spark", action="store_true")
    args = parser.parse_args()
    report = {"benchmark": "interactions", "noise": args.noise, "seeds": args.seeds,
              "accuracy": [shapley_accuracy(n, args.seeds, args.noise) for n in (6, 8, 10)]}
    if not args.no_spark:
        report["makespan"] = spark_makespans(args.sleep, args.repeats)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
