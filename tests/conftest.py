"""Shared fixtures: one real local Spark session for the whole run, and a fresh catalog."""

import os

import pandas as pd
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TITANIC_CSV = os.path.join(os.path.dirname(HERE), "examples", "titanic.csv")


@pytest.fixture(scope="session")
def spark():
    """A real embedded Spark session with 2 task slots (Spark may retry a task twice)."""
    from maggy.core.spark import get_session

    session, _ = get_session(slots=2, task_retries=2)
    yield session


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    """An empty dataset catalog in a temporary directory."""
    root = tmp_path / "catalog"
    monkeypatch.setenv("MAGGY_DATASETS", str(root))
    return root


@pytest.fixture(scope="session")
def titanic_df():
    """The Titanic table with six numeric features, as the thesis' model expects."""
    df = pd.read_csv(TITANIC_CSV)
    df = df[["survived", "pclass", "sex", "age", "sibsp", "parch", "fare"]].copy()
    df["sex"] = (df["sex"] == "male").astype(float)
    df["age"] = df["age"].fillna(df["age"].median())
    return df


@pytest.fixture(autouse=True)
def _ship_test_functions_by_value(request):
    """Executors cannot import test modules, so their functions travel by value."""
    import sys

    from pyspark import cloudpickle

    for name in (request.module.__name__, "tiny_study"):
        module = sys.modules.get(name)
        if module is not None:
            cloudpickle.register_pickle_by_value(module)
