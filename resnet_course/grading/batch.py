"""Grades a folder of submissions in parallel on Dask distributed; the client alone records results.

Submissions are in nbgrader's layout, <folder>/<student>/<assignment>/<assignment>.ipynb. Workers run
the pure per-submission step (submission.grade_submission) on a LocalCluster (one single-threaded
worker process per core) or on an existing cluster given its scheduler address. As each result
arrives, the client writes the autograded notebook, appends the result to the journal (fsync'd),
then records it in the gradebook. A rerun after a kill fills the gradebook from the journal and
grades only what the journal lacks: nothing is lost, nothing graded twice.
"""
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from distributed import Client, LocalCluster, as_completed

from resnet_course import paths
from resnet_course.grading import gradebook as nbgrader_records
from resnet_course.grading.journal import Journal, material_digest, submission_key, to_record
from resnet_course.grading.submission import (CellResult, Limits, SubmissionResult, feedback_notebook,
                                              grade_submission, load_material)

JOURNAL_NAME = "grading_journal.jsonl"


@dataclass(frozen=True)
class Submission:
    student: str
    folder: Path  # <submissions>/<student>/<assignment>
    notebook: bytes
    key: str


def find_submissions(submissions_dir, assignment, digest):
    """Every <student>/<assignment>/ folder, in student order; a missing notebook reads as empty."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"{submissions_dir}: no such folder of submissions "
                                f"(expected <folder>/<student>/{assignment}/{assignment}.ipynb)")
    found = []
    for folder in sorted(submissions_dir.glob(f"*/{assignment}")):
        notebook_path = folder / f"{assignment}.ipynb"
        notebook = notebook_path.read_bytes() if notebook_path.is_file() else b""
        student = folder.parent.name
        found.append(Submission(student, folder, notebook, submission_key(student, notebook, digest)))
    return found


def grader_error(submission, material, error):
    """A zero for a submission the grader itself failed on (not journaled: a rerun grades it again)."""
    reason = f"grader error: {type(error).__name__}: {error}".splitlines()[0][:300]
    cells = tuple(CellResult(g.grade_id, 0.0, g.points, reason) for g in material.graded)
    return SubmissionResult(submission.student, reason, cells, 0.0, feedback_notebook(None, material, cells, reason))


class Progress:
    """`graded 7/20 [#######.............] 1 zero` on stderr: redrawn in place on a terminal, one line
    per result otherwise (logs)."""

    WIDTH = 20

    def __init__(self, total, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.in_place = self.stream.isatty()

    def show(self, done, zeros):
        filled = self.WIDTH * done // max(self.total, 1)
        line = (f"graded {done}/{self.total} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{zeros} zero{'' if zeros == 1 else 's'}")
        self.stream.write(f"\r{line}" if self.in_place else f"{line}\n")
        if self.in_place and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def points(record):
    return sum(cell["points"] for cell in record["cells"])


def why(record):
    """The reason for a zero, else the graded cells that lost points (empty for full marks)."""
    if record["reason"]:
        return record["reason"].splitlines()[0][:100]
    lost = [cell["grade_id"] for cell in record["cells"] if cell["points"] < cell["max_points"]]
    return f"failed: {', '.join(lost)}" if lost else ""


def summary_table(records):
    """student, score and reason of every record, one line each, aligned."""
    rows = [("student", "score", "reason")]
    for record in sorted(records, key=lambda r: r["student"]):
        total = sum(cell["max_points"] for cell in record["cells"])
        rows.append((record["student"], f"{points(record):g}/{total:g}", why(record)))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}".rstrip() for row in rows)


@contextlib.contextmanager
def dask_client(scheduler, workers):
    """A Client of the cluster at `scheduler`, or of a new LocalCluster: `workers` single-threaded
    worker processes (one per core by default), closed on leaving."""
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def grade_folder(submissions_dir, course_dir=paths.INSTRUCTOR_DIR, scheduler=None, workers=None,
                 limits=Limits(), source_notebook=paths.SOURCE_NOTEBOOK, stream=None):
    """Grades every submission not yet in the journal; returns a record per submission (student order)."""
    course_dir = Path(course_dir)
    material = load_material(source_notebook=source_notebook)
    submissions = find_submissions(submissions_dir, material.assignment, material_digest(material))
    journal = Journal(course_dir / JOURNAL_NAME)
    progress = Progress(len(submissions), stream)
    records = {}
    with nbgrader_records.open_gradebook(course_dir) as gradebook:
        nbgrader_records.register_assignment(gradebook, material)

        def record(submission, result_record):
            timestamp = nbgrader_records.read_timestamp(submission.folder)
            nbgrader_records.record_result(gradebook, material, result_record, timestamp)
            records[submission.student] = result_record
            progress.show(len(records), sum(1 for r in records.values() if points(r) == 0))

        todo = []
        for submission in submissions:
            if submission.key in journal.records:
                record(submission, journal.records[submission.key])
            else:
                todo.append(submission)
        if todo:
            with dask_client(scheduler, workers) as client:
                shared_material = client.scatter(material, broadcast=True)
                futures = {client.submit(grade_submission, s.student, s.notebook, shared_material, limits,
                                         key=f"grade-{s.key}", pure=False): s for s in todo}
                for future in as_completed(futures):
                    submission = futures.pop(future)
                    try:
                        result = future.result()
                        journaled = True
                    except Exception as error:  # noqa: BLE001 - a worker lost, a task failed: recorded
                        result, journaled = grader_error(submission, material, error), False
                    nbgrader_records.write_autograded(course_dir, material, submission.student,
                                                      result.feedback_notebook, submission.folder)
                    result_record = to_record(submission.key, result)
                    if journaled:
                        journal.append(result_record)
                    record(submission, result_record)
    return [records[s.student] for s in submissions]
