"""Builds each example notebook from its script, so the two never drift apart.

Every ``examples/*.py`` with ``# %%`` cell markers becomes ``examples/<name>.ipynb``:
``# %% [markdown]`` cells become markdown (their leading ``# `` stripped), the others code.
Run ``python examples/make_notebooks.py`` after editing an example; the test suite checks
that the notebooks are current and executes them.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
import sys

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
_MARKER = re.compile(r"^# %%( \[markdown\])?\s*$", re.M)


def cells_of(script: str) -> list:
    """The notebook cells of a ``# %%``-marked script."""
    cells = []
    parts = _MARKER.split(script)
    # split() yields: text before the first marker, then (markdown flag, body) pairs.
    for flag, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if not body.strip():
            continue
        if flag:
            text = "\n".join(re.sub(r"^# ?", "", line) for line in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(body)
        # Ids from the position and the text, so that regenerating an unchanged script
        # rewrites its notebook byte for byte (nbformat would draw random ones).
        cell.id = hashlib.sha1(f"{len(cells)}:{cell.source}".encode()).hexdigest()[:8]
        cells.append(cell)
    return cells


def notebook_of(script_path: pathlib.Path):
    """The notebook for one example script."""
    nb = nbformat.v4.new_notebook()
    nb.cells = cells_of(script_path.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def scripts() -> list:
    """The example scripts that have cell markers."""
    return sorted(p for p in HERE.glob("*.py") if p.name != pathlib.Path(__file__).name and "# %%" in p.read_text())


def main() -> int:
    for script in scripts():
        target = script.with_suffix(".ipynb")
        nbformat.write(notebook_of(script), target)
        print(f"wrote {target.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
