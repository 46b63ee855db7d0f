"""Results: deltas, best/worst, repeats, summary, plot, TensorBoard and result.json."""

import json
import math
import re

import pandas as pd
import pytest

from maggy.results import (
    COMPONENT_COLUMNS,
    TRIAL_COLUMNS,
    build_result,
    components_table,
    format_summary,
    load_records,
    load_result,
    plot_effects,
    save_result,
    show_plot,
    write_tensorboard,
)


def trial(index, metric, status="finished", repeat=0, **spec):
    return {
        "trial_id": f"t{index}r{repeat}", "index": index, "repeat": repeat, "seed": repeat,
        "ablated_feature": spec.get("feature"), "ablated_layers": spec.get("layers"),
        "layer_label": spec.get("label"), "custom_model": spec.get("model"),
        "infer_activation": False, "status": status, "metric": metric,
        "history": [[0, 1.0], [1, metric]], "steps": 2, "duration_s": 10.0,
        "executor": "host:0", "error": spec.get("error"), "attempts": 1,
    }


@pytest.fixture
def titanic():
    """The DESIGN's example run: 5 finished trials averaging 0.6663, one early stopped."""
    return [
        trial(0, 0.6500),
        trial(1, 0.5780, feature="sibsp"),
        trial(2, 0.6400, feature="fare"),
        trial(3, 0.9000, status="early_stopped", feature="parch"),
        trial(4, 0.7156, layers=[2], label="2"),
        trial(5, 0.7479, layers=[4, 5], label="[4, 5]"),
    ]


# --------------------------------------------------------------------------- build_result


def test_argument_check():
    with pytest.raises(ValueError, match=r"direction must be 'min' or 'max', got 'minimize'"):
        build_result([], "minimize", 1.0)
    with pytest.raises(ValueError, match="direction"):
        components_table([trial(0, 1.0)])


def test_trials_table_shape(titanic):
    result = build_result(list(reversed(titanic)), "min", 51.0)
    df = result["trials"]
    # Exactly the documented columns, no repeat columns without repeats, sorted by index.
    assert list(df.columns) == TRIAL_COLUMNS
    assert df["trial_id"].tolist() == [f"t{i}r0" for i in range(6)]
    assert df["ablated_layers"].tolist() == [None, None, None, None, "2", "[4, 5]"]
    assert df.loc[1, "ablated_feature"] == "sibsp"


@pytest.mark.parametrize(
    "direction, base, worse, better",
    [("min", 0.50, 0.60, 0.40), ("max", 0.80, 0.75, 0.82)],
)
def test_delta_positive_means_worse_than_base(direction, base, worse, better):
    records = [trial(0, base), trial(1, worse, feature="a"), trial(2, better, feature="b")]
    delta = build_result(records, direction, 1.0)["trials"]["delta"].tolist()
    # Worse than base -> delta > 0 in both directions; better -> delta < 0; base -> 0.
    assert delta[0] == 0.0
    assert delta[1] == pytest.approx(abs(worse - base)) and delta[1] > 0
    assert delta[2] == pytest.approx(-abs(better - base)) and delta[2] < 0


def test_delta_is_nan_without_base_metric():
    records = [trial(0, None, status="failed", error="boom"), trial(1, 0.3, feature="a")]
    assert math.isnan(build_result(records, "min", 1.0)["trials"]["delta"][1])


def test_best_worst_avg_min(titanic):
    result = build_result(titanic, "min", 51.0)
    # Early-stopped parch (0.9) is ignored for best/worst/avg.
    assert result["best_config"] == {"ablated_feature": "sibsp", "ablated_layer": "None"}
    assert result["best_val"] == pytest.approx(0.5780)
    assert result["worst_config"] == {"ablated_feature": "None", "ablated_layer": "[4, 5]"}
    assert result["worst_val"] == pytest.approx(0.7479)
    assert result["avg"] == pytest.approx(0.6663)
    assert (result["num_trials"], result["early_stopped"], result["failed"]) == (6, 1, 0)
    assert result["duration"] == 51.0


