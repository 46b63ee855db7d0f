"""Datasets bigger than the driver: driver memory, read time, projection, cache, streaming.

A synthetic catalog dataset (float32 label + 16 float32 features, random, so parquet does
not compress it: ~68 bytes a row) of each size in ``--sizes`` GB is written under ``--tmp``
and studied with a 5-trial feature study (base + 4 features, LOCO) on one slot, so all five
trials share one Python worker. Each study runs in its own driver process, which reports its
peak RSS (``ru_maxrss``, the Python driver process; the JVM is a separate process). Each trial
reports the time ``dataset_function()`` took and the bytes it read from storage (compressed
column chunks, from ``maggy.core.data.read_stats``). Modes:

* ``cache``: this branch, the default 1024 MB worker cache (sized up to the dataset here);
* ``nocache``: this branch, ``data_cache_mb=0``: every trial reads its own columns;
* ``broadcast``: today's path (``--baseline``, a tree of maggy before this change, e.g.
  ``git archive main | tar -x -C /tmp/maggy-baseline``): the driver reads the dataset into
  pandas and broadcasts it;
* ``streaming``: ``streaming=True``, one trial iterating the whole dataset in 4096-row batches
  while its Python worker's address space is limited (``RLIMIT_AS``) to what it had plus
  ``--stream-limit-mb``: the dataset is larger than what the worker may hold.

    python3 benchmarks/data.py [--sizes 0.5,1,2] [--broadcast-sizes 0.5,1] [--baseline /tmp/maggy-baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FEATURES = 16
ROW_BYTES = 4 * (FEATURES + 1)
GROUP_ROWS = 1 << 20


def write_dataset(root: str, gigabytes: float) -> tuple[str, int]:
    """The synthetic dataset as version 1 of "synthetic" in the catalog at ``root``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = int(gigabytes * 1e9 / ROW_BYTES)
    folder = os.path.join(root, "synthetic", "v1")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    names = ["y"] + [f"f{i}" for i in range(FEATURES)]
    with pq.ParquetWriter(os.path.join(folder, "data.parquet"), pa.schema([(n, pa.float32()) for n in names]),
                          compression="snappy") as writer:
        for start in range(0, rows, GROUP_ROWS):
            n = min(GROUP_ROWS, rows - start)
            writer.write_table(pa.table({name: rng.random(n, dtype=np.float32) for name in names}))
    return folder, rows


