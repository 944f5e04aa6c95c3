"""The robustness batch (issue 12, item 7; issue 18): one run of the grader's command on every way a
submission can go wrong (ours, the hostile ones of tests/grading_cases_trust.py and the
Jupyter-semantics ones of tests/grading_cases_jupyter.py) with 2 workers; then a grader killed
mid-batch resumes and its scratch folders are swept; then the machine faults: a grader without
bubblewrap records nothing and says what is missing, a fault of the grading machine is an error,
never a grade, and a rerun with another --timeout grades again.

The grader runs as an instructor runs it (`python -m resnet_course.grading`, a subprocess in its own
session) on a copy of the course folder in tmp; the batch is graded once per module.
"""
import hashlib
import io
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
from pathlib import Path

import dask
import psutil
import pytest
from distributed import LocalCluster
from nbgrader.api import Gradebook

from resnet_course import paths
from resnet_course.grading import batch as grading_batch, submission as grading_submission
from resnet_course.grading.batch import JOURNAL_NAME
from resnet_course.grading.cli import limits_of, parse_args
from tests import grading_submissions as submissions
from tests.grading_batch_cases import FULL, NOTHING, PROBE_CELL, PROBE_MESSAGE, Expected, batch_cases

# The batch's options, as an instructor passes them: --timeout is per cell, as in nbgrader.
OPTIONS = ("--workers", "2", "--timeout", "40", "--memory-gib", "2", "--max-processes", "64")
LIMITS = limits_of(parse_args(list(OPTIONS)))
# Graded, killed and resumed: one full grade and five quick ones (no model to build), so that the three
# runs cost little beside the batch's; their grades are compared with the batch's.
RESUMED = ("correct", "untouched", "corrupt-json", "sys-exit", "os-exit", "monkeypatch")
SCRATCH = "resnet-grading-"
# The batch's one grader run is the longest step of the suite (minutes; longer on a shared machine).
pytestmark = pytest.mark.timeout(3600)


def make_course(folder):
    """A course folder like instructor/ with only what grading reads: the source notebook and the config."""
    source = folder / "source" / paths.ASSIGNMENT
    source.mkdir(parents=True)
    shutil.copyfile(paths.SOURCE_NOTEBOOK, source / paths.SOURCE_NOTEBOOK.name)
    shutil.copyfile(paths.INSTRUCTOR_DIR / "nbgrader_config.py", folder / "nbgrader_config.py")
    return folder


def submit(course, student, notebook, file_names=f"{paths.ASSIGNMENT}.ipynb"):
    """The notebook in the student's submission folder under `file_names` (one name, or several: copies)."""
    folder = course / "submitted" / student / paths.ASSIGNMENT
    folder.mkdir(parents=True)
    for file_name in [file_names] if isinstance(file_names, str) else file_names:
        (folder / file_name).parent.mkdir(parents=True, exist_ok=True)  # ("ResNet50.ipynb/ResNet50.ipynb": a folder)
        (folder / file_name).write_bytes(notebook)
    return folder / file_name


def grader(course, options=OPTIONS, env=None):
    """The grader's command on `course`, started in its own session (so that it and all it starts can
    be found and killed together); `env` replaces the environment (e.g. another PATH or TMPDIR)."""
    command = [sys.executable, "-m", "resnet_course.grading", str(course / "submitted"), "--course-dir", str(course),
               *options]
    return subprocess.Popen(command, cwd=course, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)


def finish(process, returncode=0):
    try:
        out, err = process.communicate(timeout=3000)
    finally:  # a failed or timed-out test must not leave the grader running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == returncode, err[-3000:]
    return out, err


def environment(**changes):
    return {**os.environ, **changes}


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
    cases["several-notebooks"] = (submissions.correct(), Expected(
        f"no {paths.ASSIGNMENT}.ipynb and 2 other notebooks in the submission folder", NOTHING),
        ("copy 1.ipynb", "copy 2.ipynb"))
    submitted = {student: submit(course, student, *case[:1], *case[2:]) for student, case in cases.items()}
    # (the course's copy of the source notebook: the repository's may be edited while the tests run)
    before = {path: sha256(path) for path in [*submitted.values(),
                                                course / "source" / paths.ASSIGNMENT / paths.SOURCE_NOTEBOOK.name]}
    started = time.monotonic()
    process = grader(course)
    out, err = finish(process)
    print(f"the batch of {len(cases)} submissions graded in {time.monotonic() - started:.0f} s")
    yield {"course": course, "cases": cases, "out": out, "err": err, "before": before, "listener": listener,
           "leftover": wait_for_no_processes(process.pid), "records": {r["student"]: r for r in journal_records(course)}}
    listener.server.close()


