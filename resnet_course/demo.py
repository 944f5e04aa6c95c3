"""Runs the solution notebook top to bottom, with real training, and keeps what it shows.

    python -m resnet_course.demo            # = make demo

Executes instructor/source/ResNet50/ResNet50.ipynb (solutions and all tests) with nbclient in a
kernel on this Python, from the repository root so that datasets/, images/ and outputs/ resolve
there; writes the executed notebook and an HTML copy to outputs/ (or $RESNET50_OUTPUT_DIR) and prints
the notebook's test accuracy and where it saved the trained model. The notebook reads
RESNET50_EPOCHS, RESNET50_TRAIN_STEPS and RESNET50_OUTPUT_DIR from the environment.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import nbformat

from resnet_course import tf_environment

ROOT = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOK = ROOT / "instructor" / "source" / "ResNet50" / "ResNet50.ipynb"
MODEL_FILE = "resnet50_signs.keras"
ACCURACY_PREFIX = "Test accuracy:"


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; the message names the cell and the error."""


def output_dir(env=None):
    """The folder the notebook writes to, as the notebook resolves it (relative to the repository root)."""
    env = os.environ if env is None else env
    return ROOT / env.get("RESNET50_OUTPUT_DIR", "outputs")


def _shown(path):
    """path relative to the repository root when it is inside it (shorter messages)."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _first_error(notebook):
    """(index, cell, error output) of the first cell whose outputs hold an error, or None."""
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, cell, output
    return None


def execute(path=SOURCE_NOTEBOOK, env=None, cwd=ROOT, timeout=None):
    """The executed notebook; raises NotebookFailed naming the first cell that raised.

    env: extra environment variables for the kernel (on top of this process's environment).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(str(path), as_version=4)
    kernel_env = {**os.environ, **(env or {})}
    tf_environment.apply_defaults(kernel_env)  # the kernel's TensorFlow starts as train.py's
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    try:
        client.execute(env=kernel_env)
    except CellExecutionError as err:
        found = _first_error(notebook)
        if found is None:
            raise NotebookFailed(f"{path.name}: a cell failed: {err}") from None
        index, cell, output = found
        raise NotebookFailed(
            f"{path.name}: cell {index} (id {cell.get('id')!r}) raised {output['ename']}: {output['evalue']}\n"
            f"--- cell source ---\n{cell.source}") from None
    return notebook


def stream_lines(notebook):
    """Every line the notebook printed (stdout streams), in order."""
    lines = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                lines.extend(output["text"].splitlines())
    return lines


def accuracy_line(notebook):
    """The notebook's "Test accuracy: 0.xxxx" line, or None."""
    return next((line.strip() for line in stream_lines(notebook) if line.strip().startswith(ACCURACY_PREFIX)),
                None)


def write_outputs(notebook, directory):
    """Writes directory/ResNet50.ipynb and directory/ResNet50.html; returns their paths."""
    from nbconvert import HTMLExporter

    directory.mkdir(parents=True, exist_ok=True)
    executed, html = directory / "ResNet50.ipynb", directory / "ResNet50.html"
    nbformat.write(notebook, str(executed))
    body, _ = HTMLExporter().from_notebook_node(notebook)
    html.write_text(body, encoding="utf8")
    return executed, html


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", type=Path, default=SOURCE_NOTEBOOK)
    options = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"executing {_shown(options.notebook)} "
          f"(RESNET50_EPOCHS={os.environ.get('RESNET50_EPOCHS', 'notebook default')}) ...", flush=True)
    try:
        notebook = execute(options.notebook.resolve())
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    directory = output_dir()
    executed, html = write_outputs(notebook, directory)
    print(f"executed in {time.perf_counter() - start:.0f} s; wrote {_shown(executed)} and {_shown(html)}")
    line = accuracy_line(notebook)
    print(line or f"warning: the notebook printed no '{ACCURACY_PREFIX}' line")
    model = directory / MODEL_FILE
    print(f"trained model: {_shown(model)}" if model.is_file()
          else f"warning: the notebook saved no model at {model}")
    return 0 if line and model.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
