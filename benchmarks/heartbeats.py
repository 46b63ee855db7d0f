"""How many heartbeats the driver's real gRPC server handles per second, and how fast.

The driver side is the real thing: :func:`maggy.core.rpc.serve` with the token interceptor,
:class:`~maggy.core.servicer.DriverServicer` and a :class:`~maggy.core.scheduler.TrialScheduler`
holding one trial per simulated executor, the median rule consulted on every heartbeat (as
``lagom()``'s default ``es_policy="median"`` does), the handler pool sized as the driver sizes
it (``2 * executors + 16``), and a thread draining the scheduler's event queue like the
driver's controller.

The executors are simulated: ``--executors`` (64) clients, spread over ``--processes``
client processes (threads in each, so the clients do not starve the server of the
interpreter lock), each with its own :class:`~maggy.core.rpc.client.DriverClient`. Each
registers, takes a trial with ``Next``, then sends heartbeats with one (step, metric) pair
each, back to back, for ``--seconds`` (10). Afterwards the benchmark checks that the
scheduler holds every pair that was acknowledged, in order.

Before that, the same clients run for the same time against ``bare_grpc``: a plain
``grpc.server`` whose handlers only build the reply (no token check, no scheduler), the
floor any grpcio-based driver would start from on this machine.

Prints one JSON line: heartbeats handled per second, latency percentiles (ms, measured by
the clients around each call), CPU seconds the server and the clients spent per heartbeat,
the bare-gRPC figures and maggy's share of them, and the setup. On a small machine the
clients share the CPU with the server, so the rate is a lower bound of what the server can
do; ``server_cpu_ms_per_heartbeat`` says what it costs the driver alone.

Real executors send far fewer: a trial's reporter sends at most one heartbeat every
``maggy.core.reporter.MIN_HEARTBEAT_GAP`` (0.1 s), however often train_fn broadcasts, so 64
executors make at most ~640 a second.

With ``--tls`` the maggy server runs twice, in plain text and with TLS (a certificate made
for the run, pinned by the clients, as on a cluster), and the JSON gains ``tls``: the same
figures over TLS and their ratio to plain text.

    python3 benchmarks/heartbeats.py [--executors 64] [--processes 4] [--seconds 10] [--tls]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maggy.core.rpc import serve  # noqa: E402
from maggy.core.rpc.client import DriverClient, pb  # noqa: E402
from maggy.core.rpc.generated import maggy_pb2_grpc  # noqa: E402
from maggy.core.rpc.tls import make_certificate  # noqa: E402
from maggy.core.scheduler import TrialScheduler  # noqa: E402
from maggy.core.servicer import DriverServicer  # noqa: E402
from maggy.earlystop import make_policy  # noqa: E402
from maggy.trial import make_spec  # noqa: E402

TOKEN = "benchmark-token"


def _executor(address: str, partition: int, ready, go, deadline_box, out: list, cert_pem=None) -> None:
    """One simulated executor: register, take a trial, heartbeat until the deadline."""
    with DriverClient(address, TOKEN, tls_cert=cert_pem) as client:
        executor_id = client.register(partition, 0, "bench", os.getpid())
        trial = client.next(executor_id).trial
        ready.release()
        go.wait()
        deadline = deadline_box[0]
        latencies = []
        seq = 0
        clock = time.perf_counter
        while True:
            seq += 1
            start = clock()
            if start >= deadline:
                break
            client.heartbeat(executor_id, trial.trial_id, trial.attempt, seq, [(seq, 1.0 / seq)])
            latencies.append(clock() - start)
        out.append((trial.trial_id, latencies))


def _client_process(address: str, partitions: list, ready, go, start_at, seconds: float, results, cert_pem=None) -> None:
    """A process running one thread per simulated executor."""
    local_ready = threading.Semaphore(0)
    local_go = threading.Event()
    deadline_box = [0.0]
    out: list = []
    threads = [
        threading.Thread(target=_executor, args=(address, p, local_ready, local_go, deadline_box, out, cert_pem))
        for p in partitions
    ]
    for t in threads:
        t.start()
    for _ in threads:
        local_ready.acquire()
    ready.set()
    go.wait()
    # One wall-clock start for every process, translated to this process' perf_counter.
    delay = start_at.value - time.time()
    deadline_box[0] = time.perf_counter() + max(0.0, delay) + seconds
    if delay > 0:
        time.sleep(delay)
    cpu_start = time.process_time()
    local_go.set()
    for t in threads:
        t.join()
    results.put((time.process_time() - cpu_start, out))


def _percentile(ordered: list, q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _BareServicer(maggy_pb2_grpc.DriverServicer):
    """The floor: answers the same calls with no token check, scheduler or bookkeeping."""

    def Register(self, request, context):
        return pb.RegisterReply(executor_id=f"e{request.partition_id}")

    def Next(self, request, context):
        return pb.NextReply(trial=pb.Trial(trial_id=f"t{request.executor_id}", attempt=1, spec_json="{}"))

    def Heartbeat(self, request, context):
        return pb.HeartbeatReply(stop=False)


@contextlib.contextmanager
def _bare_serve(workers: int):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    maggy_pb2_grpc.add_DriverServicer_to_server(_BareServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield server, port
    finally:
        server.stop(grace=None)


def _drive(port: int, args, cert_pem=None) -> tuple[list, float, float]:
    """Runs the client processes against ``port``; returns (per-process results, server CPU s, client CPU s)."""
    ctx = mp.get_context("spawn")  # no fork of a process that runs gRPC threads
    groups = [list(range(i, args.executors, args.processes)) for i in range(args.processes)]
    groups = [g for g in groups if g]
    readies = [ctx.Event() for _ in groups]
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_client_process, args=(f"127.0.0.1:{port}", g, r, go, start_at, args.seconds, results, cert_pem))
        for g, r in zip(groups, readies)
    ]
    for p in procs:
        p.start()
    for r in readies:
        r.wait()
    start_at.value = time.time() + 0.2
    cpu_start = time.process_time()
    go.set()
    collected = [results.get() for _ in procs]
    server_cpu = time.process_time() - cpu_start
    for p in procs:
        p.join()
    return [out for _, out in collected], server_cpu, sum(cpu for cpu, _ in collected)


def _figures(outs: list, server_cpu: float, client_cpu: float, seconds: float) -> dict:
    latencies = sorted(lat for out in outs for _, lats in out for lat in lats)
    total = len(latencies)
    return {
        "heartbeats_per_s": round(total / seconds),
        "p50_ms": round(1000 * _percentile(latencies, 0.50), 2),
        "p99_ms": round(1000 * _percentile(latencies, 0.99), 2),
        "max_ms": round(1000 * latencies[-1], 2),
        "heartbeats": total,
        "server_cpu_ms_per_heartbeat": round(1000 * server_cpu / max(1, total), 3),
        "clients_cpu_ms_per_heartbeat": round(1000 * client_cpu / max(1, total), 3),
    }


def _maggy_run(args, workers: int, certificate=None) -> dict:
    """The clients against maggy's real server (TLS with ``certificate``); its figures."""
    specs = [make_spec(i, ablated_feature=None if i == 0 else f"f{i}") for i in range(args.executors)]
    scheduler = TrialScheduler(specs, policy=make_policy(args.policy, 3), direction="min")

    def drain():  # the driver's controller empties the event queue the same way
        while scheduler.events.get()[0] != "stop-benchmark":
            pass

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    with serve(DriverServicer(scheduler), TOKEN, max_workers=workers, certificate=certificate) as (_, port):
        cert_pem = certificate.cert_pem if certificate is not None else None
        outs, server_cpu, client_cpu = _drive(port, args, cert_pem)
        scheduler.events.put(("stop-benchmark", None))
        drainer.join()
        histories = {tid: list(r.history) for tid, r in scheduler._running.items()}
    # Every acknowledged heartbeat's (step, metric) pair is in the trial's history, in order.
    complete = all(
        histories.get(trial_id) == [[s, 1.0 / s] for s in range(1, len(lats) + 1)]
        for out in outs for trial_id, lats in out
    )
    figures = _figures(outs, server_cpu, client_cpu, args.seconds)
    figures["every_pair_recorded"] = complete
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", type=int, default=64)
    parser.add_argument("--processes", type=int, default=4, help="client processes (threads spread over them)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--policy", default="median", choices=["median", "none"])
    parser.add_argument("--workers", type=int, default=None,
                        help="server handler threads (default: as the driver sizes it)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare gRPC server run")
    parser.add_argument("--tls", action="store_true", help="also run maggy's server with TLS")
    args = parser.parse_args()
    workers = args.workers or 2 * args.executors + 16

    out: dict = {"benchmark": "heartbeats"}
    if not args.no_baseline:
        with _bare_serve(workers) as (_, port):
            bare = _figures(*_drive(port, args), args.seconds)

    out.update(_maggy_run(args, workers))
    if args.tls:
        secure = _maggy_run(args, workers, make_certificate())
        secure["vs_plain_text"] = round(secure["heartbeats_per_s"] / max(1, out["heartbeats_per_s"]), 3)
        out["tls"] = secure
    if not args.no_baseline:
        out["bare_grpc"] = bare
        out["vs_bare_grpc"] = round(out["heartbeats_per_s"] / max(1, bare["heartbeats_per_s"]), 3)
    out.update({
        "executors": args.executors,
        "client_processes": min(args.processes, args.executors),
        "seconds": args.seconds,
        "policy": args.policy,
        "server_workers": workers,
        "setup": "real serve()/DriverServicer/TrialScheduler (token interceptor, median rule consulted on "
                 "every heartbeat) on 127.0.0.1; clients: DriverClient threads spread over separate "
                 "processes on the same machine, one metric per heartbeat, back to back. bare_grpc: the "
                 "same clients against a grpc.server whose handlers only build the reply (the floor)",
        "cpus": os.cpu_count(),
    })
    print(json.dumps(out))


if __name__ == "__main__":
    main()
