"""Steps saved by early stopping in a real lagom() run on Spark (issue W3).

16 trials whose loss curves are b * 0.9**t over 20 steps, direction "min": the base trial and
7 good ablations with b ~ U(1.0, 1.2), 8 clearly worse ones with b ~ U(2.0, 2.4), in shuffled
declaration order after the base; 2 trial slots. For each rule (the median rule, the median
rule with a warm-up of ``--grace`` steps, and the base-relative rule ``es_policy="base"``)
prints steps run against 320 without stopping, good trials stopped, bad trials stopped, and
whether the best trial survived, as one JSON line. (`benchmarks/earlystop.py` simulates the
median rule without Spark and compares with Optuna's MedianPruner.)

    python benchmarks/earlystop_spark.py [--es-min 3] [--grace 3] [--step-seconds 0.05] [--seed 0]
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
    parser.add_argument("--grace", type=int, default=3, help="es_grace_steps of the median rule's second run")
    parser.add_argument("--margin", type=float, default=0.25, help="es_margin of the base rule")
    parser.add_argument("--patience", type=int, default=1, help="es_patience of the base rule")
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

    def run(es_policy, **es):
        study = AblationStudy(dataset_generator=Curve)
        study.features.include(*names)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = experiment.lagom(train_fn=train, ablation_study=study, name="es", direction="min",
                                      experiment_dir=tmp, num_executors=2, es_policy=es_policy,
                                      es_min=args.es_min, hb_interval=0.05, verbose=False, **es)
            return result, time.perf_counter() - start

    from maggy.core.spark import get_session

    get_session(2, 2)  # start Spark before anything is timed
    run("none")  # warm the executors' Python workers (torch imported once)
    full, full_s = run("none")
    best = min(scales, key=scales.get) if min(scales.values()) < base_scale else None
    line = {
        "benchmark": "earlystop_spark",
        "trials": len(full["trials"]), "steps_per_trial": STEPS, "slots": 2,
        "steps_without_es": int(full["trials"]["steps"].sum()),
        "makespan_without_es_s": round(full_s, 2), "best_trial": best or "base",
    }
    rules = {
        f"median(es_min={args.es_min})": ("median", {}),
        f"median(es_min={args.es_min}, grace={args.grace})": ("median", {"es_grace_steps": args.grace}),
        f"base(margin={args.margin:g}, patience={args.patience})": (
            "base", {"es_margin": args.margin, "es_patience": args.patience}),
    }
    for label, (policy, es) in rules.items():
        stopped, stopped_s = run(policy, **es)
        trials = stopped["trials"]
        kind = trials["ablated_feature"].fillna("base")
        early = trials["status"] == "early_stopped"
        best_row = trials[kind == (best or "base")].iloc[0]
        line[label] = {
            "steps": int(trials["steps"].sum()),
            "fraction_saved": round(1 - trials["steps"].sum() / full["trials"]["steps"].sum(), 4),
            "good_trials_stopped": int((kind.str.startswith("good") & early).sum()),
            "bad_trials_stopped": int((kind.str.startswith("bad") & early).sum()),
            "best_trial_survived": bool(best_row["status"] == "finished"),
            "steps_of_stopped_trials": sorted(int(x) for x in trials[early]["steps"]),
            "makespan_s": round(stopped_s, 2),
        }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
