"""How many training steps the median rule saves, and whether it ever stops the best trial.

Scenario (the goal in the design notes): 16 trials whose validation loss follows
``b * 0.9**t`` for t = 0..19 (direction "min"); half of them are clearly worse
(good b ~ U(1.0, 1.2), bad b ~ U(2.0, 2.4)), in shuffled order. maggy runs them on 2 parallel
slots in lock-step: each slot reports one value per tick and the rule is consulted after every
reported value, with the trials finished at that moment. "Steps run" counts reported values,
so a trial stopped after its s-th report ran s steps; the total without stopping is 320.

Optuna's MedianPruner (defaults) runs the same curves sequentially, which is how its figure
for this scenario was measured; it is only compared when optuna is importable.

Usage: ``python3 benchmarks/earlystop.py [--seed N] [--sweep-seeds K]``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy.earlystop import DEFAULT_MIN_FINISHED, Decision, MedianStoppingRule  # noqa: E402

N_TRIALS = 16
N_STEPS = 20
N_SLOTS = 2


def make_curves(seed: int, noise: float = 0.0) -> list[list[float]]:
    """16 shuffled loss curves, half of them clearly worse.

    ``noise`` > 0 multiplies every value by ``1 + N(0, noise)`` (same seed, same shapes), to
    see how often a noisy first report gets the best trial stopped.
    """
    rng = random.Random(seed)
    bases = [rng.uniform(1.0, 1.2) for _ in range(N_TRIALS // 2)]
    bases += [rng.uniform(2.0, 2.4) for _ in range(N_TRIALS // 2)]
    rng.shuffle(bases)
    curves = [[b * 0.9**t for t in range(N_STEPS)] for b in bases]
    if noise:
        jitter = random.Random(10_000 + seed)
        curves = [[v * (1 + jitter.gauss(0.0, noise)) for v in c] for c in curves]
    return curves


def run_maggy(
    curves: list[list[float]], min_finished: int, slots: int = N_SLOTS, count_stopped=False
):
    """Simulate maggy's driver: ``slots`` trials in lock-step, rule after every report.

    ``count_stopped`` also hands early-stopped trials' (short) histories to the rule as
    finished ones; by default only trials that ran to the end are "finished".

    Returns:
        (steps run, index of each trial that ran to the end).
    """
    rule = MedianStoppingRule(min_finished=min_finished)
    queue = list(range(len(curves)))
    running: list[int | None] = [None] * slots
    history: dict[int, list[float]] = {}
    finished: list[int] = []
    reference: list[int] = []  # trials the rule compares with
    steps = 0
    while queue or any(r is not None for r in running):
        for slot in range(slots):
            if running[slot] is None and queue:
                running[slot] = queue.pop(0)
                history[running[slot]] = []
        for slot in range(slots):
            trial = running[slot]
            if trial is None:
                continue
            history[trial].append(curves[trial][len(history[trial])])
            steps += 1
            if len(history[trial]) == len(curves[trial]):
                finished.append(trial)
                reference.append(trial)
                running[slot] = None
                continue
            done = [history[t] for t in reference]
            if rule.decide(history[trial], done, "min") is Decision.STOP:
                running[slot] = None
                if count_stopped:
                    reference.append(trial)
    return steps, finished


def run_optuna(curves: list[list[float]]):
    """Optuna's MedianPruner with its defaults, trials run one after the other.

    Returns:
        (steps run, indices of completed trials), or None without optuna.
    """
    try:
        import optuna
    except ImportError:
        return None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    steps = 0
    completed: list[int] = []

    def objective(trial):
        nonlocal steps
        curve = curves[trial.number]
        for t, value in enumerate(curve):
            trial.report(value, t)
            steps += 1
            if trial.should_prune():
                raise optuna.TrialPruned()
        completed.append(trial.number)
        return curve[-1]

    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner())
    study.optimize(objective, n_trials=len(curves))
    return steps, completed


def best_trial(curves: list[list[float]]) -> int:
    """The trial with the lowest b (its noiseless curve is lowest at every step)."""
    return min(range(len(curves)), key=lambda i: curves[i][0])


def sweep(seeds: range, noise: float, candidates=range(1, 6)) -> dict:
    """For each min_finished, over many seeds: mean steps run, runs that lost the best trial
    (noiseless, and with ``noise``), and runs using at most Optuna's steps."""
    optuna_steps = [run_optuna(make_curves(seed)) for seed in seeds]
    table = {}
    for k in candidates:
        steps, lost, lost_noisy, at_most_optuna = [], 0, 0, 0
        for seed, optuna_result in zip(seeds, optuna_steps):
            curves = make_curves(seed)
            n, finished = run_maggy(curves, k)
            steps.append(n)
            lost += best_trial(curves) not in finished
            lost_noisy += best_trial(curves) not in run_maggy(make_curves(seed, noise), k)[1]
            at_most_optuna += optuna_result is not None and n <= optuna_result[0]
        table[k] = {"mean_steps": statistics.fmean(steps), "best_stopped_runs": lost,
                    "best_stopped_runs_noisy": lost_noisy}
        if optuna_steps[0] is not None:
            table[k]["runs_at_most_optuna"] = at_most_optuna
    if optuna_steps[0] is not None:
        table["optuna"] = {"mean_steps": statistics.fmean(r[0] for r in optuna_steps)}
    table["runs"] = len(seeds)
    table["noise"] = noise
    return table


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--es-min", type=int, default=DEFAULT_MIN_FINISHED)
    parser.add_argument("--sweep-seeds", type=int, default=200,
                        help="seeds for the es_min sweep (0 skips it)")
    parser.add_argument("--noise", type=float, default=0.1,
                        help="relative noise on each value in the sweep's noisy runs")
    args = parser.parse_args(argv)

    curves = make_curves(args.seed)
    total = N_TRIALS * N_STEPS
    steps, finished = run_maggy(curves, args.es_min)
    optuna_result = run_optuna(curves)
    line = {
        "scenario": f"{N_TRIALS} trials x {N_STEPS} steps, b*0.9^t, min, {N_SLOTS} slots",
        "seed": args.seed,
        "es_min": args.es_min,
        "maggy_steps": steps,
        "total_steps": total,
        "fraction_saved": round(1 - steps / total, 4),
        "best_survived": best_trial(curves) in finished,
        "optuna_steps": None if optuna_result is None else optuna_result[0],
        "optuna_best_survived": (
            None if optuna_result is None else best_trial(curves) in optuna_result[1]
        ),
        # The same run if the driver also counted early-stopped trials as finished.
        "maggy_steps_if_stopped_count": run_maggy(curves, args.es_min, count_stopped=True)[0],
    }
    if args.sweep_seeds:
        line["sweep_es_min"] = sweep(range(args.sweep_seeds), args.noise)
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
