"""Keeps the solution cells of the nbgrader source notebook equal to resnet_course/course/reference.py.

    python -m resnet_course.course.notebook_sync            # rewrite the drifted solution cells
    python -m resnet_course.course.notebook_sync --check    # exit 1 naming the drifted functions

The solution cell of an exercise is the code cell whose nbgrader metadata says
``solution: true`` and ``grade_id: <function name>``; its source is exactly the function's
source text in reference.py (``inspect.getsource``), solution markers included.
"""
import argparse
import inspect
import sys
from pathlib import Path

import nbformat

from resnet_course.course import reference
from resnet_course.paths import SOURCE_NOTEBOOK
EXERCISES = ("identity_block", "convolutional_block", "ResNet50")


def reference_source(name):
    """The source text of one reference function, without the trailing newline."""
    return inspect.getsource(getattr(reference, name)).rstrip("\n")


def solution_cells(notebook):
    """{grade_id: cell} of the notebook's nbgrader solution cells."""
    cells = {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            cells[meta.get("grade_id")] = cell
    return cells


def drifted(notebook):
    """Names of the exercises whose solution cell is missing or differs from reference.py."""
    cells = solution_cells(notebook)
    return [name for name in EXERCISES
            if name not in cells or cells[name].source != reference_source(name)]


def sync(path=SOURCE_NOTEBOOK):
    """Rewrites the drifted solution cells of the notebook at path; returns their names."""
    notebook = nbformat.read(str(path), as_version=4)
    cells = solution_cells(notebook)
    missing = [name for name in EXERCISES if name not in cells]
    if missing:
        raise SystemExit(f"{path}: no solution cell with grade_id {', '.join(missing)}; add a code cell "
                         f"with nbgrader metadata solution=true and that grade_id")
    changed = drifted(notebook)
    for name in changed:
        cells[name].source = reference_source(name)
    if changed:
        nbformat.write(notebook, str(path))
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a solution cell drifted")
    parser.add_argument("--notebook", type=Path, default=SOURCE_NOTEBOOK, help="the nbgrader source notebook")
    options = parser.parse_args(argv)
    if options.check:
        stale = drifted(nbformat.read(str(options.notebook), as_version=4))
        if stale:
            print(f"{options.notebook}: the solution cell of {', '.join(stale)} differs from "
                  f"resnet_course/course/reference.py; run `python -m resnet_course.course.notebook_sync`")
            return 1
        print("solution cells match resnet_course/course/reference.py")
        return 0
    changed = sync(options.notebook)
    print(f"rewrote the solution cells of {', '.join(changed)}" if changed else "solution cells unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
