"""One vocabulary: trial statuses, directions and the run-directory layout."""

import json
import os

import pytest

from maggy import layout
from maggy.results import build_result
from maggy.trial import TrialStatus, check_direction


def test_a_status_is_the_plain_word_in_json_tables_and_messages():
    records = [{"trial_id": "t0", "index": 0, "metric": 1.0, "status": TrialStatus.FINISHED},
               {"trial_id": "t1", "index": 1, "metric": None, "status": TrialStatus.FAILED}]
    assert json.dumps(records[1]["status"]) == '"failed"'
    assert f"{TrialStatus.EARLY_STOPPED}" == "early_stopped"
    table = build_result(records, "min", 1.0)["trials"]
    assert table.status.tolist() == ["finished", "failed"]
    assert all(type(s) is str for s in table.status)
    assert (table.status == "finished").tolist() == [True, False]


def test_one_direction_check_names_what_it_checked():
    assert check_direction("min") == "min"
    with pytest.raises(ValueError, match=r"direction in 'x.json' must be 'min' or 'max', got 'up'"):
        check_direction("up", name="direction in 'x.json'")


def test_runs_are_numbered_and_the_latest_is_found(tmp_path):
    experiment = layout.experiment_path(tmp_path, "demo")
    assert layout.latest_run(experiment) is None
    first = layout.new_run(experiment)
    (tmp_path / "demo" / "run_10").mkdir()
    (tmp_path / "demo" / "run_11.txt").write_text("not a run")
    assert os.path.basename(first) == "run_1"
    assert layout.latest_run(experiment) == layout.run_path(experiment, 10)
    assert os.path.basename(layout.new_run(experiment)) == "run_11"
    assert layout.journal_path(first) == os.path.join(first, "trials.jsonl")
