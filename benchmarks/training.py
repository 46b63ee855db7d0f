"""maggy against a plain ``multiprocessing.Pool`` on the same 12 small trainings.

Each training fits an MLP (32 -> 128 -> 128 -> 1, one input fewer for a feature-ablation
trial) on 4,096 synthetic rows for ``--steps`` Adam steps of batch 64, with
``torch.set_num_threads(1)`` (``--threads``; 0 leaves the thread count alone), and reports
its loss ``--reports`` times (10; ``--reports 0`` reports every step). maggy runs
them as a LOCO study (the base trial plus 11 feature ablations) on ``--slots`` slots of a
SparkSession started beforehand, after one warm-up ``lagom()`` so its Python workers have
imported torch (as they have in any session after its first experiment). The baseline runs
the very same function for the 12 feature choices with ``multiprocessing.Pool(slots).map``
(workers forked from a fork server that preloaded torch), timed two ways: ``pool`` (the strict
baseline) starts the clock once each worker has trained once, so torch's first-use costs (about
2 s per process here) are paid outside the timing as in maggy's warm workers; ``pool_cold``
times creating the pool too, as a script using a fresh pool would see it.

Prints one JSON line: both makespans (median of ``--repeats`` runs, alternating), their
ratio, and the median of the per-repeat ratios (steadier when the machine's load drifts).

Threads: Spark starts its Python workers with ``OMP_NUM_THREADS`` set to ``spark.task.cpus``
(1 by default), so a trial uses one torch thread unless its train_fn asks for more; pool
workers start with torch's default (every core each). ``--threads 0`` shows what that does
on a machine with as many cores as slots.

    python3 benchmarks/training.py [--trials 12] [--steps 1500] [--slots 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy import experiment  # noqa: E402
from maggy.ablation import AblationStudy, MaggyDataset  # noqa: E402

FEATURES = 32
ROWS = 4096
BATCH = 64


class SyntheticDataset(MaggyDataset):
    """4,096 rows of 32 seeded random features and a noisy linear target."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(ROWS, FEATURES, generator=g)
        self.y = self.x @ torch.randn(FEATURES, 1, generator=g) + 0.1 * torch.randn(ROWS, 1, generator=g)
        self.columns = [f"f{i}" for i in range(FEATURES)]

    def ablate_feature(self, feature):
        keep = [i for i, c in enumerate(self.columns) if c != feature]
        self.x, self.columns = self.x[:, keep], [self.columns[i] for i in keep]

    @property
    def input_shape(self):
        return (self.x.shape[1],)

    def __len__(self):
        return ROWS

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def make_dataset(ablated_feature=None):
    dataset = SyntheticDataset()
    if ablated_feature:
        dataset.ablate_feature(ablated_feature)
    return dataset


def make_model(inputs: int = FEATURES) -> nn.Module:
    return nn.Sequential(nn.Linear(inputs, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 1))


