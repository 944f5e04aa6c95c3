"""The robustness batch (issue 12, item 7): one run of the grader's command on 18 submissions with 2
workers, every way a submission can go wrong among them; then a grader killed mid-batch resumes.

The grader runs as an instructor runs it (`python -m resnet_course.grading`, a subprocess in its own
session) on a copy of the course folder in tmp; the batch is graded once per module.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import psutil
import pytest
from nbgrader.api import Gradebook

from resnet_course import paths
from resnet_course.grading.batch import JOURNAL_NAME
from resnet_course.grading.submission import Limits
from tests.grading_batch_cases import PROBE_MESSAGE, batch_cases

LIMITS = Limits(wall_seconds=60, memory_bytes=2 * 2**30, max_processes=64)
RESUMED = ("correct", "wrong-identity_block", "wrong-convolutional_block", "wrong-ResNet50", "untouched",
           "corrupt-json")


def make_course(folder):
    """A course folder like instructor/ with only what grading reads: the source notebook and the config."""
    source = folder / "source" / paths.ASSIGNMENT
    source.mkdir(parents=True)
    shutil.copyfile(paths.SOURCE_NOTEBOOK, source / paths.SOURCE_NOTEBOOK.name)
    shutil.copyfile(paths.INSTRUCTOR_DIR / "nbgrader_config.py", folder / "nbgrader_config.py")
    return folder


def submit(course, student, notebook):
    folder = course / "submitted" / student / paths.ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{paths.ASSIGNMENT}.ipynb").write_bytes(notebook)
    return folder / f"{paths.ASSIGNMENT}.ipynb"


def grader(course):
    """The grader's command on `course`, started in its own session (so that it and all it starts can
    be found and killed together)."""
    command = [sys.executable, "-m", "resnet_course.grading", str(course / "submitted"), "--course-dir", str(course),
               "--workers", "2", "--timeout", f"{LIMITS.wall_seconds:g}",
               "--memory-gib", f"{LIMITS.memory_bytes / 2**30:g}", "--max-processes", str(LIMITS.max_processes)]
    return subprocess.Popen(command, cwd=course, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(process):
    out, err = process.communicate(timeout=1200)
    assert process.returncode == 0, err[-3000:]
    return out, err


def session_processes(session_id):
    """The processes still alive in the session the grader started (it and its descendants)."""
    alive = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except (ProcessLookupError, psutil.Error):
            pass
    return alive


def wait_for_no_processes(session_id, seconds=30):
    deadline = time.monotonic() + seconds
    while session_processes(session_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    return session_processes(session_id)


def journal_records(course):
    lines = (course / JOURNAL_NAME).read_bytes().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def gradebook_scores(course, students):
    """{student: {grade_id: score}} and {student: solution comments} as nbgrader's gradebook holds them."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=paths.COURSE_ID) as gradebook:
        notebook = gradebook.find_notebook(paths.ASSIGNMENT, paths.ASSIGNMENT)
        cells = [cell.name for cell in notebook.grade_cells]
        return {student: {cell: gradebook.find_grade(cell, paths.ASSIGNMENT, paths.ASSIGNMENT, student).score
                          for cell in cells} for student in students}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Listener:
    """A TCP server on localhost that counts the connections it gets (the sandbox must make none)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("batch") / "course")
    listener = Listener()
    other = course / "submitted" / "correct" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
    cases = batch_cases(course / "source" / paths.ASSIGNMENT / paths.SOURCE_NOTEBOOK.name, other,
                        course / "gradebook.db", listener.address, LIMITS)
    submitted = {student: submit(course, student, notebook) for student, (notebook, _) in cases.items()}
    # (the course's copy of the source notebook: the repository's may be edited while the tests run)
    before = {path: sha256(path) for path in [*submitted.values(),
                                                course / "source" / paths.ASSIGNMENT / paths.SOURCE_NOTEBOOK.name]}
    process = grader(course)
    out, err = finish(process)
    yield {"course": course, "cases": cases, "out": out, "err": err, "before": before, "listener": listener,
           "leftover": wait_for_no_processes(process.pid), "records": {r["student"]: r for r in journal_records(course)}}
    listener.server.close()


def test_every_submission_has_a_recorded_result_with_its_reason(batch):
    records = batch["records"]
    assert sorted(records) == sorted(batch["cases"]) and len(journal_records(batch["course"])) == len(records)
    for student, (_, expected) in batch["cases"].items():
        record = records[student]
        if expected.reason is None:
            assert record["reason"] is None, (student, record["reason"])
        else:
            assert (record["reason"] or "").startswith(expected.reason), (student, record["reason"])
        points = {cell["grade_id"]: cell["points"] for cell in record["cells"]}
        assert points == expected.points, (student, record)
        if expected.message:
            assert all(cell["message"].endswith(expected.message) for cell in record["cells"] if cell["points"] == 0), record


def test_the_gradebook_holds_the_results_and_the_summary_lists_them(batch):
    scores = gradebook_scores(batch["course"], batch["cases"])
    for student, record in batch["records"].items():
        assert scores[student] == {cell["grade_id"]: cell["points"] for cell in record["cells"]}
        autograded = batch["course"] / "autograded" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
        assert autograded.is_file()
    lines = batch["out"].splitlines()
    assert lines[0].split() == ["student", "score", "reason"]
    assert any(line.split()[:2] == ["correct", "10/10"] for line in lines)
    assert any(line.startswith("infinite-loop") and "timeout" in line for line in lines)
    assert f"graded {len(batch['cases'])}/{len(batch['cases'])} [" in batch["err"]


def test_nothing_on_the_machine_is_harmed(batch):
    course = batch["course"]
    assert {path: sha256(path) for path in batch["before"]} == batch["before"]  # the submissions, the source notebook
    assert not (course / "pwned.txt").exists()
    with sqlite3.connect(course / "gradebook.db") as database:
        assert database.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert b"pwned" not in (course / "gradebook.db").read_bytes()
    assert batch["listener"].connections == 0
    assert batch["leftover"] == []  # no worker, sandbox or bomb outlives the grader


def test_the_probes_reached_nothing(batch):
    for student in ("reads-source-notebook", "reads-other-submission", "reads-gradebook", "writes-gradebook",
                    "network"):
        failed = [cell["message"] for cell in batch["records"][student]["cells"] if cell["points"] == 0]
        assert failed and all(message.endswith(PROBE_MESSAGE) for message in failed), (student, failed)


def test_a_killed_grader_resumes_with_none_lost_none_twice_and_the_same_grades(batch, tmp_path):
    course = make_course(tmp_path / "course")
    for student in RESUMED:
        submit(course, student, batch["cases"][student][0])
    process = grader(course)
    journal = course / JOURNAL_NAME
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if journal.exists() and len(journal.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.2)
    assert process.poll() is None, "the grader finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    assert wait_for_no_processes(process.pid) == []
    graded_before_kill = {record["student"] for record in journal_records(course)}
    assert 2 <= len(graded_before_kill) < len(RESUMED)

    finish(grader(course))
    records = journal_records(course)
    assert sorted(record["student"] for record in records) == sorted(RESUMED)  # none lost, none twice
    expected = {student: batch["records"][student] for student in RESUMED}
    assert {r["student"]: r["cells"] for r in records} == {s: r["cells"] for s, r in expected.items()}
    assert gradebook_scores(course, RESUMED) == gradebook_scores(batch["course"], RESUMED)

    journal_bytes = journal.read_bytes()
    out, _ = finish(grader(course))  # a third run grades nothing and reports the same
    assert journal.read_bytes() == journal_bytes
    assert gradebook_scores(course, RESUMED) == gradebook_scores(batch["course"], RESUMED)
    assert ["correct", "10/10"] in [line.split()[:2] for line in out.splitlines()]
