"""User code the executors cannot import travels by value: a script next to its helper modules."""

import os
import subprocess
import sys
import textwrap

from maggy.core.shipping import modules_to_ship, ship_by_value
from tiny_study import SOURCE

HELPERS = textwrap.dedent(
    """
    import model_lib

    def train(model_function, dataset_function):
        model = model_function()
        removed = dataset_function().ablated
        return {None: 1.0, "a": 2.0, "b": 3.0}[removed] + model_lib.size(model)
    """
)
MODEL_LIB = textwrap.dedent(
    """
    import torch

    def make_model():
        return torch.nn.Sequential(torch.nn.Linear(2, 2))

    def size(model):
        return 0.0 * sum(p.numel() for p in model.parameters())
    """
)
SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pyspark import cloudpickle
    from maggy import experiment
    from maggy.ablation import AblationStudy
    from helpers import FeatureTag, train
    from model_lib import make_model

    study = AblationStudy(dataset_generator=FeatureTag)
    study.model.set_base_model_generator(make_model)
    study.features.include("a", "b")
    result = experiment.lagom(train_fn=train, ablation_study=study, name="helpers", direction="min",
                              experiment_dir=os.path.join(sys.argv[1], "exp"), num_executors=2,
                              es_policy="none", verbose=False)
    print("STATUS=" + ",".join(result["trials"]["status"]))
    print("METRICS=" + ",".join(str(m) for m in result["trials"]["metric"]))
    print("ERROR=" + repr(result["trials"]["error"].iloc[0]))
    print("STILL_BY_VALUE=" + ",".join(sorted(cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES)))
    """
)


def write_project(folder):
    """A script and two helper modules in one folder, as a user's project looks."""
    (folder / "helpers.py").write_text(SOURCE + HELPERS)
    (folder / "model_lib.py").write_text(MODEL_LIB)
    (folder / "study.py").write_text(SCRIPT)


def test_helper_modules_and_what_they_import_are_found(tmp_path, monkeypatch):
    write_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import helpers

    try:
        # Rule: the train_fn's module and the user modules it imports go by value;
        # installed and standard-library modules (torch, os) and maggy do not.
        assert modules_to_ship([helpers.train]) == ["helpers", "model_lib"]
        assert modules_to_ship([os.path.join, helpers.MaggyDataset]) == []
        # Registration lasts for the block only.
        from pyspark import cloudpickle

        with ship_by_value([helpers.FeatureTag]) as added:
            assert added == ["helpers", "model_lib"]
            assert {"helpers", "model_lib"} <= cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES
        assert not {"helpers", "model_lib"} & cloudpickle.cloudpickle._PICKLE_BY_VALUE_MODULES
    finally:
        sys.modules.pop("helpers", None)
        sys.modules.pop("model_lib", None)


def test_a_script_importing_its_train_fn_from_a_helper_module_runs_on_the_embedded_session(tmp_path):
    write_project(tmp_path)
    # A fresh interpreter, as a user runs `python project/study.py`: no test fixture registers
    # anything, and the working directory is not the script's (Python workers would find
    # modules in the working directory).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run([sys.executable, str(tmp_path / "study.py"), str(tmp_path)], capture_output=True,
                         text=True, timeout=300, cwd=str(elsewhere))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    # Rule: the helper modules reach the executors; every trial runs.
    assert lines["STATUS"] == "finished,finished,finished", lines["ERROR"]
    assert lines["METRICS"] == "1.0,2.0,3.0"
    # ...and lagom() leaves cloudpickle's registry as it found it.
    assert lines["STILL_BY_VALUE"] == ""
