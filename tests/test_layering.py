"""The layering rule of DESIGN.md section 6: no module imports a layer above its own.

Layers, lowest first: declaration (``ablation/``, ``earlystop/``, ``trial.py`` and the other
low modules: ``config.py``, ``exceptions.py``, ``util.py``, ``datasets.py``), runtime
(``core/``), results (``results/``), entry points (``experiment.py``, ``__main__.py`` and the
façades over them). Every import counts, a deferred one inside a function included; only
imports under ``if TYPE_CHECKING:`` (never executed) do not.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = ("declaration", "runtime", "results", "entry point")
ENTRY_POINTS = {"maggy", "maggy.experiment", "maggy.__main__", "maggy.one_class", "maggy.tensorboard"}
# (importer, imported): why the rule does not apply.
ALLOWED = {
    ("maggy.ablation", "maggy.one_class"):
        "maggy.ablation.Ablator re-exports the façade lazily, under the thesis' name",
    ("maggy.ablation", "maggy.core.data"):
        "maggy.ablation.StreamingDataset re-exports the executors' streaming reader lazily, beside the other datasets",
}


def layer_of(module: str) -> int:
    """The layer of a maggy module, as an index into LAYERS."""
    if module in ENTRY_POINTS:
        return 3
    if module == "maggy.results" or module.startswith("maggy.results."):
        return 2
    if module == "maggy.core" or module.startswith("maggy.core."):
        return 1
    return 0


def _module_name(path: pathlib.Path, package_root: pathlib.Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST):
    """Every import node, skipping ``if TYPE_CHECKING:`` bodies."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if _is_type_checking(node):
            children = node.orelse
        stack.extend(children)


def imported_modules(path: pathlib.Path, package_root: pathlib.Path) -> set[str]:
    """The maggy modules ``path`` imports (``from maggy import results`` is maggy.results)."""
    name = _module_name(path, package_root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            sub = package_root.parent.joinpath(*f"{base}.{alias.name}".split("."))
            is_module = sub.with_suffix(".py").exists() or (sub / "__init__.py").exists()
            found.add(f"{base}.{alias.name}" if is_module else base)
    return {m for m in found if m == "maggy" or m.startswith("maggy.")}


def violations(package_root: pathlib.Path) -> list[str]:
    """One line per import of a higher layer in the package at ``package_root``."""
    out = []
    for path in sorted(package_root.rglob("*.py")):
        importer = _module_name(path, package_root)
        for imported in sorted(imported_modules(path, package_root)):
            if layer_of(imported) > layer_of(importer) and (importer, imported) not in ALLOWED:
                out.append(f"{importer} ({LAYERS[layer_of(importer)]}) imports {imported} "
                           f"({LAYERS[layer_of(imported)]})")
    return out


def test_no_module_imports_a_layer_above_its_own():
    # Rule: dependencies point down (declaration <- runtime <- results <- entry points).
    assert violations(ROOT / "maggy") == []


@pytest.mark.parametrize("module, source", [
    ("ablation/one_class.py", "def run():\n    from maggy import experiment\n"),
    ("ablation/helper.py", "from maggy.core.trial_builder import build_model\n"),
    ("core/x.py", "from ..results import table\n"),
])
def test_the_check_finds_an_import_from_above(tmp_path, module, source):
    package = tmp_path / "maggy"
    for folder in ("ablation", "core", "results"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from typing import TYPE_CHECKING\n"
                                         "if TYPE_CHECKING:\n    from maggy import experiment\n")
    (package / "experiment.py").write_text("from maggy.core import trial_builder\n")
    (package / "core" / "trial_builder.py").write_text("from maggy.ablation import study\n")
    (package / "ablation" / "study.py").write_text("")
    (package / "results" / "table.py").write_text("from maggy.core import trial_builder\n")
    assert violations(package) == []
    (package / module).write_text(source)
    # Rule: a deferred import inside a function counts; so does a relative one.
    assert len(violations(package)) == 1
