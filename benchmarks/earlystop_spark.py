"""Steps saved by median-rule early stopping in a real lagom() run on Spark.

16 trials whose loss curves are b * 0.9**t over 20 steps, direction "min", half of the b
clearly worse, in shuffled declaration order; 2 trial slots. Prints one JSON line: steps run
with the median rule and without it, the fraction saved, and whether the best trial
survived. (`benchmarks/earlystop.py` simulates the same scenario without Spark and compares
with Optuna's MedianPruner.)

    python benchmarks/earlystop_spark.py [--es-min 3] [--step-seconds 0.05] [--seed 0]
"""

import argparse
import json
import random
import tempfile
import time

from maggy import experiment
from maggy.ablation import AblationStudy, MaggyDataset

STEPS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-min", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    scales = {f"good{i}": rng.uniform(1.0, 1.2) for i in range(7)}
    scales.update({f"bad{i}": rng.uniform(2.0, 2.4) for i in range(8)})
    names = list(scales)
    rng.shuffle(names)
    base_scale = rng.uniform(1.0, 1.2)
    step_seconds = args.step_seconds

    class Curve(MaggyDataset):
        def __init__(self):
            self.b = base_scale

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return self.b

        def ablate_feature(self, feature):
            self.b = scales[feature]

    def train(dataset_function, reporter):
        b = dataset_function().b
        for t in range(STEPS):
            time.sleep(step_seconds)
            reporter.broadcast(b * 0.9**t, step=t)
        return b * 0.9 ** (STEPS - 1)

    def run(es_policy):
        study = AblationStudy(dataset_generator=Curve)
        study.features.include(*names)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = experiment.lagom(train_fn=train, ablation_study=study, name="es", direction="min",
                                      experiment_dir=tmp, num_executors=2, es_policy=es_policy,
                                      es_min=args.es_min, hb_interval=0.05, verbose=False)
            return result, time.perf_counter() - start

    from maggy.core.spark import get_session

    get_session(2, 2)  # start Spark before anything is timed
    run("none")  # warm the executors' Python workers (torch imported once)
    full, full_s = run("none")
    stopped, stopped_s = run("median")
    trials = stopped["trials"]
    best = min(scales, key=scales.get) if min(scales.values()) < base_scale else None
    best_row = trials[trials["ablated_feature"].fillna("base") == (best or "base")].iloc[0]
    print(json.dumps({
        "benchmark": "earlystop_spark",
        "trials": len(trials), "steps_per_trial": STEPS, "slots": 2, "es_min": args.es_min,
        "steps_without_es": int(full["trials"]["steps"].sum()),
        "steps_with_median_rule": int(trials["steps"].sum()),
        "fraction_saved": round(1 - trials["steps"].sum() / full["trials"]["steps"].sum(), 4),
        "early_stopped": int(stopped["early_stopped"]),
        "bad_trials_stopped": int(sum((trials["ablated_feature"].fillna("").str.startswith("bad")) & (trials["status"] == "early_stopped"))),
        "best_trial": best or "base", "best_trial_survived": bool(best_row["status"] == "finished"),
        "makespan_without_es_s": round(full_s, 2), "makespan_with_es_s": round(stopped_s, 2),
    }))


if __name__ == "__main__":
    main()
