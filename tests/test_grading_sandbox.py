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

import nbformat
import pytest

from resnet_course import paths
from resnet_course.grading import sandbox
from resnet_course.grading.submission import Limits, grade_submission, load_material
from tests import grading_cases_limits as limits_cases, grading_submissions as submissions

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
    ("infinite loop", "while True:\n    pass\n", Limits(wall_seconds=15), "timeout (15 s, the whole run's limit)"),
    ("memory bomb", "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 2**20))\n",
     Limits(wall_seconds=40, memory_bytes=2 * 2**30), "memory limit (2 GiB)"),
    ("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
     # 40 s like the memory bomb: under a load of 15 the producer's start alone took over 15 s (a timeout)
     Limits(wall_seconds=40, max_processes=64), "process limit"),
])
def test_runaway_submissions_end_with_their_limit(material, name, code, limits, reason):
    started = time.monotonic()
    result = grade_submission(name, submissions.stub_with_code("identity_block", code), material, limits)
    # the limit, then the cell it was hit in (identity_block's, before every test: nothing to grade again);
    # under load the whole run's 15 s can end before the producer has started its first cell
    in_cell = f"{reason} in cell 'identity_block': the kernel stopped there, and the cells after it did not run"
    assert result.reason in ((in_cell, reason) if name == "infinite loop" else (in_cell,)), result.reason
    assert sum(points(result).values()) == 0 and all(cell.message == result.reason for cell in result.cells)
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
    assert workdir.parent.name.startswith(f"{sandbox.SCRATCH_PREFIX}{sandbox.owner_tag()}-")
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


# ---------------------------------------------------------------------------------------------
# No nested user namespaces (issue 27, item 7)
# ---------------------------------------------------------------------------------------------

NEW_USER_NAMESPACE = """
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
unshare = getattr(os, "unshare", None)  # Python 3.12+; libc's unshare(2) before
if unshare is not None:
    try:
        unshare(os.CLONE_NEWUSER)
        print("python: new user namespace")
    except OSError as error:
        print("python: refused", error.errno)
else:
    result = libc.unshare(CLONE_NEWUSER)
    print("python: new user namespace" if result == 0 else f"python: refused {ctypes.get_errno()}")
command = subprocess.run(["unshare", "-Ur", "true"], capture_output=True)
print("unshare -Ur: exit", command.returncode)
"""


def test_the_sandbox_cannot_make_a_nested_user_namespace():
    """Inside the sandbox neither `unshare -Ur true` nor unshare(CLONE_NEWUSER) from Python makes a new
    user namespace (where the process would be "root" and reach more of the kernel): bwrap's
    --disable-userns."""
    workdir = sandbox.new_scratch_folder()
    try:
        with sandbox.Sandbox(workdir, [sys.executable, "-E", "-s", "-B", "-c", NEW_USER_NAMESPACE], 2**30, 64,
                             env={"PATH": "/usr/bin:/bin"}) as box:
            out, err = box.process.communicate(timeout=60)
        assert box.process.returncode == 0, err.decode()[-2000:]
    finally:
        shutil.rmtree(workdir)
    lines = out.decode().splitlines()
    assert lines[0].startswith("python: refused"), lines
    assert lines[1] != "unshare -Ur: exit 0", lines


# ---------------------------------------------------------------------------------------------
# Limits a cell cannot ignore; a limit costs only the tests after its cell (issue 27, items 5, 9b, 9c)
# ---------------------------------------------------------------------------------------------

QUICK = Limits(cell_seconds=8)


def test_a_cell_that_ignores_the_interrupt_is_killed_after_its_limit_and_the_grace(material):
    """The cell turns SIGALRM off and sleeps: it used to hold the sandbox until the whole run's limit
    (cell_seconds x (cells + calls) + 240 s). Now the grader kills it once it has outlived its limit by
    the grace; the test before it keeps its points, the tests after it lose theirs with a reason that
    names the cell."""
    notebook, label = limits_cases.after_first_test(limits_cases.IGNORES_INTERRUPT)
    started = time.monotonic()
    result = grade_submission("ignores the interrupt", notebook, material, QUICK)
    elapsed = time.monotonic() - started
    assert result.reason.startswith(f"cell '{label}' ran past its 8 s limit and went on after its interrupt: "
                                    f"killed {QUICK.grace_seconds:g} s later"), result.reason
    assert points(result) == limits_cases.FIRST_TEST_ONLY
    assert all(label in cell.message for cell in result.cells if cell.grade_id != "identity_block_test")
    # the cell's limit and grace, plus two starts of the producer (the cells before it run again)
    assert elapsed < QUICK.cell_seconds + QUICK.grace_seconds + 150, elapsed


def test_added_cells_do_not_raise_the_whole_runs_limit(material, monkeypatch):
    """40 filler cells used to add 40 cell limits to the whole run's limit (an hour at --timeout 60):
    the limit follows from the source notebook's cells and the calls, whatever the student added."""
    asked = []

    class Asked(Exception):
        pass

    def run_seconds(self, cells, calls=0):
        asked.append((cells, calls))
        raise Asked()  # before the sandbox starts

    monkeypatch.setattr(Limits, "run_seconds", run_seconds)
    plain = submissions.correct()
    filled = nbformat.reads(plain.decode(), as_version=4)
    filled.cells[-1:-1] = [nbformat.v4.new_code_cell(f"filler_{i} = {i}") for i in range(40)]
    index = next(i for i, c in enumerate(filled.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "ResNet50")
    filled.cells[index:index] = [nbformat.v4.new_code_cell(f"filler_{i} = {i}") for i in range(40, 80)]
    for data in (plain, nbformat.writes(filled).encode()):
        with pytest.raises(Asked):
            grade_submission("filler", data, material, QUICK)
    assert len(asked) == 2 and asked[0] == asked[1], asked


def test_an_endless_print_loop_costs_its_cells_time_never_memory(material):
    """Issue 27, item 9b: a print loop in a cell added after the first test. IPython's output history
    grew the sandbox to its memory limit and every test scored 0 ("memory limit"); now the output is
    capped, the loop is interrupted at its limit and the next cells run, as in nbgrader."""
    notebook, label = limits_cases.after_first_test(limits_cases.PRINT_LOOP)
    limits = Limits(cell_seconds=20, memory_bytes=int(0.75 * 2**30))
    result = grade_submission("print loop", notebook, material, limits)
    assert result.reason is None, result.reason
    assert points(result) == limits_cases.FIRST_TWO


def test_a_cell_over_the_memory_limit_costs_only_the_tests_after_it_and_is_named(material):
    """Issue 27, item 9c: a cell that allocates past the memory limit zeroed every test, those before
    it too, and the reason did not name it."""
    notebook, label = limits_cases.after_first_test(limits_cases.MEMORY_HOG)
    limits = Limits(cell_seconds=30, memory_bytes=2**30)
    result = grade_submission("memory hog", notebook, material, limits)
    reason = f"memory limit (1 GiB) in cell '{label}'"
    assert (result.reason or "").startswith(reason), result.reason
    assert points(result) == limits_cases.FIRST_TEST_ONLY
    assert all(cell.message.startswith(reason) for cell in result.cells if cell.grade_id != "identity_block_test")
