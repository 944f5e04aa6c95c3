"""The README's instructor section, run exactly as written on a copy of the repository, with no venv
activated (PATH without .venv/bin): release, grade a folder, feedback, export (issue 12, "Done when").

The copy holds the working tree (not .git, not the venv: .venv is a link to this one), so that the
commands write nothing in the repository. The feedback must hold no hidden test, the export the grades.
"""
import csv
import os
import shutil
import subprocess

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
