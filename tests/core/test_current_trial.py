"""Where maggy.tensorboard.logdir() points, on the driver's filesystem and off it."""

import os
import shutil
import tempfile

from maggy.core import current_trial


def test_an_executor_that_sees_the_run_directory_writes_into_it(tmp_path):
    run = tmp_path / "exp" / "run_1"
    run.mkdir(parents=True)
    with current_trial.running("t1", str(run / "tensorboard"), print):
        assert current_trial.tensorboard_dir() == str(run / "tensorboard" / "t1")
    assert (run / "tensorboard" / "t1").is_dir()


def test_an_executor_that_cannot_see_the_run_directory_gets_a_local_folder_and_says_so(tmp_path):
    lines = []
    root = str(tmp_path / "on-the-driver" / "exp" / "run_7" / "tensorboard")
    with current_trial.running("t1", root, lines.append):
        folder = current_trial.tensorboard_dir()
        assert current_trial.tensorboard_dir() == folder  # decided once per trial
    try:
        # Rule: a folder under this machine's temporary directory, named after experiment and
        # run, and one line in the trial's log saying where.
        assert folder == os.path.join(tempfile.gettempdir(), "maggy-tensorboard", "exp", "run_7", "t1")
        assert os.path.isdir(folder)
        assert len(lines) == 1 and folder in lines[0] and "not visible" in lines[0]
    finally:
        shutil.rmtree(os.path.join(tempfile.gettempdir(), "maggy-tensorboard", "exp", "run_7"), ignore_errors=True)
