"""What maggy adds to trials that do nothing but sleep: makespan, hand-off gap, start-up.

N trials (one base trial plus N-1 feature ablations, LOCO) each sleep T seconds on S slots
(``num_executors=S``, ``es_policy="none"``, ``verbose=False``, pre-flight on as by default).
Each trial writes ``time.time()`` at its start and end to a file in a temporary folder; the
trial records say which slot ran it. Figures:

* ``makespan_s``: ``lagom()`` call to its return, ``ideal_s = ceil(N/S) * T``, ``ratio``.
* ``median_overhead_ms``: median gap between one trial's end and the next trial's start on
  the same slot (``p90_overhead_ms`` too).
* ``first_start_s``: ``lagom()`` call to the first trial's start.
* ``last_end_to_return_s``: last trial's end to ``lagom()``'s return, of which ``plot_s``
  draws effects.png (``ratio_without_plot`` leaves that out).

Measured three ways (one JSON line holds all three):

* ``existing_session_cold``: the SparkSession was started (``get_session(S, 2)``) before, and
  this is the first ``lagom()`` on it, so Spark's Python workers start (and import torch).
* ``existing_session_warm``: the next ``lagom()`` calls on the same session (median over
  ``--repeats`` runs): the Python workers of the first run are reused. This is the figure the
  goals are about (a notebook's second and later experiments).
* ``no_session``: a fresh interpreter (subprocess) where ``lagom()`` starts the embedded
  session itself, so the JVM start-up counts.
* ``connect_cold`` / ``connect_warm`` (with ``--connect``): the same on a Spark Connect session
  (``SparkSession.builder.remote("local[S]")`` with ``maggy.spark_conf()``), in a process of its
  own (a Connect client cannot share one with the classic session); compare them with
  ``existing_session_cold`` / ``existing_session_warm`` of the same run.
* ``user_session`` (first and later calls): a fresh interpreter creates its session the way a
  user does, ``SparkSession.builder.master("local[S]").getOrCreate()``, and then calls
  ``lagom()`` without ``spark=``: ``first`` is its first call (Spark's stock Python workers
  start and import torch, maggy and grpc), ``later`` the median of ``--repeats`` more calls.
  The issue-16 goals (first trial <= 1.5 s, last trial's end to return <= 0.15 s) are about
  this session. ``spark_first_job`` is Spark's own floor for ``first``: another fresh
  interpreter creates its session the same way and times its first (trivial) Python job;
  ``first_start_over_spark_floor`` compares the two.
* ``user_session_spark_conf``: the same, with the session built from ``maggy.spark_conf()``
  (``SparkSession.builder.master("local[S]").config(map=maggy.spark_conf())``), the
  documented way for notebooks and batch jobs: its workers fork from maggy's daemon, which
  imports pyspark from the installed package instead of Spark's ``pyspark.zip``.
* ``existing_session_after_idle`` (with ``--after-idle SECONDS``): one more ``lagom()`` after
  that long without a job. Spark retires Python workers idle for 60 s, so past a minute new
  workers are forked from the embedded session's daemon (which has torch imported already).

    python3 benchmarks/overhead.py [--trials 24] [--sleep 0.5] [--slots 2] [--repeats 3] [--after-idle 75]
        [--skip-no-session] [--skip-user-session] [--user-session-only [--with-spark-conf]] [--connect]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy import experiment  # noqa: E402
from trivial_study import make_study  # noqa: E402


def make_train_fn(sleep: float, stamps: str):
    def train(reporter):
        start = time.time()
        time.sleep(sleep)
        end = time.time()
        with open(os.path.join(stamps, f"{reporter.get_trial_id()}.json"), "w") as f:
            json.dump({"start": start, "end": end, "pid": os.getpid()}, f)
        return 0.0

    return train


class _TimePlot:
    """Times ``maggy.results.plot_effects`` (drawing effects.png after the trials) during a run."""

    def __enter__(self):
        import maggy.results

        self.seconds = 0.0
        self._module, self._original = maggy.results, getattr(maggy.results, "plot_effects", None)
        if self._original is not None:
            def timed(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return self._original(*args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - start

            self._module.plot_effects = timed
        return self

    def __exit__(self, *exc):
        if self._original is not None:
            self._module.plot_effects = self._original


def measure(trials: int, sleep: float, slots: int, spark=None) -> dict:
    """Runs one experiment and returns its timing figures."""
    with tempfile.TemporaryDirectory(prefix="maggy-bench-") as tmp, _TimePlot() as plot:
        stamps = os.path.join(tmp, "stamps")
        os.makedirs(stamps)
        study = make_study(trials)
        called = time.time()
        result = experiment.lagom(
            train_fn=make_train_fn(sleep, stamps), ablation_study=study, ablator="loco",
            name="overhead", direction="min", num_executors=slots, es_policy="none",
            verbose=False, experiment_dir=os.path.join(tmp, "exp"), spark=spark,
        )
        returned = time.time()
        times = {}
        for name in os.listdir(stamps):
            with open(os.path.join(stamps, name)) as f:
                times[name[: -len(".json")]] = json.load(f)
    rows = result["trials"]
    by_slot: dict[str, list] = {}
    for trial_id, executor, status in zip(rows["trial_id"], rows["executor"], rows["status"]):
        if status != "finished":
            raise RuntimeError(f"trial {trial_id} {status}: {rows.set_index('trial_id').loc[trial_id, 'error']}")
        by_slot.setdefault(executor, []).append(times[trial_id])
    gaps = []
    for stamps_of_slot in by_slot.values():
        stamps_of_slot.sort(key=lambda t: t["start"])
        gaps += [b["start"] - a["end"] for a, b in zip(stamps_of_slot, stamps_of_slot[1:])]
    gaps.sort()
    makespan = returned - called
    ideal = math.ceil(trials / slots) * sleep
    first_start = min(t["start"] for t in times.values())
    last_end = max(t["end"] for t in times.values())
    return {
        "makespan_s": round(makespan, 3),
        "ideal_s": ideal,
        "ratio": round(makespan / ideal, 4),
        "median_overhead_ms": round(1000 * statistics.median(gaps), 2) if gaps else None,
        "p90_overhead_ms": round(1000 * gaps[int(0.9 * (len(gaps) - 1))], 2) if gaps else None,
        "first_start_s": round(first_start - called, 3),
        "last_end_to_return_s": round(returned - last_end, 3),
        "plot_s": round(plot.seconds, 3),
        "ratio_without_plot": round((makespan - plot.seconds) / ideal, 4),
        "worker_pids": len({t["pid"] for t in times.values()}),
    }


def _median_run(runs: list[dict]) -> dict:
    """The run with the median makespan, plus the spread of the key figures."""
    ordered = sorted(runs, key=lambda r: r["makespan_s"])
    out = dict(ordered[len(ordered) // 2])
    out["runs"] = len(runs)
    out["ratio_all"] = [r["ratio"] for r in runs]
    out["ratio_without_plot_all"] = [r["ratio_without_plot"] for r in runs]
    out["median_overhead_ms_all"] = [r["median_overhead_ms"] for r in runs]
    out["first_start_s_all"] = [r["first_start_s"] for r in runs]
    return out


def measure_user_session(trials: int, sleep: float, slots: int, repeats: int, with_spark_conf: bool = False) -> dict:
    """First and later ``lagom()`` calls on a session created as a user creates one
    (``with_spark_conf``: with :func:`maggy.spark_conf`'s settings)."""
    from pyspark.sql import SparkSession

    # As in an activated virtual environment: Spark's workers run this interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    created = time.time()
    builder = SparkSession.builder.master(f"local[{slots}]")
    if with_spark_conf:
        import maggy

        builder = builder.config(map=maggy.spark_conf())
    builder.getOrCreate()
    session_s = time.time() - created
    first = measure(trials, sleep, slots)  # no spark=: lagom() finds the active session
    later = _median_run([measure(trials, sleep, slots) for _ in range(repeats)])
    created_by = "SparkSession.builder.master(...)" + (".config(map=maggy.spark_conf())" if with_spark_conf else "")
    return {"session_start_s": round(session_s, 3), "first": first, "later": later,
            "master": f"local[{slots}]", "created_by": created_by + ".getOrCreate()"}


def measure_spark_first_job(slots: int) -> dict:
    """Spark's own floor for ``user_session.first``: a fresh session's first Python job.

    A fresh interpreter creates its session as :func:`measure_user_session` does and runs one
    trivial Python job of ``slots`` tasks (no maggy, no torch): how long until its first task
    starts, and until it returns. That job forks its workers from Spark's daemon; maggy's job
    on such a local session forks them from maggy's (``maggy_settings_for_job``), so its first
    trial can start sooner than this.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = SparkSession.builder.master(f"local[{slots}]").getOrCreate()
    submitted = time.time()
    starts = spark.sparkContext.parallelize(range(slots), slots).mapPartitions(lambda _: [time.time()]).collect()
    returned = time.time()
    return {"first_task_start_s": round(min(starts) - submitted, 3), "job_s": round(returned - submitted, 3)}


def _child(flags: list) -> dict:
    """Runs this script in a fresh interpreter and returns the JSON it prints last."""
    child = subprocess.run([sys.executable, __file__, *flags], capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="warm runs on the existing session")
    parser.add_argument("--after-idle", type=float, default=0.0,
                        help="also measure one lagom() after this many idle seconds (0: skip)")
    parser.add_argument("--no-session-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-no-session", action="store_true", help="skip the fresh-interpreter run")
    parser.add_argument("--connect", action="store_true", help="also measure a Spark Connect session")
    parser.add_argument("--connect-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-user-session", action="store_true", help="skip the user-created session run")
    parser.add_argument("--spark-floor-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--user-session-only", action="store_true",
                        help="only the user-created session (first and later calls); prints its JSON")
    parser.add_argument("--with-spark-conf", action="store_true",
                        help="with --user-session-only: the user builds the session with maggy.spark_conf()")
    args = parser.parse_args()

    if args.no_session_only:  # child process: lagom() starts the embedded session itself
        print(json.dumps(measure(args.trials, args.sleep, args.slots)))
        return
    if args.connect_only:  # child process: a local Spark Connect server and its client
        import maggy
        from pyspark.sql import SparkSession

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        spark = SparkSession.builder.remote(f"local[{args.slots}]").config(map=maggy.spark_conf()).getOrCreate()
        cold = measure(args.trials, args.sleep, args.slots, spark)
        warm = _median_run([measure(args.trials, args.sleep, args.slots, spark) for _ in range(args.repeats)])
        print(json.dumps({"connect_cold": cold, "connect_warm": warm}))
        spark.stop()
        return
    if args.user_session_only:
        print(json.dumps(measure_user_session(args.trials, args.sleep, args.slots, args.repeats, args.with_spark_conf)))
        return
    if args.spark_floor_only:  # child process: Spark's own first job on a fresh user session
        print(json.dumps(measure_spark_first_job(args.slots)))
        return

    out = {"benchmark": "overhead", "trials": args.trials, "sleep_s": args.sleep, "slots": args.slots}
    common = ["--trials", str(args.trials), "--sleep", str(args.sleep), "--slots", str(args.slots)]
    # Fresh interpreters first, while this one has no JVM yet, so the children compete with nothing.
    if not args.skip_no_session:
        out["no_session"] = _child(["--no-session-only", *common])
    if not args.skip_user_session:
        out["user_session"] = _child(["--user-session-only", "--repeats", str(args.repeats), *common])
        floor = out["spark_first_job"] = _child(["--spark-floor-only", *common])
        out["user_session_spark_conf"] = _child(["--user-session-only", "--with-spark-conf", "--repeats",
                                                 str(args.repeats), *common])
        for key in ("user_session", "user_session_spark_conf"):
            out[key]["first_start_over_spark_floor"] = round(
                out[key]["first"]["first_start_s"] / floor["first_task_start_s"], 3)
    if args.connect:
        out.update(_child(["--connect-only", "--repeats", str(args.repeats), *common]))

    from maggy.core.spark import get_session

    spark, _ = get_session(args.slots, 2)
    out["existing_session_cold"] = measure(args.trials, args.sleep, args.slots, spark)
    out["existing_session_warm"] = _median_run(
        [measure(args.trials, args.sleep, args.slots, spark) for _ in range(args.repeats)]
    )
    if args.after_idle > 0:
        time.sleep(args.after_idle)
        out["existing_session_after_idle"] = dict(
            measure(args.trials, args.sleep, args.slots, spark), idle_s=args.after_idle)
    out["setup"] = (
        f"LOCO base + {args.trials - 1} feature trials, train_fn sleeps; session local[{args.slots},3]; "
        "warm = later lagom() calls on the same session (Python workers reused), median makespan of "
        f"{args.repeats}; cold = first lagom() after get_session(); no_session = fresh interpreter; "
        "user_session = fresh interpreter, SparkSession.builder.master(local[S]).getOrCreate(), then lagom()"
    )
    if args.connect:
        out["connect_over_classic"] = {
            kind: round(out[f"connect_{kind}"]["ratio"] / out[f"existing_session_{kind}"]["ratio"], 4)
            for kind in ("cold", "warm")
        }
    out["cpus"] = os.cpu_count()
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
