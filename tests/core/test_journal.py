"""The trial journal: durable appends, tolerant reads."""

import json
import math
import threading

import pytest

from maggy.core.journal import Journal, read_journal


def _record(i, **extra):
    return {"trial_id": f"t{i}", "index": i, "status": "finished", "metric": 0.5 + i,
            "history": [[0, 1.0], [1, 0.5 + i]], **extra}


def test_round_trip_keeps_order_and_non_finite_values(tmp_path):
    path = tmp_path / "run_1" / "trials.jsonl"  # parent folders are created
    journal = Journal(path)
    records = [_record(0), _record(1, metric=math.nan), _record(2, metric=math.inf)]
    for record in records:
        journal.append(record)

    got = Journal.read(path)
    assert [r["trial_id"] for r in got] == ["t0", "t1", "t2"]
    # NaN and inf survive the round trip (Python's json writes NaN / Infinity).
    assert math.isnan(got[1]["metric"]) and got[2]["metric"] == math.inf
    assert got[0] == records[0]


def test_each_append_is_one_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    Journal(path).append({"error": "Traceback\n  line 1\nValueError: x"})
    assert path.read_text().count("\n") == 1


def test_cut_off_last_line_is_ignored_with_warning(tmp_path):
    path = tmp_path / "trials.jsonl"
    Journal(path).append(_record(0))
    with open(path, "a") as f:
        f.write('{"trial_id": "t1", "metr')  # crash mid-write
    with pytest.warns(UserWarning, match=r"line 2 is incomplete"):
        records = read_journal(path)
    assert [r["trial_id"] for r in records] == ["t0"]


def test_append_after_cut_off_line_starts_a_new_line(tmp_path):
    # A resumed run appends after a crash: the new record must not be glued to the broken one.
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(_record(0)) + '\n{"trial_id": "t1", "me')
    Journal(path).append(_record(2))
    with pytest.warns(UserWarning, match=r"line 2 is not a JSON object"):
        records = read_journal(path)
    assert [r["trial_id"] for r in records] == ["t0", "t2"]


def test_invalid_lines_in_the_middle_are_skipped(tmp_path):
    path = tmp_path / "trials.jsonl"
    lines = [json.dumps(_record(0)), "not json", "[1, 2]", "", json.dumps(_record(1))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning) as caught:
        records = read_journal(path)
    assert [r["trial_id"] for r in records] == ["t0", "t1"]
    # The blank line is skipped silently; the other two are named by number.
    assert sorted(str(w.message).split("line ")[1][0] for w in caught) == ["2", "3"]


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_journal(tmp_path / "nope.jsonl")


def test_append_rejects_non_dict(tmp_path):
    with pytest.raises(TypeError, match="record must be a dict"):
        Journal(tmp_path / "j.jsonl").append([1, 2])


def test_values_json_cannot_hold_are_converted(tmp_path):
    np = pytest.importorskip("numpy")
    path = tmp_path / "trials.jsonl"
    Journal(path).append({"metric": np.float32(0.25), "steps": np.int64(3), "tags": {"a"},
                          "where": tmp_path})
    (record,) = read_journal(path)
    assert record == {"metric": 0.25, "steps": 3, "tags": ["a"], "where": str(tmp_path)}


def test_concurrent_appends_produce_valid_lines(tmp_path):
    path = tmp_path / "trials.jsonl"
    journal = Journal(path)
    # Long records make interleaved writes likely without the lock.
    payload = "x" * 5000

    def write(thread):
        for i in range(25):
            journal.append({"trial_id": f"{thread}-{i}", "payload": payload})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    lines = path.read_text().splitlines()
    assert len(lines) == 200
    ids = {json.loads(line)["trial_id"] for line in lines}  # every line parses
    assert len(ids) == 200