def test_every_submission_has_a_recorded_result_with_its_reason(batch):
    records = batch["records"]
    assert sorted(records) == sorted(batch["cases"]) and len(journal_records(batch["course"])) == len(records)
    for student, (_, expected, *_) in batch["cases"].items():
        record = records[student]
        if expected.reason is None:
            assert record["reason"] is None, (student, record["reason"])
        else:
            assert (record["reason"] or "").startswith(expected.reason), (student, record["reason"])
        points = {cell["grade_id"]: cell["points"] for cell in record["cells"]}
        assert points == expected.points, (student, record)
        failed = [cell["message"] for cell in record["cells"] if cell["points"] == 0]
        if expected.message:
            assert all(message.endswith(expected.message) for message in failed), (student, record)
        if expected.contains:
            assert all(expected.contains in message for message in failed), (student, record)


def test_the_gradebook_holds_the_results_and_the_summary_lists_them(batch):
    scores = gradebook_scores(batch["course"], batch["cases"])
    for student, record in batch["records"].items():
        assert scores[student] == {cell["grade_id"]: cell["points"] for cell in record["cells"]}
        autograded = batch["course"] / "autograded" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
        assert autograded.is_file()
    lines = batch["out"].splitlines()
    assert lines[0].split() == ["student", "score", "reason"]
    assert any(line.split()[:2] == ["correct", "10/10"] for line in lines)
    assert any(line.startswith("infinite-loop") and "failed: identity_block_test, ResNet50_test" in line
               for line in lines)
    assert any(line.startswith("jupyter-saved-as-copy") and "ResNet50 (1).ipynb" in line for line in lines)
    assert f"graded {len(batch['cases'])}/{len(batch['cases'])} [" in batch["err"]
    assert " left" in batch["err"]  # the progress bar's time left


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
    probed_test = submissions.TEST_CELLS[PROBE_CELL]
    for student in ("reads-source-notebook", "reads-other-submission", "reads-gradebook", "writes-gradebook",
                    "network"):
        messages = {cell["grade_id"]: cell["message"] for cell in batch["records"][student]["cells"]}
        assert PROBE_MESSAGE in messages[probed_test], (student, messages)


def scratch_folders(temporary):
    return sorted(path.name for path in temporary.glob(f"{SCRATCH}*"))


def test_a_killed_grader_resumes_with_none_lost_none_twice_and_the_same_grades(batch, tmp_path):
    course = make_course(tmp_path / "course")
    for student in RESUMED:
        submit(course, student, batch["cases"][student][0])
    temporary = tmp_path / "tmp"  # the grader's (and its workers') temporary folder, ours alone
    temporary.mkdir()
    env = environment(TMPDIR=str(temporary))
    process = grader(course, env=env)
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
    assert scratch_folders(temporary)  # the killed run's scratch folders (its client's and its workers')

    finish(grader(course, env=env))
    assert scratch_folders(temporary) == []  # swept by the next run, which leaves none of its own
    records = journal_records(course)
    assert sorted(record["student"] for record in records) == sorted(RESUMED)  # none lost, none twice
    expected = {student: batch["records"][student] for student in RESUMED}
    assert {r["student"]: r["cells"] for r in records} == {s: r["cells"] for s, r in expected.items()}
    assert gradebook_scores(course, RESUMED) == gradebook_scores(batch["course"], RESUMED)

    journal_bytes = journal.read_bytes()
    out, _ = finish(grader(course, env=env))  # a third run grades nothing and reports the same
    assert journal.read_bytes() == journal_bytes
    assert gradebook_scores(course, RESUMED) == gradebook_scores(batch["course"], RESUMED)
    assert ["correct", "10/10"] in [line.split()[:2] for line in out.splitlines()]


# ---------------------------------------------------------------------------------------------
# Machine faults are never grades (issue 18, item 3)
# ---------------------------------------------------------------------------------------------

SLOW_SECONDS = 60


def slow():
    """A correct submission whose identity_block cell first sleeps SLOW_SECONDS (a slow machine's cell)."""
    return submissions.with_cell_source(
        "identity_block", f"import time\ntime.sleep({SLOW_SECONDS})\n\n" + submissions.reference_source("identity_block"))


def scores(out):
    """{student: score} of the summary table a grader printed."""
    rows = [line.split() for line in out.splitlines()[1:]]
    return {row[0]: row[1] for row in rows if len(row) >= 2 and "/" in row[1]}


