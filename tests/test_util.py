"""maggy.util: the device a trial runs on, and seeding."""

import subprocess
import sys

import pytest
import torch

import maggy.util
from maggy import experiment
from maggy.ablation import AblationStudy
from maggy.util import get_device, pick_device, set_seed


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def four_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


@pytest.fixture
def outside_a_trial():
    maggy.util._set_current_device(None)
    yield
    maggy.util._set_current_device(None)


@pytest.mark.parametrize(
    "addresses, slot, expected",
    [(["3"], 0, "cuda:3"), (["3"], 7, "cuda:3"), (["1", "2"], 0, "cuda:1"), (["0"], 5, "cuda:0")],
)
def test_the_gpu_spark_assigned_wins(addresses, slot, expected, no_cuda):
    # Rule: a task with a GPU from Spark uses it (the first one), whatever its slot and
    # whether this process itself sees CUDA.
    assert pick_device(addresses, slot) == expected


@pytest.mark.parametrize("slot, expected", [(0, "cuda:0"), (1, "cuda:1"), (3, "cuda:3"), (4, "cuda:0"), (9, "cuda:1")])
def test_without_an_assigned_gpu_slots_go_round_robin_over_local_gpus(slot, expected, four_gpus):
    # Rule: no GPU from Spark but local CUDA devices: slot modulo the device count.
    assert pick_device([], slot) == expected
    assert pick_device(None, slot) == expected


@pytest.mark.parametrize("addresses", [None, []])
@pytest.mark.parametrize("slot", [0, 1, 5])
def test_without_any_gpu_it_is_the_cpu(addresses, slot, no_cuda):
    # Rule: no assigned GPU and no local CUDA device: the CPU.
    assert pick_device(addresses, slot) == "cpu"


def test_get_device_inside_a_trial_is_the_tasks_device(four_gpus, outside_a_trial, monkeypatch):
    made_current = []
    monkeypatch.setattr(torch.cuda, "set_device", made_current.append)
    # Rule: inside a trial, get_device() is what the executor picked for its task, as a
    # torch.device, and a GPU also becomes the process's current CUDA device.
    maggy.util._set_current_device("cuda:3")
    assert get_device() == torch.device("cuda:3")
    assert made_current == [torch.device("cuda:3")]
    # ...while the CPU touches no CUDA state.
    maggy.util._set_current_device("cpu")
    assert get_device() == torch.device("cpu")
    assert made_current == [torch.device("cuda:3")]


def test_get_device_outside_a_trial_falls_back(outside_a_trial, monkeypatch):
    # Rule: outside a trial, the first CUDA device if there is one, else the CPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert get_device() == torch.device("cuda:0")


def test_set_seed_repeats_torch_draws_and_none_changes_nothing():
    # Rule: the same seed gives the same draws; None leaves the generators alone.
    set_seed(7)
    first = torch.rand(3)
    set_seed(7)
    assert torch.equal(torch.rand(3), first)
    state = torch.get_rng_state()
    set_seed(None)
    assert torch.equal(torch.get_rng_state(), state)


def _device_of_the_trial():
    import maggy.util

    device = maggy.util.get_device()
    return {"metric": 1.0 if device == torch.device("cpu") else 0.0}


def test_a_trial_on_a_machine_without_gpus_runs_on_the_cpu(spark, tmp_path):
    # Rule: end to end, the executor tells the train_fn its device; here (no GPU) the CPU.
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = experiment.lagom(
        train_fn=_device_of_the_trial, ablation_study=AblationStudy(), repeats=2, name="device",
        direction="max", experiment_dir=str(tmp_path), num_executors=2, es_policy="none", verbose=False,
    )
    assert list(result["trials"]["metric"]) == [1.0, 1.0]


def _in_a_fresh_interpreter(*lines: str) -> list[str]:
    """What ``lines`` print, run in a fresh interpreter (as in a new Spark worker, nothing imported yet)."""
    out = subprocess.run([sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_a_seed_set_before_torch_is_imported_still_seeds_it():
    # Rule: seeding does not import torch (seconds in a fresh worker) yet torch's first
    # draws after its import are the seeded ones.
    assert _in_a_fresh_interpreter(
        "import sys",
        "from maggy.util import set_seed",
        "set_seed(11)",
        "assert 'torch' not in sys.modules, 'set_seed imported torch'",
        "import torch",
        "first = torch.rand(4)",
        "set_seed(11)",
        "print(torch.equal(torch.rand(4), first))",
    ) == ["True"]


def test_a_seed_set_before_numpy_is_imported_still_seeds_it_and_the_latest_seed_wins():
    # Importing numpy to seed it delayed every first trial by ~0.1 s. Two trials seed
    # before numpy is imported: the second trial's seed is the one numpy's first draws
    # follow, and torch is seeded as well.
    assert _in_a_fresh_interpreter(
        "import sys",
        "from maggy.util import set_seed",
        "set_seed(5)",
        "set_seed(12)",
        "assert 'numpy' not in sys.modules, 'set_seed imported numpy'",
        "import numpy as np",
        "first = np.random.rand(4)",
        "import torch",
        "drawn = torch.rand(4)",
        "set_seed(12)",
        "print(np.array_equal(np.random.rand(4), first), torch.equal(torch.rand(4), drawn))",
    ) == ["True", "True"]
