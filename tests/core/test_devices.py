"""Which GPUs a trial slot sees (no GPU needed: the addresses are Spark's or the slot's share)."""

import os

import pytest

from maggy.core import devices
from maggy.core.launch import local_slot_cap


class _Resource:
    def __init__(self, addresses):
        self.addresses = addresses


@pytest.fixture
def fresh_process(monkeypatch):
    """A worker process that has claimed no GPU yet."""
    monkeypatch.setattr(devices, "_claimed", None)
    monkeypatch.setattr(devices, "_outer_visible", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)


def test_spark_addresses_win_over_the_local_share(fresh_process):
    assert devices.task_gpus({"gpu": _Resource(["3"])}, partition=0, gpus_per_trial=1) == ["3"]
    assert devices.task_gpus({}, partition=0, gpus_per_trial=None) == []


def test_local_slots_take_disjoint_shares_of_the_visible_gpus(fresh_process, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    # Rule: two slots never share a GPU, and each gets gpus_per_trial of them.
    assert devices.task_gpus({}, 0, 2) == ["4", "5"]
    assert devices.task_gpus({}, 1, 2) == ["6", "7"]
    with pytest.raises(RuntimeError, match="gpus_per_trial=2"):
        devices.task_gpus({}, 2, 2)


def test_claimed_gpus_are_all_the_trial_sees(fresh_process):
    assert devices.claim_gpus(["1", "0"]) == "cuda:0"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,0"
    # The same worker may serve the same GPUs again...
    assert devices.claim_gpus(["1", "0"]) == "cuda:0"
    # ...but CUDA fixed its view of the devices: other GPUs need a fresh worker.
    with pytest.raises(devices.GpuWorkerStale, match=r"\['1', '0'\].*\['2'\]"):
        devices.claim_gpus(["2"])


def test_local_slot_cap():
    assert local_slot_cap(4, gpus_per_trial=1, cpus_per_trial=None, gpu_count=2) == 2
    assert local_slot_cap(4, gpus_per_trial=None, cpus_per_trial=2, gpu_count=0) == 2
    assert local_slot_cap(1, gpus_per_trial=None, cpus_per_trial=4, gpu_count=0) == 1
