"""What 1,000 trivial trials cost: per-trial overhead and the driver's memory, at growing N.

Runs LOCO studies of N trials (the base trial plus N-1 feature ablations) whose train_fn
broadcasts one metric and returns, on ``--slots`` slots of a SparkSession started beforehand
(after one warm-up ``lagom()``), for each N in ``--sizes`` (ascending, in one process). For
each N it reports:

* ``makespan_s`` and ``per_trial_ms = makespan * slots / N`` (slot time per trial);
* ``median_gap_ms``: median time between a trial's end and the next trial's start on the
  same slot (what the hand-off costs, as in overhead.py);
* ``driver_peak_rss_mb``: peak resident memory of the driver process (this Python
  interpreter; the JVM is not counted) while ``lagom()`` ran, sampled every 5 ms, above what
  it used just before; and ``rss_mb_per_1000_trials``. ``driver_run_peak_rss_mb``: the same
  while the trials ran (``Driver.run``: scheduler, gRPC server, journal, controller).
* ``seconds_in``: time spent in lagom()'s steps (pre-flight, the trial run, the per-trial
  TensorBoard writes made by the controller during the run, building, saving and plotting
  the result), found by wrapping those functions; what grows faster than N shows here.

Linear cost shows as flat ``per_trial_ms`` / ``median_gap_ms`` and memory proportional to N.

    python3 benchmarks/scale.py [--sizes 250,500,1000] [--slots 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy import experiment  # noqa: E402
from trivial_study import make_study  # noqa: E402


def make_train_fn(stamps: str):
    def train(reporter):
        start = time.time()
        reporter.broadcast(metric=1.0, step=0)
        end = time.time()
        with open(os.path.join(stamps, reporter.get_trial_id()), "w") as f:
            f.write(f"{start} {end}")
        return 1.0

    return train


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _PeakRss:
    """Samples this process' resident memory every 5 ms while the ``with`` block runs."""

    def __enter__(self):
        self.before = _rss_mb()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


class _Phases:
    """Wraps a few of lagom()'s steps to time them and sample memory during the trial run.

    Only observes (each wrapper calls the original); a step that does not exist in this
    version of maggy is skipped.
    """

    STEPS = [("maggy.experiment", "preflight"), ("maggy.results", "write_tensorboard"),
             ("maggy.results", "build_result"), ("maggy.results", "save_result"),
             ("maggy.results", "plot_effects")]

    def __enter__(self):
        import importlib

        from maggy.core.driver import Driver

        self.seconds: dict = {}
        self.run_peak_mb = 0.0
        self._undo = []
        for module_name, name in self.STEPS:
            module = importlib.import_module(module_name)
            if hasattr(module, name):
                self._wrap(module, name, getattr(module, name))
        original_run = Driver.run
        phases = self

        def run(driver, *args, **kwargs):
            with _PeakRss() as rss:
                result = phases._timed("driver_run", original_run, driver, *args, **kwargs)
            phases.run_peak_mb = rss.peak - rss.before
            return result

        Driver.run = run
        self._undo.append(lambda: setattr(Driver, "run", original_run))
        return self

    def _timed(self, name, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def _wrap(self, module, name, fn):
        setattr(module, name, lambda *a, **k: self._timed(name, fn, *a, **k))
        self._undo.append(lambda: setattr(module, name, fn))

    def __exit__(self, *exc):
        for undo in reversed(self._undo):
            undo()


def measure(trials: int, slots: int, spark) -> dict:
    study = make_study(trials)
    with tempfile.TemporaryDirectory(prefix="maggy-bench-") as tmp:
        stamps = os.path.join(tmp, "stamps")
        os.makedirs(stamps)
        with _PeakRss() as rss, _Phases() as phases:
            start = time.time()
            result = experiment.lagom(
                train_fn=make_train_fn(stamps), ablation_study=study, ablator="loco", name="scale",
                direction="min", num_executors=slots, es_policy="none", verbose=False,
                experiment_dir=os.path.join(tmp, "exp"), spark=spark,
            )
            makespan = time.time() - start
        times = {}
        for name in os.listdir(stamps):
            with open(os.path.join(stamps, name)) as f:
                times[name] = tuple(map(float, f.read().split()))
    rows = result["trials"]
    if set(rows["status"]) != {"finished"}:
        raise RuntimeError(f"not every trial finished: {rows['status'].value_counts().to_dict()}")
    by_slot: dict = {}
    for trial_id, executor in zip(rows["trial_id"], rows["executor"]):
        by_slot.setdefault(executor, []).append(times[trial_id])
    gaps = []
    for slot in by_slot.values():
        slot.sort()
        gaps += [b[0] - a[1] for a, b in zip(slot, slot[1:])]
    gaps.sort()
    grew = rss.peak - rss.before
    return {
        "trials": trials,
        "makespan_s": round(makespan, 3),
        "per_trial_ms": round(1000 * makespan * slots / trials, 2),
        "median_gap_ms": round(1000 * statistics.median(gaps), 2),
        "p90_gap_ms": round(1000 * gaps[int(0.9 * (len(gaps) - 1))], 2),
        "first_start_s": round(min(t[0] for t in times.values()) - start, 3),
        "driver_peak_rss_mb": round(grew, 1),
        "rss_mb_per_1000_trials": round(1000 * grew / trials, 1),
        "driver_rss_before_mb": round(rss.before, 1),
        "driver_run_peak_rss_mb": round(phases.run_peak_mb, 1),
        "seconds_in": {k: round(v, 3) for k, v in phases.seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,500,1000", help="comma-separated trial counts, ascending")
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))

    from maggy.core.spark import get_session

    spark, _ = get_session(args.slots, 2)
    measure(args.slots * 2, args.slots, spark)  # warm-up: Python workers start and import torch
    runs = [measure(n, args.slots, spark) for n in sizes]
    print(json.dumps({
        "benchmark": "scale",
        "slots": args.slots,
        "runs": runs,
        "setup": "LOCO base + N-1 feature trials; train_fn broadcasts one metric and returns; existing local "
                 "session after a warm-up lagom(); es_policy='none', verbose=False; memory = peak RSS of the "
                 "driver's Python process above its level before lagom() (JVM not counted)",
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