def test_best_worst_max_and_custom_model():
    records = [
        trial(0, 0.80),
        trial(1, 0.70, feature="age"),
        trial(2, 0.85, model="small"),
        trial(3, 0.99, status="early_stopped", feature="x"),
        trial(4, None, status="failed", feature="y", error="Traceback\nValueError: y"),
    ]
    result = build_result(records, "max", 3.0)
    assert result["best_config"] == {
        "ablated_feature": "None", "ablated_layer": "None", "custom_model": "small"
    }
    assert result["best_val"] == 0.85
    assert result["worst_config"]["ablated_feature"] == "age"
    assert result["avg"] == pytest.approx((0.80 + 0.70 + 0.85) / 3)
    assert (result["early_stopped"], result["failed"]) == (1, 1)


def test_no_finished_trial():
    result = build_result([trial(0, None, status="failed", error="x")], "min", 1.0)
    assert result["best_config"] is None and result["avg"] is None


def test_duplicate_records_keep_the_last():
    # A trial journaled again after a resume counts once.
    records = [
        trial(0, 0.5), trial(1, None, status="failed", feature="a"), trial(1, 0.7, feature="a")
    ]
    result = build_result(records, "min", 1.0)
    assert result["num_trials"] == 2 and result["failed"] == 0
    assert result["trials"]["metric"].tolist() == [0.5, 0.7]


def test_layer_label_derived_when_missing():
    records = [trial(0, 1.0), trial(1, 1.0, layers=[{"prefix": "encoder.layers"}]),
               trial(2, 1.0, layers=[2, 3])]
    assert build_result(records, "min", 1.0)["trials"]["ablated_layers"].tolist() == [
        None, "encoder.layers.*", "[2, 3]"
    ]


def test_a_prefix_ending_in_a_dot_reads_the_same_in_study_table_and_summary():
    from maggy.ablation import AblationStudy
    from maggy.ablation.ablator import DeclaredTrials
    from maggy.ablation.surgery import prefix

    study = AblationStudy("titanic", 1, "survived")
    study.model.layers.include_groups(prefix="encoder.layers.")
    label = study.components[0].label
    assert label == "encoder.layers.*"
    # The one-class API labels its specs itself.
    declared = [{"ablated_layers": None}, {"ablated_layers": [prefix("encoder.layers.")]}]
    policy = DeclaredTrials(study, declared)
    policy.initialize()
    assert policy.trial_buffer[1]["layer_label"] == label
    # A journal without layer_label (written by another policy, or by hand): the table
    # derives the label, and the component column and summary use it.
    records = []
    for r, (base, ablated) in enumerate([(1.0, 1.5), (1.1, 1.7), (0.9, 1.3)]):
        records += [trial(0, base, repeat=r),
                    trial(1, ablated, repeat=r, layers=[{"prefix": "encoder.layers."}])]
    result = build_result(records, "min", 1.0)
    assert set(result["trials"]["ablated_layers"].dropna()) == {label}
    assert result["components"]["component"].tolist() == [f"layer {label}"]
    assert f"layer {label} (+" in format_summary(result)

# --------------------------------------------------------------------------- repeats


@pytest.fixture
def repeated():
    """3 repeats; deltas vs base (paired by repeat): age 0.2, 0.3, 0.1; [4, 5] 0.5, 0.6, 0.4."""
    records = []
    for r, (base, age, layers) in enumerate([(1.0, 1.2, 1.5), (1.1, 1.4, 1.7), (0.9, 1.0, 1.3)]):
        records += [
            trial(0, base, repeat=r),
            trial(1, age, repeat=r, feature="age"),
            trial(2, layers, repeat=r, layers=[4, 5], label="[4, 5]"),
        ]
    return records


