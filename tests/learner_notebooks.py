"""What the learner-side tests share: the bundle built into a temporary folder, the release notebook
with the reference solution filled in and short training, and a kernel started as a learner's.

Used by test_bundle.py (the bundle's files), test_colab_setup.py (the setup cell downloads the
files) and test_browser.py (the bundle alone runs the solved notebook in JupyterLab in Chromium),
and by test_release.py (solution lines).
"""
import json
import os
import re
import zipfile
from pathlib import Path

import nbformat

from resnet_course.course import bundle, demo, notebook_sync
from resnet_course.paths import LEARNER_MODULES, RELEASE_NOTEBOOK

SHORT_TRAINING = {"EPOCHS": 1, "STEPS_PER_EPOCH": 2}
# Set by the project's own entry points (resnet_course.learner.tf_environment) or by pytest, but not on a
# learner's machine: a kernel started without them shows what a learner would see. (A kernel that
# sees PYTEST_CURRENT_TEST does not show what C++ code writes to stderr; a learner's kernel does.)
PROJECT_ONLY_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH", "PYTEST_CURRENT_TEST")
PASS_LINE = "All tests passed!"
DURATION = r"(\d+ s|\d+\.\d min|\d+ h \d\d min)"  # display.duration
# The line the training cell prints after each epoch (display.TrainingProgress).
EPOCH_LINE = re.compile(rf"epoch \d+/\d+: loss \d+\.\d{{4}}, accuracy [01]\.\d{{4}} \({DURATION}, .+ (left|in all)\)")
ORIGINS_TAG = "module-origins"


def solution_lines():
    """Stripped lines inside the solution regions of reference.py that appear nowhere outside them."""
    text = "\n".join(notebook_sync.reference_source(name) for name in notebook_sync.EXERCISES)
    inside, outside, in_solution = set(), set(), False
    for line in text.splitlines():
        stripped = line.strip()
        if "BEGIN SOLUTION" in stripped:
            in_solution = True
        elif "END SOLUTION" in stripped:
            in_solution = False
        elif stripped:
            (inside if in_solution else outside).add(stripped)
    return inside - outside


def build_bundle(directory, notebook_text=None):
    """Writes the files zip, the bundle folder and the bundle zip under directory (from the
    committed release notebook unless notebook_text is given); returns their paths."""
    directory = Path(directory)
    text = RELEASE_NOTEBOOK.read_text(encoding="utf8") if notebook_text is None else notebook_text
    return bundle.write(bundle.learner_files(), text, files_zip=directory / bundle.FILES_ZIP.name,
                        bundle_dir=directory / bundle.BUNDLE_DIR.name,
                        bundle_zip=directory / bundle.BUNDLE_ZIP.name)


def unpack(zip_path, folder):
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return Path(folder)


def solved(notebook, parameters=SHORT_TRAINING):
    """A copy of a release notebook with the reference solution in its solution cells and a cell
    setting ``parameters`` after its parameters cell (None: the notebook's own)."""
    notebook = demo.with_parameters(notebook, **(parameters or {}))
    cells = notebook_sync.solution_cells(notebook)
    for name in notebook_sync.EXERCISES:
        cells[name].source = notebook_sync.reference_source(name)
    return notebook


def solved_release(parameters=SHORT_TRAINING, path=RELEASE_NOTEBOOK):
    return solved(nbformat.read(str(path), as_version=4), parameters)


def with_origins_cell(notebook):
    """Appends a cell printing, as JSON, where each learner module was imported from and whether
    the instructor package was: the learner modules are installed (editable) in the project's venv,
    so only this tells a run on the bundle's files from a run on the repository's."""
    modules = [Path(name).stem for name in LEARNER_MODULES]
    cell = nbformat.v4.new_code_cell(
        "import json as _json, sys as _sys\n"
        f"print(_json.dumps({{'modules': {{name: getattr(_sys.modules.get(name), '__file__', None) "
        f"for name in {modules!r}}}, 'resnet_course': 'resnet_course' in _sys.modules}}))")
    cell.metadata["tags"] = [ORIGINS_TAG]
    cell.id = ORIGINS_TAG  # found by its id in a browser's notebook model too
    notebook.cells.append(cell)
    return notebook


def origins(executed):
    """The JSON printed by the cell with_origins_cell appended; `executed` is a notebook or a list of
    {"id", "outputs"} cells (as a browser's notebook model gives them)."""
    cells = executed.cells if hasattr(executed, "cells") else executed
    cell = next(c for c in cells if c.get("id") == ORIGINS_TAG)
    return json.loads("".join(o["text"] if isinstance(o["text"], str) else "".join(o["text"])
                              for o in cell["outputs"] if o.get("name") == "stdout"))


def learner_env(**extra):
    """This process's environment without the project's TensorFlow settings, plus extra."""
    env = {name: value for name, value in os.environ.items() if name not in PROJECT_ONLY_VARIABLES}
    return {**env, **extra}


def execute(notebook, cwd, env=None, allow_errors=False, timeout=1200):
    """Runs notebook (in place) in a python3 kernel in cwd; returns it. Unless allow_errors, a
    failing cell raises AssertionError naming the cell and the error."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=learner_env() if env is None else env)
    except CellExecutionError as err:
        raise AssertionError(f"cell failed in {cwd}: {str(err)[-3000:]}") from None
    return notebook


def outputs_of(notebook, kind):
    """(cell id, text) of every stream output named kind ("stdout"/"stderr") and, for "error",
    of every error output."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "error" and output.get("output_type") == "error":
                found.append((cell.get("id"), f"{output['ename']}: {output['evalue']}"))
            elif output.get("output_type") == "stream" and output.get("name") == kind:
                found.append((cell.get("id"), output["text"]))
    return found
