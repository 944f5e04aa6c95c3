"""The per-submission grading step in its sandbox (issue 12, items 2, 3 and 6; issue 18, items 2 and 3).

A correct submission gets every point, each wrong function loses exactly its cell, instructor files,
other submissions and the network are out of reach, the limits end runaway submissions with a
recorded reason, and the feedback holds no hidden test. Whatever a submission writes stays in the
sandbox's bounded tmpfs (the host's disk does not grow), scratch folders of killed runs are swept,
and the preflight names what is missing when the sandbox cannot start.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from resnet_course import paths
from resnet_course.grading import sandbox
from resnet_course.grading.submission import Limits, grade_submission, load_material
from tests import grading_submissions as submissions

LIMITS = Limits(wall_seconds=60)
FULL = {"identity_block_test": 3, "convolutional_block_test": 3, "ResNet50_test": 4}


@pytest.fixture(scope="module")
def material():
    return load_material()


@pytest.fixture(scope="module")
def correct_result(material):
    return grade_submission("correct", submissions.correct(), material, LIMITS)


def points(result):
    return {cell.grade_id: cell.points for cell in result.cells}


def test_correct_submission_gets_full_points(correct_result):
    print(f"correct submission graded in {correct_result.seconds:.1f} s")  # the <= 30 s target, reported
    assert points(correct_result) == FULL and correct_result.reason is None
    assert all(cell.message == "All tests passed!" for cell in correct_result.cells)


def test_feedback_shows_no_hidden_test(correct_result, material):
    feedback = correct_result.feedback_notebook
    assert "identity_block_test(globals().get(" in feedback and "All tests passed!" in feedback
    for secret in ("HIDDEN", "check_resnet50", "23608202", "23,608,202", "hidden 1"):
        assert secret not in feedback
    for graded in material.graded:
        assert graded.hidden.strip() and graded.hidden not in feedback


@pytest.mark.parametrize("function", submissions.SOLUTION_CELLS)
def test_each_wrong_function_loses_exactly_its_cell(material, function):
    result = grade_submission(f"wrong {function}", submissions.wrong(function), material, LIMITS)
    lost = submissions.TEST_CELLS[function]
    assert points(result) == {**FULL, lost: 0} and result.reason is None
    message = next(cell.message for cell in result.cells if cell.grade_id == lost)
    assert message.startswith(function) and "HIDDEN" not in result.feedback_notebook


def test_untouched_release_scores_zero_with_the_checks_message(material):
    result = grade_submission("untouched", submissions.untouched(), material, LIMITS)
    assert points(result) == dict.fromkeys(FULL, 0) and result.reason is None
    assert all("NotImplementedError" in cell.message for cell in result.cells)


def test_missing_solution_cell_and_invalid_notebooks(material):
    result = grade_submission("deleted", submissions.deleted_cells("identity_block"), material, LIMITS)
    assert result.reason == "cells missing: identity_block"
    assert points(result)["identity_block_test"] == 0 and points(result)["convolutional_block_test"] == 3
    for name, data in (("corrupt", submissions.corrupt_json()), ("not a notebook", submissions.not_a_notebook())):
        result = grade_submission(name, data, material, LIMITS)
        assert result.reason.startswith("invalid notebook: ") and sum(points(result).values()) == 0


def test_instructor_files_other_submissions_and_network_are_out_of_reach(material, tmp_path):
    other_submission = tmp_path / "other" / "ResNet50.ipynb"
    other_submission.parent.mkdir()
    other_submission.write_bytes(submissions.correct())
    gradebook = tmp_path / "gradebook.db"
    gradebook.write_text("grades")
    targets = [paths.SOURCE_NOTEBOOK, paths.ROOT / "resnet_course" / "course" / "reference.py", other_submission, gradebook]
    probe = (
        "import socket\n"
        "reached = []\n"
        f"for path in {[str(p) for p in targets]!r}:\n"
        "    try:\n"
        "        reached.append(open(path).read()[:300])\n"
        "    except OSError:\n"
        "        pass\n"
        "    try:\n"
        "        open(path, 'a').write('graded by me')\n"
        "        reached.append('wrote ' + path)\n"
        "    except OSError:\n"
        "        pass\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
        "    reached.append('network')\n"
        "except OSError:\n"
        "    pass\n"
        "def ResNet50(*args, **kwargs):\n"
        "    raise AssertionError(f'reached {reached!r}')\n")
    result = grade_submission("snoop", submissions.with_cell_source("ResNet50", probe), material, LIMITS)
    assert points(result) == {**FULL, "ResNet50_test": 0}
    assert "raised AssertionError: reached []" in next(c.message for c in result.cells if c.grade_id == "ResNet50_test")
    assert "HIDDEN" not in result.feedback_notebook  # the solution text there is the student's own (reference copy)
    assert gradebook.read_text() == "grades"


@pytest.mark.parametrize("name, code, limits, reason", [
    ("infinite loop", "while True:\n    pass\n", Limits(wall_seconds=15), "timeout (15 s)"),
    ("memory bomb", "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 2**20))\n",
     Limits(wall_seconds=40, memory_bytes=2 * 2**30), "memory limit (2 GiB)"),
    ("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
     # 40 s like the memory bomb: under a load of 15 the producer's start alone took over 15 s (a timeout)
     Limits(wall_seconds=40, max_processes=64), "process limit"),
])
def test_runaway_submissions_end_with_their_limit(material, name, code, limits, reason):
    started = time.monotonic()
    result = grade_submission(name, submissions.stub_with_code("identity_block", code), material, limits)
    assert result.reason == reason
    assert sum(points(result).values()) == 0 and all(cell.message == reason for cell in result.cells)
    assert time.monotonic() - started < limits.wall_seconds + 30  # killed, not waited for
    child = os.fork()  # the machine still forks
    if child == 0:
        os._exit(0)
    assert os.waitpid(child, 0)[1] == 0


# ---------------------------------------------------------------------------------------------
# Bounded writes, scratch folders, preflight (issue 18, items 2 and 3)
# ---------------------------------------------------------------------------------------------

ENDLESS_WRITER = """
import errno, os, sys
written, error = 0, None
block = b"x" * (64 * 2**20)
for target in ("/sandbox/filler", "/tmp/filler"):
    try:
        with open(target, "wb") as out:
            while True:
                out.write(block)
                out.flush()
                written += len(block)
    except OSError as raised:
        error = errno.errorcode.get(raised.errno)
    print(target, written, error, flush=True)
