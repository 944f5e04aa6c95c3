"""nbgrader's side of a graded batch: gradebook.db and the autograded notebooks.

Only the grader's client calls this (the gradebook has one writer). What it writes is what
`nbgrader autograde` would have written, so `nbgrader generate_feedback` and `nbgrader export` work
on it as documented: the assignment with its graded and solution cells, a student and a submission
per graded notebook, an automatic score per graded cell, the reason for a zero as the automatic
comment of the solution cells, the late penalty nbgrader's configured LateSubmissionPlugin gives,
and autograded/<student>/<assignment>/<assignment>.ipynb with the submission's timestamp.txt.
"""
import contextlib
import os
import shutil
import sys
import warnings

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning
from traitlets.config.loader import PyFileConfigLoader

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


def late_penalties(course_dir):
    """nbgrader's own AssignLatePenalties preprocessor, configured as `nbgrader autograde` would be by
    the course's nbgrader_config.py (c.AssignLatePenalties.plugin_class, c.LateSubmissionPlugin.*),
    with its plugin made: record_result asks it for each late submission's penalty."""
    config_file = course_dir / "nbgrader_config.py"
    config = PyFileConfigLoader(config_file.name, path=str(course_dir)).load_config() if config_file.is_file() else None
    late = AssignLatePenalties(config=config) if config is not None else AssignLatePenalties()
    late.init_plugin()
    return late


def _late_penalty(gradebook, late, assignment, notebook_name, student):
    """Sets the submission's late_submission_penalty as nbgrader's AssignLatePenalties does (its plugin
    and its bounds: 0 to the score); returns (seconds late, penalty or None)."""
    submission = gradebook.find_submission(assignment, student)
    notebook = gradebook.find_submission_notebook(notebook_name, assignment, student)
    notebook.late_submission_penalty = None
    seconds, penalty = submission.total_seconds_late, None
    if seconds > 0:
        penalty = late.plugin_inst.late_submission_penalty(student, notebook.score, seconds)
        if penalty is not None:
            penalty = late._check_late_penalty(notebook, penalty)  # nbgrader's own clamp (and its log line)
            notebook.late_submission_penalty = penalty
    return seconds, penalty


def late_note(seconds, penalty):
    """'late by 2 d 0 h 00 min: penalty 10 points' (None when on time or without a due date)."""
    if not seconds or seconds <= 0:
        return None
    minutes = int(seconds // 60)
    text = f"late by {minutes // 1440} d {minutes // 60 % 24} h {minutes % 60:02d} min"
    return f"{text}: penalty {penalty:g} point{'' if penalty == 1 else 's'}" if penalty else f"{text}: no penalty"


def record_result(gradebook, material, record, timestamp=None, late=None):
    """Writes one journal record into the gradebook (idempotent: a rerun writes the same), with the late
    penalty `late` (late_penalties) gives when the submission is past the assignment's due date.
    Returns late_note's text for it (None: on time, no due date or no `late`)."""
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
    if late is None:
        return None
    seconds, penalty = _late_penalty(gradebook, late, assignment, notebook, student)  # on the committed scores
    gradebook.db.commit()
    return late_note(seconds, penalty)


def read_timestamp(submission_dir):
    """The submission's timestamp.txt as nbgrader reads it (None when absent, empty or invalid)."""
    return timestamp_of(submission_dir)[0]


def timestamp_of(submission_dir):
    """(the submission's timestamp.txt as nbgrader reads it or None, a note when the file is there but
    cannot be read: then the submission counts as having no timestamp, never late)."""
    path = submission_dir / TIMESTAMP_FILE
    if not path.is_file():
        return None, None
    try:
        text = path.read_text().strip()
        return (parse_utc(text), None) if text else (None, f"{TIMESTAMP_FILE} is empty: graded as on time")
    except (OSError, UnicodeError, ValueError, OverflowError) as error:
        kind = "not a date nbgrader reads" if isinstance(error, ValueError) else type(error).__name__
        return None, f"{TIMESTAMP_FILE} could not be read ({kind}): graded as on time, with no late penalty"


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
    # only a timestamp nbgrader can read: generate_feedback fails on an invalid one ("Invalid timestamp string")
    if timestamp_of(submission_dir)[0] is not None:
        shutil.copyfile(submission_dir / TIMESTAMP_FILE, folder / TIMESTAMP_FILE)
    else:
        (folder / TIMESTAMP_FILE).unlink(missing_ok=True)

