"""Every docstring example in the package runs, so the examples cannot drift from the code.

One case per module under ``maggy`` (id: the module's name), run with the stdlib ``doctest``
module and the flags ``pytest --doctest-modules`` uses by default (``ELLIPSIS``). Lines that
need what a doctest cannot have (a Spark cluster, a running gRPC server) say
``# doctest: +SKIP``. A module whose import needs a package that is not installed is skipped,
not failed; a module that fails to import for any other reason fails.
"""

import doctest
import importlib
import io
import pkgutil

import pytest

import maggy

_FLAGS = doctest.ELLIPSIS


def _module_names() -> list[str]:
    """``maggy`` and every module below it, sorted.

    ``walk_packages`` imports each package to look inside it; a package that cannot be
    imported is still listed (its case fails or skips on import), only its children are not.
    """
    names = {maggy.__name__}
    for info in pkgutil.walk_packages(maggy.__path__, maggy.__name__ + ".", onerror=names.add):
        names.add(info.name)
    return sorted(names)


MODULES = _module_names()


def _import_or_skip(name: str):
    """Import ``name``; skip the case when a third-party package it needs is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing == "maggy" or missing.startswith("maggy."):
            raise  # a module of maggy itself is missing: that is a bug, not an environment gap
        pytest.skip(f"{name} needs {missing!r}, which is not installed")


@pytest.mark.parametrize("name", MODULES, ids=MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    module = _import_or_skip(name)
    # Examples that write files (the dataset catalog, plots) write them here, not in the repo.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAGGY_DATASETS", str(tmp_path / "catalog"))

    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=_FLAGS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test, out=report.write)

    if runner.failures:
        pytest.fail(
            f"{runner.failures} of {runner.tries} docstring examples in {name} failed:\n"
            f"{report.getvalue()}",
            pytrace=False,
        )
