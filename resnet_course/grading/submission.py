"""Grades one submission: notebook bytes in, a SubmissionResult out (what a Dask worker calls).

The grading material (graded cells with their hidden parts, the pristine packages cell and learner
modules) is read once from the source notebook by `load_material`. `grade_submission` finds the
student's code cells (notebook.student_code), runs them in a bubblewrap sandbox (producer.py, a
fresh interpreter with the pristine packages cell; each cell as a Jupyter kernel runs it, with its
own time limit) and asks it for the models the student's functions build, for the public cases'
arguments first and the hidden cases' arguments afterwards. The judge (judge.py, in a child process
of this worker's judge host, under its own time and memory limits: bounded.py) rebuilds those models
itself and runs the course's checks on them; only its verdicts and messages reach the result and the
feedback. The tests come from the source notebook, never from the
submission; the hidden cases' expected values never enter the sandbox. See docs/GRADING.md.
"""
import ast
import json
import queue
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from resnet_course import paths
from resnet_course.grading import judge, sandbox
from resnet_course.grading.notebook import (InvalidNotebook, markdown_text, parse_notebook,  # noqa: F401 (re-exported)
                                            student_code)
from resnet_course.grading.sandbox import SANDBOX_DIR, Sandbox

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
PACKAGES_CELL = "packages"
PASSED = judge.PASSED
HIDDEN_FAILED = judge.HIDDEN_FAILED
PRODUCER = Path(__file__).with_name("producer.py")
KERNEL = Path(__file__).with_name("kernel.py")
MAX_RECORD = 8 * 2**20  # longest record line read from the sandbox (producer.MAX_RECORD); longer ones are dropped
MAX_RUN_SECONDS = 3600.0  # cap of the derived whole-run limit
RUN_OVERHEAD_SECONDS = 240.0  # starting the producer (TensorFlow), the packages cell, building the models
JUDGE_MIN_MEMORY_BYTES = 2 * 2**30  # judging a correct ResNet50's hidden case takes under 1 GiB of the judge's own
_STDERR_TAIL = 20_000
_NO_SPACE = ("No space left on device", "[Errno 28]", "ENOSPC")


class GradingFault(RuntimeError):
    """Grading could not run for a reason the student did not cause (the sandbox did not start, the
    producer died before its first record, the judge itself failed): not a grade; grade it again."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use. `cell_seconds`: per cell, as nbgrader's --timeout (a cell that runs
    longer is interrupted, the next cells run; one that goes on after its interrupt is killed
    `grace_seconds` later, and so is a call of a student's function); `wall_seconds`: the whole
    sandboxed run, None to derive it from cell_seconds and the source notebook (`run_seconds`); memory
    and processes of the sandbox; `disk_bytes`: the size of each of its writable tmpfs (its working
    folder and /tmp). The judge, in a process of its own, has `judge_seconds` of CPU time per graded
    cell (None: twice a cell's limit) and `judge_memory_bytes` (None: the sandbox's memory_bytes, at
    least JUDGE_MIN_MEMORY_BYTES) beyond what it shares with its host (see bounded.py)."""
    cell_seconds: float = 60.0
    memory_bytes: int = 4 * 2**30
    max_processes: int = 256
    disk_bytes: int = 512 * 2**20
    wall_seconds: float | None = None
    grace_seconds: float = 10.0
    judge_seconds: float | None = None
    judge_memory_bytes: int | None = None

    def judge_limits(self):
        """(CPU seconds per graded cell, memory in bytes) of the judge."""
        return (float(self.judge_seconds) if self.judge_seconds is not None else 2 * self.cell_seconds,
                int(self.judge_memory_bytes) if self.judge_memory_bytes is not None
                else max(self.memory_bytes, JUDGE_MIN_MEMORY_BYTES))

    def run_seconds(self, cells, calls=0):
        """The whole run's limit for `cells` cells (the SOURCE notebook's solution cells: what a student
        adds does not raise it) and `calls` calls of their functions (public and hidden: each call has a
        cell's limit too): each one's limit plus RUN_OVERHEAD_SECONDS (at least two cells' limits) for the
        rest, capped at MAX_RUN_SECONDS; an explicit wall_seconds wins."""
        if self.wall_seconds is not None:
            return float(self.wall_seconds)
        return min(MAX_RUN_SECONDS,
                   self.cell_seconds * (cells + calls) + max(RUN_OVERHEAD_SECONDS, 2 * self.cell_seconds))


