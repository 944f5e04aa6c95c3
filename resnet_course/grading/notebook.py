"""What the student submitted: the notebook file in a submission folder, its cells, and which of
them grading runs.

`find_notebook` picks the file (`<Assignment>.ipynb`, else the folder's only notebook, or the one
notebook inside a folder named `<Assignment>.ipynb`, with a note; an archive is named, never opened); `parse_notebook` reads it; `student_code` finds the solution cells the way the course's
cells are known, by nbgrader metadata, or, where an editor dropped it (VS Code and others do), by
the names a cell defines (`identity_block`, ...) and, for test and locked cells, by their text. It
keeps every copy of a solution cell (the kernel runs them all, in order: the last definition wins,
as in Jupyter) and the student's own cells before the last test, and says in `notes` whatever
grading had to decide (one line each, for the feedback).
"""
import difflib
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from resnet_course import paths
from resnet_course.grading.kernel import defined_names

PACKAGES_CELL = "packages"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
LOCKED_SIMILARITY = 0.9  # a metadata-less cell this close to a locked cell's text is that cell (not run)
LOCKED_FIRST_LINE = 30  # or one that starts with the same line of at least this many characters
# What Markdown could turn into HTML, a link (":" of a bare URL), an image or math: escaped with a
# backslash (CommonMark allows one before any ASCII punctuation), so the text renders as itself
_MARKDOWN_ACTIVE = re.compile(r"([\\`\[\]<>&$!*_:])")


class SubmissionNotFound(Exception):
    """No notebook to grade in a submission folder; str() is the one-line reason."""


class InvalidNotebook(ValueError):
    """The file is not a readable notebook; str() is the one-line reason."""


@dataclass(frozen=True)
class CodeCell:
    label: str  # how the feedback names it: the grade_id, "identity_block (copy in cell 14)" or "added cell 7"
    source: str  # exactly as written (IPython syntax; kernel.py transforms it)
    grade_id: str | None  # the solution it stands for (by metadata, or matched by what it defines), else None
    defines: frozenset  # top-level names it defines (after IPython's transformation)
    index: int = -1  # its position in the notebook's cells


@dataclass(frozen=True)
class StudentCode:
    cells: tuple  # CodeCell..., notebook order, every copy (the kernel runs all; a later definition wins)
    missing: tuple  # solution grade_ids with no code cell at all (and no Markdown cell either)
    markdown: tuple  # solution grade_ids found only as a Markdown (or Raw) cell
    notes: tuple  # one line each for the feedback
    tests: dict = field(default_factory=dict)  # graded test grade_id -> the position of its (first) test cell


@dataclass(frozen=True)
class Reference:
    """What `student_code` knows of the source notebook besides the material's grade_ids."""
    defines: dict  # solution grade_id -> names its reference solution defines
    locked: dict  # normalized source of a locked (not graded, not solution) code cell -> grade_id


# ---------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------

def _candidate(path):
    # hidden files (macOS "._x.ipynb"), checkpoint copies and folders are never the submission
    return (path.suffix == ".ipynb" and path.is_file() and not path.name.startswith(".")
            and not path.name.endswith("-checkpoint.ipynb"))


