"""The per-submission grading step in its sandbox (issue 12, items 2, 3 and 6).

A correct submission gets every point, each wrong function loses exactly its cell, instructor files,
other submissions and the network are out of reach, the limits end runaway submissions with a
recorded reason, and the feedback holds no hidden test.
"""
import os
import time

import pytest

from resnet_course import paths
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
    assert "identity_block_test(identity_block)" in feedback and "All tests passed!" in feedback
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
    targets = [paths.SOURCE_NOTEBOOK, paths.ROOT / "resnet_course" / "reference.py", other_submission, gradebook]
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
    assert next(c.message for c in result.cells if c.grade_id == "ResNet50_test").endswith("reached []")
    assert "HIDDEN" not in result.feedback_notebook  # the solution text there is the student's own (reference copy)
    assert gradebook.read_text() == "grades"


@pytest.mark.parametrize("name, code, limits, reason", [
    ("infinite loop", "while True:\n    pass\n", Limits(wall_seconds=15), "timeout (15 s)"),
    ("memory bomb", "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 2**20))\n",
     Limits(wall_seconds=40, memory_bytes=2 * 2**30), "memory limit (2 GiB)"),
    ("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
     Limits(wall_seconds=15, max_processes=64), "process limit"),
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