@dataclass(frozen=True)
class GradedCell:
    """A graded test cell of the source notebook, split into what the student sees and the hidden rest."""
    grade_id: str
    points: float
    public: str
    hidden: str
    needs: tuple  # the solution cells its public test names


@dataclass(frozen=True)
class GradingMaterial:
    assignment: str
    cells: tuple  # (packages source, solution grade_ids, GradedCell...) as MaterialCells
    learner_modules: dict
    images: dict = field(default_factory=dict)

    @property
    def packages(self):
        return next(c.source for c in self.cells if c.kind == "packages")

    @property
    def solutions(self):
        return tuple(c.grade_id for c in self.cells if c.kind == "solution")

    @property
    def graded(self):
        return tuple(c.graded for c in self.cells if c.kind == "graded")


@dataclass(frozen=True)
class MaterialCell:
    kind: str  # "packages", "solution" or "graded"
    grade_id: str
    source: str = ""
    graded: GradedCell = None


@dataclass(frozen=True)
class CellResult:
    grade_id: str
    points: float
    max_points: float
    message: str


@dataclass(frozen=True)
class SubmissionResult:
    student: str
    reason: str
    cells: tuple
    seconds: float
    feedback_notebook: str

    @property
    def points(self):
        return sum(cell.points for cell in self.cells)


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def split_hidden(source):
    """(public part, hidden part) of a graded cell's source; the markers belong to the hidden part."""
    start = source.find(HIDDEN_BEGIN)
    if start < 0:
        return source, ""
    return source[:start].rstrip() + "\n", source[start:]


def _names(source):
    try:
        return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    except SyntaxError:
        return set()


def load_material(source_notebook=paths.SOURCE_NOTEBOOK):
    """The grading material of the source notebook (ValueError naming what is missing)."""
    notebook = nbformat.read(str(source_notebook), as_version=4)
    solutions = [_grade_id(c) for c in notebook.cells
                 if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    cells = []
    for cell in notebook.cells:
        grade_id, nbgrader = _grade_id(cell), cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grade_id is None:
            continue
        if grade_id == PACKAGES_CELL:
            cells.append(MaterialCell("packages", grade_id, cell.source))
        elif nbgrader.get("solution"):
            cells.append(MaterialCell("solution", grade_id))
        elif nbgrader.get("grade"):
            public, hidden = split_hidden(cell.source)
            needs = tuple(name for name in solutions if name in _names(public))
            cells.append(MaterialCell("graded", grade_id, graded=GradedCell(
                grade_id, float(nbgrader.get("points", 0)), public, hidden, needs)))
    if not any(c.kind == "packages" for c in cells):
        raise ValueError(f"{source_notebook}: no code cell with grade_id {PACKAGES_CELL!r}")
    if not any(c.kind == "graded" for c in cells):
        raise ValueError(f"{source_notebook}: no graded test cell")
    modules = {name: (paths.ROOT / name).read_text() for name in paths.LEARNER_MODULES
               if (paths.ROOT / name).is_file()}
    return GradingMaterial(paths.ASSIGNMENT, tuple(cells), modules, {})


# ---------------------------------------------------------------------------------------------
# Running the producer in the sandbox
# ---------------------------------------------------------------------------------------------

def _reader(stream, records):
    """Puts each JSON record of the producer's channel on `records` (None at the end). A line over
    MAX_RECORD is dropped whole and reported as {"kind": "oversized"}; lines that are not JSON
    objects are ignored."""
    try:
        while True:
            line = stream.readline(MAX_RECORD + 1)
            if not line:
                break
            if len(line) > MAX_RECORD or not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):  # skip the rest of the line without keeping it
                    line = stream.readline(MAX_RECORD)
                records.put({"kind": "oversized"})
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                records.put(record)
    except (OSError, ValueError):  # the pipe was closed under us: the sandbox is being torn down
        pass
    records.put(None)