def train(dataset_function, reporter):
    """One trial: build the dataset (timed), note what the worker read, or stream it under a memory limit."""
    import resource

    out = os.environ["BENCH_OUT"]
    limit_mb = float(os.environ.get("BENCH_STREAM_LIMIT_MB", "0"))
    record = {"pid": os.getpid()}
    try:
        from maggy.core import data

        data.reset_read_stats()
    except ImportError:  # today's path has no maggy.core.data
        data = None
    start = time.perf_counter()
    dataset = dataset_function()
    record["build_s"] = time.perf_counter() - start
    if limit_mb:
        import pyarrow as pa
        import torch

        # jemalloc/mimalloc reserve address space far beyond what they use; the system
        # allocator keeps the address-space limit a limit on memory.
        pa.set_memory_pool(pa.system_memory_pool())
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/status") as f:
            vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + int(limit_mb * 2**20), hard))
        try:
            dataset.batch_size, dataset.shuffle_buffer = 4096, 100_000
            rows = 0
            for labels, features in torch.utils.data.DataLoader(dataset, batch_size=None):
                rows += len(labels)
            record.update(rows=rows, limit_bytes=int(limit_mb * 2**20), stream_s=time.perf_counter() - start)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    record["features"] = len(getattr(dataset, "feature_names", [])) or None
    if data is not None:
        reads = data.read_stats()
        record.update(read_bytes=sum(r["bytes"] for r in reads), reads=len(reads))
    record["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(os.path.join(out, f"{time.time():.6f}.json"), "w") as f:
        json.dump(record, f)
    return 0.0


def driver(catalog: str, mode: str, out: str) -> None:
    """Runs the study in this process (the measured driver) and prints its peak RSS."""
    import resource

    os.environ["MAGGY_DATASETS"] = catalog
    from pyspark import cloudpickle

    from maggy import experiment

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # executors cannot import this file
    from maggy.ablation import AblationStudy

    streaming = mode == "streaming"
    study = (AblationStudy("synthetic", 1, label_name="y", streaming=True) if streaming
             else AblationStudy("synthetic", 1, label_name="y"))
    if not streaming:
        study.features.include("f0", "f1", "f2", "f3")
    extra = {"data_cache_mb": 0} if mode == "nocache" else {}
    if mode == "cache":
        extra["data_cache_mb"] = 4096
    start = time.perf_counter()
    result = experiment.lagom(train_fn=train, ablation_study=study, name=f"data-{mode}", direction="min",
                              experiment_dir=os.path.join(out, "exp"), num_executors=1, es_policy="none",
                              verbose=False, **extra)
    print(json.dumps({"driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "lagom_s": time.perf_counter() - start, "failed": result["failed"],
                      "errors": [e for e in result["trials"]["error"].tolist() if e][:1]}))


def run(catalog: str, mode: str, tmp: str, pythonpath: str, limit_mb: float = 0) -> dict:
    out = os.path.join(tmp, f"out-{mode}-{time.time():.0f}")
    os.makedirs(out)
    env = dict(os.environ, PYTHONPATH=pythonpath, BENCH_OUT=out, PYSPARK_PYTHON=sys.executable,
               BENCH_STREAM_LIMIT_MB=str(limit_mb))
    code = f"import sys; sys.path.insert(0, {HERE!r}); import data; data.driver({catalog!r}, {mode!r}, {out!r})"
    # Run from the temporary folder: ``python -c`` puts the working directory first on sys.path,
    # which would shadow --baseline with a checkout's maggy.
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=3600, cwd=tmp)
    if done.returncode:
        raise RuntimeError(f"{mode} failed: {done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["trials"] = [json.load(open(os.path.join(out, f))) for f in sorted(os.listdir(out)) if f.endswith(".json")]
    shutil.rmtree(out, ignore_errors=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.5,1,2")
    parser.add_argument("--broadcast-sizes", default="0.5,1")
    parser.add_argument("--nocache-sizes", default="1")
    parser.add_argument("--stream-size", type=float, default=2.0)
    parser.add_argument("--stream-limit-mb", type=float, default=1024)
    parser.add_argument("--baseline", default="/tmp/maggy-baseline")
    parser.add_argument("--tmp", default="/tmp/maggy-data-bench")
    args = parser.parse_args()
    sizes = sorted({float(s) for s in args.sizes.split(",")} | {args.stream_size})
    try:
        for size in sizes:
            catalog = os.path.join(args.tmp, f"catalog-{size}")
            folder, rows = write_dataset(catalog, size)
            disk = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
            base = {"size_gb": size, "rows": rows, "disk_bytes": disk}
            modes = []
            if size in {float(s) for s in args.sizes.split(",")}:
                modes.append("cache")
            if size in {float(s) for s in args.nocache_sizes.split(",") if s}:
                modes.append("nocache")
            if size in {float(s) for s in args.broadcast_sizes.split(",") if s} and os.path.isdir(args.baseline):
                modes.append("broadcast")
            if size == args.stream_size:
                modes.append("streaming")
            for mode in modes:
                path = args.baseline if mode == "broadcast" else ROOT
                limit = args.stream_limit_mb if mode == "streaming" else 0
                print(json.dumps({**base, "mode": mode, **run(catalog, mode, args.tmp, path, limit)}), flush=True)
            shutil.rmtree(catalog, ignore_errors=True)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
