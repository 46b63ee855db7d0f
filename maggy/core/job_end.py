"""The end of an experiment's Spark job, after ``lagom()`` has returned.

When the last trial has ended, every task is waiting for the driver's next answer. The driver
writes the report first and only then lets the tasks go, so the plot is not drawn while
Spark ends the job: on a session's first job that takes 0.06-0.14 s of more than one core
on a 2-core machine (the JVM loads and compiles the code that ends tasks and jobs for the
first time), and drawing beside it took up to twice as long (benchmarks/README, issue 16
eighth pass). The job then ends on a thread of its own while ``lagom()`` returns.

Everything that needs the job to have ended waits for it: the next experiment on the
session (else Spark would start fresh Python workers beside the ones still ending), the
session's ``stop()`` (else Spark kills tasks that are ending and logs their errors), and
the interpreter's exit. At exit it waits before the interpreter stops its thread pools: a
task that registers late still needs the driver's gRPC server to answer it "done", and the
server answers from such a pool.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Callable

__all__ = ["end_job", "end_in_background", "wait_for_job_end"]

logger = logging.getLogger(__name__)

#: Seconds to wait for a job before cancelling it: a task still busy with a trial presumed
#: lost (and already re-run elsewhere) would keep the job alive, and its result is not needed.
CANCEL_AFTER_S = 30.0

#: SparkContext -> the thread ending maggy's last job on it.
_ending: "weakref.WeakKeyDictionary[Any, threading.Thread]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def end_job(job: threading.Thread, cancel: Callable[[], None]) -> None:
    """Waits for the thread running the job; cancels the job if it has not ended in :data:`CANCEL_AFTER_S`."""
    job.join(timeout=CANCEL_AFTER_S)
    if job.is_alive():
        cancel()
        job.join(timeout=CANCEL_AFTER_S)


def end_in_background(sc: Any, job: threading.Thread, cancel: Callable[[], None], then: Callable[[], None]) -> None:
    """Ends the job (:func:`end_job`) on a thread of its own, then calls ``then`` (e.g. stops the server).

    Until it has, ``sc.stop()`` waits for it: the session's stop is wrapped on this one
    instance, and the wrapper removes itself once the job has ended.

    Args:
        sc: the classic session's SparkContext.
        job: the thread blocked in the job's action.
        cancel: cancels the job (from any thread).
        then: what must wait for the job's end.
    """

    def stop(*args: Any, **kwargs: Any) -> Any:
        wait_for_job_end(sc)
        return type(sc).stop(sc, *args, **kwargs)

    def finish() -> None:
        try:
            end_job(job, cancel)
            then()
        except Exception:  # nobody is waiting for a result any more
            logger.debug("ending maggy's Spark job", exc_info=True)
        finally:
            with _lock:
                if vars(sc).get("stop") is stop:
                    del sc.stop

    thread = threading.Thread(target=finish, name="maggy-job-end")  # not a daemon: exit waits for it
    with _lock:
        _wait_at_exit()
        if "stop" not in vars(sc):
            sc.stop = stop
        _ending[sc] = thread
        thread.start()


def wait_for_job_end(sc: Any) -> None:
    """Returns once maggy's last job on ``sc`` has ended (at once if there is none)."""
    with _lock:
        thread = _ending.get(sc)
    if thread is not None:
        thread.join()


_exit_hook_registered = False


def _wait_at_exit() -> None:
    """Makes the interpreter's exit wait for every job still ending (once per process; lock held).

    ``threading._register_atexit`` hooks run in reverse order of registration, before the
    interpreter joins its threads. ``concurrent.futures`` registers one that stops every
    thread pool, the gRPC server's among them, when it is imported (with grpc, before any
    experiment), so this hook runs first. Without that private hook, exit still waits for
    the thread (it is not a daemon) but a task that registers late would get no answer.
    """
    global _exit_hook_registered
    register = getattr(threading, "_register_atexit", None)
    if _exit_hook_registered or register is None:
        return
    register(lambda: [thread.join() for thread in list(_ending.values())])
    _exit_hook_registered = True