def _tail(stream, keep):
    try:
        for chunk in iter(lambda: stream.read(65536), b""):
            keep.append(chunk)
            while sum(map(len, keep)) > _STDERR_TAIL and len(keep) > 1:
                keep.pop(0)
    except (OSError, ValueError):  # as in _reader
        pass


def _send(stream, payload):
    try:
        stream.write((json.dumps(payload) + "\n").encode())
        stream.flush()
    except (OSError, ValueError):  # the producer is gone (pipe closed); its end is reported by the records
        pass


def _describe_limit(limit, limits):
    if limit == "memory":
        return f"memory limit ({limits.memory_bytes / 2**30:g} GiB)"
    return "process limit"


@dataclass
class Run:
    """What the producer sent, as data: cell results, defined functions, artefacts per phase and call.

    `oversized` and `reason` describe only what happened before the hidden calls entered the sandbox;
    from then on every end (death, limit, timeout, dropped or malformed record) leaves only missing
    artefacts, which fail the hidden checks of their functions with the fixed HIDDEN_FAILED."""
    cells: list = field(default_factory=list)
    defined: set = field(default_factory=set)
    artefacts: dict = field(default_factory=lambda: {"public": {}, "hidden": {}})  # phase -> {call id: artefact}
    oversized: int = 0  # records dropped before the hidden phase
    reason: str | None = None  # a student-caused end before the hidden phase, None otherwise
    hidden_started: bool = False
    stopped: tuple | None = None  # (index of the cell, reason naming it) when the run ended in a student cell


_STATUSES = ("ok", "error", "interrupted", "skipped")
_OPTIONAL_TEXT = (str, type(None))
MALFORMED = ("grading received a malformed record from the sandbox: something in the notebook wrote on "
             "grading's channel")


def cells_record_problem(record):
    """None when a "cells" record has the producer's schema, else why not (a short phrase). Every
    record is student-writable data: its types and sizes are checked before anything reads it."""
    results, defined = record.get("results"), record.get("defined")
    if not isinstance(results, list) or not isinstance(defined, list) or len(results) > 10_000 \
            or len(defined) > 1000:
        return "its results or defined names are not lists of the expected size"
    if not all(isinstance(name, str) for name in defined):
        return "a defined name is not text"
    for result in results:
        if not (isinstance(result, dict) and isinstance(result.get("label"), str)
                and result.get("status") in _STATUSES
                and all(isinstance(result.get(key), _OPTIONAL_TEXT) for key in ("error", "line", "note"))):
            return "a cell's result is malformed"
    return None


def _call_id(record, calls):
    """The call id of an artefact record when it names one of `calls` ({int id: call}), else None."""
    call_id = record.get("id")
    return call_id if isinstance(call_id, int) and not isinstance(call_id, bool) and call_id in calls else None


def _scratch_folder():
    new = getattr(sandbox, "new_scratch_folder", None)
    return Path(new()) if new else Path(tempfile.mkdtemp(prefix="resnet-grading-"))


def _step_deadline(limits):
    return time.monotonic() + limits.cell_seconds + limits.grace_seconds


def _cell_label(job, index):
    return str(job["cells"][index][0])[:200]


