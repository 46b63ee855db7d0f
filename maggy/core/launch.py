"""Launching an experiment's one Spark job, on a classic session or through Spark Connect.

Both launchers run the same task function once per trial slot and differ only in how they
reach Spark:

* :class:`ClassicLaunch`: ``sc.parallelize(range(slots), slots).mapPartitions(task).collect()``
  under one job group (cancelled with ``cancelJobGroup``).
* :class:`ConnectLaunch`: ``spark.range(0, slots, 1, slots).mapInPandas(...)`` under one
  job tag (cancelled with ``interruptTag``); a Connect session has no SparkContext, so the
  slot count comes from the session's configuration.

Either way the training data does not travel with the job: the executors read it where it
lives (:mod:`maggy.core.data`).

Per-trial resources (``gpus_per_trial``, ``cpus_per_trial``) are a task
``ResourceProfile`` on a cluster; a local master cannot schedule resources, so there maggy
lowers the slot count to what the machine has and each slot takes its own GPUs
(:mod:`maggy.core.devices`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import threading
import uuid
from typing import Any, Callable, Iterator, Optional

from maggy.core.job_end import end_in_background, end_job, wait_for_job_end
from maggy.core.session import DAEMON_MODULE_KEY, MAGGY_DAEMON, connect_slots, decide_driver_hosts, is_connect

__all__ = [
    "Launch",
    "ClassicLaunch",
    "ConnectLaunch",
    "make_launch",
    "local_slot_cap",
    "maggy_settings_for_job",
]

logger = logging.getLogger(__name__)


def local_slot_cap(available: int, gpus_per_trial: Optional[int], cpus_per_trial: Optional[int], gpu_count: int) -> int:
    """Trial slots a local master can run at once with these per-trial resources.

    Example:
        >>> local_slot_cap(8, gpus_per_trial=2, cpus_per_trial=None, gpu_count=4)
        2
        >>> local_slot_cap(8, gpus_per_trial=None, cpus_per_trial=3, gpu_count=0)
        2
    """
    slots = available // (cpus_per_trial or 1)
    if gpus_per_trial:
        slots = min(slots, gpu_count // gpus_per_trial)
    return max(1, slots)


def _local_gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([a for a in visible.split(",") if a.strip()])
    import torch

    return torch.cuda.device_count()


def _same_interpreter(python_exec: str, executable: str = sys.executable) -> bool:
    """Whether ``python_exec`` (a path or a name on ``PATH``) runs the interpreter at ``executable``.

    A venv's ``bin`` holds ``python``, ``python3`` and ``python3.11``, links to one file; a
    link's target is shared by every venv made from that Python, so the folder must match too.
    """
    found = shutil.which(python_exec)
    if not found or not executable:
        return False
    found = os.path.abspath(found)
    try:
        return os.path.dirname(found) == os.path.dirname(os.path.abspath(executable)) and os.path.samefile(
            found, executable
        )
    except OSError:
        return False


#: The Spark property for the size of the blocks a broadcast is cut into.
BROADCAST_BLOCK_KEY = "spark.broadcast.blockSize"
#: Broadcast block size during maggy's job on a local master. Spark broadcasts every job's
#: task binary, and allocates each block whole (4 MiB by default) for a task binary of a few
#: kilobytes. On a driver heap of G1 regions of 1 MiB (heaps up to 2 GiB) that is a
#: humongous allocation, which starts a concurrent marking cycle while a fresh session's
#: heap is small; on a local master that collector runs on the trials' cores (on a 2-core
#: machine, half its CPU during some of the first few dozen ``lagom()`` calls:
#: benchmarks/README, issue 16 seventh pass). Below half a region, blocks are ordinary
#: allocations. maggy broadcasts no data (it stages datasets to files), so the smaller
#: blocks cut the task binary and, above 1 MiB, the pickled ``train_fn`` that PySpark
#: broadcasts. Not on a cluster: there the driver's collector does not compete with the
#: trials, and an executor fetches a broadcast block by block, so a large closure would
#: take 16 times as many fetches.
JOB_BROADCAST_BLOCK_SIZE = "256k"


@contextlib.contextmanager
def maggy_settings_for_job(sc: Any, local: bool) -> Iterator[Callable[[], None]]:
    """Within the block, the session's live configuration has maggy's settings for its job.

    Spark reads these when the job is submitted and when each task starts its Python worker,
    so setting them for the length of maggy's job changes only that job; each is removed
    afterwards, and a key the user has set is never touched. The block gets a function that
    removes them sooner (from any thread): once the tasks are let go, no worker starts for
    maggy any more, and the job may end after ``lagom()`` has returned (:mod:`maggy.core.job_end`).

    * ``spark.broadcast.blockSize`` is :data:`JOB_BROADCAST_BLOCK_SIZE` on a local master
      (see there why).
    * ``spark.python.daemon.module`` is maggy's daemon, so its trials fork from it. A
      session the user built runs ``pyspark.daemon``, which compiles pyspark again from
      Spark's ``pyspark.zip`` in every fresh session (the first trial started after 2.3 s
      instead of 1.1 s on a 2-core machine, see :mod:`maggy.core.worker_daemon`). Spark
      keys its daemons by module, so the user's own jobs go back to ``pyspark.daemon``
      (still running) once the block ends. Only where that is safe and has an effect: a
      local master (a cluster's executors keep the configuration they started with) whose
      workers run this interpreter (which has maggy).

    A configuration that cannot be reached leaves the session as it is: the job runs as
    well without these.

    Args:
        sc: the session's SparkContext.
        local: whether its master is local (:attr:`Launch.local`).
    """
    settings: dict[str, str] = {}
    changed: dict[str, str] = {}
    conf = None
    try:
        if local:
            settings[BROADCAST_BLOCK_KEY] = JOB_BROADCAST_BLOCK_SIZE
            if _same_interpreter(sc.pythonExec):
                settings[DAEMON_MODULE_KEY] = MAGGY_DAEMON
        conf = sc._conf
        for key, value in settings.items():
            if conf.get(key) is None:
                conf.set(key, value)
                changed[key] = value
    except Exception:  # private API of pyspark
        logger.debug("cannot set %s on this session", sorted(settings), exc_info=True)

    def restore() -> None:
        while changed:
            key, value = changed.popitem()  # atomic: each key is removed once
            with contextlib.suppress(Exception):
                if conf.get(key) == value:
                    conf._jconf.remove(key)

    try:
        yield restore
    finally:
        restore()


class Launch:
    """One experiment's Spark job: where executors call back, how many slots, run, cancel.

    Args:
        spark: the session (classic or Connect).
        gpus_per_trial: GPUs each trial gets (``None``: what the session assigns per task).
        cpus_per_trial: CPU cores each trial gets (``None``: ``spark.task.cpus``).
    """

    connect = False
    #: Whether the job may end after ``lagom()`` has returned (:mod:`maggy.core.job_end`).
    ends_in_background = False

    def __init__(self, spark: Any, gpus_per_trial: Optional[int] = None, cpus_per_trial: Optional[int] = None):
        self.spark = spark
        self.gpus_per_trial = gpus_per_trial
        self.cpus_per_trial = cpus_per_trial
        self.tag = f"maggy-{uuid.uuid4().hex[:12]}"
        self._conf: dict[str, Optional[str]] = {}

    def conf(self, key: str) -> Optional[str]:
        """One configuration value of the session (read once)."""
        if key not in self._conf:
            self._conf[key] = self.spark.conf.get(key, None)
        return self._conf[key]

    @property
    def master(self) -> str:
        return self.conf("spark.master") or "local"

    @property
    def local(self) -> bool:
        return self.master.startswith("local")

    def hosts(self) -> tuple[str, str]:
        """``(bind, advertise)`` of the driver's gRPC server (see :func:`~maggy.core.session.decide_driver_hosts`)."""
        driver_host = None if self.local else self.conf("spark.driver.host")
        return decide_driver_hosts(self.master, driver_host, connect=self.connect)

    def check(self) -> None:
        """Raises, before any trial runs, what this session cannot do with this experiment.

        Raises:
            ValueError: per-trial resources the session cannot schedule.
        """
        if not (self.gpus_per_trial or self.cpus_per_trial):
            return
        if self.local:
            if self.gpus_per_trial and _local_gpu_count() < self.gpus_per_trial:
                raise ValueError(
                    f"gpus_per_trial={self.gpus_per_trial} but this machine shows {_local_gpu_count()} GPU(s) "
                    f"to the local master {self.master!r}; lower gpus_per_trial, or set it to None to run on the CPU"
                )
            return
        if (self.conf("spark.dynamicAllocation.enabled") or "").lower() == "true":
            raise ValueError(
                "gpus_per_trial/cpus_per_trial are requested with a task ResourceProfile, which Spark "
                "supports only with dynamic allocation off; set spark.dynamicAllocation.enabled=false, or "
                "leave both at None and set spark.task.resource.gpu.amount / spark.task.cpus on the session"
            )

    def available_slots(self) -> Optional[int]:
        """Parallel tasks the session offers (None when it cannot tell)."""
        raise NotImplementedError

    def slots(self, num_trials: int) -> int:
        """What the session offers for this experiment's tasks (``num_trials`` when it cannot tell)."""
        available = self.available_slots()
        if available is None:
            logger.warning(
                "Spark Connect session: the configuration does not say how many tasks run at once; "
                "running one task per trial (%d). Set num_executors to choose.", num_trials,
            )
            return num_trials
        if self.local and (self.gpus_per_trial or self.cpus_per_trial):
            capped = local_slot_cap(available, self.gpus_per_trial, self.cpus_per_trial,
                                    _local_gpu_count() if self.gpus_per_trial else 0)
            if capped < available:
                logger.warning("local master %s: %d trial slot(s) fit gpus_per_trial=%s, cpus_per_trial=%s",
                               self.master, capped, self.gpus_per_trial, self.cpus_per_trial)
            return capped
        return max(1, available // (self.cpus_per_trial or 1))

    def profile(self):
        """The task ResourceProfile for per-trial resources; None on a local master or without any."""
        if self.local or not (self.gpus_per_trial or self.cpus_per_trial):
            return None
        from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

        requests = TaskResourceRequests()
        if self.cpus_per_trial:
            requests = requests.cpus(self.cpus_per_trial)
        if self.gpus_per_trial:
            requests = requests.resource("gpu", self.gpus_per_trial)
        return ResourceProfileBuilder().require(requests).build

    def run(self, slots: int, task: Callable, description: str) -> list[str]:
        """Runs ``task`` once per slot, blocking until every task returned.

        ``task`` takes the partition's iterator and yields strings (the tracebacks of failures
        to load the experiment's code); returns what all tasks yielded.
        """
        raise NotImplementedError

    def cancel(self) -> None:
        """Cancels the job (from any thread)."""
        raise NotImplementedError

    def tasks_released(self) -> None:
        """Called when the driver has let every task go: what only trials needed can be undone."""

    def end(self, job: threading.Thread, then: Callable[[], None]) -> None:
        """Waits for ``job`` (the thread in :meth:`run`) to end, then calls ``then``.

        Cancels the job if it has not ended in :data:`~maggy.core.job_end.CANCEL_AFTER_S`.
        """
        end_job(job, self.cancel)
        then()


class ClassicLaunch(Launch):
    """The job on a classic session: an RDD of one partition per slot, under one job group.

    The job ends after ``lagom()`` has returned (:mod:`maggy.core.job_end`); the next job
    waits for it.
    """

    ends_in_background = True

    def __init__(self, spark: Any, *args: Any, **kwargs: Any):
        super().__init__(spark, *args, **kwargs)
        self.sc = spark.sparkContext
        self._restore_settings: Callable[[], None] = lambda: None

    @property
    def master(self) -> str:
        return self.sc.master  # one attribute read; conf.get would cross into the JVM

    def available_slots(self) -> int:
        return self.sc.defaultParallelism

    def run(self, slots: int, task: Callable, description: str) -> list[str]:
        wait_for_job_end(self.sc)  # maggy's last job here: its Python workers are about to be free
        self.sc.setJobGroup(self.tag, description, interruptOnCancel=True)
        rdd = self.sc.parallelize(range(slots), slots)
        profile = self.profile()
        if profile is not None:
            rdd = rdd.withResources(profile)
        with maggy_settings_for_job(self.sc, self.local) as self._restore_settings:
            return rdd.mapPartitions(task).collect()

    def cancel(self) -> None:
        self.sc.cancelJobGroup(self.tag)

    def tasks_released(self) -> None:
        self._restore_settings()  # before lagom() returns: the user's next job runs without them

    def end(self, job: threading.Thread, then: Callable[[], None]) -> None:
        """Returns at once: the job ends on a thread of :mod:`maggy.core.job_end`, which then calls ``then``."""
        end_in_background(self.sc, job, self.cancel, then)


def _pandas_task(task: Callable) -> Callable:
    """``task`` as a ``mapInPandas`` function: one row per string the task yields."""

    def run(batches):
        import pandas as pd

        yield pd.DataFrame({"failure": list(task(batches))}, dtype="object")

    return run


class ConnectLaunch(Launch):
    """The job through Spark Connect: ``mapInPandas`` over one partition per slot, under one job tag."""

    connect = True

    def available_slots(self) -> Optional[int]:
        keys = ("spark.default.parallelism", "spark.executor.instances", "spark.executor.cores",
                "spark.cores.max", "spark.task.cpus")
        return connect_slots({"spark.master": self.master, **{k: self.conf(k) for k in keys}})

    def check(self) -> None:
        """Also raises what Spark Connect cannot do: job tags before Spark 3.5, per-trial
        resources before Spark 4.0."""
        version = tuple(int(p) for p in self.spark.version.split(".")[:2] if p.isdigit())
        if version < (3, 5):
            raise ValueError(f"maggy needs Spark 3.5 or newer behind a Spark Connect session (job tags); "
                             f"this server runs Spark {self.spark.version}")
        if (self.gpus_per_trial or self.cpus_per_trial) and not self.local and version < (4, 0):
            raise ValueError(
                f"gpus_per_trial/cpus_per_trial need Spark 4.0 or newer behind a Spark Connect session "
                f"(task ResourceProfiles in mapInPandas); this server runs Spark {self.spark.version}. Leave both "
                "at None and set spark.task.resource.gpu.amount / spark.task.cpus on the cluster instead"
            )
        super().check()

    def run(self, slots: int, task: Callable, description: str) -> list[str]:
        profile = self.profile()
        kwargs = {"profile": profile} if profile is not None else {}
        # Tags apply to what this thread starts in this session; interruptTag works from any thread.
        self.spark.addTag(self.tag)
        try:
            frame = self.spark.range(0, slots, 1, slots).mapInPandas(_pandas_task(task), "failure string", **kwargs)
            return [row.failure for row in frame.collect()]
        finally:
            self.spark.removeTag(self.tag)

    def cancel(self) -> None:
        self.spark.interruptTag(self.tag)


def make_launch(spark: Any, gpus_per_trial: Optional[int] = None, cpus_per_trial: Optional[int] = None) -> Launch:
    """The launcher for ``spark``: :class:`ConnectLaunch` for a Spark Connect session, else :class:`ClassicLaunch`."""
    kind = ConnectLaunch if is_connect(spark) else ClassicLaunch
    return kind(spark, gpus_per_trial, cpus_per_trial)
