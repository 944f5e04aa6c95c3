"""nbgrader's side of a graded batch: gradebook.db and the autograded notebooks.

Only the grader's client calls this (the gradebook has one writer). What it writes is what
`nbgrader autograde` would have written, so `nbgrader generate_feedback` and `nbgrader export` work
on it as documented: the assignment with its graded and solution cells, a student and a submission
per graded notebook, an automatic score per graded cell, the reason for a zero as the automatic
comment of the solution cells, and autograded/<student>/<assignment>/<assignment>.ipynb with the
submission's timestamp.txt.
"""
import contextlib
import os
import shutil
import sys
import warnings

import nbformat
from nbgrader.api import Gradebook
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning

from resnet_course.atomic import atomic_output
from resnet_course.grading.journal import cells_of
from resnet_course.grading.notebook import markdown_text
from resnet_course.paths import COURSE_ID

TIMESTAMP_FILE = "timestamp.txt"


@contextlib.contextmanager
def open_gradebook(course_dir):
    """The course's Gradebook. Creating gradebook.db runs `alembic` from PATH, so this interpreter's
    bin folder (the venv's, which holds it) goes first on PATH: no activated venv is needed."""
    bin_dir = os.path.dirname(sys.executable)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE_ID) as gradebook:
        yield gradebook


def register_assignment(gradebook, material):
    """The assignment, its notebook, graded cells (with their points) and solution cells."""
    name = material.assignment
    gradebook.update_or_create_assignment(name)
    gradebook.update_or_create_notebook(name, name)
    for graded in material.graded:
        gradebook.update_or_create_grade_cell(graded.grade_id, name, name, max_score=graded.points,
                                              cell_type="code")
    for solution in material.solutions:
        gradebook.update_or_create_solution_cell(solution, name, name)


def solution_comments(material, record):
    """{solution grade_id: comment}: the reason for a zero, else what each failed cell said."""
    if record["reason"]:
        return {solution: f"Zero points: {record['reason']}" for solution in material.solutions}
    needs = {graded.grade_id: graded.needs for graded in material.graded}
    comments = {}
    for cell in cells_of(record):
        if cell.points < cell.max_points:
            for solution in needs[cell.grade_id]:
                comments.setdefault(solution, f"{cell.grade_id}: {cell.message}")
    return comments


def record_result(gradebook, material, record, timestamp=None):
    """Writes one journal record into the gradebook (idempotent: a rerun writes the same)."""
    assignment = notebook = material.assignment
    student = record["student"]
    gradebook.update_or_create_student(student)
    with warnings.catch_warnings():  # nbgrader's add_submission trips SQLAlchemy's autoflush warning
        warnings.simplefilter("ignore", SAWarning)
        gradebook.update_or_create_submission(assignment, student, timestamp=timestamp)
    for cell in cells_of(record):
        grade = gradebook.find_grade(cell.grade_id, notebook, assignment, student)
        grade.auto_score = cell.points
        grade.needs_manual_grade = False
    comments = solution_comments(material, record)
    for solution in material.solutions:
        # nbgrader renders comments as Markdown (feedback's "Comments"): the messages quote student text
        comment = comments.get(solution)
        gradebook.find_comment(solution, notebook, assignment, student).auto_comment = (
            None if comment is None else markdown_text(comment))
    gradebook.db.commit()


def read_timestamp(submission_dir):
    """The submission's timestamp.txt as nbgrader reads it (None when absent, empty or invalid)."""
    path = submission_dir / TIMESTAMP_FILE
    try:
        return parse_utc(path.read_text().strip()) if path.is_file() else None
    except ValueError:
        return None


def nbgrader_clean(feedback_notebook, material):
    """The feedback notebook with nbgrader metadata only on the assignment's own cells, once each, and
    outputs only on the graded cells (grading's results).

    nbgrader's feedback looks up every cell marked as graded or as a solution in the gradebook; a
    student's copied or invented cell metadata would make it fail, so such cells lose the marks. Any
    other output is one the student saved (the workers get notebooks without them: this is the last
    guard): formgrader would show it as grading's and render its HTML in the instructor's browser.
    """
    notebook = nbformat.reads(feedback_notebook, as_version=4)
    known = set(material.solutions) | {graded.grade_id for graded in material.graded}
    graded_ids = {graded.grade_id for graded in material.graded}
    seen = set()
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if "nbgrader" in cell.metadata and (grade_id not in known or grade_id in seen):
            del cell.metadata["nbgrader"]
        if cell.cell_type == "code" and (grade_id not in graded_ids or "nbgrader" not in cell.metadata):
            cell.outputs, cell.execution_count = [], None
        seen.add(grade_id)
    return nbformat.writes(notebook)


def write_autograded(course_dir, material, student, feedback_notebook, submission_dir):
    """autograded/<student>/<assignment>/<assignment>.ipynb (atomically) and the timestamp.txt."""
    folder = course_dir / "autograded" / student / material.assignment
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / f"{material.assignment}.ipynb") as tmp:
        tmp.write_text(nbgrader_clean(feedback_notebook, material))
    if (submission_dir / TIMESTAMP_FILE).is_file():
        shutil.copyfile(submission_dir / TIMESTAMP_FILE, folder / TIMESTAMP_FILE)

