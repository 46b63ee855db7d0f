"""Every ```python block in docs/*.md runs, so the docs cannot drift from the code.

The blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), in this process, so lagom() reuses the session's Spark. The namespace's
``__name__`` names no importable module, so cloudpickle ships the functions and classes the
docs define to the executors by value. A block whose first line starts with ``# not run``
(say why: ``# not run: needs a YARN cluster``) is skipped.
"""

import pathlib
import re
import shutil
import sys
import textwrap
import traceback

import pytest

from maggy.ablation.ablator import ABLATORS
from maggy.ablation.repair_registry import _REGISTRY as _REPAIR_REGISTRY

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = sorted(DOCS.glob("*.md"))
# A fence may be indented (a block inside a list item); its code is dedented.
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
_SKIP = re.compile(r"^# not run\b")


def python_blocks(path: pathlib.Path) -> list[tuple[int, int, str]]:
    """``(number, line, code)`` of each python block, numbered from 1 in the file."""
    text = path.read_text(encoding="utf-8")
    return [
        (number, text.count("\n", 0, match.start()) + 2, textwrap.dedent(match.group(2)))
        for number, match in enumerate(_FENCE.finditer(text), start=1)
    ]


def is_skipped(code: str) -> bool:
    return bool(_SKIP.match(code.lstrip("\n")))


def test_the_documented_pages_exist():
    names = {p.name for p in DOC_FILES}
    assert {"quickstart.md", "api.md", "ablation.md", "cluster.md", "faults.md", "extending.md"} <= names


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_skipped_blocks_say_why(path):
    for number, line, code in python_blocks(path):
        first = code.lstrip("\n").splitlines()[0] if code.strip() else ""
        if first.startswith("# not run"):
            # Rule: "# not run: <reason>", so a reader knows why it is not checked.
            assert re.match(r"# not run: \S", first), f"{path.name} block {number} (line {line}): give a reason"


def _anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_links_between_docs_resolve(path):
    def headings(p):
        text = re.sub(r"^([ \t]*)```.*?^\1```", "", p.read_text(encoding="utf-8"), flags=re.M | re.S)
        return {_anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}

    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        name, _, anchor = target.partition("#")
        linked = (path.parent / name) if name else path
        # Rule: a relative link names an existing file, and an anchor one of its headings.
        assert linked.exists(), f"{path.name}: broken link {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in headings(linked), f"{path.name}: no heading for #{anchor} in {linked.name}"


@pytest.mark.slow
@pytest.mark.parametrize("path", DOC_FILES, ids=[p.name for p in DOC_FILES])
def test_doc_code_runs(path, spark, tmp_path, monkeypatch, capsys):
    blocks = [b for b in python_blocks(path) if not is_skipped(b[2])]
    if not blocks:
        pytest.skip(f"{path.name} has no runnable python blocks")
    # Run where the quickstart expects to be: a checkout root with examples/titanic.csv.
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "titanic.csv", tmp_path / "examples" / "titanic.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAGGY_DATASETS", str(tmp_path / "maggy_datasets"))
    stray = [ROOT / "maggy_experiments", ROOT / "maggy_datasets"]
    existed = [d.exists() for d in stray]
    module_name = f"maggy_docs_{path.stem}"
    assert module_name not in sys.modules  # so cloudpickle cannot pickle by reference
    namespace = {"__name__": module_name}
    # The docs may register ablators and repair rules; other tests must not see them.
    ablators, repair_rules = dict(ABLATORS), dict(_REPAIR_REGISTRY.user)
    try:
        for number, line, code in blocks:
            try:
                exec(compile(code, f"{path.name}:block{number}:line{line}", "exec"), namespace)
            except BaseException:
                output = capsys.readouterr()
                pytest.fail(
                    f"docs/{path.name} block {number} (line {line}) failed:\n{traceback.format_exc()}\n"
                    f"--- its output (last 2000 chars) ---\n{(output.out + output.err)[-2000:]}",
                    pytrace=False,
                )
    finally:
        ABLATORS.clear()
        ABLATORS.update(ablators)
        _REPAIR_REGISTRY.user.clear()
        _REPAIR_REGISTRY.user.update(repair_rules)
    # Rule: what the docs write (experiments, catalog) lands in the temporary directory.
    assert [d.exists() for d in stray] == existed
