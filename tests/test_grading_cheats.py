"""No unearned points (issue 12, item 5): each cheat of a student's kernel earns nothing.

Every cheating submission leaves identity_block unimplemented (it returns its input) and tries to
get its 3 points anyway; the graded checks run in a fresh interpreter in the sandbox, from the
source notebook's tests, with the check machinery verified before and after student code.
"""
import pytest

from resnet_course.grading.submission import Limits, grade_submission, load_material
from tests import grading_submissions as submissions

LIMITS = Limits(wall_seconds=60)
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


TAMPERING = {"monkeypatch public_tests", "monkeypatch the check module", "patch a check's code",
             "monkeypatch numpy.testing", "sys.excepthook swallows errors", "builtins patched"}


@pytest.mark.parametrize("name", CHEATS)
def test_cheat_earns_nothing(material, name):
    result = grade_submission(name, submissions.cheat("identity_block", CHEATS[name]), material, LIMITS)
    identity = next(cell for cell in result.cells if cell.grade_id == "identity_block_test")
    assert identity.points == 0 and "All tests passed!" not in identity.message
    if name in TAMPERING:
        assert result.reason.startswith("tampering: ") and result.reason.endswith(("replaced", "added"))
        assert identity.message == result.reason
    else:
        assert result.reason is None  # graded normally: the function is simply not implemented


def test_edited_test_cell_is_ignored(material):
    cheat = submissions.cheat("identity_block", "", test_cell_source=FAKE_PASS)
    assert points(grade_submission("edited", cheat, material, LIMITS))["identity_block_test"] == 0
    honest = submissions.with_cell_source("identity_block_test", "pass  # I deleted the test")
    assert points(grade_submission("honest", honest, material, LIMITS)) == {
        "identity_block_test": 3, "convolutional_block_test": 3, "ResNet50_test": 4}


def test_deleted_test_cell_is_still_graded(material):
    result = grade_submission("deleted", submissions.deleted_cells("identity_block_test"), material, LIMITS)
    assert points(result)["identity_block_test"] == 3 and result.reason is None
    assert '"identity_block_test(identity_block)' in result.feedback_notebook


def test_os_exit_ends_with_a_recorded_zero(material):
    result = grade_submission("os._exit", submissions.cheat("identity_block", "import os\nos._exit(0)\n"),
                              material, LIMITS)
    assert result.reason == "kernel died (exit code 0)"
    assert sum(points(result).values()) == 0