def test_repeats_table_with_intervals(repeated):
    result = build_result(repeated, "min", 1.0)
    assert list(result["trials"].columns) == TRIAL_COLUMNS + ["repeat", "seed"]
    table = result["components"]
    assert list(table.columns) == COMPONENT_COLUMNS
    assert table["component"].tolist() == ["feature age", "layer [4, 5]"]
    # mean 0.2, sd 0.1, half width t(0.975, 2) * 0.1 / sqrt(3) = 4.302653 * 0.057735 = 0.248414
    age, layers = table.iloc[0], table.iloc[1]
    assert age["n"] == 3
    assert age["mean_delta"] == pytest.approx(0.2)
    assert age["std"] == pytest.approx(0.1)
    assert (age["ci_low"], age["ci_high"]) == pytest.approx((-0.048414, 0.448414), abs=1e-6)
    assert not age["distinguishable"]  # the interval contains 0
    assert (layers["ci_low"], layers["ci_high"]) == pytest.approx((0.251586, 0.748414), abs=1e-6)
    assert layers["distinguishable"]
    # Best/worst compare the components' mean metrics.
    assert result["best_val"] == pytest.approx(1.0) and result["worst_val"] == pytest.approx(1.5)


def test_components_table_from_result_matches_records(repeated):
    result = build_result(repeated, "min", 1.0)
    pd.testing.assert_frame_equal(components_table(result), components_table(repeated, "min"))
    pd.testing.assert_frame_equal(components_table(result), result["components"])


def test_single_runs_have_no_interval(titanic):
    table = build_result(titanic, "min", 1.0)["components"]
    assert table["n"].tolist() == [1, 1, 0, 1, 1]  # parch stopped early: no finished delta
    assert table["std"].isna().all() and not table["distinguishable"].any()
    assert table["status"].tolist()[2] == "early_stopped"


def test_unpaired_repeat_uses_base_mean():
    # Base repeats 0 and 1 (mean 1.5); the trial's repeat 2 has no partner.
    records = [trial(0, 1.0, repeat=0), trial(0, 2.0, repeat=1),
               trial(1, 2.0, repeat=2, feature="a")]
    assert build_result(records, "min", 1.0)["trials"]["delta"].tolist()[-1] == 0.5


# --------------------------------------------------------------------------- summary


def test_summary_format(titanic):
    lines = format_summary(build_result(titanic, "min", 51.4)).splitlines()
    assert lines[0] == "------ LOCO Results ------"
    assert lines[1] == ('BEST Config Excludes {"ablated_feature": "sibsp", "ablated_layer": '
                        '"None"} --- metric 0.5780')
    assert re.fullmatch(r'WORST Config Excludes \{"ablated_feature": "None", '
                        r'"ablated_layer": "\[4, 5\]"\} --- metric 0\.7479', lines[2])
    assert lines[3] == "AVERAGE metric -- 0.6663"
    assert lines[4] == "Total Job Time 0 hours, 0 minutes, 51 seconds"
    assert lines[5] == "6 trials: 5 finished, 1 early stopped, 0 failed"
    # Rule: single runs say what they are: one run each, no noise estimate, no verdict.
    assert lines[6].startswith("Single runs: each delta is one run against the base trial, with no noise estimate")
    assert len(lines) == 7


def test_noise_runs_flag_deltas_within_the_noise(titanic):
    # Three more base runs (noise_runs=3): metrics 0.65, 0.66, 0.64, 0.67 -> sd 0.012910.
    titanic += [trial(0, m, repeat=r) for r, m in ((1, 0.66), (2, 0.64), (3, 0.67))]
    result = build_result(titanic, "min", 1.0)
    assert result["statistics"]["noise_sd"] == pytest.approx(0.012910, abs=1e-6)
    table = result["components"].set_index("component")
    # |delta| <= 2 sd (0.0258) is noise-sized: fare (-0.01) is; sibsp (-0.072) is not.
    assert table.loc["feature fare", "within_noise"] and not table.loc["feature sibsp", "within_noise"]
    assert not table.loc["feature parch", "within_noise"]  # early stopped: no delta to judge
    lines = format_summary(result).splitlines()
    assert lines[-1] == "Run-to-run noise of the base trial: sd 0.0129; deltas within 2 sd of 0: feature fare"
    # Rule: the BEST/WORST/AVERAGE lines stay those of single runs.
    assert lines[1].endswith("--- metric 0.5780")