def fit(model: nn.Module, dataset: SyntheticDataset, steps: int, threads: int, reports: int, report) -> float:
    """The training both runners execute: Adam, batch 64, fixed steps, ``reports`` reports (0: every step).

    ``threads``: ``torch.set_num_threads`` first; 0 leaves the process' setting as it is.
    """
    if threads:
        torch.set_num_threads(threads)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    every = max(1, steps // reports) if reports else 1
    loss = torch.tensor(0.0)
    for step in range(steps):
        index = torch.randint(0, ROWS, (BATCH,), generator=g)
        loss = nn.functional.mse_loss(model(dataset.x[index]), dataset.y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % every == 0:
            report(loss.item(), step)
    return loss.item()


def make_train_fn(steps: int, threads: int, reports: int):
    def train(model_function, dataset_function, reporter):
        def report(value, step):
            reporter.broadcast(metric=value, step=step)

        return fit(model_function(), dataset_function(), steps, threads, reports, report)

    return train


def pool_job(args) -> float:
    """One training in a pool worker, the same work as one maggy trial."""
    feature, steps, threads, reports = args
    torch.manual_seed(0)
    dataset = make_dataset(feature)
    # The same loss.item() calls as a maggy trial makes, with nowhere to send them.
    return fit(make_model(dataset.input_shape[0]), dataset, steps, threads, reports, lambda v, s: None)


def features_of(trials: int) -> list:
    return [None] + [f"f{i}" for i in range(trials - 1)]


def run_maggy(trials: int, steps: int, slots: int, spark, threads: int, reports: int) -> float:
    study = AblationStudy(dataset_generator=make_dataset)
    study.model.set_base_model_generator(make_model)
    study.features.include(*features_of(trials)[1:])
    with tempfile.TemporaryDirectory(prefix="maggy-bench-") as tmp:
        start = time.perf_counter()
        result = experiment.lagom(
            train_fn=make_train_fn(steps, threads, reports), ablation_study=study, ablator="loco", name="training",
            direction="min", num_executors=slots, es_policy="none", verbose=False,
            experiment_dir=os.path.join(tmp, "exp"), spark=spark,
        )
        elapsed = time.perf_counter() - start
    bad = result["trials"][result["trials"]["status"] != "finished"]
    if len(bad):
        raise RuntimeError(f"{len(bad)} trials did not finish: {bad['error'].iloc[0]}")
    return elapsed


def pool_context():
    """A forkserver that has imported torch and this script, started once.

    Plain fork is not safe here: the parent has run torch (OpenMP), Spark and gRPC threads,
    and a forked child can hang on a lock one of them held. Workers forked from a clean
    server that preloaded torch start as fast as fork and with torch imported, like Spark's
    reused Python workers.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["__main__", "torch"])
    with ctx.Pool(1) as pool:  # starts the fork server outside the timing
        pool.map(abs, [0])
    return ctx


def _warm_worker(ready) -> None:
    """Pool initializer: one tiny training, so torch's first-use costs are paid (as in maggy's warm workers)."""
    pool_job((None, 1, 0, 1))
    ready.release()


def run_pool(ctx, trials: int, steps: int, slots: int, threads: int, reports: int, warm: bool) -> float:
    """Makespan of the trainings on a new pool.

    ``warm``: the pool is created and its workers have trained once before the clock starts
    (the strict baseline); otherwise pool start and first-use costs are timed too.
    """
    jobs = [(f, steps, threads, reports) for f in features_of(trials)]
    if not warm:
        start = time.perf_counter()
        with ctx.Pool(slots) as pool:
            pool.map(pool_job, jobs, chunksize=1)
        return time.perf_counter() - start
    ready = ctx.Semaphore(0)
    with ctx.Pool(slots, initializer=_warm_worker, initargs=(ready,)) as pool:
        for _ in range(slots):
            ready.acquire()
        start = time.perf_counter()
        pool.map(pool_job, jobs, chunksize=1)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reports", type=int, default=10, help="broadcasts per trial; 0: every step")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads in each training; 0: leave torch's default")
    args = parser.parse_args()

    ctx = pool_context()
    from maggy.core.spark import get_session

    spark, _ = get_session(args.slots, 2)
    run_maggy(args.slots, 10, args.slots, spark, args.threads, 1)  # warm-up: Spark's Python workers import torch
    maggy_runs, pool_runs, cold_runs = [], [], []
    for _ in range(args.repeats):  # alternating, so a burst of load elsewhere hits all three
        common = (args.trials, args.steps, args.slots)
        pool_runs.append(run_pool(ctx, *common, args.threads, args.reports, warm=True))
        maggy_runs.append(run_maggy(*common, spark, args.threads, args.reports))
        cold_runs.append(run_pool(ctx, *common, args.threads, args.reports, warm=False))
    maggy_s, pool_s = statistics.median(maggy_runs), statistics.median(pool_runs)
    print(json.dumps({
        "benchmark": "training",
        "maggy_makespan_s": round(maggy_s, 3),
        "pool_makespan_s": round(pool_s, 3),
        "ratio": round(maggy_s / pool_s, 4),
        "ratio_paired_median": round(statistics.median(m / p for m, p in zip(maggy_runs, pool_runs)), 4),
        "maggy_runs_s": [round(t, 3) for t in maggy_runs],
        "pool_runs_s": [round(t, 3) for t in pool_runs],
        "pool_cold_makespan_s": round(statistics.median(cold_runs), 3),
        "ratio_vs_cold_pool": round(maggy_s / statistics.median(cold_runs), 4),
        "trials": args.trials,
        "steps": args.steps,
        "slots": args.slots,
        "threads": args.threads or "torch default",
        "setup": f"MLP 32-128-128-1, Adam, batch 64, torch.set_num_threads({args.threads or 'untouched'}), "
                 f"{args.reports or args.steps} broadcasts per trial; "
                 "maggy: lagom() on an existing local session after one warm-up lagom(); "
                 "baseline (pool_makespan_s): multiprocessing.Pool(slots) (forkserver, torch preloaded), "
                 "workers warmed by one tiny training before the clock starts, map(chunksize=1); "
                 "pool_cold: the same pool created inside the timing, without warm-up",
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
