"""Workers of a session with maggy's settings fork from maggy's daemon: pyspark from the
installed package, torch loaded by the daemon once it idles."""

import os
import subprocess
import sys
import time

import pytest

from maggy.core.worker_daemon import IdleHook, SpareCpu, path_without_pyspark_zip


def _parent_command(_):
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def test_workers_of_the_embedded_session_are_forked_from_maggys_daemon(spark):
    commands = spark.sparkContext.parallelize(range(2), 2).map(_parent_command).collect()
    assert all("maggy.core.worker_daemon" in command for command in commands), commands


def _pyspark_origin(_):
    import pyspark

    return pyspark.__file__, [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p.endswith(".zip")]


def test_workers_import_pyspark_from_the_installed_package_not_from_sparks_zip(spark):
    # Spark puts pyspark.zip first on the workers' path; importing from it compiled pyspark's
    # source in every daemon (~0.7 s of a fresh session's first job).
    origins = spark.sparkContext.parallelize(range(2), 2).map(_pyspark_origin).collect()
    for file, zips in origins:
        assert any(z.endswith("pyspark.zip") for z in zips), zips  # Spark did put the zip there
        assert ".zip" not in file, file


def _daemon_has_torch(_):
    with open(f"/proc/{os.getppid()}/maps") as f:
        return "libtorch" in f.read()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc to see what the daemon loaded")
def test_the_daemon_loads_torch_once_it_idles_for_the_workers_it_forks_later(spark):
    deadline = time.monotonic() + 20
    while not all(spark.sparkContext.parallelize(range(2), 2).map(_daemon_has_torch).collect()):
        assert time.monotonic() < deadline, "the daemon did not import torch while idle"
        time.sleep(1)


def test_starting_the_daemon_imports_neither_torch_nor_pandas():
    # A fresh interpreter, so nothing else has imported them: the first workers of a fresh
    # session are forked without waiting for torch, and pandas (whose import starts threads)
    # must never be loaded before a fork.
    probe = "import sys, maggy.core.worker_daemon; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_only_the_zip_of_an_installed_pyspark_on_the_path_is_dropped():
    site = "/venv/lib/python3.11/site-packages"
    own_zip = f"{site}/pyspark/python/lib/pyspark.zip"
    distribution_zip = "/opt/spark/python/lib/pyspark.zip"
    py4j = f"{site}/pyspark/python/lib/py4j-0.10.9.9-src.zip"
    installed = {f"{site}/pyspark/__init__.py"}
    path = [own_zip, py4j, "/work", site]
    assert path_without_pyspark_zip(path, isfile=installed.__contains__) == [py4j, "/work", site]
    # A Spark distribution's zip, or one whose package is not importable, stays first.
    assert path_without_pyspark_zip([distribution_zip, site], isfile=installed.__contains__) == [distribution_zip, site]
    assert path_without_pyspark_zip(path, isfile=lambda p: False) == path
    # So does the zip when another pyspark sits between it and the installed one: without
    # the zip, that other pyspark would be imported instead.
    other = installed | {"/work/pyspark/__init__.py"}
    assert path_without_pyspark_zip(path, isfile=other.__contains__) == path


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _FakeSelect:
    """A select module whose poll returns queued results (the hook's contract is the module's)."""

    POLLIN = 1

    def __init__(self, results):
        self.results = results

    def select(self, readable, writable, errors, timeout):
        return self.results.pop(0), [], []

    def poll(self):
        outer = self

        class Poller:
            def poll(self, timeout):
                return outer.results.pop(0)

            def register(self, *args):
                return "registered"

        return Poller()


def test_the_idle_hook_runs_once_after_a_quiet_spell_and_passes_everything_through():
    calls, clock = [], _Clock()
    hook = IdleHook(_FakeSelect([[], [(3, 1)], [], [], [], []]), lambda: calls.append(clock.now), 3.0, clock=clock)
    poller = hook.poll()
    assert hook.POLLIN == 1 and poller.register(0) == "registered"
    seen = []
    for now in (1.0, 2.0, 4.0, 6.0, 8.0, 20.0):
        clock.now = now
        seen.append(poller.poll(1000))
    assert seen == [[], [(3, 1)], [], [], [], []]
    # Busy at 2.0 (a fork request): idle from then, so the hook runs at 6.0 (>= 3 s), once.
    assert calls == [6.0]


def test_the_idle_hook_also_watches_select_where_the_daemon_has_no_poll():
    calls, clock = [], _Clock()
    hook = IdleHook(_FakeSelect([[], [0], []]), lambda: calls.append(clock.now), 3.0, clock=clock)
    for now in (1.0, 2.0, 5.5):
        clock.now = now
        hook.select([0], [], [], 1)
    assert calls == [5.5]


def test_the_idle_hook_waits_for_a_spare_cpu_before_it_runs():
    # Importing torch takes a core for a second or more: on a machine busy with trials it
    # would come out of their bodies, so the daemon waits until a core is idle.
    calls, clock, spare = [], _Clock(), iter([False, False, True, True])
    hook = IdleHook(_FakeSelect([[], [], [], [], [], []]), lambda: calls.append(clock.now), 3.0,
                    clock=clock, ready=lambda: next(spare))
    for now in (1.0, 3.0, 4.0, 5.0, 6.0, 7.0):
        clock.now = now
        hook.select([0], [], [], 1)
    assert calls == [5.0]


def _write_stat(path, idle, busy):
    # Two CPUs; the aggregate line first, as in Linux's /proc/stat.
    path.write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\nintr 1\n")


def test_spare_cpu_counts_idle_cores_between_two_samples(tmp_path):
    stat = tmp_path / "stat"
    _write_stat(stat, idle=1000, busy=1000)
    spare = SpareCpu(cores=0.75, path=str(stat), cpus=2)
    assert spare() is False  # a first sample says nothing about the time since
    _write_stat(stat, idle=1010, busy=1190)  # 200 ticks on 2 CPUs, 10 idle: 0.1 core idle
    assert spare() is False
    _write_stat(stat, idle=1110, busy=1290)  # 100 idle of 200: one core idle
    assert spare() is True
    _write_stat(stat, idle=1110, busy=1290)  # no time passed: no evidence either way
    assert spare() is False


def test_without_proc_stat_the_cpu_always_counts_as_spare(tmp_path):
    spare = SpareCpu(path=str(tmp_path / "missing"))
    assert spare() is True and spare() is True
