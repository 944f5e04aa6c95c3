"""No unearned points: each cheat of a student's code earns nothing, and hidden tests stay hidden.

Every cheating submission leaves identity_block unimplemented (it returns its input) and tries to
get its 3 points anyway. Student code runs only in the producer (the sandbox), whose output is data;
the judge rebuilds the models and runs the source notebook's checks itself (docs/GRADING.md). So
patching the checks, numpy or builtins inside the sandbox changes nothing the judge uses, and the
forgers of tests/grading_cases_trust.py, which write records straight to the grader's channel (found
through gc, or by writing to every descriptor), earn nothing either.
"""
import nbconvert
import nbformat
import pytest

from resnet_course.grading.submission import Limits, grade_submission, load_material
from tests import grading_cases_trust as trust
from tests import grading_submissions as submissions

LIMITS = Limits(cell_seconds=30, wall_seconds=120)
FAKE_PASS = 'print("\\033[92mAll tests passed!\\033[0m")'

CHEATS = {
    "monkeypatch public_tests": (
        "import public_tests\n"
        "public_tests.check_identity_block = lambda *a, **k: None\n"
        f"public_tests.identity_block_test = lambda *a, **k: {FAKE_PASS}\n"),
    "monkeypatch the check module": (
        "import sys\n"
        "for module in [m for n, m in list(sys.modules.items()) if n in ('resnet_checks', 'public_tests')]:\n"
        "    module.check_identity_block = lambda *a, **k: None\n"),
    "patch a check's code": (
        "import public_tests\n"
        "public_tests.check_identity_block.__code__ = (lambda target, case: None).__code__\n"),
    "monkeypatch numpy.testing": (
        "import numpy as np, numpy.testing\n"
        "numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "np.allclose = lambda *a, **k: True\n"),
    "redefine the test function": f"def identity_block_test(target):\n    {FAKE_PASS}\n",
    "sys.excepthook swallows errors": "import sys\nsys.excepthook = lambda *args: None\n",
    "IPython custom exception hook": (
        "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)\n"),
    "builtins patched": "import builtins\nbuiltins.abs = lambda x: 0\n",
    "sys.exit in the cell": "import sys\nsys.exit(0)\n",
    "prints a fake pass": FAKE_PASS + "\n",
}


@pytest.fixture(scope="module")
def material():
    return load_material()


def points(result):
    return {cell.grade_id: cell.points for cell in result.cells}


@pytest.mark.parametrize("name", CHEATS)
def test_cheat_earns_nothing(material, name):
    result = grade_submission(name, submissions.cheat("identity_block", CHEATS[name]), material, LIMITS)
    identity = next(cell for cell in result.cells if cell.grade_id == "identity_block_test")
    assert identity.points == 0 and "All tests passed!" not in identity.message
    assert result.reason is None  # graded normally: the function is simply not implemented
    assert result.points == 0


def test_edited_test_cell_is_ignored(material):
    cheat = submissions.cheat("identity_block", "", test_cell_source=FAKE_PASS)
    assert points(grade_submission("edited", cheat, material, LIMITS))["identity_block_test"] == 0
    honest = submissions.with_cell_source("identity_block_test", "pass  # I deleted the test")
    assert points(grade_submission("honest", honest, material, LIMITS)) == {
        "identity_block_test": 3, "convolutional_block_test": 3, "ResNet50_test": 4}


def test_deleted_test_cell_is_still_graded(material):
    result = grade_submission("deleted", submissions.deleted_cells("identity_block_test"), material, LIMITS)
    assert points(result)["identity_block_test"] == 3 and result.reason is None
    assert '"identity_block_test(globals().get(' in result.feedback_notebook


def test_os_exit_ends_with_a_recorded_zero(material):
    result = grade_submission("os._exit", submissions.cheat("identity_block", "import os\nos._exit(0)\n"),
                              material, LIMITS)
    assert result.reason == ("kernel died (exit code 0) in cell 'identity_block': the kernel stopped there, and the "
                             "cells after it did not run")
    assert sum(points(result).values()) == 0


@pytest.mark.parametrize("name", ["trust-forger-gc", "trust-forger-token"])
def test_forged_records_earn_nothing(material, name):
    """Both forgers scored 10/10 against the runner that ran the checks beside student code."""
    notebook, expected = trust.trust_cases()[name][:2]
    result = grade_submission(name, notebook, material, LIMITS)
    assert points(result) == expected.points and result.reason is None
    assert all("All tests passed!" not in cell.message for cell in result.cells)


def test_leaker_sees_no_hidden_case(material):
    """Asking for the hidden cases early and writing them into every message leaks nothing: not in the
    results, the feedback notebook or the HTML nbgrader's generate_feedback would make of it."""
    notebook, expected = trust.trust_cases()["trust-leaker"][:2]
    result = grade_submission("leaker", notebook, material, LIMITS)
    assert points(result) == expected.points
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nbformat.reads(result.feedback_notebook, as_version=4))
    for text in [result.feedback_notebook, html, *(cell.message for cell in result.cells)]:
        assert [marker for marker in trust.LEAK_MARKERS if marker in text] == []
