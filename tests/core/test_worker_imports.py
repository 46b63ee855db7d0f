"""A fresh Spark worker imports torch only when a trial needs it.

On a session the user created, Spark's Python workers start cold: loading the task used to
import torch (1.5-3 s on 2 cores) before the first trial could start, even when that trial
never touched torch. These probes unpickle the task exactly as such a worker does
(cloudpickle, in a fresh interpreter), run a trial's train_fn as the task does, and
check what was imported.
"""

import subprocess
import sys
import textwrap

from pyspark import cloudpickle

from maggy.ablation import AblationStudy
from maggy.core.executor import ExecutorContext, run_task
from maggy.core.shipping import pack
from maggy.util import pick_device


class PlainDataset:
    input_shape = (4,)

    def ablate_feature(self, feature):
        pass


def plain_dataset():
    return PlainDataset()


def sleep_train(reporter):
    return 0.5


cloudpickle.register_pickle_by_value(sys.modules[__name__])

PROBE = textwrap.dedent("""
    import sys
    from pyspark import cloudpickle
    task, payload = cloudpickle.loads(sys.stdin.buffer.read())
    from maggy.core.shipping import unpack
    ctx = unpack(payload)  # what the task does first
    from maggy.core.executor import _call_train_fn
    from maggy.core.reporter import Reporter
    from maggy.util import pick_device
    device = pick_device([], 0)
    # Seeded, as every trial of a study with a seed is.
    metric = _call_train_fn(ctx, {"trial_id": "t1", "ablated_feature": "a", "seed": 3}, Reporter(lambda *a: False))
    print("torch" in sys.modules, device, metric, "pyarrow" in sys.modules)
""")


def _load_in_fresh_worker(payload: bytes) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE], input=payload, capture_output=True, check=True, timeout=120)
    return out.stdout.decode().strip()


def test_a_task_whose_trials_need_no_torch_loads_without_importing_it():
    study = AblationStudy(dataset_generator=plain_dataset)
    study.features.include("a", "b")
    ctx = ExecutorContext(address="127.0.0.1:1", token="t", study=study, train_fn=sleep_train)
    payload = pack(ctx)
    loaded, device, metric, arrow = _load_in_fresh_worker(cloudpickle.dumps((run_task(payload), payload))).split()
    assert float(metric) == 0.5  # the trial ran
    assert loaded == "False"  # without torch, though it was seeded
    assert arrow == "False"  # nor the data reader, for a study whose dataset_generator makes the data
    assert device == pick_device([], 0)  # on the same device as a worker that has torch

