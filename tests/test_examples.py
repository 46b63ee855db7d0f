"""The example notebooks: current with their scripts, and they run headless without error.

Each notebook is generated from its ``# %%``-celled script by ``examples/make_notebooks.py``.
Executing one starts a Jupyter kernel, which starts its own embedded Spark (about 10 s), so
the execution tests are marked slow; they run by default.
"""

import importlib.util
import os
import pathlib
import shutil

import nbformat
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def _load_make_notebooks():
    spec = importlib.util.spec_from_file_location("make_notebooks", EXAMPLES / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_notebooks = _load_make_notebooks()
SCRIPTS = make_notebooks.scripts()
NAMES = [script.stem for script in SCRIPTS]


def test_every_example_script_has_cells():
    # Rule: the four examples of the docs are scripts with cell markers.
    assert {"titanic_ablation", "channel_ablation", "word_masking", "sequence_ablation",
            "planted_verdicts"} <= set(NAMES)


@pytest.mark.parametrize("script", SCRIPTS, ids=NAMES)
def test_notebook_is_current_with_its_script(script):
    notebook = script.with_suffix(".ipynb")
    assert notebook.exists(), f"{notebook.name} is missing: run python examples/make_notebooks.py"
    committed = nbformat.read(notebook, as_version=4)
    expected = make_notebooks.notebook_of(script)
    # Rule: same cells, same kinds, same text; otherwise the notebook is stale.
    assert [(c.cell_type, c.source) for c in committed.cells] == [
        (c.cell_type, c.source) for c in expected.cells
    ], f"{notebook.name} is stale: run python examples/make_notebooks.py"


def _outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes_headless(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # A copy of examples/, so experiment directories and the catalog land in tmp.
    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns("maggy_experiments", "maggy_datasets",
                                                                   "__pycache__", ".ipynb_checkpoints"))
    monkeypatch.setenv("MAGGY_DATASETS", str(tmp_path / "catalog"))  # the kernel inherits it
    # The kernel starts its own embedded Spark; it must not mistake itself for a spark-submit job.
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    notebook = nbformat.read(work / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    text = _outputs_text(notebook)
    # Rule: every example ends with the LOCO summary and a result table.
    assert "------ LOCO Results ------" in text, text[-2000:]
    assert "delta" in text
    runs = list((work / "maggy_experiments").glob("*/run_1/result.json"))
    assert len(runs) == (3 if name == "planted_interactions" else 1), os.listdir(work)


def test_planted_example_reaches_the_expected_conclusions(spark, tmp_path, monkeypatch):
    import runpy

    # Run in tmp (experiment directories land there), on the session's Spark.
    monkeypatch.chdir(tmp_path)
    # As "__main__", so cloudpickle ships its functions to the executors by value.
    found = runpy.run_path(str(EXAMPLES / "planted_interactions.py"), run_name="__main__")
    loco = found["loco"]["components"].set_index("component")["mean_delta"]
    # LOCO: x1 and x2 each cover for the other, so each looks negligible beside x3.
    assert loco["feature x1"] < 0.05 * loco["feature x3"] and loco["feature x2"] < 0.05 * loco["feature x3"]
    # Pairs: (x1, x2) is the one redundant pair.
    interactions = found["pairs"]["interactions"]
    redundant = interactions[interactions["kind"] == "redundant"]
    assert list(zip(redundant["component_a"], redundant["component_b"])) == [("feature x1", "feature x2")]
    # Shapley: x1 ≈ x2, each about half of their joint effect; the null feature ≈ 0.
    shapley = found["shapley"]["components"].set_index("component")["shapley"]
    joint = interactions.set_index(["component_a", "component_b"]).loc[("feature x1", "feature x2"), "pair_delta"]
    assert abs(shapley["feature x1"] - shapley["feature x2"]) < 0.05 * joint
    assert 0.35 * joint < shapley["feature x1"] < 0.65 * joint
    assert abs(shapley["feature null"]) < 0.02 * joint
