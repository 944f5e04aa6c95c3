"""Red-team attacks on the grader's trust model (docs/GRADING.md), second round: each test is an
attack that won against the code it was written on; those that are closed assert the hole is closed,
those that are not are marked xfail(strict=True) with the reason, so the hole stays recorded.

- Another local user (uid 65534) pre-creates the grader's run folder, whose name
  (`resnet-grading-<pid>-<start time>`) anyone can read from /proc once the grader starts: the grader
  used it (mkdir exist_ok), so the other user owned the folder that holds every sandbox's files and
  the run's TLS key folder, and could rename the grader's scratch folder and put one of their own in
  its place (the producer a sandbox runs, the learner modules it imports: any student's grade).
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from resnet_course.grading import sandbox

OTHER_USER = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]


def _as_other_user(*command):
    return subprocess.run([*OTHER_USER, *command], capture_output=True, text=True)


@pytest.fixture
def shared_tmp(monkeypatch):
    """A temporary folder like /tmp (1777) that this process's scratch folders go to."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    base.chmod(0o1777)
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    monkeypatch.setattr(sandbox, "_scratch_parent", None)
    monkeypatch.setattr(sandbox, "_scratch_tag", None, raising=False)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_another_user_cannot_plant_the_run_folder(shared_tmp):
    planted = shared_tmp / f"{sandbox.SCRATCH_PREFIX}{sandbox.owner_tag()}"
    made = _as_other_user("mkdir", "-m", "0777", str(planted))
    assert made.returncode == 0, made.stderr
    workdir = sandbox.new_scratch_folder()
    try:
        parent = workdir.parent.lstat()
        assert workdir.parent != planted
        assert parent.st_uid == os.geteuid() and parent.st_mode & 0o777 == 0o700
        # the other user can neither list the run folder nor move the grader's folder out of it
        swap = _as_other_user("sh", "-c", f"mv {workdir} {planted}/moved && mkdir {workdir} && echo swapped")
        assert "swapped" not in swap.stdout
        assert workdir.lstat().st_uid == os.geteuid()
    finally:
        shutil.rmtree(workdir.parent, ignore_errors=True)


def test_the_sweep_leaves_another_users_folders_alone(shared_tmp):
    dead = shared_tmp / f"{sandbox.SCRATCH_PREFIX}1-1"  # a tag no live process has
    assert _as_other_user("mkdir", str(dead)).returncode == 0
    assert dead not in sandbox.sweep_leftovers()
    assert dead.is_dir()
