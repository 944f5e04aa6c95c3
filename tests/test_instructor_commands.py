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
    for command in INSTRUCTOR_COMMANDS:
        done = subprocess.run(command, shell=True, cwd=root, env=env, capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return root / "instructor", students


def test_feedback_has_the_results_and_no_hidden_test(course_run):
    instructor, students = course_run
    for student in students:
        html = (instructor / "feedback" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
        assert [mark for mark in HIDDEN_MARKS if mark in html] == []
        assert "All tests passed!" in html


def test_export_has_the_grades(course_run):
    instructor, _ = course_run
    with open(instructor / "grades.csv") as grades:
        rows = {row["student_id"]: row for row in csv.DictReader(grades)}
    assert {student: (float(row["score"]), float(row["max_score"])) for student, row in rows.items()} == {
        "ada": (10.0, 10.0), "bob": (6.0, 10.0)}
    assert rows["ada"]["timestamp"].startswith("2026-11-28 12:00:00")


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


def test_plain_nbgrader_feedback_shows_no_hidden_test(tmp_path):
    course = tmp_path / "instructor"
    shutil.copytree(paths.INSTRUCTOR_DIR, course,
                    ignore=lambda folder, names: {"gradebook.db", "submitted", "autograded", "feedback", "release",
                                                  ".nbgrader.log"} & set(names))
    nbgrader = str(paths.ROOT / ".venv" / "bin" / "nbgrader")
    env = environment_without_venv()

    def run(*arguments):
        done = subprocess.run([nbgrader, *arguments], cwd=course, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"nbgrader {' '.join(arguments)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"

    run("generate_assignment", paths.ASSIGNMENT, "--force")
    folder = course / "submitted" / "eve" / paths.ASSIGNMENT
    shutil.copytree(course / "release" / paths.ASSIGNMENT, folder)
    (folder / f"{paths.ASSIGNMENT}.ipynb").write_bytes(plain_nbgrader_leaker())
    run("autograde", paths.ASSIGNMENT, "--student", "eve", "--create")
    autograded = (course / "autograded" / "eve" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb").read_text()
    assert "23608202" in autograded  # the leak happened in the kernel: the feedback must not carry it
    run("generate_feedback", paths.ASSIGNMENT, "--student", "eve")
    html = (course / "feedback" / "eve" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").read_text()
    assert [mark for mark in HIDDEN_MARKS + ("END HIDDEN TESTS", "(96, 96, 3)", "classes=10") if mark in html] == []
    assert html.count("All tests passed!") == 3  # the three public parts pass
    assert "Failed the hidden tests." in html  # ResNet50's hidden case, without its message
    assert "prints the hidden cases" in html  # the student's own cell is still there