def test_summary_long_job_and_no_finished_trial():
    result = build_result([trial(0, None, status="failed")], "min", 2 * 3600 + 3 * 60 + 4)
    lines = format_summary(result, title="Custom").splitlines()
    assert lines[0] == "------ Custom Results ------"
    assert lines[1].startswith("No trial finished")
    assert "Total Job Time 2 hours, 3 minutes, 4 seconds" in lines
    assert lines[-1] == "1 trial: 0 finished, 0 early stopped, 1 failed"


def test_summary_lists_components_by_verdict(repeated):
    lines = format_summary(build_result(repeated, "min", 1.0)).splitlines()
    assert lines[-5] == "Verdicts at alpha 0.05 (delta > 0: removing it made the metric worse):"
    assert lines[-4] == "  needed: layer [4, 5] (+0.5000, 95% CI [0.2516, 0.7484], n=3)"
    assert lines[-3] == "  harmful: none"
    assert lines[-2] == "  negligible: none"
    assert lines[-1] == ("  undetermined: feature age (+0.2000, 95% CI [-0.0484, 0.4484], n=3: "
                         "interval crosses 0)")


def test_verdict_columns(repeated):
    table = build_result(repeated, "min", 1.0, judging={"min_effect": 0.5})["components"]
    age, layers = table.iloc[0], table.iloc[1]
    # age: mean 0.2, sd 0.1, n 3 -> p 0.074180; [4, 5]: mean 0.5 -> p 0.0075; Holm over both.
    assert age["p_value"] == pytest.approx(0.074180, abs=1e-6)
    assert layers["p_adjusted"] == pytest.approx(2 * layers["p_value"])
    assert age["p_adjusted"] == pytest.approx(age["p_value"])
    assert age["effect_size"] == pytest.approx(2.0)
    assert math.isnan(age["p_wilcoxon"])  # n < 6
    # Rule: with min_effect, an interval within ±min_effect is negligible.
    assert (age["verdict"], age["reason"]) == ("negligible", "interval within ±0.5")
    assert layers["verdict"] == "needed" and layers["p_adjusted"] < 0.05


def test_early_stopped_runs_are_counted_not_paired(repeated):
    # The [4, 5] trial of repeat 1 stopped early: its partial metric is not a paired difference.
    for r in repeated:
        if r["index"] == 2 and r["repeat"] == 1:
            r["status"], r["metric"] = "early_stopped", 9.0
    layers = build_result(repeated, "min", 1.0)["components"].iloc[1]
    assert (layers["n"], layers["stopped"]) == (2, 1)
    assert layers["mean_delta"] == pytest.approx(0.45)
    only_stopped = [trial(0, 1.0), trial(1, 3.0, status="early_stopped", feature="age")]
    row = build_result(only_stopped, "min", 1.0)["components"].iloc[0]
    assert (row["verdict"], row["reason"]) == ("undetermined", "no finished run (1 early stopped)")


# --------------------------------------------------------------------------- plot


def test_plot_written(tmp_path, titanic, repeated):
    import matplotlib

    backend = matplotlib.get_backend()
    titanic.append(trial(6, None, status="failed", feature="cabin", error="boom"))
    for name, records, direction in [("a.png", titanic, "min"), ("b.png", repeated, "max")]:
        out = plot_effects(build_result(records, direction, 1.0), tmp_path / name)
        assert out == str(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The format follows the file's extension.
    plot_effects(build_result(titanic, "min", 1.0), tmp_path / "c.svg")
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:1000]
    # Figure is used directly: pyplot's backend (e.g. Jupyter inline) is left alone.
    assert matplotlib.get_backend() == backend


