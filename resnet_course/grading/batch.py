"""Grades a folder of submissions in parallel on Dask distributed; the client alone records results.

Submissions are in nbgrader's layout, <folder>/<student>/<assignment>/<assignment>.ipynb (or the
folder's only notebook under another name, noted). Before anything is graded, a preflight proves
the sandbox starts on this machine (on each worker of a remote cluster), or the run stops with one
line saying what is missing. Workers run the pure per-submission step (submission.grade_submission)
on a LocalCluster (one single-threaded worker process per core) or on an existing cluster given its
scheduler address. As each result arrives, the client writes the autograded notebook, appends the
result to the journal (fsync'd), then records it in the gradebook. An outcome the student did not
cause (a GradingFault, a lost worker, any grader error) is an error of the run: reported in the
summary and the exit status, never journaled nor written to the gradebook, so a rerun grades it.
A rerun after a kill fills the gradebook from the journal and grades only what the journal lacks
with the same settings: nothing is lost, nothing graded twice.

Nobody but the grader talks to its cluster: every connection (client, scheduler, workers, their
nannies) is mutual TLS (Dask's own `Security`), so a process without the run's certificate, another
user's or the grader's own user's, cannot connect, submit or run code, nor read the scattered
grading material. The local cluster listens on 127.0.0.1 only, with a certificate and key made for
the run (private files, removed at the end) and no dashboard unless asked for; a remote cluster is
reached at a tls:// address with the instructor's certificate files (`cluster_security`).

Student ids are data: a folder whose name cannot be an nbgrader student id (`id_problem`: control
characters, names nbgrader's globs would not match as themselves) is skipped with a one-line reason
and never reaches the gradebook, the journal or autograded/; the summary prints every name escaped.
"""
import contextlib
import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import dask
import nbformat
from distributed import Client, LocalCluster, as_completed
from distributed.security import Security

from resnet_course import paths
from resnet_course.grading import bounded, gradebook as nbgrader_records, judge, sandbox
from resnet_course.grading.journal import Journal, settings_digest, submission_key, to_record
from resnet_course.grading.notebook import (InvalidNotebook, SubmissionNotFound, find_notebook, markdown_text,
                                            parse_notebook, student_code, without_outputs)
from resnet_course.grading.submission import (CellResult, Limits, SubmissionResult, feedback_notebook,
                                              grade_submission, load_material)

JOURNAL_NAME = "grading_journal.jsonl"


@dataclass(frozen=True)
class Submission:
    student: str
    folder: Path  # <submissions>/<student>/<assignment>
    notebook: bytes  # the file's bytes (empty when there is none)
    key: str
    note: str | None = None  # e.g. which file was graded when it is not <assignment>.ipynb
    not_found: str | None = None  # why there is nothing to grade (SubmissionNotFound's reason)
    skipped: str | None = None  # why the folder's name cannot be a student id (id_problem): not graded


def id_problem(student):
    """Why `student`, a submission folder's name, cannot be an nbgrader student id (one line), or None.

    nbgrader finds a student's files with glob patterns (autograded/*/ResNet50) and reads the id back
    with a regular expression whose `.` matches no newline: one name with a newline makes
    `nbgrader generate_feedback` fail for the whole class; a name with glob characters or a leading
    dot is not matched as itself; nbgrader strips the spaces around an id. Control characters would
    also reach the instructor's terminal (ANSI escapes) and nbgrader's pages.
    """
    if not student.isprintable():
        return "its name holds control or unprintable characters (a newline, an escape, ...)"
    if student != student.strip():
        return "its name starts or ends with a space, which nbgrader strips from student ids"
    if any(character in student for character in "*?[]"):
        return "its name holds *, ?, [ or ], which nbgrader's file patterns do not match as themselves"
    if student.startswith("."):
        return "its name starts with a dot, and nbgrader's file patterns skip such folders"
    return None


