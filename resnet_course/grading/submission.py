"""Grades one submission: notebook bytes in, a SubmissionResult out (what a Dask worker calls).

The grading material (graded cells with their hidden parts, the pristine packages cell and learner
modules) is read once from the source notebook by `load_material`. `grade_submission` takes the
student's solution cells (and any code cells they added before the tests) from the submission,
runs them with the pristine packages cell in a fresh interpreter in a bubblewrap sandbox
(runner.py) and scores each graded cell from the runner's result channel. The tests come from the
source notebook, never from the submission, so edited or deleted test cells change nothing; the
notebook's training and everything after the tests are never run.
"""
import ast
import json
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from resnet_course import paths
from resnet_course.grading.sandbox import SANDBOX_DIR, Sandbox

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
PACKAGES_CELL = "packages"
PASSED = "All tests passed!"
HIDDEN_FAILED = "Failed the hidden tests."
RUNNER = Path(__file__).with_name("runner.py")
_MAX_RECORD = 1 << 20  # longest result line read from the sandbox
_STDERR_TAIL = 20_000


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 120.0
    memory_bytes: int = 4 * 2**30
    max_processes: int = 256


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
# The submission
# ---------------------------------------------------------------------------------------------

class InvalidNotebook(ValueError):
    pass


def parse_notebook(data):
    """The submission as an nbformat notebook (InvalidNotebook with a one-line reason)."""
    try:
        notebook = nbformat.reads(data.decode("utf-8") if isinstance(data, bytes) else data, as_version=4)
    except Exception as error:  # noqa: BLE001 - JSON, Unicode and nbformat errors alike
        raise InvalidNotebook(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    if not isinstance(notebook.get("cells"), list):
        raise InvalidNotebook("no list of cells")
    return notebook


def student_code(notebook, material):
    """([name, source] of the code to run, in the notebook's order; missing solution grade_ids).

    The code is the solution cells and any code cell the student added (no grade_id) before the
    last solution or graded cell; locked cells and everything after the tests are not run.
    """
    known = set(material.solutions) | {cell.grade_id for cell in material.graded}
    positions = [i for i, cell in enumerate(notebook.cells) if _grade_id(cell) in known]
    end = max(positions, default=-1)
    code, seen = [], set()
    for index, cell in enumerate(notebook.cells[:end + 1]):
        grade_id = _grade_id(cell)
        if cell.get("cell_type") != "code":
            continue
        if grade_id in material.solutions and grade_id not in seen:
            seen.add(grade_id)
            code.append([grade_id, cell.source])
        elif grade_id is None:
            code.append([f"added cell {index}", cell.source])
    return code, [name for name in material.solutions if name not in seen]


# ---------------------------------------------------------------------------------------------
# Running the sandbox
# ---------------------------------------------------------------------------------------------

def _reader(stream, token, records):
    try:
        for line in iter(lambda: stream.readline(_MAX_RECORD), b""):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("token") == token:
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
    except (OSError, ValueError):  # the runner is gone (pipe closed); its end is reported by the records
        pass


def _describe_limit(limit, limits):
    if limit == "memory":
        return f"memory limit ({limits.memory_bytes / 2**30:g} GiB)"
    return "process limit"


def run_sandboxed(job, hidden, material, limits):
    """Runs the runner on `job`; ({grade_id: public record}, {grade_id: hidden passed}, reason or None)."""
    token = secrets.token_hex(16)
    workdir = Path(tempfile.mkdtemp(prefix="resnet-grading-"))
    try:
        for name, text in {**material.learner_modules, **material.images}.items():
            (workdir / name).write_text(text) if isinstance(text, str) else (workdir / name).write_bytes(text)
        shutil.copy(RUNNER, workdir / "runner.py")
        env = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin",
               "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}
        # -E -s (no PYTHON* variables, no user site) but not -I: the script's folder, holding the pristine
        # learner modules, must come first on the import path
        command = [sys.executable, "-E", "-s", "-B", f"{SANDBOX_DIR}/runner.py"]
        deadline = time.monotonic() + limits.wall_seconds
        public, hidden_passed, finished, error = {}, {}, False, None
        with Sandbox(workdir, command, limits.memory_bytes, limits.max_processes, env) as sandbox:
            records, stderr_tail = queue.Queue(), []
            threads = [threading.Thread(target=_reader, args=(sandbox.process.stdout, token, records), daemon=True),
                       threading.Thread(target=_tail, args=(sandbox.process.stderr, stderr_tail), daemon=True),
                       threading.Thread(target=_send, args=(sandbox.process.stdin, {"token": token, **job}),
                                        daemon=True)]
            for thread in threads:
                thread.start()
            timed_out = False
            while True:
                try:
                    record = records.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    timed_out = True
                    break
                if record is None:
                    break
                phase = record.get("phase")
                if phase == "public" and record.get("grade_id") not in public:
                    public[record["grade_id"]] = record
                elif phase == "public-done":
                    threading.Thread(target=_send, args=(sandbox.process.stdin, {"hidden": hidden}),
                                     daemon=True).start()
                elif phase == "hidden":
                    hidden_passed.setdefault(record.get("grade_id"), record.get("passed") is True)
                elif phase == "error":
                    error = str(record.get("message"))[:500]
                elif phase == "done":
                    finished = True
                    break
            if not timed_out and not finished:
                try:
                    sandbox.process.wait(timeout=max(0.1, min(5.0, deadline - time.monotonic())))
                except Exception:  # noqa: BLE001 - still running: killed on leaving the context
                    pass
            limit = sandbox.limit_hit()
            returncode = sandbox.process.poll()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if limit is not None:
        return {}, {}, _describe_limit(limit, limits)
    if timed_out:
        return {}, {}, f"timeout ({limits.wall_seconds:g} s)"
    if error is not None:
        return {}, {}, f"grading failed: {error}"
    if not finished:
        return {}, {}, f"kernel died (exit code {returncode})"
    return public, hidden_passed, None


# ---------------------------------------------------------------------------------------------
# Scores and feedback
# ---------------------------------------------------------------------------------------------

def _score(graded, public, hidden_passed, missing):
    lacking = [name for name in graded.needs if name in missing]
    if lacking:
        return CellResult(graded.grade_id, 0.0, graded.points, f"cells missing: {', '.join(lacking)}")
    record = public.get(graded.grade_id)
    if record is None:
        return CellResult(graded.grade_id, 0.0, graded.points, "not graded")
    if record.get("passed") is not True:
        return CellResult(graded.grade_id, 0.0, graded.points, str(record.get("message"))[:2000])
    if not hidden_passed.get(graded.grade_id, False):
        return CellResult(graded.grade_id, 0.0, graded.points, HIDDEN_FAILED)
    return CellResult(graded.grade_id, graded.points, graded.points, PASSED)


def _feedback_cell(graded, result):
    cell = nbformat.v4.new_code_cell(graded.public.rstrip("\n"))
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": graded.grade_id, "points": graded.points,
                                 "solution": False, "locked": True}
    cell.outputs = [nbformat.v4.new_output(
        "stream", name="stdout", text=f"{result.message}\n[{result.points:g} / {result.max_points:g} points]\n")]
    return cell


