"""The trial table: hand-off, lost executors and their retries, early-stop wiring."""

import threading
import time

import pytest

from maggy.core.scheduler import SchedulerError, TrialScheduler
from maggy.earlystop import MedianStoppingRule
from maggy.trial import make_spec


def _specs(n):
    return [make_spec(i, ablated_feature=None if i == 0 else f"f{i}") for i in range(n)]


def _finish(scheduler, executor, spec, attempt, metric=1.0, status="finished"):
    return scheduler.next(executor, {"trial_id": spec["trial_id"], "attempt": attempt, "status": status, "metric": metric})


def test_trials_are_handed_out_in_declaration_order_base_first():
    scheduler = TrialScheduler(_specs(3))
    a, b = scheduler.register(0, 0, "h"), scheduler.register(1, 0, "h")
    first, second = scheduler.next(a), scheduler.next(b)
    assert [first[0]["index"], second[0]["index"]] == [0, 1]
    third = _finish(scheduler, a, *first)
    assert third[0]["index"] == 2


def test_next_blocks_until_a_lost_trial_comes_back():
    scheduler = TrialScheduler(_specs(1), max_trial_retries=1)
    a = scheduler.register(0, 0, "h")
    spec, attempt = scheduler.next(a)
    b = scheduler.register(1, 0, "h")
    got = []
    waiter = threading.Thread(target=lambda: got.append(scheduler.next(b)))
    waiter.start()
    time.sleep(0.2)
    # Rule: nothing pending but a trial still running -> the idle executor waits (no "done").
    assert got == [] and waiter.is_alive()
    # Spark restarts partition 0's task: the trial it ran is lost and handed to the waiter.
    scheduler.register(0, 1, "h")
    waiter.join(5)
    assert got and got[0][0]["trial_id"] == spec["trial_id"] and got[0][1] == 2


def test_a_trial_lost_more_often_than_allowed_fails_with_the_reason():
    scheduler = TrialScheduler(_specs(1), max_trial_retries=1)
    for attempt in range(2):
        executor = scheduler.register(0, attempt, "h")
        scheduler.next(executor, wait=1)
    scheduler.register(0, 2, "h")
    (record,) = scheduler.records()
    assert record["status"] == "failed"
    assert record["attempts"] == 2
    assert "lost 2 times" in record["error"] and "Spark restarted its task" in record["error"]
    assert scheduler.all_done()


def test_silent_trials_count_as_lost():
    scheduler = TrialScheduler(_specs(2), max_trial_retries=2)
    executor = scheduler.register(0, 0, "h")
    spec, _ = scheduler.next(executor)
    time.sleep(0.15)
    scheduler.check_timeouts(0.1)
    kinds = []
    while not scheduler.events.empty():
        kinds.append(scheduler.events.get()[0])
    assert "requeued" in kinds
    # The lost trial goes to the front of the queue.
    other = scheduler.register(1, 0, "h")
    assert scheduler.next(other)[0]["trial_id"] == spec["trial_id"]


def test_a_stale_executor_cannot_finish_a_reassigned_trial():
    scheduler = TrialScheduler(_specs(1), max_trial_retries=2)
    old = scheduler.register(0, 0, "h")
    spec, attempt = scheduler.next(old)
    scheduler.check_timeouts(-1)  # presumed lost
    new = scheduler.register(1, 0, "h")
    _, attempt2 = scheduler.next(new)
    with pytest.raises(SchedulerError) as info:
        _finish(scheduler, old, spec, attempt)
    assert info.value.code == "FAILED_PRECONDITION"
    assert _finish(scheduler, new, spec, attempt2, metric=3.0) is None
    assert scheduler.records()[0]["metric"] == 3.0


def test_heartbeats_reach_the_median_rule_and_the_base_trial_is_never_stopped():
    specs = _specs(3)
    scheduler = TrialScheduler(specs, policy=MedianStoppingRule(min_finished=1), direction="min",
                               finished_histories=[[1.0, 1.0, 1.0]])
    a, b = scheduler.register(0, 0, "h"), scheduler.register(1, 0, "h")
    (base, base_attempt), (other, other_attempt) = scheduler.next(a), scheduler.next(b)
    # Both report a metric far worse than the finished trial's running average.
    assert scheduler.heartbeat(a, base["trial_id"], base_attempt, 1, [(0, 9.0)], []) is False
    assert scheduler.heartbeat(b, other["trial_id"], other_attempt, 1, [(0, 9.0)], []) is True
    # The flag stays set on later heartbeats.
    assert scheduler.heartbeat(b, other["trial_id"], other_attempt, 2, [], []) is True


def test_fail_remaining_ends_pending_and_running_trials():
    scheduler = TrialScheduler(_specs(3))
    executor = scheduler.register(0, 0, "h")
    scheduler.next(executor)
    scheduler.fail_remaining("the Spark job failed: boom")
    records = scheduler.records()
    assert len(records) == 3 and {r["status"] for r in records} == {"failed"}
    assert all("boom" in r["error"] for r in records)


def test_base_rule_compares_at_the_same_report_and_catches_up_with_the_base():
    from maggy.earlystop import BaseRelativeRule

    scheduler = TrialScheduler(_specs(2), policy=BaseRelativeRule(margin=0.25, patience=1), direction="min")
    a, b = scheduler.register(0, 0, "h"), scheduler.register(1, 0, "h")
    (base, base_attempt), (trial, attempt) = scheduler.next(a), scheduler.next(b)
    # Rule: a trial ahead of its base cannot be compared yet; it keeps running.
    assert scheduler.heartbeat(b, trial["trial_id"], attempt, 1, [(0, 2.0)], []) is False
    # Rule: the base trial is never stopped; once it reports that step, the trailing trial is
    # stopped right away (its next heartbeat reply carries the flag), 100% behind the base.
    assert scheduler.heartbeat(a, base["trial_id"], base_attempt, 1, [(0, 1.0)], []) is False
    assert scheduler.heartbeat(b, trial["trial_id"], attempt, 2, [], []) is True
    result = {"trial_id": trial["trial_id"], "attempt": attempt, "status": "early_stopped", "metric": 2.0}
    scheduler.next(b, result, wait=0)
    done = {r["trial_id"]: r for r in scheduler.records()}[trial["trial_id"]]
    # The record says where it stopped and how far behind the base it was.
    assert (done["status"], done["stop_step"], done["stop_base_gap"]) == ("early_stopped", 0, 1.0)


def test_a_holding_scheduler_keeps_executors_until_closed_and_takes_new_trials():
    scheduler = TrialScheduler(_specs(1), hold_executors=True)
    a = scheduler.register(0, 0, "h")
    spec, attempt = scheduler.next(a)
    # Rule: with every trial done, a holding scheduler hands out "nothing yet", not "done".
    assert _finish_and_wait(scheduler, a, spec, attempt) is None
    assert scheduler.all_done() and not scheduler.is_over()
    # Rule: trials added at run time are handed out after those pending; the total grows.
    extra = make_spec(1, ablated_feature="f1", repeat=1)
    scheduler.add([extra])
    assert scheduler.total == 2 and not scheduler.all_done()
    assert scheduler.next(a)[0]["trial_id"] == extra["trial_id"]
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add([extra])
    scheduler.close()
    assert scheduler.is_over()
    with pytest.raises(ValueError, match="closed"):
        scheduler.add([make_spec(2, ablated_feature="f2")])


def _finish_and_wait(scheduler, executor, spec, attempt):
    result = {"trial_id": spec["trial_id"], "attempt": attempt, "status": "finished", "metric": 1.0}
    return scheduler.next(executor, result, wait=0.1)
