"""Plain nbgrader, as formgrader's autograde and feedback buttons run it, on a course folder like the
instructor's (issue 12 item 7, issue 27 item 8): `nbgrader generate_assignment`, `autograde` and
`generate_feedback`, no venv activated. The feedback shows no hidden test even though nbgrader's kernel
ran them next to the student's code; a correct submission runs every cell of the notebook with no error.
"""
import shutil
import subprocess

import nbformat
import pytest

from resnet_course import paths
from tests import grading_submissions as submissions
from tests.test_instructor_commands import HIDDEN_MARKS, environment_without_venv

pytestmark = pytest.mark.timeout(2400)  # one fixture runs the whole notebook, training included

# Plain nbgrader (formgrader's autograde and feedback buttons): the course's nbgrader_config.py must keep
# the hidden tests out of the feedback even when nbgrader itself runs the notebook, hidden tests included.
LEAKER_CELL = ("# prints the hidden cases the kernel holds after the last test (a plain nbgrader kernel runs them)\n"
               "print(globals().get('HIDDEN' + '_CASES'))\n"
               "print([text for text in In if 'HIDDEN' + ' TESTS' in text])\n")


def plain_nbgrader_leaker():
    """A submission for plain `nbgrader autograde`: ResNet50 ignores `classes` (the public case, 6
    classes, passes; the hidden case, 10, fails with a message naming its arguments) and a cell after
    the tests prints the hidden cases and the hidden test source from the kernel. The student's code
    cells after it (training and results, none of them an nbgrader cell) are left out: what leaks is
    in the kernel by then, and running them would only make the test minutes longer."""
    notebook = submissions.notebook_with({"ResNet50": submissions.reference_source("ResNet50").replace(
        "def ResNet50(input_shape=(64, 64, 3), classes=6):", "def ResNet50(input_shape=(64, 64, 3), classes=6):\n"
        "    classes = 6")})
    test_index = next(i for i, cell in enumerate(notebook.cells)
                      if cell.metadata.get("nbgrader", {}).get("grade_id") == "ResNet50_test")
    after = [cell for cell in notebook.cells[test_index + 1:]
             if cell.cell_type != "code" or "nbgrader" in cell.metadata]
    notebook.cells[test_index + 1:] = [nbformat.v4.new_code_cell(LEAKER_CELL), *after]
    return submissions.to_bytes(notebook)


@pytest.fixture(scope="module")
def plain_nbgrader(tmp_path_factory):
    """A course folder as the instructor's (its source assignment the repository's, with its links to the
    learner files, data and images) after plain `nbgrader generate_assignment`, `autograde` and
    `generate_feedback` of two submissions, each in the folder nbgrader's exchange gives (the release's
    files and the student's notebook): EVE, plain_nbgrader_leaker(), and ADA, a correct submission with
    every cell of the notebook (the training part trains a token 2 steps under NBGRADER_EXECUTION)."""
    course = tmp_path_factory.mktemp("plain") / "instructor"
    course.mkdir()
    shutil.copy(paths.INSTRUCTOR_DIR / "nbgrader_config.py", course)
    (course / "source").symlink_to(paths.INSTRUCTOR_DIR / "source")  # nbgrader writes nothing there
    nbgrader = str(paths.ROOT / ".venv" / "bin" / "nbgrader")
    env = environment_without_venv()

    def run(*arguments):
        done = subprocess.run([nbgrader, *arguments], cwd=course, env=env, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"nbgrader {' '.join(arguments)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"

    run("generate_assignment", paths.ASSIGNMENT, "--force")
    for student, notebook in (("eve", plain_nbgrader_leaker()), ("ada", submissions.correct())):
        folder = course / "submitted" / student / paths.ASSIGNMENT
        shutil.copytree(course / "release" / paths.ASSIGNMENT, folder)
        (folder / f"{paths.ASSIGNMENT}.ipynb").write_bytes(notebook)
    run("autograde", paths.ASSIGNMENT, "--create")
    run("generate_feedback", paths.ASSIGNMENT)
    return course


def test_plain_nbgrader_feedback_shows_no_hidden_test(plain_nbgrader):
    course = plain_nbgrader
    autograded = (course / "autograded" / "eve" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb").read_text()
    assert "23608202" in autograded  # the leak happened in the kernel: the feedback must not carry it
    html = (course / "feedback" / "eve" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
    assert [mark for mark in HIDDEN_MARKS + ("END HIDDEN TESTS", "(96, 96, 3)", "classes=10") if mark in html] == []
    assert html.count("All tests passed!") == 3  # the three public parts pass
    assert "Failed the hidden tests." in html  # ResNet50's hidden case, without its message
    assert "prints the hidden cases" in html  # the student's own cell is still there


def test_plain_nbgrader_autograde_of_a_correct_submission_has_no_error_cell(plain_nbgrader):
    """Formgrader's autograde button on a correct submission (issue 27, item 8): every cell runs without
    an error (the setup cell finds the course files, the data cell the SIGNS data: nbgrader_files.py),
    and the feedback shows full marks."""
    course = plain_nbgrader
    notebook = nbformat.read(str(course / "autograded" / "ada" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"),
                             as_version=4)
    errors = [(index, output.ename, output.evalue[:200]) for index, cell in enumerate(notebook.cells)
              for output in cell.get("outputs", []) if output.output_type == "error"]
    assert errors == []
    assert sum(1 for cell in notebook.cells if cell.cell_type == "code" and cell.execution_count) == \
        sum(1 for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip())  # all ran
    html = (course / "feedback" / "ada" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
    assert "(Score: 10.0 / 10.0)" in html
    assert [path.name for path in (course / "feedback" / "ada" / paths.ASSIGNMENT).iterdir()
            if path.name in ("datasets", "images")] == []  # the data set is not in every student's feedback
