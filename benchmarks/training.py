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

Paired mode (``--paired``, issue 16): a fresh interpreter creates its session the way a user
does (``SparkSession.builder.master("local[2]").getOrCreate()``; ``--session spark-conf`` builds
it with ``maggy.spark_conf()``, ``--session embedded`` uses maggy's own session instead) and runs the same trainings alternately as a maggy experiment
and in ``Pool(2)``, ``--repeats`` + 1 rounds in one sitting. Round 0 is the first call on both
sides (Spark's workers start; a new pool, not warmed); later rounds reuse Spark's workers and
warm a new pool before the clock. Each trial times its own body (building dataset and model,
then training) with ``perf_counter`` and its CPU with ``thread_time``. Figures per round: the
mean body time on each side and their ratio, the same for the bodies' own CPU seconds
(``body_cpu_ratio``: a wall-clock ratio above the CPU ratio means the bodies waited for a CPU
while something else ran), and on Linux how long a body waited for its CPU and how many
times it was scheduled (``/proc/thread-self/schedstat``; each preemption is one more). For
maggy also the framework CPU per trial: the CPU of the driver, the JVM and Spark's Python
workers (read from ``/proc``, see ``proc_cpu.py``) during ``lagom()``, less the trial
bodies' own CPU, and the part of it the JVM's JIT compilers and garbage collector took.
Over the later rounds: the median ratio, and the geometric mean with its 95% t-interval
(``[mean, low, high]``), of both ratios; and the same rounds in four parts, in order
(``later_by_quarter``), because a session the user built starts a fresh JVM whose compiling
and heap sizing take CPU from the trials over its first few dozen jobs.

Many short rounds narrow the interval fastest. The development VM's speed drifts by ±15%
in episodes of 10-20 s (one training timed back to back: lag-1 autocorrelation 0.76 at 2.3 s),
so single rounds disagree by ±10% whatever their length. Rounds of 4 trainings a side
(``--trials 4``, ~8.5 s) take a third of the time of rounds of 12, and 60 of them (~9 minutes)
give a 95% interval of about ±4%:

    python3 benchmarks/training.py --paired [--session user|spark-conf|embedded] [--repeats 3]
    python3 benchmarks/training.py --paired --trials 4 --repeats 60 --session user
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy import experiment  # noqa: E402
import proc_cpu  # noqa: E402
from maggy.ablation import AblationStudy, MaggyDataset  # noqa: E402
from maggy.statistics import paired_stats  # noqa: E402

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


def _schedstat():
    """``[ns on a CPU, ns runnable but waiting for one, timeslices]`` of this thread, or None off Linux."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return None


def _body_clock():
    """Starts timing a trial body; returns the function that stops it and returns its figures.

    ``body_s`` (wall) and ``body_cpu_s`` (this thread's CPU); on Linux also ``body_wait_s``,
    the time the body was ready to run but another thread held its CPU, and ``body_slices``,
    how many times it was scheduled (each preemption starts a new slice).
    """
    start, cpu, sched = time.perf_counter(), time.thread_time(), _schedstat()

    def stop() -> dict:
        figures = {"body_s": time.perf_counter() - start, "body_cpu_s": time.thread_time() - cpu}
        end = _schedstat()
        if sched is not None and end is not None:
            figures["body_wait_s"] = (end[1] - sched[1]) / 1e9
            figures["body_slices"] = end[2] - sched[2]
        return figures

    return stop


def _body_means(bodies: list) -> dict:
    """Means over the bodies of one run: ``body_mean_s``, ``body_cpu_mean_s`` and, on Linux, wait and slices."""
    means = {"body_mean_s": round(statistics.mean(b["body_s"] for b in bodies), 4),
             "body_cpu_mean_s": round(statistics.mean(b["body_cpu_s"] for b in bodies), 4)}
    if all("body_wait_s" in b for b in bodies):
        means["body_wait_mean_s"] = round(statistics.mean(b["body_wait_s"] for b in bodies), 4)
        means["body_slices_mean"] = round(statistics.mean(b["body_slices"] for b in bodies), 1)
    return means


def timed_pool_job(args) -> dict:
    """:func:`pool_job`, timing its body as a maggy trial times its own."""
    stop = _body_clock()
    pool_job(args)
    return stop()


def make_timed_train_fn(steps: int, threads: int, reports: int, stamps: str):
    """The train_fn of :func:`make_train_fn`, writing its body's wall and CPU seconds to ``stamps``."""
    def train(model_function, dataset_function, reporter):
        stop = _body_clock()

        def report(value, step):
            reporter.broadcast(metric=value, step=step)

        dataset = dataset_function()
        loss = fit(model_function(), dataset, steps, threads, reports, report)
        with open(os.path.join(stamps, f"{reporter.get_trial_id()}.json"), "w") as f:
            json.dump(stop(), f)
        return loss

    return train


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


def run_maggy_timed(trials: int, steps: int, slots: int, spark, threads: int, reports: int) -> dict:
    """One maggy run: makespan, the trials' bodies and the framework CPU around them."""
    study = AblationStudy(dataset_generator=make_dataset)
    study.model.set_base_model_generator(make_model)
    study.features.include(*features_of(trials)[1:])
    with tempfile.TemporaryDirectory(prefix="maggy-bench-") as tmp:
        stamps = os.path.join(tmp, "stamps")
        os.makedirs(stamps)
        before, jvm_before = proc_cpu.framework_tree_cpu(), proc_cpu.jvm_thread_cpu()
        start = time.perf_counter()
        result = experiment.lagom(
            train_fn=make_timed_train_fn(steps, threads, reports, stamps), ablation_study=study, ablator="loco",
            name="training", direction="min", num_executors=slots, es_policy="none", verbose=False,
            experiment_dir=os.path.join(tmp, "exp"), spark=spark,
        )
        elapsed = time.perf_counter() - start
        _wait_for_job_end(spark)  # it ends after lagom() returns: its CPU counts here, not in the pool's round
        cpu = proc_cpu.delta(before, proc_cpu.framework_tree_cpu())
        jvm = proc_cpu.jvm_delta(jvm_before, proc_cpu.jvm_thread_cpu())
        bodies = []
        for name in os.listdir(stamps):
            with open(os.path.join(stamps, name)) as f:
                bodies.append(json.load(f))
    if len(bodies) != trials or (result["trials"]["status"] != "finished").any():
        raise RuntimeError(f"only {len(bodies)} of {trials} trials finished")
    body_cpu = sum(b["body_cpu_s"] for b in bodies)
    return {
        "makespan_s": round(elapsed, 3),
        **_body_means(bodies),
        "cpu_s": cpu,
        # The JVM's compilers and collector over the whole run; "exited": threads that ended
        # during it, mostly compiler threads HotSpot stopped (not counted in "jit").
        "jvm_cpu_s": {k: jvm[k] for k in ("jit", "gc", "exited")},
        "framework_cpu_per_trial_s": round((cpu["total"] - body_cpu) / trials, 3),
    }


def _wait_for_job_end(spark) -> None:
    """Waits until maggy's job on ``spark`` (or the active session) has ended."""
    from pyspark.sql import SparkSession

    from maggy.core.job_end import wait_for_job_end

    session = spark or SparkSession.getActiveSession()
    if session is not None:
        wait_for_job_end(session.sparkContext)


def run_pool_timed(ctx, trials: int, steps: int, slots: int, threads: int, reports: int, warm: bool) -> dict:
    """One pool run (see :func:`run_pool`), with the mean body time of its trainings."""
    jobs = [(f, steps, threads, reports) for f in features_of(trials)]
    if warm:
        ready = ctx.Semaphore(0)
        pool = ctx.Pool(slots, initializer=_warm_worker, initargs=(ready,))
        for _ in range(slots):
            ready.acquire()
    start = time.perf_counter()
    if not warm:
        pool = ctx.Pool(slots)
    with pool:
        bodies = pool.map(timed_pool_job, jobs, chunksize=1)
        elapsed = time.perf_counter() - start
    return {"makespan_s": round(elapsed, 3), **_body_means(bodies)}


def _geometric_mean_interval(ratios: list) -> list:
    """Geometric mean of ``ratios`` with its 95% t-interval (on the logs): ``[mean, low, high]``."""
    logs = paired_stats([math.log(r) for r in ratios], wilcoxon=False)
    return [round(math.exp(x), 4) for x in (logs.mean_delta, logs.ci_low, logs.ci_high)]


def _by_quarter(later: list) -> Optional[list]:
    """The later rounds in four consecutive parts: each part's geometric-mean body ratio and median framework CPU per trial.

    A session the user built starts a fresh JVM, which keeps compiling (C2) and sizing its heap
    (G1 concurrent cycles) over its first few dozen jobs, on the cores the trials use; the
    parts show how the gap closes as it warms up. None with fewer than 8 later rounds.
    """
    if len(later) < 8:
        return None
    size = len(later) / 4
    parts = [later[round(i * size):round((i + 1) * size)] for i in range(4)]
    return [{
        "rounds": [round(i * size) + 1, round((i + 1) * size)],
        "body_ratio_geomean": round(statistics.geometric_mean(r["body_ratio"] for r in part), 4),
        "framework_cpu_per_trial_s_median": round(statistics.median(
            r["maggy"]["framework_cpu_per_trial_s"] for r in part), 3),
        "jvm_jit_gc_cpu_s_per_run_mean": round(statistics.mean(
            r["maggy"]["jvm_cpu_s"]["jit"] + r["maggy"]["jvm_cpu_s"]["gc"] for r in part), 3),
        "jvm_exited_threads_cpu_s_per_run_mean": round(statistics.mean(
            r["maggy"]["jvm_cpu_s"]["exited"] for r in part), 3),
    } for i, part in enumerate(parts)]


def _side_means(rounds: list, key: str) -> Optional[dict]:
    """``{"maggy": mean, "pool": mean}`` of ``key`` over the rounds, or None if a round lacks it."""
    if not rounds or not all(key in r[side] for r in rounds for side in ("maggy", "pool")):
        return None
    return {side: round(statistics.mean(r[side][key] for r in rounds), 4) for side in ("maggy", "pool")}


def paired(args) -> dict:
    """The paired rounds (see the module docstring), in this interpreter."""
    ctx = pool_context()
    if args.session in ("user", "spark-conf"):
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as in an activated venv
        builder = SparkSession.builder.master(f"local[{args.slots}]")
        if args.session == "spark-conf":
            import maggy

            builder = builder.config(map=maggy.spark_conf())
        builder.getOrCreate()
        spark = None  # lagom() finds the active session, as in a notebook
    else:
        from maggy.core.spark import get_session

        spark, _ = get_session(args.slots, 2)
    common = (args.trials, args.steps, args.slots)
    rounds = []
    for i in range(args.repeats + 1):
        runs = {}
        # Alternate who goes first, so a drift in load elsewhere hits both sides alike.
        for side in (("maggy", "pool") if i % 2 == 0 else ("pool", "maggy")):
            if side == "maggy":
                runs[side] = run_maggy_timed(*common, spark, args.threads, args.reports)
            else:
                runs[side] = run_pool_timed(ctx, *common, args.threads, args.reports, warm=i > 0)
        runs["body_ratio"] = round(runs["maggy"]["body_mean_s"] / runs["pool"]["body_mean_s"], 4)
        runs["body_cpu_ratio"] = round(runs["maggy"]["body_cpu_mean_s"] / runs["pool"]["body_cpu_mean_s"], 4)
        runs["makespan_ratio"] = round(runs["maggy"]["makespan_s"] / runs["pool"]["makespan_s"], 4)
        rounds.append(runs)
    later = rounds[1:]
    body_ratio_ci = _geometric_mean_interval([r["body_ratio"] for r in later]) if len(later) >= 2 else None
    return {
        "benchmark": "training-paired",
        "session": args.session,
        "first_call": rounds[0],
        "later_body_ratio_median": round(statistics.median(r["body_ratio"] for r in later), 4) if later else None,
        # The later rounds' typical ratio and its 95% interval: "within 3%" holds if the high end is <= 1.03.
        "later_body_ratio_geomean_ci95": body_ratio_ci,
        # The same for the bodies' own CPU seconds: above 1 if a body needs more CPU under maggy,
        # where a wall-clock ratio above a CPU ratio of 1 means it waited for the CPU instead.
        "later_body_cpu_ratio_geomean_ci95": _geometric_mean_interval([r["body_cpu_ratio"] for r in later])
        if len(later) >= 2 else None,
        # How long a body waited for a CPU, and how often it was scheduled, on each side.
        "later_body_wait_s_mean": _side_means(later, "body_wait_mean_s"),
        "later_body_slices_mean": _side_means(later, "body_slices_mean"),
        # The later rounds in four parts, in order (the JVM's warm-up; see _by_quarter).
        "later_by_quarter": _by_quarter(later),
        "later_makespan_ratio_median": round(statistics.median(r["makespan_ratio"] for r in later), 4)
        if later else None,
        "later_framework_cpu_per_trial_s_median": round(statistics.median(
            r["maggy"]["framework_cpu_per_trial_s"] for r in later), 3) if later else None,
        "later_rounds": later,
        "trials": args.trials, "steps": args.steps, "slots": args.slots, "threads": args.threads,
        "torch": torch.__version__, "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reports", type=int, default=10, help="broadcasts per trial; 0: every step")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads in each training; 0: leave torch's default")
    parser.add_argument("--paired", action="store_true",
                        help="paired body timing and framework CPU in a fresh interpreter (see above)")
    parser.add_argument("--session", choices=("user", "spark-conf", "embedded"), default="user",
                        help="--paired: a session created as a user does (with maggy.spark_conf()), or maggy's embedded one")
    parser.add_argument("--paired-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.paired_child:
        print(json.dumps(paired(args)))
        return
    if args.paired:  # a fresh interpreter, so its first lagom() is a real first call
        import subprocess

        flags = [a for a in sys.argv[1:] if a != "--paired"]
        child = subprocess.run([sys.executable, __file__, "--paired-child", *flags],
                               stdout=subprocess.PIPE, text=True, check=True)
        print(child.stdout.strip().splitlines()[-1])
        return

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