def run_producer(job, public_calls, hidden_calls, material, limits, run_seconds=None):
    """Runs the producer on `job`, sends it the public then the hidden calls ({id: call}); a Run.

    Watches the clock of each step as the producer's records mark them: a cell (its "cell" records)
    or a call (its artefact) that outlives `limits.cell_seconds` by `limits.grace_seconds` (it went on
    after its interrupt, e.g. SIGALRM ignored) gets the sandbox killed, and so does the whole run past
    `run_seconds` (default: limits.run_seconds for the job's cells). A run that ends inside a student
    cell names it in its reason; when that end was the kill, a memory or process limit or the
    kernel's death (not the whole run's limit), `Run.stopped` is (the cell's index in job["cells"],
    that reason). The records only time the steps (a forged one can move a step's start, never past
    the whole run's limit).

    Raises GradingFault when the sandbox did not start or the producer ended before its "ready"
    record (only the pristine packages cell has run by then: not the student's doing)."""
    workdir = _scratch_folder()
    run, ready, phase = Run(), False, None
    if run_seconds is None:
        run_seconds = limits.run_seconds(len(job["cells"]), len(public_calls) + len(hidden_calls))
    try:
        for name, text in {**material.learner_modules, **material.images}.items():
            (workdir / name).write_text(text) if isinstance(text, str) else (workdir / name).write_bytes(text)
        shutil.copy(PRODUCER, workdir / "producer.py")
        if KERNEL.is_file():
            shutil.copy(KERNEL, workdir / "kernel.py")
        env = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
        # -E -s (no PYTHON* variables, no user site) but not -I: the script's folder, holding the pristine
        # learner modules, must come first on the import path
        command = [sys.executable, "-E", "-s", "-B", f"{SANDBOX_DIR}/producer.py"]
        deadline = time.monotonic() + run_seconds
        stderr_tail = []
        try:
            box = Sandbox(workdir, command, limits.memory_bytes, limits.max_processes, env,
                          disk_bytes=limits.disk_bytes)
        except (OSError, getattr(sandbox, "SandboxUnavailable", OSError)) as error:
            raise GradingFault(f"the sandbox did not start: {error}") from error
        with box:
            records = queue.Queue()
            threads = [threading.Thread(target=_reader, args=(box.process.stdout, records), daemon=True),
                       threading.Thread(target=_tail, args=(box.process.stderr, stderr_tail), daemon=True),
                       threading.Thread(target=_send, args=(box.process.stdin, job), daemon=True)]
            for thread in threads:
                thread.start()
            timed_out, overran, finished, malformed = False, False, False, False
            cells_done, calls_done = 0, set()  # what the records say has ended (they time the steps)
            # when the running step (a cell, a call, or the producer's own work between them, e.g. after a
            # student patched it) must have sent its record: its limit and the grace; None before "ready"
            step = None

            def start(name, calls):
                calls = [{"id": call_id, **call} for call_id, call in calls.items()]
                threading.Thread(target=_send, args=(box.process.stdin, {"phase": name, "calls": calls}),
                                 daemon=True).start()
                return name

            while True:
                until = deadline if step is None else min(deadline, step)
                try:
                    if time.monotonic() >= until:  # (a flood of records that time nothing must not hold it)
                        raise queue.Empty
                    record = records.get(timeout=max(0.0, until - time.monotonic()))
                except queue.Empty:
                    timed_out = True
                    overran = step is not None and step < deadline
                    box.kill()  # a cell or call that ignores its interrupt is killed, never waited for
                    break
                if record is None:
                    break
                kind = record.get("kind")
                if kind == "oversized":
                    # counted only while nothing hidden is in the sandbox: afterwards the count could
                    # carry a hidden argument (a dropped hidden artefact fails its hidden check)
                    run.oversized += not run.hidden_started
                elif not ready:
                    if kind == "fault":  # before any student code ran: the packages cell's own failure
                        raise GradingFault(str(record.get("message"))[:500])
                    ready = kind == "ready"
                    step = _step_deadline(limits) if ready else None
                elif kind == "cell" and phase is None:
                    if record.get("index") == cells_done and cells_done < len(job["cells"]):
                        cells_done += 1
                        step = _step_deadline(limits)
                elif kind == "cells" and phase is None:
                    if cells_record_problem(record) is not None:
                        malformed = True
                        break
                    run.cells = record["results"]
                    run.defined = set(record["defined"])
                    phase = start("public", public_calls)
                    calls_done, step = set(), _step_deadline(limits)
                elif kind == "artefact" and phase is not None and record.get("phase") == phase:
                    calls = public_calls if phase == "public" else hidden_calls
                    call_id = _call_id(record, calls)
                    if call_id is not None:  # its contents are checked by the judge (judge.artefact_problem)
                        run.artefacts[phase].setdefault(call_id, record.get("artefact"))
                        if call_id not in calls_done:
                            calls_done.add(call_id)
                            step = _step_deadline(limits)
                elif kind == "phase-done" and phase == "public" == record.get("phase"):
                    # Only now, with every public artefact in hand, do the hidden arguments enter the sandbox.
                    phase = start("hidden", hidden_calls)
                    run.hidden_started = True
                    calls_done, step = set(), _step_deadline(limits)
                elif kind == "done" and phase == "hidden":
                    finished = True
                    break
            if not timed_out and not finished:
                try:
                    box.process.wait(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                except Exception:  # noqa: BLE001 - still running: killed on leaving the context
                    pass
            limit = box.limit_hit()
            returncode = box.process.poll()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if run.hidden_started:
        # Nothing the producer did after the hidden arguments entered reaches a message: its exit
        # status, a limit, a timeout or a malformed record leave only the hidden artefacts it did not
        # send, whose hidden checks fail with the fixed HIDDEN_FAILED.
        return run
    if malformed:
        run.reason = MALFORMED
        return run
    if not ready and limit is None and not timed_out:
        tail = b"".join(stderr_tail).decode(errors="replace").strip().splitlines()[-3:]
        raise GradingFault(f"the producer ended before its first record (exit code {returncode})"
                           + (f": {' | '.join(tail)[:500]}" if tail else ""))
    if finished:
        return run
    if limit is not None:
        what = _describe_limit(limit, limits)
    elif overran:
        what = (f"ran past its {limits.cell_seconds:g} s limit and went on after its interrupt: killed "
                f"{limits.grace_seconds:g} s later")
    elif timed_out:
        what = f"timeout ({run_seconds:g} s, the whole run's limit)"
    else:
        what = f"kernel died (exit code {returncode})"
    if ready and phase is None and cells_done < len(job["cells"]):  # inside a student cell: name it
        label = _cell_label(job, cells_done)
        if overran:
            text = f"cell '{label}' {what}; the cells after it did not run"
        else:
            text = f"{what} in cell '{label}': the kernel stopped there, and the cells after it did not run"
        # (not after the whole run's limit: running the cells before it again could take as long)
        run.stopped = None if timed_out and not overran else (cells_done, text)
        run.reason = text
    elif phase == "public" and any(call_id not in calls_done for call_id in public_calls):
        # inside a call of the student's function (the producer makes them in order): name it
        pending = next(call_id for call_id in public_calls if call_id not in calls_done)
        function = str(public_calls[pending].get("function"))[:100]
        run.reason = (f"grading's call of {function} {what}" if overran else
                      f"{what} in grading's call of {function}")
    else:
        run.reason = f"the kernel {what}" if overran else what
    return run


# ---------------------------------------------------------------------------------------------
# Scores and feedback
# ---------------------------------------------------------------------------------------------

def _no_space(text, limits):
    if text and any(marker in text for marker in _NO_SPACE):
        return f" (the sandbox's writable space, {limits.disk_bytes / 2**20:g} MiB, is full)"
    return ""


def describe_cell(result, limits):
    """What happened to a cell that did not run through, in a few words (None when it did)."""
    status = result.get("status")
    label = str(result.get("label"))[:200]
    if status == "interrupted":
        return f"cell '{label}' ran past its {limits.cell_seconds:g} s limit and was interrupted"
    if status == "error":
        line = result.get("line")
        error = str(result.get("error"))[:700]
        return (f"cell '{label}' raised {error}" + (f" at {str(line)[:300]}" if line else "")
                + _no_space(error, limits))
    if status == "skipped":
        return f"cell '{label}' was skipped" + (f": {str(result.get('note'))[:300]}" if result.get("note") else "")
    if status == STOPPED:  # (made by the grader, never by the sandbox: the reason that names the cell)
        return str(result.get("error"))
    if status == NOT_RUN:
        return f"cell '{label}' did not run (the kernel had stopped before it)"
    return None


STOPPED, NOT_RUN = "stopped", "not run"  # statuses the grader gives the cell a run ended in and those after it


def why_undefined(function, code, run, limits):
    """Why `function` is not defined after the student's cells ran (one sentence)."""
    defining = {cell.label for cell in code.cells if function in cell.defines}
    failed = [describe_cell(r, limits) for r in run.cells
              if r.get("label") in defining and r.get("status") in ("error", "interrupted", "skipped", STOPPED, NOT_RUN)]
    if failed:
        return f"{function} is not defined: {failed[-1]}"
    if function in code.missing:
        return f"{function} is not defined: its cell is missing from the notebook"
    if function in getattr(code, "markdown", ()):
        return (f"{function} is not defined: its cell is a Markdown cell, not a Code cell, so it does not run "
                "(change the cell type back to Code)")
    return f"{function} is not defined: no cell that ran defines it"


def _judged(exercise, code, run):
    """Whether the judge has anything to judge for the exercise (its function was defined)."""
    return exercise.function not in code.missing and exercise.function in run.defined


def _score(exercise, graded, code, run, verdict, limits, functions):
    """The CellResult of one graded cell (`verdict`: the judge's judge.Verdict on the rebuilt models)."""
    if exercise.function in code.missing:
        return CellResult(graded.grade_id, 0.0, graded.points, f"cells missing: {exercise.function}")
    if exercise.function not in run.defined:
        return CellResult(graded.grade_id, 0.0, graded.points, why_undefined(exercise.function, code, run, limits))
    message = verdict.public
    if message is not None:
        for other in functions:  # a function the check's target calls may be the one not defined
            if other not in run.defined and f"name '{other}' is not defined" in message:
                message += f"\n  ({why_undefined(other, code, run, limits)})"
        return CellResult(graded.grade_id, 0.0, graded.points, message[:4000])
    if verdict.hidden is not None:
        return CellResult(graded.grade_id, 0.0, graded.points, HIDDEN_FAILED)
    return CellResult(graded.grade_id, graded.points, graded.points, PASSED)


def _feedback_cell(graded, result):
    cell = nbformat.v4.new_code_cell(graded.public.rstrip("\n"))
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": graded.grade_id, "points": graded.points,
                                 "solution": False, "locked": True}
    cell.outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text=f"{result.message}\n[{result.points:g} / {result.max_points:g} points]\n")]
    return cell