"""


def folder_bytes(folder):
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_an_endless_writer_stops_at_the_disk_limit_and_the_host_disk_does_not_grow(tmp_path):
    disk_bytes = 256 * 2**20
    workdir = sandbox.new_scratch_folder()
    try:
        (workdir / "writer.py").write_text(ENDLESS_WRITER)
        host_before, scratch_before = shutil.disk_usage(tempfile.gettempdir()).used, folder_bytes(workdir)
        with sandbox.Sandbox(workdir, [sys.executable, "-E", "-s", "-B", "writer.py"], 2 * 2**30, 64,
                             disk_bytes=disk_bytes) as box:
            out, err = box.process.communicate(timeout=120)
            assert box.process.returncode == 0, err.decode()[-2000:]
            assert box.limit_hit() is None
        host_growth = shutil.disk_usage(tempfile.gettempdir()).used - host_before
        scratch_growth = folder_bytes(workdir) - scratch_before
    finally:
        shutil.rmtree(workdir)
    lines = [line.split() for line in out.decode().splitlines()]
    # each of the two writable places is full at its size (less the tmpfs's own rounding), with ENOSPC
    assert [(target, error) for target, _, error in lines] == [("/sandbox/filler", "ENOSPC"), ("/tmp/filler", "ENOSPC")]
    sandbox_written, total_written = int(lines[0][1]), int(lines[1][1])
    assert disk_bytes - 64 * 2**20 <= sandbox_written <= disk_bytes
    assert total_written - sandbox_written >= disk_bytes - 64 * 2**20
    print(f"wrote {total_written / 2**20:.0f} MiB in the sandbox; host disk grew {host_growth / 2**20:.1f} MiB, "
          f"scratch folder {scratch_growth} bytes")
    assert scratch_growth == 0 and host_growth < 10 * 2**20


def test_the_sandbox_cannot_change_the_files_it_was_given():
    workdir = sandbox.new_scratch_folder()
    try:
        (workdir / "given.py").write_text("print('given')\n")
        code = ("import os\n"
                "for attempt in (lambda: open('given.py', 'a').write('x'), lambda: os.remove('given.py')):\n"
                "    try:\n        attempt()\n        print('changed')\n    except OSError:\n        print('refused')\n"
                "open('mine.txt', 'w').write('a file of its own')\nprint(open('mine.txt').read())\n")
        with sandbox.Sandbox(workdir, [sys.executable, "-E", "-s", "-B", "-c", code], 2**30, 64) as box:
            out, _ = box.process.communicate(timeout=60)
        assert out.decode().split("\n")[:3] == ["refused", "refused", "a file of its own"]
        assert sorted(path.name for path in workdir.iterdir()) == ["given.py"]  # its own file stayed inside
        assert (workdir / "given.py").read_text() == "print('given')\n"
    finally:
        shutil.rmtree(workdir)


def test_scratch_folders_live_in_one_folder_per_process_and_dead_runs_are_swept(tmp_path, monkeypatch):
    workdir = sandbox.new_scratch_folder()
    assert workdir.parent.name == f"{sandbox.SCRATCH_PREFIX}{sandbox.owner_tag()}"
    workdir.rmdir()
    # a run killed with -9 left its folder; a live one (this process's) must stay
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_tag = f"{dead.stdout.strip()}-1"  # a start time no live process has
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / f"{sandbox.SCRATCH_PREFIX}{dead_tag}" / "abc").mkdir(parents=True)
    (tmp_path / f"{sandbox.SCRATCH_PREFIX}{dead_tag}" / "abc" / "runner.py").write_text("left behind")
    live = tmp_path / f"{sandbox.SCRATCH_PREFIX}{sandbox.owner_tag()}"
    live.mkdir()
    unrelated = tmp_path / f"{sandbox.SCRATCH_PREFIX}not-a-run"
    unrelated.mkdir()
    removed = sandbox.sweep_leftovers()
    assert (tmp_path / f"{sandbox.SCRATCH_PREFIX}{dead_tag}") in removed
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([live.name, unrelated.name])


def test_cgroups_of_dead_runs_are_swept():
    cgroups = sandbox.Cgroups.create(2**30, 64)
    if cgroups is None:
        pytest.skip("no cgroup v1 controllers here (the rlimit fallback)")
    cgroups.remove()
    dead = [root / sandbox.CGROUP_PARENT / "1-1-deadbeef" for root in
            (sandbox.CGROUP_ROOT / "memory", sandbox.CGROUP_ROOT / "pids")]
    for folder in dead:
        folder.mkdir()
    live = sandbox.Cgroups(2**30, 64)
    try:
        removed = sandbox.sweep_leftovers()
        assert set(dead) <= set(removed) and not any(folder.exists() for folder in dead)
        assert live.memory.is_dir() and live.pids.is_dir()
    finally:
        live.remove()


def test_preflight_starts_the_sandbox_with_keras_or_says_in_one_line_what_is_missing(monkeypatch):
    notes = sandbox.preflight(2 * 2**30, 64)
    assert all("\n" not in note for note in notes)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # the venv's bin: no bwrap there
    with pytest.raises(sandbox.SandboxUnavailable) as missing:
        sandbox.preflight(2 * 2**30, 64)
    assert "\n" not in str(missing.value) and "apt-get install bubblewrap" in str(missing.value)
    with pytest.raises(sandbox.SandboxUnavailable):  # a grading step is refused too, never run half-way
        sandbox.Sandbox(Path("/nonexistent"), ["true"], 2**30, 64)


def test_a_fork_bomb_that_catches_its_errors_ends_at_the_process_limit_not_at_the_clock():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    workdir = sandbox.new_scratch_folder()
    try:
        started = time.monotonic()
        with sandbox.Sandbox(workdir, [sys.executable, "-E", "-s", "-B", "-c", bomb], 2**30, 32) as box:
            box.process.communicate(timeout=120)
            assert box.limit_hit() == "processes"
        assert time.monotonic() - started < 60  # ended by the watcher, not by the timeout above
    finally:
        shutil.rmtree(workdir)
