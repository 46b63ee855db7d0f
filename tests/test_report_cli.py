"""`python -m maggy report <dir>` on a hand-written, partly finished experiment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def spec(index, trial_id, feature=None, layers=None, label=None):
    return {"trial_id": trial_id, "index": index, "ablated_feature": feature,
            "ablated_layers": layers, "layer_label": label, "custom_model": None,
            "infer_activation": False, "repeat": 0, "seed": 0}


SPECS = [
    spec(0, "base0"),
    spec(1, "sibsp1", feature="sibsp"),
    spec(2, "fare2", feature="fare"),
    spec(3, "parch3", feature="parch"),
    spec(4, "l45x4", layers=[4, 5], label="[4, 5]"),
    spec(5, "l2xx5", layers=[2], label="2"),
]


def record(s, metric, status="finished", steps=3, error=None):
    return {**s, "status": status, "metric": metric,
            "history": [[i, metric + 0.1 * (steps - 1 - i)] for i in range(steps)],
            "steps": steps, "duration_s": 12.0, "executor": "localhost:0", "error": error,
            "attempts": 1}


def run_report(path, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "maggy", "report", str(path), *args],
        capture_output=True, text=True, env=env, cwd=path if path.is_dir() else None,
        timeout=120,
    )


@pytest.fixture
def experiment(tmp_path):
    """run_2 (the latest) has 4 of 6 trials journaled and a 5th cut off mid-write."""
    exp = tmp_path / "Titanic-LOCO"
    (exp / "run_1").mkdir(parents=True)
    (exp / "run_1" / "trials.jsonl").write_text("")  # an older, empty run
    run = exp / "run_2"
    run.mkdir()
    config = {"name": "Titanic-LOCO", "direction": "min", "ablator": "loco", "es_policy": "median",
              "start_time": 1_700_000_000.0, "end_time": 1_700_000_051.0, "trials": SPECS}
    (run / "config.json").write_text(json.dumps(config))
    lines = [
        record(SPECS[0], 0.6500),
        record(SPECS[1], 0.5780),
        record(SPECS[3], 0.9000, status="early_stopped", steps=1),
        record(SPECS[4], 0.7479),
    ]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    text += json.dumps(record(SPECS[2], 0.64))[:40]  # the driver died while writing this one
    (run / "trials.jsonl").write_text(text)
    (run / "effects.png").write_bytes(b"stale")
    return exp


def test_report_on_partial_experiment(experiment):
    proc = run_report(experiment)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    run = experiment / "run_2"
    # It says which run it read: the latest run_N.
    assert f"Reading run {run}" in out
    # The cut-off line is reported, not fatal.
    assert "line 5 is incomplete" in out
    # Missing trial specs are listed by id and component.
    assert "4 of 6 trials have results; missing: fare2 (feature fare), l2xx5 (layer 2)" in out
    # The summary, with the job time from config.json's timestamps.
    assert "------ LOCO Results ------" in out
    assert ('BEST Config Excludes {"ablated_feature": "sibsp", "ablated_layer": "None"} '
            "--- metric 0.5780") in out
    assert ('WORST Config Excludes {"ablated_feature": "None", "ablated_layer": "[4, 5]"} '
            "--- metric 0.7479") in out
    assert "AVERAGE metric -- 0.6586" in out  # (0.65 + 0.578 + 0.7479) / 3
    assert "Total Job Time 0 hours, 0 minutes, 51 seconds" in out
    assert "4 trials: 3 finished, 1 early stopped, 0 failed" in out
    # The trial table, one row per journaled trial.
    header = next(line for line in out.splitlines() if line.lstrip().startswith("trial_id"))
    assert header.split() == ["trial_id", "ablated_feature", "ablated_layers", "custom_model", "removed",
                              "metric", "delta", "status", "steps", "duration_s", "executor",
                              "error"]
    assert "early_stopped" in out
    # effects.png regenerated and its path printed; no warnings on stderr.
    png = run / "effects.png"
    assert f"Effects plot: {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "Warning" not in proc.stderr


def test_report_on_run_dir_without_config(tmp_path):
    (tmp_path / "trials.jsonl").write_text(json.dumps(record(SPECS[0], 0.5)) + "\n")
    proc = run_report(tmp_path, "--no-plot")
    assert proc.returncode == 0, proc.stderr
    assert "no config.json" in proc.stdout and "assuming direction 'min'" in proc.stdout
    assert "sum of trial durations" in proc.stdout
    assert "Total Job Time 0 hours, 0 minutes, 12 seconds" in proc.stdout
    assert not (tmp_path / "effects.png").exists()


def test_report_picks_highest_run_number(tmp_path):
    for n in (2, 10, 9):
        (tmp_path / f"run_{n}").mkdir()
        (tmp_path / f"run_{n}" / "trials.jsonl").write_text("")
    proc = run_report(tmp_path, "--no-plot")
    assert proc.returncode == 0, proc.stderr
    assert f"Reading run {tmp_path / 'run_10'}" in proc.stdout
    assert "No trial finished" in proc.stdout


def test_report_without_journal_exits_2(tmp_path):
    (tmp_path / "notes").mkdir()
    proc = run_report(tmp_path)
    assert proc.returncode == 2
    assert "no trials.jsonl" in proc.stderr and str(tmp_path) in proc.stderr


def test_report_needs_a_subcommand():
    proc = subprocess.run([sys.executable, "-m", "maggy"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 2 and "report" in proc.stderr


def test_report_takes_job_time_from_result_json(tmp_path):
    # A run that ended has result.json; its duration is the job time.
    (tmp_path / "config.json").write_text(json.dumps({"direction": "max", "trials": SPECS[:1]}))
    (tmp_path / "trials.jsonl").write_text(json.dumps(record(SPECS[0], 0.8)) + "\n")
    (tmp_path / "result.json").write_text(json.dumps({"duration": 3723.2}))
    proc = run_report(tmp_path, "--no-plot")
    assert proc.returncode == 0, proc.stderr
    assert "Total Job Time 1 hours, 2 minutes, 3 seconds" in proc.stdout
    assert "note:" not in proc.stdout  # nothing estimated, nothing missing


def test_report_prints_the_components_table_with_verdicts(tmp_path):
    # 3 repeats: removing sibsp costs 0.5 each time (paired by repeat), fare about nothing.
    lines = []
    for r, (base, sibsp, fare) in enumerate([(1.0, 1.5, 1.02), (1.1, 1.61, 1.07), (0.9, 1.39, 0.93)]):
        for s, metric in ((SPECS[0], base), (SPECS[1], sibsp), (SPECS[2], fare)):
            lines.append({**record(s, metric), "trial_id": f"{s['trial_id']}r{r}", "repeat": r, "seed": r})
    (tmp_path / "trials.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (tmp_path / "config.json").write_text(json.dumps({"direction": "min", "alpha": 0.05, "min_effect": 0.1,
                                                      "repeats": 3}))
    proc = run_report(tmp_path, "--no-plot")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    # Rule: the report prints one row per component with its interval, adjusted p and verdict.
    header = next(line for line in out if line.lstrip().startswith("component"))
    assert header.split() == ["component", "n", "mean_delta", "ci_low", "ci_high", "p_adjusted", "verdict",
                              "reason", "stopped"]
    sibsp = next(line for line in out if line.lstrip().startswith("feature sibsp"))
    fare = next(line for line in out if line.lstrip().startswith("feature fare"))
    assert " needed " in sibsp
    # min_effect from config.json: fare's interval lies within ±0.1.
    assert " negligible " in fare and "interval within ±0.1" in fare