def shown(text):
    """`text` safe to print: each control or unprintable character as its Python escape (\\n, \\x1b, ...)."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def shown_id(student):
    """A student id as the summary prints it: as it is when plain, else quoted with escapes (repr), so
    that no name passes for another row or another column."""
    plain = student.isprintable() and not any(character.isspace() for character in student)
    return student if plain and student[:1] not in "'\"" else repr(student)


def find_submissions(submissions_dir, assignment, settings):
    """Every <student>/<assignment>/ folder, in student order, with the notebook find_notebook picks
    (or, for a name that cannot be a student id, why it is skipped)."""
    submissions_dir = Path(submissions_dir)
    if not submissions_dir.is_dir():
        raise FileNotFoundError(f"{submissions_dir}: no such folder of submissions "
                                f"(expected <folder>/<student>/{assignment}/{assignment}.ipynb)")
    found = []
    # (not glob: every folder, whatever its name holds)
    for folder in sorted(path / assignment for path in submissions_dir.iterdir() if (path / assignment).is_dir()):
        student = folder.parent.name
        problem = id_problem(student)
        if problem is not None:
            found.append(Submission(student, folder, b"", f"\0skipped\0{student}", skipped=problem))
            continue
        try:
            path, note = find_notebook(folder, assignment)
        except SubmissionNotFound as error:
            found.append(Submission(student, folder, b"", submission_key(student, b"", settings, f"\0{error}"),
                                    not_found=str(error)))
            continue
        notebook = path.read_bytes()
        # the key is the file's; a worker gets it without the student's saved outputs (notebook.without_outputs)
        found.append(Submission(student, folder, without_outputs(notebook),
                                submission_key(student, notebook, settings, path.name), note))
    return found


def zero_result(student, material, reason):
    """Zero points on every graded cell for `reason`, with its feedback notebook."""
    cells = tuple(CellResult(g.grade_id, 0.0, g.points, reason) for g in material.graded)
    return SubmissionResult(student, reason, cells, 0.0, feedback_notebook(None, material, cells, reason))


def with_note(result, note):
    """The result with `note` as a first Markdown cell of its feedback notebook (None: unchanged)."""
    if note is None:
        return result
    notebook = nbformat.reads(result.feedback_notebook, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Grading note:** {markdown_text(note)}"))
    return replace(result, feedback_notebook=nbformat.writes(notebook))


STARTED_TOPIC = "resnet-grading-started"  # a worker's event when it starts grading a submission
SLOW_MARGIN_SECONDS = 120.0  # beyond a submission's limits before the progress names it as slow
SLOW_WATCH_SECONDS = 10.0  # how often the client looks for slow submissions


def grade_task(grade, student, notebook, material, limits, note):
    """What a worker runs for one submission: the grading step, with the client's note in its feedback.
    Announces its start (STARTED_TOPIC) so that the client can tell how long it has been running."""
    try:
        from distributed import get_worker

        get_worker().log_event(STARTED_TOPIC, {"student": student})
    except ValueError:  # not in a worker (called directly)
        pass
    return with_note(grade(student, notebook, material, limits), note)


def time_bounds(submissions, material, limits):
    """{student: the seconds grading their submission may take by the limits}: its sandboxed run (for its
    cells and the checks' calls) and the judge's wall clock per graded cell, plus SLOW_MARGIN_SECONDS."""
    exercises = judge.exercises(material)
    calls = sum(len(judge.calls(e, e.public_cases)) + len(judge.calls(e, e.hidden_cases)) for e in exercises)
    judging = bounded.wall_limit(limits.judge_limits()[0]) * len(exercises) + SLOW_MARGIN_SECONDS
    bounds = {}
    for submission in submissions:
        try:
            cells = len(student_code(parse_notebook(submission.notebook), material).cells)
        except (InvalidNotebook, ValueError):
            cells = 0
        bounds[submission.student] = limits.run_seconds(cells, calls) + judging
    return bounds


class SlowWatcher:
    """A thread of the client that names, on the progress stream, each submission that has been grading
    longer than its `bounds` ({student: seconds}, from time_bound) since its worker announced it:
    once, as `still grading alice after 14 min 02 s, longer than its limits allow (9 min 30 s)`."""

    def __init__(self, client, bounds, finished, progress):
        self.client, self.bounds, self.finished, self.progress = client, bounds, finished, progress
        self.started, self.named = {}, set()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while not self.stopped.wait(SLOW_WATCH_SECONDS):
            try:
                events = self.client.get_events(STARTED_TOPIC)
            except Exception:  # noqa: BLE001 - the cluster is closing: nothing left to watch
                return
            now = time.monotonic()
            for _, message in events:
                self.started.setdefault(message.get("student"), now)
            for student, started in sorted(self.started.items(), key=lambda item: item[1]):
                bound = self.bounds.get(student)
                if bound is None or student in self.named or self.finished(student) or now - started <= bound:
                    continue
                self.named.add(student)
                self.progress.note(f"still grading {student!r} after {_duration(now - started)}, longer than its "
                                   f"limits allow ({_duration(bound)})")

    def stop(self):
        self.stopped.set()
        self.thread.join()


def fault_message(error):
    """One line for an outcome the student did not cause (the exception a worker's task ended with)."""
    kind = type(error).__name__
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    if kind == "GradingFault":
        return f"grading fault: {text}"
    if kind == "KilledWorker":
        return "a grading worker was lost (its process died) while grading this submission"
    return f"grader error: {kind}: {text}" if text else f"grader error: {kind}"


LOOPBACK = "127.0.0.1"
DASHBOARD_ADDRESS = f"{LOOPBACK}:8787"  # --dashboard without an address
# Without --dashboard the scheduler's and workers' HTTP servers (Dask always starts one) serve nothing:
# no dashboard, no worker logs or call stacks, no metrics (task keys hold the student ids).
NO_HTTP_ROUTES = {"distributed.scheduler.http.routes": [], "distributed.worker.http.routes": []}


class ClusterRefused(ValueError):
    """A cluster address or certificate option the grader refuses; the message is one line saying what
    to give instead."""


def _write_private(path, text):
    """`text` in a new file only its owner can read (0600 from its creation: never readable by others)."""
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(text)


@contextlib.contextmanager
def run_security():
    """A Dask Security for a new local cluster: mutual TLS with a certificate and key made for this run.

    Dask's Security.temporary() makes them (an RSA key and a self-signed certificate that is also the
    only CA trusted, so only a holder of this key is let in: client, scheduler, workers and nannies
    alike). They are written to private files (0600, in a 0700 folder under the grader's scratch
    folder, sandbox.new_scratch_folder) that the worker processes read, and removed on leaving; a
    killed grader's are swept by the next run with its scratch folder.
    """
    made = Security.temporary()
    folder = sandbox.new_scratch_folder()
    try:
        folder.chmod(0o700)
        cert, key = folder / "cluster-cert.pem", folder / "cluster-key.pem"
        _write_private(cert, made.tls_ca_file)  # the certificate is its own CA
        _write_private(key, made.tls_client_key)
        roles = {f"tls_{role}_{kind}": str(path) for role in ("client", "scheduler", "worker")
                 for kind, path in (("cert", cert), ("key", key))}
        yield Security(require_encryption=True, tls_ca_file=str(cert), **roles)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cluster_security(scheduler, tls_ca_file=None, tls_cert=None, tls_key=None, insecure_plain_tcp=False):
    """The Security to reach the running cluster at `scheduler`; ClusterRefused (one line) where the
    grader will not.

    tls://HOST:PORT: mutual TLS with the given files (the CA certificate that signed the cluster's
    certificates, this client's certificate and its key, which may be in the certificate's file), else
    with Dask's configuration (distributed.comm.tls.ca-file, .client.cert, .client.key). A plain
    tcp:// address (or one without a scheme, which Dask reads as tcp) is refused unless
    `insecure_plain_tcp` (then the result is None: Dask's defaults): its connections are neither
    encrypted nor authenticated, so whoever reaches the scheduler or a worker runs code as the
    workers' user and reads the hidden tests.
    """
    scheme, separator, _ = scheduler.partition("://")
    scheme = scheme if separator else "tcp"
    given = {name: value for name, value in (("tls_ca_file", tls_ca_file), ("tls_client_cert", tls_cert),
                                             ("tls_client_key", tls_key)) if value}
    if scheme == "tls":
        for value in given.values():
            if not Path(value).is_file():
                raise ClusterRefused(f"{value}: no such certificate or key file")
        security = Security(require_encryption=True, **{name: str(value) for name, value in given.items()})
        if not security.tls_ca_file or not security.tls_client_cert:
            raise ClusterRefused(
                f"--scheduler {scheduler}: a tls:// cluster needs its CA certificate and this client's certificate: "
                "--tls-ca-file and --tls-cert (with --tls-key unless the key is in the certificate's file), or "
                "distributed.comm.tls.ca-file and distributed.comm.tls.client.cert in Dask's configuration")
        return security
    if given:
        raise ClusterRefused(f"--scheduler {scheduler}: --tls-ca-file, --tls-cert and --tls-key need a tls:// address")
    if scheme == "tcp" and insecure_plain_tcp:
        return None
    if scheme == "tcp":
        raise ClusterRefused(
            f"--scheduler {scheduler}: plain TCP is neither encrypted nor authenticated (whoever reaches the cluster "
            "runs code as its workers' user and reads the hidden tests): give a tls:// address with --tls-ca-file, "
            "--tls-cert and --tls-key (docs/INSTRUCTORS.md), or pass --insecure-plain-tcp on a network nobody else "
            "can reach")
    raise ClusterRefused(f"--scheduler {scheduler}: the grader connects to tls:// addresses only "
                         "(or tcp:// with --insecure-plain-tcp)")


def _duration(seconds):
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


class Progress:
    """`graded 7/20 [#######.............] 1 zero, 0 errors, about 1 min 05 s left` on stderr:
    redrawn in place on a terminal, one line per result otherwise (logs). The time left is the rate
    of the submissions graded in this run so far times the number left (journal replays are instant)."""

    WIDTH = 20

    def __init__(self, total, stream=None):
        self.total, self.stream = total, stream or sys.stderr
        self.in_place = self.stream.isatty()
        self.started, self.done_at_start = None, 0

    def start_grading(self, done):
        """Grading (not replaying) starts now, with `done` submissions already recorded."""
        self.started, self.done_at_start = time.monotonic(), done

    def time_left(self, done):
        graded = done - self.done_at_start
        if done >= self.total:
            return "done"
        if self.started is None or graded <= 0:
            return "time left: estimating"
        rate = (time.monotonic() - self.started) / graded
        return f"about {_duration(rate * (self.total - done))} left"

    def note(self, line):
        """A line of its own between the progress lines (on a terminal: over the bar, redrawn at the next result)."""
        self.stream.write(f"\r{line}\033[K\n" if self.in_place else f"{line}\n")
        self.stream.flush()

    def show(self, done, zeros, errors=0):
        filled = self.WIDTH * done // max(self.total, 1)
        line = (f"graded {done}/{self.total} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                f"{zeros} zero{'' if zeros == 1 else 's'}, {errors} error{'' if errors == 1 else 's'}, "
                f"{self.time_left(done)}")
        self.stream.write(f"\r{line}\033[K" if self.in_place else f"{line}\n")
        if self.in_place and done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def points(record):
    return sum(cell["points"] for cell in record["cells"])


def why(record):
    """The reason for a zero, else the graded cells that lost points (empty for full marks); then the note
    and the late penalty. For a folder left ungraded: the error, or why it was skipped."""
    if record.get("error"):
        return record["error"]
    if record.get("skipped"):
        return f"skipped: {record['skipped']}; rename the folder"
    if record["reason"]:
        text = record["reason"].splitlines()[0][:100]
    else:
        lost = [cell["grade_id"] for cell in record["cells"] if cell["points"] < cell["max_points"]]
        text = f"failed: {', '.join(lost)}" if lost else ""
    note = "; ".join(part for part in (record.get("note"), record.get("late")) if part)
    return f"{text} ({note})" if text and note else text or note


def summary_table(records):
    """student, score and reason of every record (or the error that left it ungraded, or why it was skipped),
    one line each, aligned; names and reasons printed safely (shown_id, shown): no control character
    reaches the terminal."""
    rows = [("student", "score", "reason")]
    for record in sorted(records, key=lambda r: r["student"]):
        if record.get("error") or record.get("skipped"):
            rows.append((shown_id(record["student"]), "-", shown(why(record))))
            continue
        total = sum(cell["max_points"] for cell in record["cells"])
        rows.append((shown_id(record["student"]), f"{points(record):g}/{total:g}", shown(why(record))))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return "\n".join(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}".rstrip() for row in rows)


def _preflight_limits(limits):
    return limits.memory_bytes, limits.max_processes, limits.disk_bytes


def _worker_preflight(memory_bytes, max_processes, disk_bytes):
    """preflight() on a worker: its notes, or the SandboxUnavailable message prefixed with "error:"."""
    try:
        return sandbox.preflight(memory_bytes, max_processes, disk_bytes)
    except sandbox.SandboxUnavailable as error:
        return [f"error: {error}"]


def _check_workers(client, limits):
    """The preflight on every worker of a running cluster; SandboxUnavailable naming the first that fails."""
    workers = sorted(client.scheduler_info()["workers"])
    # as tasks pinned to each worker (its thread pool), not client.run (which would block its event loop)
    futures = [client.submit(_worker_preflight, *_preflight_limits(limits), workers=[worker],
                             allow_other_workers=False, pure=False, key=f"preflight-{worker}") for worker in workers]
    results = dict(zip(workers, client.gather(futures)))
    for worker, notes in sorted(results.items()):
        failed = [note for note in notes if note.startswith("error: ")]
        if failed:
            raise sandbox.SandboxUnavailable(f"on worker {worker}: {failed[0][len('error: '):]}")
    return sorted({note for notes in results.values() for note in notes})


def _warm_up_workers(client):
    """Each worker imports what its grading steps need (judge.warm_up) while the preflight runs, not in its
    first submission: one task pinned to each worker, submitted before any submission's task (a
    single-threaded worker runs them in that order). Not waited for; returns the futures, which the
    caller keeps until the end (a future nobody holds may be cancelled). A worker that fails it pays
    the imports in its first grading step."""
    return [client.submit(judge.warm_up, workers=[worker], allow_other_workers=False, pure=False,
                          key=f"warm-up-{worker}") for worker in sorted(client.scheduler_info()["workers"])]


@contextlib.contextmanager
def dask_client(scheduler, workers, limits, check_sandbox=True, notes=None, warm_up=False, security=None,
                dashboard=None):
    """A Client of the cluster at `scheduler` (with `security`: cluster_security's), or of a new
    LocalCluster (`workers` single-threaded worker processes, one per core by default) on 127.0.0.1
    with mutual TLS under a certificate made for this run (run_security) and no dashboard unless
    `dashboard` gives its address; closed on leaving. With `check_sandbox`, only once the sandbox
    preflight passed here (local) or on every worker (remote): else SandboxUnavailable. Preflight notes
    (e.g. the cgroup fallback) are appended to `notes`. With `warm_up`, a new LocalCluster's workers
    import what judging needs while the preflight runs (_warm_up_workers)."""
    notes = [] if notes is None else notes
    if scheduler:
        with Client(scheduler, security=security) as client:
            if check_sandbox:
                notes += _check_workers(client, limits)
            yield client
        return
    outcome = {}
    if check_sandbox:
        sandbox.bwrap_path()  # at once: no cluster is started on a machine without bubblewrap

        def run_preflight():
            try:
                outcome["notes"] = sandbox.preflight(*_preflight_limits(limits))
            except Exception as error:  # noqa: BLE001 - reported by the client thread below
                outcome["error"] = error
        # The preflight (a sandbox importing Keras) runs while the cluster starts: nothing is graded before it passes.
        thread = threading.Thread(target=run_preflight, daemon=True)
        thread.start()
    with contextlib.ExitStack() as stack:
        security = stack.enter_context(run_security())
        stack.enter_context(dask.config.set(NO_HTTP_ROUTES if dashboard is None else {}))
        # Dask's work folders (locks, what a worker spills to disk: the grading material) in a private
        # folder: by default they go to <tmp>/dask-scratch-space, used as found when it exists, so a
        # folder of that name made by another user would hold them (and let that user swap them)
        workspace = sandbox.new_scratch_folder()
        stack.callback(shutil.rmtree, workspace, ignore_errors=True)
        stack.enter_context(dask.config.set({"temporary-directory": str(workspace)}))
        # (the scheduler's HTTP server listens even without a dashboard: on a free loopback port, serving nothing)
        cluster = stack.enter_context(LocalCluster(
            n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True, host=LOOPBACK, protocol="tls://",
            security=security, silence_logs=logging.ERROR, dashboard_address=dashboard,
            scheduler_kwargs={"dashboard": dashboard is not None, "dashboard_address": dashboard or f"{LOOPBACK}:0"}))
        client = stack.enter_context(Client(cluster, security=security))
        warming = _warm_up_workers(client) if warm_up else []  # noqa: F841 - kept until the client closes
        if check_sandbox:
            thread.join()
            if "error" in outcome:
                raise outcome["error"]
            notes += outcome["notes"]
        yield client


def grade_folder(submissions_dir, course_dir=paths.INSTRUCTOR_DIR, scheduler=None, workers=None,
                 limits=Limits(), source_notebook=paths.SOURCE_NOTEBOOK, stream=None, grade=grade_submission,
                 check_sandbox=True, notes=None, security=None, dashboard=None):
    """Grades every submission not yet in the journal with these settings; returns a record per submission
    (student order): the journal's record, {"student", "error"} for one left ungraded by a fault, or
    {"student", "skipped"} for a folder whose name cannot be a student id (id_problem): never graded,
    journaled or written to the gradebook.

    `security` is cluster_security's for a `scheduler` (a new local cluster makes its own); `dashboard`
    the local cluster's dashboard address (None: none). `grade` is the per-submission step
    (grade_submission; tests pass a stand-in). Raises
    SandboxUnavailable, before anything is recorded, when the sandbox does not start here.
    """
    course_dir = Path(course_dir)
    material = load_material(source_notebook=source_notebook)
    submissions = find_submissions(submissions_dir, material.assignment, settings_digest(material, limits))
    journal = Journal(course_dir / JOURNAL_NAME)
    skipped = {s.student: s.skipped for s in submissions if s.skipped is not None}
    progress = Progress(len(submissions) - len(skipped), stream)
    todo = [s for s in submissions if s.key not in journal.records and s.not_found is None and s.skipped is None]
    records, errors = {}, {}
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(scheduler, workers, limits, check_sandbox, notes,
                                                 warm_up=grade is grade_submission, security=security,
                                                 dashboard=dashboard)) if todo else None
        gradebook = stack.enter_context(nbgrader_records.open_gradebook(course_dir))
        nbgrader_records.register_assignment(gradebook, material)
        late = nbgrader_records.late_penalties(course_dir)

        def show():
            progress.show(len(records) + len(errors), sum(1 for r in records.values() if points(r) == 0),
                          len(errors))

        def record(submission, result_record):
            timestamp, unreadable = nbgrader_records.timestamp_of(submission.folder)
            late_text = nbgrader_records.record_result(gradebook, material, result_record, timestamp, late)
            shown_notes = "; ".join(note for note in (unreadable, late_text) if note)  # the summary's, not the journal's
            records[submission.student] = {**result_record, "late": shown_notes} if shown_notes else result_record
            show()

        def final(submission, result):
            """A final grade: autograded notebook, journal (durably), then the gradebook."""
            unreadable = nbgrader_records.timestamp_of(submission.folder)[1]
            nbgrader_records.write_autograded(course_dir, material, submission.student,
                                              with_note(result, unreadable).feedback_notebook, submission.folder)
            result_record = to_record(submission.key, result, submission.note)
            journal.append(result_record)
            record(submission, result_record)

        for submission in submissions:
            if submission.key in journal.records:
                record(submission, journal.records[submission.key])
            elif submission.not_found is not None:
                final(submission, zero_result(submission.student, material, submission.not_found))
        if todo:
            progress.start_grading(len(records))
            shared_material = client.scatter(material, broadcast=True)
            futures = {client.submit(grade_task, grade, s.student, s.notebook, shared_material, limits, s.note,
                                     key=f"grade-{s.key}", pure=False): s for s in todo}
            watcher = SlowWatcher(client, time_bounds(todo, material, limits),
                                  lambda student: student in records or student in errors, progress)
            stack.callback(watcher.stop)
            for future in as_completed(futures):
                submission = futures.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - not the student's doing: reported, not recorded
                    errors[submission.student] = fault_message(error)
                    show()
                    continue
                final(submission, result)
    sandbox.sweep_leftovers()  # the local workers are gone now: what they left (if killed) goes too
    ungraded = [{"student": student, "error": message} for student, message in errors.items()]
    ungraded += [{"student": student, "skipped": reason} for student, reason in skipped.items()]
    by_student = {**records, **{record["student"]: record for record in ungraded}}
    return [by_student[s.student] for s in submissions]