ARCHIVES = (".zip", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
LISTED = 10  # entries named in a reason


def _listing(entries):
    names = sorted(repr(path.name) + ("/" if path.is_dir() else "") for path in entries)
    return ", ".join(names[:LISTED]) + (", ..." if len(names) > LISTED else "")


def _visible(folder):
    return [path for path in folder.iterdir() if not path.name.startswith(".")]


def find_notebook(folder, assignment):
    """(path, note) of the notebook to grade in a submission folder.

    `<folder>/<assignment>.ipynb` when it exists (note None); else the folder's only notebook (e.g.
    "ResNet50 (1).ipynb", as a browser saves a second download), with a note naming it. A *folder*
    named `<assignment>.ipynb` (an upload that kept its folder) holding exactly one notebook: that
    notebook, with a note saying so. Hidden files, `*-checkpoint.ipynb` and `.ipynb_checkpoints/`
    are ignored. An archive (ResNet50.zip...) is never opened: a learner unzips it and hands in the
    notebook (an archive can hold anything, and nbgrader does not open one either). Raises
    SubmissionNotFound when the folder holds no notebook (the reason names an archive, "unzip it",
    and otherwise lists what the folder holds), or several and none named `<assignment>.ipynb` (the
    reason lists them).
    """
    folder = Path(folder)
    expected = folder / f"{assignment}.ipynb"
    if expected.is_file():
        return expected, None
    if not folder.is_dir():
        raise SubmissionNotFound(f"no submission folder {folder}")
    if expected.is_dir() and not expected.is_symlink():
        inside = sorted((path for path in expected.iterdir() if _candidate(path)), key=lambda path: path.name)
        if len(inside) == 1:
            return inside[0], (f"{expected.name} is a folder, not a notebook: graded the notebook inside it, "
                               f"{expected.name}/{inside[0].name!r}")
        what = f"{len(inside)} notebooks ({_listing(inside)})" if inside else (_listing(_visible(expected)) or "nothing")
        raise SubmissionNotFound(f"no notebook: {expected.name} in the submission folder is a folder holding {what}: "
                                 f"hand in the notebook file itself")
    found = sorted((path for path in folder.iterdir() if _candidate(path)), key=lambda path: path.name)
    if len(found) == 1:
        return found[0], (f"graded {found[0].name!r}, the only notebook in the submission folder "
                          f"(no {expected.name})")
    if not found:
        entries = _visible(folder)
        archives = sorted((path for path in entries if path.is_file() and path.name.lower().endswith(ARCHIVES)),
                          key=lambda path: path.name)
        if archives:
            names = ", ".join(path.name if path.name.isprintable() else repr(path.name) for path in archives[:LISTED])
            raise SubmissionNotFound(f"no notebook: the submission folder holds {names} (an archive, not a notebook): "
                                     f"unzip it and hand in {expected.name}")
        raise SubmissionNotFound(f"no notebook: the submission folder holds no {expected.name}"
                                 + (f" (it holds {_listing(entries)})" if entries else " (it is empty)"))
    names = ", ".join(repr(path.name) for path in found[:10]) + (", ..." if len(found) > 10 else "")
    raise SubmissionNotFound(f"no {expected.name} and {len(found)} other notebooks in the submission folder "
                             f"({names}): rename the one to grade {expected.name}")


def markdown_text(text):
    """`text` as Markdown that renders as exactly that text: no HTML, link, image or math of its own.

    What grading writes into a Markdown cell or an nbgrader comment (notes, reasons, the judge's
    messages) quotes what the student wrote (error texts, file and layer names); formgrader and the
    feedback render it as Markdown in the instructor's and the class's browser.
    """
    return _MARKDOWN_ACTIVE.sub(r"\\\1", str(text))


def without_outputs(data):
    """The notebook's bytes with every code cell's outputs and execution count cleared, as `nbgrader
    autograde` clears them before it runs a notebook: what a student saved is never shown as grading's
    (its HTML would run in formgrader's page) nor carried to a worker (old outputs can be most of a
    file). Bytes that are not a readable notebook are returned unchanged (grading gives the reason)."""
    try:
        notebook = parse_notebook(data)
    except InvalidNotebook:
        return data
    for cell in notebook.cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    try:
        return nbformat.writes(notebook).encode()
    except Exception:  # noqa: BLE001 - a structure nbformat cannot write back: grading reads it as sent
        return data


def parse_notebook(data):
    """The submission (bytes or str) as an nbformat notebook; InvalidNotebook with a one-line reason."""
    try:
        notebook = nbformat.reads(data.decode("utf-8") if isinstance(data, bytes) else data, as_version=4)
    except Exception as error:  # noqa: BLE001 - JSON, Unicode and nbformat errors alike
        raise InvalidNotebook(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
    if not isinstance(notebook.get("cells"), list):
        raise InvalidNotebook("no list of cells")
    return notebook


# ---------------------------------------------------------------------------------------------
# The cells
# ---------------------------------------------------------------------------------------------

def _grade_id(cell):
    metadata = cell.get("metadata") or {}
    nbgrader = metadata.get("nbgrader") if isinstance(metadata, dict) else None
    grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def normalized(source):
    """The text without trailing spaces and blank edges: how a cell is recognised by its text."""
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def reference(source_notebook=paths.SOURCE_NOTEBOOK):
    """The Reference of a source notebook: each solution's defined names, the locked cells' texts."""
    notebook = nbformat.read(str(source_notebook), as_version=4)
    defines, locked = {}, {}
    for cell in notebook.cells:
        grade_id, nbgrader = _grade_id(cell), cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or grade_id is None:
            continue
        if nbgrader.get("solution"):
            defines[grade_id] = defined_names(cell.source)
        elif not nbgrader.get("grade"):
            locked[normalized(cell.source)] = grade_id
    return Reference(defines, locked)


@functools.lru_cache(maxsize=None)
def _default_reference():
    return reference(paths.SOURCE_NOTEBOOK)


def _is_locked(source, locked_texts):
    """Whether a cell without metadata is one of the locked cells: the same text, nearly the same (a
    setup cell regenerated since the student's download differs in a checksum line), or the same
    long first line (an older release's version of the cell)."""
    text = normalized(source)
    if not text or text in locked_texts:
        return bool(text)
    first = text.splitlines()[0]
    if len(first) >= LOCKED_FIRST_LINE and any(locked.splitlines()[0] == first for locked in locked_texts):
        return True
    for locked in locked_texts:
        matcher = difflib.SequenceMatcher(None, text, locked, autojunk=False)
        if (matcher.real_quick_ratio() >= LOCKED_SIMILARITY and matcher.quick_ratio() >= LOCKED_SIMILARITY
                and matcher.ratio() >= LOCKED_SIMILARITY):
            return True
    return False


def _public(graded):
    start = graded.public.find(HIDDEN_BEGIN)
    return normalized(graded.public if start < 0 else graded.public[:start])


def student_code(notebook, material):
    """The StudentCode of a parsed submission (see the module doc), given the grading material.

    `material` needs `solutions` (the solution grade_ids, in notebook order) and `graded` (objects
    with `grade_id` and `public`, the test cell's visible source); its optional `reference` (a
    Reference) says what each solution defines and which texts are locked cells, else the
    course's source notebook is read (once). A solution whose reference defines nothing is matched
    by its grade_id as a name.

    Which cells run: every code cell standing for a solution (by metadata or by definitions) and
    every non-empty code cell the student added (no nbgrader metadata, not the text of a test
    cell, nor a locked cell's: the same, 90 % alike, or with its long first line), up to the last
    graded test cell (found by metadata or by its text); when no test cell is left, up to the last
    solution cell. Locked cells, test cells and everything after the tests (the training part)
    never run.
    """
    known = getattr(material, "reference", None) or _default_reference()
    solutions = tuple(material.solutions)
    names = {grade_id: (known.defines.get(grade_id) or frozenset({grade_id})) for grade_id in solutions}
    tests = {grade.grade_id for grade in material.graded}
    test_texts = {_public(grade): grade.grade_id for grade in material.graded}
    locked_texts = (set(known.locked) | {normalized(getattr(material, "packages", "") or "")}) - {""}

    kinds = []  # (index, kind, grade_id, source, defines, matched_by_definitions)
    for index, cell in enumerate(notebook.cells):
        if not isinstance(cell, dict):
            continue
        cell_type, grade_id, source = cell.get("cell_type"), _grade_id(cell), _source(cell)
        if cell_type != "code":
            if grade_id in solutions:
                kinds.append((index, "markdown", grade_id, source, frozenset(), False))
            elif grade_id is None:
                stands_for = [g for g in solutions if names[g] & defined_names(source)]
                if stands_for and source.lstrip().startswith(("def ", "class ", "import ", "from ", "@")):
                    kinds.append((index, "markdown", stands_for[0], source, frozenset(), True))
            continue
        if grade_id is None and not source.strip():
            continue  # an empty cell runs nothing
        defines = defined_names(source)
        if grade_id in solutions:
            kinds.append((index, "solution", grade_id, source, defines, False))
        elif grade_id in tests:
            kinds.append((index, "test", grade_id, source, defines, False))
        elif grade_id is not None:
            kinds.append((index, "locked", grade_id, source, defines, False))
        elif normalized(source) in test_texts:
            kinds.append((index, "test", test_texts[normalized(source)], source, defines, True))
        elif any(names[g] & defines for g in solutions):
            stands_for = next(g for g in solutions if names[g] & defines)
            kinds.append((index, "solution", stands_for, source, defines, True))
        elif _is_locked(source, locked_texts):
            kinds.append((index, "locked", None, source, defines, True))
        else:
            kinds.append((index, "added", None, source, defines, False))

    test_positions = [index for index, kind, *_ in kinds if kind == "test"]
    solution_positions = [index for index, kind, *_ in kinds if kind == "solution"]
    end = max(test_positions) if test_positions else max(solution_positions, default=-1)

    cells, notes, copies = [], [], {}
    for index, kind, grade_id, source, defines, matched in kinds:
        if kind == "solution" and index > end:
            notes.append(f"cell {index} ({grade_id}) comes after the last test cell: not run")
        elif kind == "solution":
            copies.setdefault(grade_id, []).append(index)
            label = grade_id if len(copies[grade_id]) == 1 else f"{grade_id} (copy in cell {index})"
            cells.append(CodeCell(label, source, grade_id, defines, index))
            if matched:
                also = [g for g in solutions if g != grade_id and names[g] & defines]
                notes.append(f"cell {index} has no nbgrader metadata: graded as {grade_id}, matched by its "
                             f"definitions" + (f" (it also defines {', '.join(also)})" if also else ""))
        elif kind == "added" and index < end:
            cells.append(CodeCell(f"added cell {index}", source, None, defines, index))
    for grade_id, indexes in copies.items():
        if len(indexes) > 1:
            notes.append(f"{grade_id} is in {len(indexes)} cells ({', '.join(map(str, indexes))}): all run in "
                         f"notebook order and the last definition wins, as in Jupyter")

    run_names = frozenset().union(*(cell.defines for cell in cells)) if cells else frozenset()
    covered = set(copies) | {g for g in solutions if names[g] <= run_names}
    markdown = []
    for index, kind, grade_id, *_ in kinds:
        if kind == "markdown" and grade_id not in covered and grade_id not in markdown:
            markdown.append(grade_id)
            cell_type = "a Raw" if notebook.cells[index].get("cell_type") == "raw" else "a Markdown"
            notes.append(f"cell {index} ({grade_id}) is {cell_type} cell, not a Code cell, so it does not run: "
                         f"the tests that need {grade_id} score 0 (change the cell back to Code)")
    missing = tuple(g for g in solutions if g not in covered and g not in markdown)
    positions = {}
    for index, kind, grade_id, *_ in kinds:
        if kind == "test":
            positions.setdefault(grade_id, index)
    return StudentCode(tuple(cells), missing, tuple(markdown), tuple(notes), positions)
