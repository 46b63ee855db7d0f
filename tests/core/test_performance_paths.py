"""Behaviour of the paths tuned for speed and scale (the timings live in benchmarks/)."""

import threading
import time

from maggy.core.driver import Driver
from maggy.core.reporter import MIN_HEARTBEAT_GAP, Reporter
from maggy.core.scheduler import TrialScheduler
from maggy.earlystop import AbstractEarlyStop, Decision
from maggy.trial import make_spec


class _Recorder(AbstractEarlyStop):
    """Never stops; remembers the history it was shown each time."""

    def __init__(self):
        self.seen = []

    def decide(self, history, finished, direction):
        self.seen.append(list(history))
        return Decision.CONTINUE


def test_the_policy_sees_every_value_in_order_and_the_record_keeps_every_pair():
    specs = [make_spec(0), make_spec(1, ablated_feature="f1")]
    policy = _Recorder()
    scheduler = TrialScheduler(specs, policy=policy, direction="min")
    executor = scheduler.register(1, 0, "h")
    scheduler.next(executor)  # the base trial, which the rule never judges
    other = scheduler.register(2, 0, "h")
    spec, attempt = scheduler.next(other)
    # Heartbeats carry one or several (step, metric) pairs, or none.
    scheduler.heartbeat(other, spec["trial_id"], attempt, 1, [(0, 3.0)], [])
    scheduler.heartbeat(other, spec["trial_id"], attempt, 2, [(1, 2.0), (2, 1.5)], [])
    scheduler.heartbeat(other, spec["trial_id"], attempt, 3, [], [])
    # Rule: the policy is consulted once per heartbeat with new values, and sees all of them so far.
    assert policy.seen == [[3.0], [3.0, 2.0, 1.5]]
    # Rule: the trial's record holds every pair, the ones sent with the result included.
    scheduler.next(other, {"trial_id": spec["trial_id"], "attempt": attempt, "status": "finished",
                           "metric": 1.0, "metrics": [(3, 1.0)]}, wait=0)
    record = next(r for r in scheduler.records() if r["trial_id"] == spec["trial_id"])
    assert record["history"] == [[0, 3.0], [1, 2.0], [2, 1.5], [3, 1.0]]
    assert record["steps"] == 4


def test_a_trials_log_file_is_closed_when_the_trial_ends(tmp_path):
    spec = make_spec(0)
    driver = Driver(TrialScheduler([spec]), train_fn=None, study=None)
    driver._attach(str(tmp_path))
    records = []
    driver._handle("log", (spec["trial_id"], [("first line", False)]), records)
    handle = driver._logs[spec["trial_id"]]
    driver._handle("ended", dict(spec, status="finished", metric=1.0, history=[], steps=0), records)
    # Rule: a trial's log stays open only while it runs, so a long experiment does not
    # hold one open file per trial it ran.
    assert handle.closed and spec["trial_id"] not in driver._logs
    assert (tmp_path / "logs" / f"{spec['trial_id']}.log").read_text() == "first line\n"
    # Rule: lines that still come for it are appended, not lost.
    driver._handle("log", (spec["trial_id"], [("late line", False)]), records)
    driver._logs.pop(spec["trial_id"]).close()
    assert (tmp_path / "logs" / f"{spec['trial_id']}.log").read_text() == "first line\nlate line\n"


def test_closing_a_reporter_does_not_wait_for_the_heartbeat_interval():
    sent = []
    reporter = Reporter(lambda seq, metrics, logs: sent.append(metrics) or False, hb_interval=3600).start()
    reporter.broadcast(0.5, step=0)
    closer = threading.Thread(target=reporter.close)
    closer.start()
    # Rule: close() wakes the heartbeat thread, which is waiting out an hour-long interval.
    closer.join(timeout=30)
    assert not closer.is_alive()


def test_heartbeats_are_spaced_out_and_still_carry_every_pair():
    sent, times = [], []

    def send(seq, metrics, logs):
        times.append(time.monotonic())
        sent.append(list(metrics))
        time.sleep(0.001)  # a call takes a while, and lets the trial run meanwhile
        return False

    reporter = Reporter(send, hb_interval=1.0).start()
    for step in range(300):  # a train_fn broadcasting every batch of ~1 ms
        reporter.broadcast(float(step), step=step)
        time.sleep(0.001)
    left, _ = reporter.close()
    # Rule: heartbeats are at least MIN_HEARTBEAT_GAP apart, so a train_fn broadcasting every
    # batch does not make one call per batch...
    assert len(sent) >= 1
    assert all(b - a >= MIN_HEARTBEAT_GAP * 0.99 for a, b in zip(times, times[1:]))
    # ...and every (step, metric) pair still reaches the driver exactly once, in order: with
    # the heartbeats, and what they did not carry with the final result.
    delivered = [pair for batch in sent for pair in batch] + left
    assert delivered == [(step, float(step)) for step in range(300)]


def test_metrics_nobody_reads_yet_travel_with_the_keep_alive_and_logs_still_go_at_once():
    sent = []

    def send(seq, metrics, logs):
        sent.append((time.monotonic(), list(metrics), list(logs)))
        return False

    # es_policy="none": the driver reads no running metrics, so they need not hurry.
    reporter = Reporter(send, hb_interval=0.5, metrics_wanted=False).start()
    for step in range(100):  # ~1.2 s of a train_fn broadcasting every ~12 ms
        reporter.broadcast(float(step), step=step)
        time.sleep(0.012)
    reporter.log("a line the user wants to see")
    logged = time.monotonic()
    deadline = logged + 30
    while not any(lines for _, _, lines in sent) and time.monotonic() < deadline:
        time.sleep(0.005)
    left, _ = reporter.close()
    # Rule: about one heartbeat per hb_interval carries the metrics (ten a second would
    # otherwise), and every pair still arrives once, in order.
    assert len([m for _, m, _ in sent if m]) <= 4, sent
    before_log = [t for t, _, _ in sent if t < logged]
    assert all(b - a >= 0.45 for a, b in zip(before_log, before_log[1:])), sent
    delivered = [pair for _, batch, _ in sent for pair in batch] + left
    assert delivered == [(step, float(step)) for step in range(100)]
    # Rule: a log line does not wait for the keep-alive.
    log_at = next(t for t, _, lines in sent if lines)
    assert log_at - logged < 0.3, sent


def test_a_keep_alive_heartbeat_does_not_hold_back_the_first_metric():
    sent, kept_alive = [], threading.Event()

    def send(seq, metrics, logs):
        sent.append((time.monotonic(), list(metrics)))
        if not metrics:
            kept_alive.set()
        return False

    reporter = Reporter(send, hb_interval=0.3).start()
    try:
        assert kept_alive.wait(timeout=30)  # the trial reported nothing for hb_interval: a keep-alive
        reporter.broadcast(0.5, step=0)
        deadline = time.monotonic() + 30
        while not any(m for _, m in sent) and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        reporter.close()
    alive_at = next(t for t, m in sent if not m)
    metric_at = next(t for t, m in sent if m)
    # Rule: the metric (and the stop decision its reply may carry) goes out at once, not a
    # whole heartbeat gap (0.1 s) after the keep-alive.
    assert metric_at - alive_at < MIN_HEARTBEAT_GAP, sent