def test_without_bubblewrap_nothing_is_recorded_and_a_rerun_grades_with_the_settings_in_the_key(tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "untouched", submissions.untouched())  # graded beside it, quickly (no model to build)
    submit(course, "slow", slow())
    venv_bin = str(Path(sys.executable).parent)
    without_bwrap = environment(PATH=venv_bin)  # the venv's tools (alembic, ...) but no /usr/bin/bwrap
    started = time.monotonic()
    out, err = finish(grader(course, env=without_bwrap), returncode=2)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "bubblewrap" in lines[0] and "apt-get install bubblewrap" in lines[0], err
    assert "make grade" in lines[0] and out == ""
    assert time.monotonic() - started < 60  # it stops at once: no cluster is started
    assert not (course / JOURNAL_NAME).exists() and not (course / "autograded").exists()
    assert not (course / "gradebook.db").exists()  # no row: not even a gradebook

    short = ("--workers", "2", "--timeout", f"{SLOW_SECONDS / 2:g}")  # (ResNet50's model is built within it)
    out, err = finish(grader(course, short))  # bubblewrap back on PATH: the same command grades
    first = scores(out)
    assert first["untouched"] == "0/10" and first["slow"] != "10/10", out
    assert gradebook_scores(course, ["untouched"]) == {"untouched": NOTHING}

    out, _ = finish(grader(course, ("--workers", "2", "--timeout", f"{SLOW_SECONDS * 2:g}")))  # a larger --timeout
    assert scores(out) == {"untouched": "0/10", "slow": "10/10"}, out  # graded again, not replayed
    records = journal_records(course)
    assert sorted(record["student"] for record in records) == ["slow", "slow", "untouched", "untouched"]
    assert gradebook_scores(course, ["slow"]) == {"slow": FULL}

    out, _ = finish(grader(course, short))  # back to the first settings: their results are replayed
    assert scores(out) == first and len(journal_records(course)) == 4


GradingFault = getattr(grading_submission, "GradingFault", RuntimeError)


def stand_in(student, notebook, material, limits):
    """A grading step for the fault tests: "faulty" meets a GradingFault, "lost" kills its worker,
    everyone else gets a zero that names this stand-in (fast: no sandbox)."""
    if student == "faulty":
        raise GradingFault("the sandbox did not start (bwrap: setting up uid map: Permission denied)")
    if student == "lost":
        os._exit(1)
    return grading_batch.zero_result(student, material, "graded by the stand-in")


def recovered(student, notebook, material, limits):
    return grading_batch.zero_result(student, material, "graded by the stand-in")


def test_a_fault_of_the_grading_machine_is_an_error_never_a_grade_and_a_rerun_grades_it(tmp_path):
    course = make_course(tmp_path / "course")
    for student in ("faulty", "lost", "ok"):
        submit(course, student, submissions.correct())
    stream = io.StringIO()
    # no retry of a task whose worker died, and one task per worker (no bystander on the lost worker)
    settings = {"distributed.scheduler.allowed-failures": 0, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings), LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                 dashboard_address=None) as cluster:
        run = dict(course_dir=course, scheduler=cluster.scheduler_address, limits=LIMITS, stream=stream,
                   source_notebook=course / "source" / paths.ASSIGNMENT / paths.SOURCE_NOTEBOOK.name,
                   check_sandbox=False)
        records = grading_batch.grade_folder(course / "submitted", grade=stand_in, **run)
        by_student = {record["student"]: record for record in records}
        assert by_student["faulty"]["error"].startswith(("grading fault: the sandbox did not start",
                                                         "grader error: RuntimeError: the sandbox did not start"))
        assert "worker was lost" in by_student["lost"]["error"]
        assert by_student["ok"]["reason"] == "graded by the stand-in"
        assert [record["student"] for record in journal_records(course)] == ["ok"]  # no fault is journaled
        assert sorted(path.name for path in (course / "autograded").iterdir()) == ["ok"]
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=paths.COURSE_ID) as gradebook:
            assert [student.id for student in gradebook.students] == ["ok"]
        table = grading_batch.summary_table(records).splitlines()
        assert [line.split()[1] for line in table if line.split()[0] in ("faulty", "lost")] == ["-", "-"]
        assert "2 errors" in stream.getvalue().splitlines()[-1]

        records = grading_batch.grade_folder(course / "submitted", grade=recovered, **run)  # the rerun grades them
    assert [record.get("error") for record in records] == [None, None, None]
    assert {record["student"] for record in journal_records(course)} == {"faulty", "lost", "ok"}


def test_the_progress_bar_shows_the_time_left():
    stream = io.StringIO()
    progress = grading_batch.Progress(10, stream)
    progress.show(2, 0)  # replayed from the journal
    progress.start_grading(2)
    progress.started -= 30  # 30 s for the first 2 graded in this run: 15 s each
    progress.show(4, 1, 1)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("graded 2/10 [####") and lines[0].endswith("time left: estimating")
    assert lines[1] == "graded 4/10 [########............] 1 zero, 1 error, about 1 min 30 s left"