def feedback_notebook(notebook, material, cells, reason, notes=()):
    """The graded notebook: the student's cells, each graded cell as its public line and its result.

    Test cells come from the material's public parts (never the hidden ones), whatever the student
    made of them; a deleted test cell comes back at the end, a duplicated one appears once. `reason`
    and `notes` (one line each) head the notebook.
    """
    notebook = notebook if notebook is not None else nbformat.v4.new_notebook()
    results = {cell.grade_id: cell for cell in cells}
    graded_cells = {graded.grade_id: graded for graded in material.graded}
    kept, placed = [], set()
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id not in graded_cells:
            kept.append(cell)
        elif grade_id not in placed:
            kept.append(_feedback_cell(graded_cells[grade_id], results[grade_id]))
            placed.add(grade_id)
    kept += [_feedback_cell(graded, results[grade_id]) for grade_id, graded in graded_cells.items()
             if grade_id not in placed]
    # as escaped Markdown: reasons and notes quote the student's own text (error texts, names)
    head = (([f"**Grading:** {markdown_text(reason)}"] if reason else [])
            + [f"**Grading note:** {markdown_text(note)}" for note in notes])
    if head:
        kept.insert(0, nbformat.v4.new_markdown_cell("\n\n".join(head)))
    notebook.cells = kept
    return nbformat.writes(notebook)


