"""The README's instructor section, run exactly as written on a copy of the repository, with no venv
activated (PATH without .venv/bin): release, grade a folder, feedback, export (issue 12, "Done when").

The copy holds the working tree (not .git, not the venv: .venv is a link to this one), so that the
commands write nothing in the repository. The feedback must hold no hidden test, the export the grades.
"""
import csv
import os
import shutil
import subprocess

import nbformat
import pytest

from resnet_course import paths
from tests import grading_submissions as submissions

# The README's instructor commands, in its order (each runs from the repository's root, as a shell line).
INSTRUCTOR_COMMANDS = (
    "make release",
    ".venv/bin/python -m resnet_course.grading instructor/submitted",
    "cd instructor && ../.venv/bin/nbgrader generate_feedback ResNet50",
    "cd instructor && ../.venv/bin/nbgrader export",
)
HIDDEN_MARKS = ("BEGIN HIDDEN TESTS", "HIDDEN_CASES", "23,608,202", "23608202")
NOT_COPIED = {".git", ".venv", "outputs", "runs", "release", "__pycache__", ".pytest_cache", "gradebook.db",
              "submitted", "autograded", "feedback", "grading_journal.jsonl", ".nbgrader.log"}


def copy_of_repository(destination):
    """The working tree at `destination`, its .venv a link to this venv, ../shared beside it as here."""
    shutil.copytree(paths.ROOT, destination, symlinks=True, ignore=lambda folder, names: NOT_COPIED & set(names))
    (destination / ".venv").symlink_to(paths.ROOT / ".venv")
    if paths.SHARED_DATA_DIR.parent.is_dir():
        (destination.parent / paths.SHARED_DATA_DIR.parent.name).symlink_to(paths.SHARED_DATA_DIR.parent)
    return destination


def environment_without_venv():
    venv_bin = str(paths.ROOT / ".venv" / "bin")
    env = {name: value for name, value in os.environ.items() if name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(folder for folder in env.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if folder and os.path.realpath(folder) != os.path.realpath(venv_bin))
    return env


def test_the_readme_shows_these_commands():
    readme = (paths.ROOT / "README.md").read_text()
    assert [command for command in INSTRUCTOR_COMMANDS if command not in readme] == []


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    root = copy_of_repository(tmp_path_factory.mktemp("clone") / "repository")
    env = environment_without_venv()
    # The linked venv is the one these tests run in: make must not reinstall it (setup is not under test).
    stamp_time = (root / ".venv" / ".requirements-installed").stat().st_mtime
    for requirement in ("requirements.txt", "pyproject.toml"):
        os.utime(root / requirement, (stamp_time - 1, stamp_time - 1))
    students = {"ada": submissions.correct(), "bob": submissions.wrong("ResNet50")}
    for student, notebook in students.items():
        folder = root / "instructor" / "submitted" / student / paths.ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{paths.ASSIGNMENT}.ipynb").write_bytes(notebook)
        (folder / "timestamp.txt").write_text("2026-11-28 12:00:00.000000 UTC")
    printed = {}
    for command in INSTRUCTOR_COMMANDS:
        done = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        printed[command] = done.stdout + done.stderr
    return root / "instructor", students, printed


def test_feedback_has_the_results_and_no_hidden_test(course_run):
    instructor, students, _ = course_run
    for student in students:
        html = (instructor / "feedback" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
        assert [mark for mark in HIDDEN_MARKS if mark in html] == []
        assert "All tests passed!" in html


def test_export_has_the_grades(course_run):
    instructor, _, _ = course_run
    with open(instructor / "grades.csv") as grades:
        rows = {row["student_id"]: row for row in csv.DictReader(grades)}
    assert {student: (float(row["score"]), float(row["max_score"])) for student, row in rows.items()} == {
        "ada": (10.0, 10.0), "bob": (6.0, 10.0)}
    assert rows["ada"]["timestamp"].startswith("2026-11-28 12:00:00")


TENSORFLOW_START_UP = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


def test_the_grader_prints_no_tensorflow_start_up_lines(course_run):
    """Each grading worker imports TensorFlow quietly (issue 27, item 8): its C++ start-up lines (absl's
    warning, the oneDNN notice) are not printed once per worker on the instructor's terminal."""
    _, _, printed = course_run
    output = printed[INSTRUCTOR_COMMANDS[1]]
    assert "graded 2/2" in output
    assert [line for line in output.splitlines() if any(mark in line for mark in TENSORFLOW_START_UP)] == []


def test_the_source_assignment_holds_every_file_the_notebook_needs():
    """nbgrader copies instructor/source/ResNet50/'s files for plain autograde (and generate_assignment):
    each learner module and the data and image folders must be there (as links to the root's)."""
    needed = (*paths.LEARNER_MODULES, "datasets", "images")
    assert [name for name in needed if not os.path.lexists(paths.SOURCE_DIR / name)] == []


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