def feedback_notebook(notebook, material, cells, reason):
    """The graded notebook: the student's cells, each graded cell as its public line and its result.

    Test cells come from the material's public parts (never the hidden ones), whatever the student
    made of them; a deleted test cell comes back at the end, a duplicated one appears once.
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
    if reason:
        kept.insert(0, nbformat.v4.new_markdown_cell(f"**Grading:** {reason}"))
    notebook.cells = kept
    return nbformat.writes(notebook)


def grade_submission(student, notebook, material, limits=Limits()):
    """Grades one submission's notebook bytes; never raises for a bad submission (see module doc)."""
    start = time.monotonic()
    parsed, reason, public, hidden_passed, missing = None, None, {}, {}, []
    try:
        parsed = parse_notebook(notebook)
    except InvalidNotebook as error:
        reason = f"invalid notebook: {error}"
    if parsed is not None:
        code, missing = student_code(parsed, material)
        graded = [g for g in material.graded if not set(g.needs) & set(missing)]
        job = {"packages": material.packages, "solutions": code,
               "graded": [[g.grade_id, g.public] for g in graded],
               "learner_modules": sorted(material.learner_modules)}
        hidden = {g.grade_id: g.hidden for g in graded}
        public, hidden_passed, reason = run_sandboxed(job, hidden, material, limits)
    if reason is None:
        cells = tuple(_score(g, public, hidden_passed, missing) for g in material.graded)
        tampering = next((c.message for c in cells if c.message.startswith("tampering: ")), None)
        reason = tampering or (f"cells missing: {', '.join(missing)}" if missing else None)
    else:
        cells = tuple(CellResult(g.grade_id, 0.0, g.points, reason) for g in material.graded)
    feedback = feedback_notebook(parsed, material, cells, reason)
    return SubmissionResult(student, reason, cells, round(time.monotonic() - start, 3), feedback)
