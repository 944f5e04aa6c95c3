"""Runs a learner's notebook cells as a Jupyter kernel does, one time limit per cell.

Stand-alone (the standard library and IPython only): it is copied into the grading sandbox beside
the producer, which calls `run_cells` once per submission.

What "as a kernel does" means here:
- each cell goes through IPython's own machinery (an `InteractiveShell` and its `run_cell`): the
  same input transformation, so `%magics`, `!commands`, `name?` and automagic mean what they mean
  in Jupyter; every cell runs, in order, in one namespace, so a later definition wins;
- the magics that only time or show something run as IPython implements them (`%time`, `%%time`,
  `%%capture`, `%who`, `name?`...: RUNNING_LINE_MAGICS, RUNNING_CELL_MAGICS); any other (the
  debugger, installers, the matplotlib/GUI event loops, shell commands, other languages, reading
  or writing files, changing folder) is skipped with a note instead of failing the cell: the rest
  of the cell runs, as the learner saw it run (a skipped cell magic skips its whole cell);
- an exception ends only its cell; the result names the error and the learner's own line;
- a cell that runs past `cell_seconds` is interrupted (SIGALRM raises KeyboardInterrupt in the
  learner's code, as Jupyter's interrupt button does, and again every second while the cell goes
  on) and the next cells run. A cell that keeps catching the interrupt, or ignores it, is killed by
  the grader after a grace (below);
- each cell's code is compiled as "<cell LABEL>", so tracebacks name the cell as the feedback does;
- what a cell writes on sys.stdout and sys.stderr is passed on up to OUTPUT_LINES lines (at most
  OUTPUT_BYTES bytes), then one TRUNCATED line, and the rest is dropped while the cell runs on (as
  nbgrader's LimitOutput keeps 1000 lines of a cell's output); the result's note says so. Nothing a
  cell writes is kept in memory (IPython's output history is off), so an endless print loop costs its
  cell's time, never the sandbox's memory.

A cell that ignores the interrupt (e.g. `signal.signal(SIGALRM, SIG_IGN)`, or a long call into C) is
not this module's to stop: the grader watches the clock cell by cell (`on_result`) and kills the
sandbox after a grace (see submission.py).

Start-up: importing IPython takes about 0.36 s and creating the shell 0.12 s, then about 3 ms per
cell (measured on the course's 2-core EPYC machine under a load of 11), once per submission.
"""
import ast
import contextlib
import signal
import sys
import time
import traceback

from IPython.core.inputtransformer2 import TransformerManager
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.text import SList
from traitlets.config import Config

# Line magics that run as IPython implements them: they only read state or time a statement.
# Any other line magic is skipped with a note.
RUNNING_LINE_MAGICS = frozenset({
    "time", "who", "whos", "who_ls", "precision", "xmode", "pinfo", "pinfo2", "pdoc", "pdef", "psource",
    "pfile", "lsmagic", "magic", "pwd", "page", "colors", "quickref", "doctest_mode"})
# Cell magics whose body runs in the learner's namespace as in a kernel; any other skips the cell.
RUNNING_CELL_MAGICS = frozenset({"time", "capture"})
ERROR_CHARS = 600
LINE_CHARS = 200
OUTPUT_LINES = 1000  # per cell, stdout and stderr together (nbgrader's LimitOutput.max_lines)
OUTPUT_BYTES = 2**20  # per cell: a cap for output without newlines
TRUNCATED = "... Output truncated ..."  # nbgrader's marker


class CappedStream:
    """A text stream that passes on at most `budget`'s lines and bytes to `stream`, then TRUNCATED once,
    and drops the rest; the same budget is shared by a cell's stdout and stderr."""

    def __init__(self, stream, budget):
        self._stream, self._budget = stream, budget

    def write(self, data):
        data = str(data)
        budget = self._budget
        if not data:
            return 0
        if budget["dropped"]:
            budget["dropped"] += len(data)
            return len(data)
        lines_left, bytes_left = OUTPUT_LINES - budget["lines"], OUTPUT_BYTES - budget["bytes"]
        newlines = data.count("\n")
        # after the last line's newline nothing more passes (not even the start of another line)
        if len(data) <= bytes_left and (newlines < lines_left or (newlines == lines_left and data.endswith("\n"))):
            budget["lines"] += newlines
            budget["bytes"] += len(data)
            if data:
                budget["ended"] = data.endswith("\n")
            return self._stream.write(data)
        kept = data[:bytes_left]
        if kept.count("\n") >= lines_left:  # up to the newline that ends the last line allowed
            cut = -1
            for _ in range(lines_left):
                cut = kept.index("\n", cut + 1)
            kept = kept[:cut + 1]
        budget["dropped"] = len(data) - len(kept) or 1
        ended = not kept and (budget["bytes"] == 0 or budget["ended"])
        self._stream.write(kept + ("" if kept.endswith("\n") or ended else "\n") + TRUNCATED + "\n")
        self._stream.flush()
        return len(data)

    def __getattr__(self, name):  # flush, fileno, encoding, isatty...: the stream's own
        return getattr(self._stream, name)