def test_plot_without_components(tmp_path):
    out = plot_effects(build_result([trial(0, 1.0)], "min", 1.0), tmp_path / "e.png")
    assert (tmp_path / "e.png").stat().st_size > 0 and out.endswith("e.png")


def test_show_plot_outside_ipython_does_nothing(tmp_path):
    assert show_plot(tmp_path / "missing.png") is False


# --------------------------------------------------------------------------- files


def test_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = trial(1, 0.4, feature="a")
    record["history"] = [[0, 0.9], [1, 0.6], [2, 0.4]]
    assert write_tensorboard(record, tmp_path) is True
    events = list((tmp_path / "t1r0").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    accumulator = EventAccumulator(str(tmp_path / "t1r0"))
    accumulator.Reload()
    scalars = accumulator.Scalars("metric")
    assert [s.step for s in scalars] == [0, 1, 2]
    assert [s.value for s in scalars] == pytest.approx([0.9, 0.6, 0.4])


def test_tensorboard_run_only_for_trials_with_metrics(tmp_path):
    pytest.importorskip("tensorboard")
    silent = trial(1, 0.4, feature="a")
    silent["history"] = []  # train_fn broadcast nothing
    assert write_tensorboard(silent, tmp_path) is False
    assert not (tmp_path / "t1r0").exists()  # no empty run cluttering TensorBoard's list
    # A trial run again (resume) adds a second file to its run instead of replacing the first.
    again = trial(2, 0.4, feature="b")
    for history in ([[0, 0.9]], [[0, 0.8], [1, 0.5]]):
        again["history"] = history
        assert write_tensorboard(again, tmp_path) is True
    assert len(list((tmp_path / "t2r0").glob("events.out.tfevents.*"))) == 2


def test_result_json_round_trip(tmp_path, repeated):
    repeated.append(trial(3, math.nan, status="failed", feature="z", error="x"))
    repeated.append(trial(4, math.inf, status="early_stopped", feature="w"))
    result = build_result(repeated, "min", 12.5)
    path = save_result(result, tmp_path / "result.json")

    text = (tmp_path / "result.json").read_text()
    # Strict JSON: NaN and inf are written as null, so any JSON reader can load it.
    assert "NaN" not in text and "Infinity" not in text
    raw = json.loads(text)
    assert raw["trials"][0]["trial_id"] == "t0r0" and raw["best_val"] == pytest.approx(1.0)

    loaded = load_result(path)
    for key in ("best_config", "best_val", "worst_config", "worst_val", "avg", "num_trials",
                "early_stopped", "failed", "duration", "direction"):
        assert loaded[key] == result[key]
    expected = result["trials"].copy()
    expected.loc[expected["metric"] == math.inf, "metric"] = math.nan  # inf -> null -> NaN
    expected.loc[expected["delta"] == math.inf, "delta"] = math.nan
    pd.testing.assert_frame_equal(loaded["trials"], expected)
    pd.testing.assert_frame_equal(loaded["components"], result["components"])


def test_load_records_reads_journal(tmp_path, titanic):
    from maggy.core.journal import Journal

    journal = Journal(tmp_path / "trials.jsonl")
    for record in titanic:
        journal.append(record)
    assert load_records(tmp_path) == titanic
    assert load_records(tmp_path / "trials.jsonl") == titanic


def test_plots_of_many_components_keep_the_largest_effects(tmp_path):
    from maggy.results.plot import MAX_BARS, _keep_largest

    bars = [(f"c{i}", float(d), float("nan"), float("nan"), "finished", None) for i, d in enumerate(range(-50, 50))]
    dropped = _keep_largest(bars, MAX_BARS)
    # Rule: the bars with the largest |delta| stay, in their order; the rest are counted.
    assert dropped == 100 - MAX_BARS and len(bars) == MAX_BARS
    assert min(abs(b[1]) for b in bars) >= 30 and [b[1] for b in bars] == sorted(b[1] for b in bars)
