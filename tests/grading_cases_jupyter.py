"""Submissions that Jupyter runs differently from plain Python, for the robustness batch.

`jupyter_cases()` gives {student: (notebook bytes, Expected[, file name])} (Expected from
tests/grading_batch_cases.py); each expects the points a learner's Jupyter kernel (and nbgrader) would
give: magics behave as in a kernel, every copy of a cell runs and the last definition wins, cells
without nbgrader metadata are graded by what they define, a slow cell costs only itself. A third
element is the file name the submission is saved under in its folder (default `ResNet50.ipynb`).
The builders start from tests/grading_submissions.py, as the other cases do; two of them rebuild
public reports of other graders' users (a leftover `%debug` line, a duplicated solution cell).
"""
import copy

import nbformat

from tests import grading_submissions as submissions
from tests.grading_batch_cases import FULL, Expected

# The identity block's ReLU after the Add, which the duplicated cell's first (early) copy forgets.
RELU_AFTER_ADD = '    X = Add()([X_shortcut, X])\n    X = Activation("relu")(X)\n'
SLOW_SECONDS = 300
SLOW_CELL = (f"# trying something slow between the exercises\nimport time\n\ntime.sleep({SLOW_SECONDS})\n"
             "experiment_done = True\n")


def _index(notebook, grade_id):
    return next(i for i, cell in enumerate(notebook.cells)
                if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def magic_line():
    """A correct submission whose identity_block cell ends with a leftover `%debug` line: in Jupyter
    the magic prints "No traceback has been produced, nothing to debug." and the check passes."""
    notebook = submissions.notebook_with({})
    cell = submissions.cell(notebook, "identity_block")
    cell.source = cell.source.rstrip("\n") + "\n\n%debug\n"
    return submissions.to_bytes(notebook)


def duplicated_cell():
    """The identity_block cell copied (metadata and grade_id too): the first copy is an early attempt
    without the ReLU after the Add, the second, run last, is the fixed one, which the kernel uses."""
    notebook = submissions.notebook_with({})
    index = _index(notebook, "identity_block")
    fixed = notebook.cells[index]
    if RELU_AFTER_ADD not in fixed.source:
        raise ValueError("the duplicated-cell case no longer applies to resnet_course/course/reference.py")
    early = copy.deepcopy(fixed)
    early.source = fixed.source.replace(RELU_AFTER_ADD, '    X = Add()([X_shortcut, X])\n')
    early["id"] = f"{fixed.get('id', 'identity-block')}-copy"
    notebook.cells.insert(index, early)
    return submissions.to_bytes(notebook)


def markdown_cell(grade_id="convolutional_block"):
    """A correct submission whose solution cell `grade_id` was turned into a Markdown cell (its text and
    nbgrader metadata kept): Jupyter never runs it, so its tests fail, and those of ResNet50 with them."""
    notebook = submissions.notebook_with({})
    cell = submissions.cell(notebook, grade_id)
    index = notebook.cells.index(cell)
    markdown = nbformat.v4.new_markdown_cell(cell.source, metadata=copy.deepcopy(cell.metadata))
    markdown["id"] = cell.get("id", markdown["id"])
    notebook.cells[index] = markdown
    return submissions.to_bytes(notebook)


def metadata_dropped():
    """A correct submission saved by an editor that keeps no cell metadata (VS Code and others drop
    nbgrader's): every cell's metadata is empty, all the code is there."""
    notebook = submissions.notebook_with({})
    for cell in notebook.cells:
        cell.metadata = {}
    return submissions.to_bytes(notebook)


def slow_cell():
    """A correct submission with a cell of the learner's own after the first test that runs 300 s:
    interrupted at the per-cell limit, it costs nothing (no test needs it); the feedback names it."""
    notebook = submissions.notebook_with({})
    notebook.cells.insert(_index(notebook, "identity_block_test") + 1, nbformat.v4.new_code_cell(SLOW_CELL))
    return submissions.to_bytes(notebook)


def jupyter_cases():
    """{student: (notebook bytes, Expected[, file name])}: six submissions graded as Jupyter runs them.

    The slow cell needs a per-cell limit below 300 s (the batch's `--timeout`)."""
    return {
        "jupyter-debug-line": (magic_line(), Expected(None, FULL)),
        "jupyter-duplicated-cell": (duplicated_cell(), Expected(None, FULL)),
        # ResNet50 calls convolutional_block: its test fails with it, both messages say why.
        "jupyter-markdown-cell": (markdown_cell("convolutional_block"), Expected(
            None, {**FULL, "convolutional_block_test": 0.0, "ResNet50_test": 0.0}, contains="Markdown")),
        "jupyter-no-metadata": (metadata_dropped(), Expected(None, FULL)),
        "jupyter-saved-as-copy": (submissions.correct(), Expected(None, FULL), "ResNet50 (1).ipynb"),
        "jupyter-slow-cell": (slow_cell(), Expected(None, FULL)),
    }