class CellTimeout(KeyboardInterrupt):
    """Raised in a cell that ran past its time limit (a KeyboardInterrupt, as Jupyter's interrupt)."""


def python_source(source):
    """The cell's source after IPython's input transformation (magics become function calls)."""
    return TransformerManager().transform_cell(source)


def defined_names(source):
    """The top-level names a cell defines (functions, classes, assignments, imports, loop and with
    targets), after IPython's transformation; empty for a cell that is not Python."""
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, ValueError, TypeError):
        return frozenset()
    names = set()

    def targets(node):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                targets(element)
        elif isinstance(node, ast.Starred):
            targets(node.value)

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                continue  # what its body assigns is local to it
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    targets(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets(node.target)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name != "*")
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets(node.target)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                for handler in node.handlers:
                    if handler.name:
                        names.add(handler.name)
            # the bodies of compound statements run at the top level too
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, None) or [])
            for handler in getattr(node, "handlers", None) or []:
                visit(handler.body)
            for case in getattr(node, "cases", None) or []:
                visit(case.body)

    visit(tree.body)
    return frozenset(names)


def _cell_frame(frame, files):
    """The innermost frame of the learner's cells on the stack from `frame` outwards, or None."""
    while frame is not None:
        if frame.f_code.co_filename in files:
            return frame
        frame = frame.f_back
    return None


class GradingShell(InteractiveShell):
    """IPython's shell with the magics that cannot run in grading turned into notes."""

    def _skip(self, what, reason):
        frame = _cell_frame(sys._getframe(2), self.grading_files)
        where = f"line {frame.f_lineno}: " if frame is not None else ""
        self.grading_notes.append(f"{where}{what} {reason} (skipped)")

    def run_line_magic(self, magic_name, line, _stack_depth=1):
        name = magic_name.lstrip("%")
        if name in RUNNING_LINE_MAGICS:
            return super().run_line_magic(magic_name, line, _stack_depth + 1)
        self._skip(f"%{name}{' ' + line if line else ''}".strip()[:LINE_CHARS], "does not run in grading")
        return None

    def run_cell_magic(self, magic_name, line, cell):
        if magic_name in RUNNING_CELL_MAGICS:
            return super().run_cell_magic(magic_name, line, cell)
        self.grading_notes.append(f"%%{magic_name} does not run in grading (the cell was skipped)")
        self.grading_skipped_cell = True
        return None

    def system(self, cmd):
        self._skip(f"!{cmd}"[:LINE_CHARS], "is a shell command: shell commands do not run in grading")

    def getoutput(self, cmd, split=True, depth=0):
        self._skip(f"!{cmd}"[:LINE_CHARS], "is a shell command: shell commands do not run in grading")
        return SList()

    def showtraceback(self, exc_tuple=None, filename=None, tb_offset=None, exception_only=False,
                      running_compiled_code=False):
        # One line instead of IPython's coloured traceback (slow for deep Keras stacks); the
        # result's error and line say the rest.
        error = sys.exc_info()[1] if exc_tuple is None else exc_tuple[1]
        if error is not None:
            print("".join(traceback.format_exception_only(type(error), error)).rstrip(), file=sys.stderr)

    def showsyntaxerror(self, filename=None, running_compiled_code=False):
        self.showtraceback()

    @contextlib.contextmanager
    def _tee(self, channel):
        # IPython 9 copies everything a cell writes into its output history, in memory, even with
        # the history off: an endless print loop grew the sandbox to its memory limit. Grading
        # keeps no output.
        yield

    def _format_exception_for_storage(self, exception, filename=None, running_compiled_code=False):
        # IPython keeps a formatted traceback of each failed cell for its history; formatting one
        # through Keras and TensorFlow frames takes seconds, and grading reads none of it.
        return {"ename": type(exception).__name__, "evalue": str(exception), "traceback": []}


def _shell(namespace):
    """A fresh shell whose user namespace is `namespace` (the producer's), history off."""
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autoindent = False
    GradingShell.clear_instance()
    InteractiveShell.clear_instance()
    shell = GradingShell.instance(user_ns=namespace, config=config)
    shell.grading_notes, shell.grading_skipped_cell = [], False
    shell.grading_files = {}  # the file name each cell's code is compiled under -> (label, source)
    return shell