def _numbered(calls):
    """{id: call} with ids 0, 1, ... and {key: id} to find them again."""
    by_id, ids = {}, {}
    for key, call in calls.items():
        ids[key] = len(by_id)
        by_id[ids[key]] = call
    return by_id, ids


def _artefacts(ids, received):
    return {key: received[call_id] for key, call_id in ids.items() if isinstance(received.get(call_id), dict)}


def _rerun_before(stopped, job, code, material, public_by_id, hidden_by_id, limits, run_seconds):
    """After a run that ended inside student cell k (`stopped`: (k, reason)), the Run of the cells
    before it (run again in a fresh sandbox, as a notebook restarted and run up to that cell), with
    the grader's own results for cell k (STOPPED, the reason) and those after it (NOT_RUN); None when
    no test cell comes before cell k (nothing to gain) or that run did not go through either."""
    index, reason = stopped
    position = code.cells[index].index
    if index == 0 or not any(code.tests.get(g.grade_id, float("inf")) < position for g in material.graded):
        return None
    again = run_producer({**job, "cells": job["cells"][:index]}, public_by_id, hidden_by_id, material, limits,
                         run_seconds)
    if again.reason is not None or again.stopped is not None:
        return None
    again.cells = list(again.cells) + [{"label": code.cells[index].label, "status": STOPPED, "error": reason}] + [
        {"label": cell.label, "status": NOT_RUN} for cell in code.cells[index + 1:]]
    return again