def _error_text(error):
    # a SyntaxError's str() names the cell's file; its line is in the result's "line"
    text = str(error.msg if isinstance(error, SyntaxError) else error).strip()
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 3] + "..."


def _learner_line(error, files, current):
    """'line N: text' of the deepest frame of the learner's cells in the error's traceback (prefixed
    with the cell's label when it is another cell than the one that raised), else None."""
    found = None
    if isinstance(error, SyntaxError) and error.lineno:
        found = current, error.lineno
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in files:
            found = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    if found is None:
        return None
    name, line = found
    label, source = files[name]
    lines = source.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    where = f"line {line}" if name == current else f"cell '{label}', line {line}"
    return f"{where}: {text}"[:LINE_CHARS]


def _run_one(shell, label, source, cell_seconds):
    # The cell's code is compiled under "<cell LABEL>": tracebacks and the learner frames the
    # checks show name the cell as the feedback does (Jupyter says "Cell In[12]").
    name = f"<cell {label}>"
    if name in shell.grading_files:
        name = f"<cell {label} #{len(shell.grading_files) + 1}>"
    shell.grading_files[name] = (label, source)
    shell.compile.get_code_name = lambda raw_code, transformed_code, number: name
    number = shell.execution_count
    shell.grading_notes, shell.grading_skipped_cell = [], False
    state = {"armed": True, "expired": False}

    def interrupt(signum, frame):
        # Only into the learner's code (a cell's frame on the stack): raised inside IPython's own
        # bookkeeping, it would lose the cell's result. The timer repeats, so it comes back.
        if state["armed"] and _cell_frame(frame, shell.grading_files) is not None:
            state["expired"] = True
            raise CellTimeout(f"interrupted after {cell_seconds:g} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.monotonic()
    error = None
    budget = {"lines": 0, "bytes": 0, "dropped": 0, "ended": True}
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = CappedStream(sys.stdout, budget), CappedStream(sys.stderr, budget)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, cell_seconds, 1.0)
            result = shell.run_cell(source, store_history=True)
            error = result.error_before_exec or result.error_in_exec
        finally:
            state["armed"] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            sys.stdout, sys.stderr = streams
    except BaseException as caught:  # noqa: BLE001 - the interrupt landed in IPython's own code
        error = caught
    if budget["dropped"]:
        shell.grading_notes.append(f"it wrote more than {OUTPUT_LINES} lines of output (or "
                                   f"{OUTPUT_BYTES // 2**20} MiB): the rest was dropped, as nbgrader does")
    if shell.execution_count == number:  # run_cell stopped before counting the cell
        shell.execution_count += 1
    record = {"label": label, "status": "ok", "error": None, "line": None,
              "note": "; ".join(shell.grading_notes) or None, "seconds": round(time.monotonic() - start, 3)}
    if state["expired"]:
        record.update(status="interrupted", error=f"interrupted after {cell_seconds:g} s",
                      line=_learner_line(error, shell.grading_files, name) if error is not None else None)
    elif error is not None:
        record.update(status="error", error=_error_text(error), line=_learner_line(error, shell.grading_files, name))
    elif shell.grading_skipped_cell:
        record.update(status="skipped")
    return record


def run_cells(cells, namespace, cell_seconds, on_result=None):
    """Runs `cells` ([(label, source)...], notebook order) in `namespace` (a dict, changed in place)
    as a Jupyter kernel would, each cell limited to `cell_seconds` (wall seconds); `on_result(index,
    result)`, when given, is called after each cell (the producer tells the grader which cell runs).

    Returns one dict per cell, in order: label; status "ok", "error" (it raised), "interrupted" (ran
    past its limit) or "skipped" (a cell magic that does not run in grading); error ("Type: message",
    at most 600 characters, None when ok); line ("line N: the learner's text" of the deepest frame in
    the learner's cells, "cell 'label', line N: ..." when that is another cell, or None); note (the
    skipped magics and shell commands, or None); seconds. Uses SIGALRM / ITIMER_REAL while it runs:
    call it from the main thread.
    """
    main = sys.modules.get("__main__")
    shell = _shell(namespace)  # makes `namespace` the __main__ module while the cells run, as a kernel does
    try:
        results = []
        for index, (label, source) in enumerate(cells):
            results.append(_run_one(shell, str(label), source, cell_seconds))
            if on_result is not None:
                on_result(index, results[-1])
        return results
    finally:
        sys.stdout.flush()
        if main is not None:  # the caller's own __main__ again
            sys.modules["__main__"] = main