def grade_submission(student, notebook, material, limits=Limits()):
    """Grades one submission's notebook bytes (see the module doc).

    Never raises for anything in the submission: a bad notebook, a failing cell, a limit hit are
    results (zero points with their reason). A run that ends inside a student cell (a memory or
    process limit, a cell killed after its limit and grace, the kernel's death) costs the test cells
    after that cell in notebook order, with a reason that names it; the tests before it are graded
    on the cells before it, run again (`_rerun_before`). Raises GradingFault for what the student
    did not cause.
    """
    start = time.monotonic()
    parsed, reason, code, notes, cells = None, None, None, [], None
    try:
        parsed = parse_notebook(notebook)
    except InvalidNotebook as error:
        reason = f"invalid notebook: {error}"
    if parsed is not None:
        try:
            exercises = judge.exercises(material)
        except Exception as error:  # noqa: BLE001 - the grading material, not the submission
            raise GradingFault(f"the judge cannot read the grading material: {error}") from error
        code = student_code(parsed, material)
        notes += list(code.notes)
        wanted = [e for e in exercises if e.function not in code.missing]
        public_calls, public_ids, hidden_calls, hidden_ids = {}, {}, {}, {}
        for exercise in wanted:
            public_calls.update(judge.calls(exercise, exercise.public_cases))
            hidden_calls.update(judge.calls(exercise, exercise.hidden_cases))
        public_by_id, public_ids = _numbered(public_calls)
        hidden_by_id, hidden_ids = _numbered(hidden_calls)
        job = {"packages": material.packages, "cells": [[cell.label, cell.source] for cell in code.cells],
               "functions": sorted({e.function for e in exercises}), "cell_seconds": limits.cell_seconds}
        # The source notebook's cells, not the student's: added cells do not lengthen the whole run.
        run_seconds = limits.run_seconds(len(material.solutions), len(public_by_id) + len(hidden_by_id))
        run = run_producer(job, public_by_id, hidden_by_id, material, limits, run_seconds)
        reason, after = run.reason, None
        if run.stopped is not None:
            again = _rerun_before(run.stopped, job, code, material, public_by_id, hidden_by_id, limits, run_seconds)
            if again is not None:
                after = code.cells[run.stopped[0]].index  # the test cells after this position lose their points
                run = again
        if run.reason is None:
            notes += [text for text in (describe_cell(r, limits) for r in run.cells
                                        if r.get("status") not in (STOPPED, NOT_RUN)) if text]
            notes += [str(r.get("note"))[:300] for r in run.cells if r.get("note") and r.get("status") == "ok"]
            if run.oversized:
                notes.append(f"{run.oversized} record(s) from the sandbox were over the {MAX_RECORD // 2**20} MiB "
                             "limit and were dropped")
            public = _artefacts(public_ids, run.artefacts["public"])
            hidden = _artefacts(hidden_ids, run.artefacts["hidden"])
            graded_cells = {graded.grade_id: graded for graded in material.graded}
            try:
                # the cells after the one where the run stopped cost the tests after it; the rest are judged
                # in a killable child process, under the judge's limits: an overrun is a verdict
                def skipped(e):
                    return after is not None and code.tests.get(e.grade_id, float("inf")) > after
                verdicts = judge.bounded_verdicts([e for e in exercises if not skipped(e) and _judged(e, code, run)],
                                                  public, hidden, *limits.judge_limits())
                cells = tuple(
                    CellResult(e.grade_id, 0.0, graded_cells[e.grade_id].points, reason) if skipped(e) else
                    _score(e, graded_cells[e.grade_id], code, run, verdicts.get(e.grade_id), limits, job["functions"])
                    for e in exercises)
            except Exception as error:  # noqa: BLE001 - the judge's own failure is never a grade
                raise GradingFault(f"the judge failed: {type(error).__name__}: {error}") from error
            if code.missing and reason is None:
                reason = f"cells missing: {', '.join(code.missing)}"
    if cells is None:
        cells = tuple(CellResult(g.grade_id, 0.0, g.points, reason) for g in material.graded)
    feedback = feedback_notebook(parsed, material, cells, reason, notes)
    return SubmissionResult(student, reason, cells, round(time.monotonic() - start, 3), feedback)
