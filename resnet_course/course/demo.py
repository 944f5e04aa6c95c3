"""Runs the solution notebook top to bottom, with real training, and keeps what it shows.

    python -m resnet_course.course.demo            # = make demo

    python -m resnet_course.course.demo --epochs 1 --steps-per-epoch 2 --output-dir /tmp/out
    python -m resnet_course.course.demo --report   # the results of the last run, from outputs/ResNet50.ipynb

Executes instructor/source/ResNet50/ResNet50.ipynb (solutions and all tests) with nbclient in a
kernel on this Python, from the repository root so that datasets/ and images/ resolve there;
while it runs, prints a line per executed cell and streams what the training cell prints (its
per-epoch lines); writes the executed notebook and an HTML copy to outputs/ (or --output-dir)
and prints the notebook's results (test accuracy, stress curve, held-out photos from another source)
and where it saved the model.

The run's settings are the notebook's parameters cell (tagged "parameters": EPOCHS,
STEPS_PER_EPOCH, OUTPUT_DIR); as papermill does, ``with_parameters`` inserts a cell right after
it that sets the values given, so the notebook itself reads no environment variables.
"""
import argparse
import ast
import copy
import os
import sys
import time
from pathlib import Path

import nbformat

from resnet_course.learner import tf_environment
from resnet_course.paths import OUTPUTS_DIR, ROOT, SOURCE_NOTEBOOK

MODEL_FILE = "resnet50_signs.keras"
EXECUTED_FILE = "ResNet50.ipynb"  # what write_outputs writes, and --report reads
STREAMED_CELLS = ("training",)  # cells whose printed lines are shown while they run
ACCURACY_PREFIX = "Test accuracy:"
STRESS_PREFIX = "Stress severity"  # the notebook's stress-curve lines (section 6)
# the notebook's lines about the held-out photos from another source (section 6), or that it has none
HELDOUT_PREFIXES = ("Held-out", "No datasets/heldout_signs.h5")
PARAMETERS_TAG = "parameters"                     # papermill's names
INJECTED_TAG = "injected-parameters"


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; the message names the cell and the error."""


def with_parameters(notebook, **values):
    """A copy of ``notebook`` with a cell setting ``values`` (NAME=value) inserted right after
    its cell tagged "parameters" (papermill's convention). ValueError when there is no such
    cell or it assigns no variable of that name (a misspelt parameter would do nothing)."""
    notebook = copy.deepcopy(notebook)
    index = next((i for i, cell in enumerate(notebook.cells)
                  if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError(f"the notebook has no cell tagged {PARAMETERS_TAG!r}.")
    declared = {target.id for node in ast.parse(notebook.cells[index].source).body
                if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    unknown = sorted(set(values) - declared)
    if unknown:
        raise ValueError(f"unknown notebook parameter(s) {', '.join(unknown)}; the parameters "
                         f"cell sets {', '.join(sorted(declared))}.")
    if values:
        cell = nbformat.v4.new_code_cell("\n".join(f"{name} = {value!r}"
                                                   for name, value in values.items()))
        cell.metadata["tags"] = [INJECTED_TAG]
        notebook.cells.insert(index + 1, cell)
    return notebook


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


def kernel_config():
    """nbclient settings for the kernel manager: the kernel's sockets with CurveZMQ keys (or, where
    pyzmq lacks them, over local IPC sockets). ipykernel writes a warning about a kernel on TCP
    without encryption to its stderr, which is the terminal's: a warning about nothing the user did."""
    import zmq
    from traitlets.config import Config

    setting = {"transport_encryption": "auto"} if zmq.has("curve") else {"transport": "ipc"}
    return Config({"KernelManager": setting})


def _progress_client(progress, streamed):
    """A NotebookClient class that writes to ``progress`` a line per executed code cell (elapsed
    time, its id, its seconds) and, as it arrives, what the cells named in ``streamed`` print."""
    from nbclient import NotebookClient

    class ProgressClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if (msg["msg_type"] == "stream" and content.get("name") == "stdout"
                    and self.nb.cells[cell_index].get("id") in streamed):
                progress.write(content.get("text", ""))
                progress.flush()
            return super().output(outs, msg, display_id, cell_index)

    start, cell_start = time.perf_counter(), {}

    def started(cell, cell_index, **_):
        cell_start[cell_index] = time.perf_counter()

    def executed(cell, cell_index, **_):
        now = time.perf_counter()
        progress.write(f"{now - start:6.0f} s  cell {cell_index:2d} {cell.get('id', '')}: "
                       f"{now - cell_start.get(cell_index, now):.1f} s\n")
        progress.flush()

    return ProgressClient, {"on_cell_execute": started, "on_cell_executed": executed}


def execute(path=SOURCE_NOTEBOOK, parameters=None, env=None, cwd=ROOT, timeout=None, progress=None):
    """The executed notebook; raises NotebookFailed naming the first cell that raised.

    parameters: values for the notebook's parameters cell (``with_parameters``).
    env: extra environment variables for the kernel (on top of this process's environment).
    progress: a text stream for a line per executed cell and the training cell's lines as it
    prints them (None: quiet).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(str(path), as_version=4)
    if parameters:
        notebook = with_parameters(notebook, **parameters)
    kernel_env = {**os.environ, **(env or {})}
    tf_environment.apply_defaults(kernel_env)  # the kernel's TensorFlow starts as train.py's
    client_class, hooks = (NotebookClient, {}) if progress is None else _progress_client(progress, STREAMED_CELLS)
    client = client_class(notebook, timeout=timeout, kernel_name="python3", config=kernel_config(),
                          resources={"metadata": {"path": str(cwd)}}, **hooks)
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
    """The notebook's "Test accuracy: 99.3%" line, or None."""
    return next((line.strip() for line in stream_lines(notebook) if line.strip().startswith(ACCURACY_PREFIX)),
                None)


def stress_lines(notebook):
    """The notebook's stress-curve lines ("Stress severity s: accuracy ..."), in order."""
    return [line.strip() for line in stream_lines(notebook) if line.strip().startswith(STRESS_PREFIX)]


def heldout_lines(notebook):
    """The notebook's lines about the held-out photos (source and licence, accuracy, recall per
    sign), or the one line saying the optional file was not there; in order."""
    return [line.strip() for line in stream_lines(notebook) if line.strip().startswith(HELDOUT_PREFIXES)]


def write_outputs(notebook, directory):
    """Writes directory/ResNet50.ipynb and directory/ResNet50.html; returns their paths."""
    from nbconvert import HTMLExporter

    directory.mkdir(parents=True, exist_ok=True)
    executed, html = directory / EXECUTED_FILE, directory / "ResNet50.html"
    nbformat.write(notebook, str(executed))
    body, _ = HTMLExporter().from_notebook_node(notebook)
    html.write_text(body, encoding="utf8")
    return executed, html


def report(notebook, directory):
    """The results of an executed notebook, each once: its test accuracy, stress curve, the held-out
    photos from another source (per sign, with their source and licence) and where it saved its
    model; (lines, True when both the accuracy line and the model are there)."""
    line = accuracy_line(notebook)
    model = directory / MODEL_FILE
    lines = [line or f"warning: the notebook printed no '{ACCURACY_PREFIX}' line", *stress_lines(notebook),
             *heldout_lines(notebook), f"trained model: {_shown(model)}" if model.is_file()
             else f"warning: the notebook saved no model at {_shown(model)}"]
    return lines, bool(line and model.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", type=Path, default=SOURCE_NOTEBOOK)
    parser.add_argument("--epochs", type=int, help="EPOCHS (default: the notebook's)")
    parser.add_argument("--steps-per-epoch", type=int,
                        help="STEPS_PER_EPOCH (default: the notebook's, the whole training set)")
    parser.add_argument("--output-dir", type=Path,
                        help="OUTPUT_DIR, where the notebook saves its model and this writes the "
                             "executed notebook and its HTML (default: the notebook's, outputs/)")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--report", action="store_true",
                       help="execute nothing: print the results of the last run from OUTPUT_DIR/ResNet50.ipynb")
    shown.add_argument("--no-report", action="store_true",
                       help="execute and write the outputs, but do not print the results (make demo "
                            "prints them once, also when nothing had to run)")
    options = parser.parse_args(argv)
    directory = OUTPUTS_DIR if options.output_dir is None else options.output_dir.resolve()
    if options.report:
        if not (directory / EXECUTED_FILE).is_file():
            print(f"error: no executed notebook at {_shown(directory / EXECUTED_FILE)}; run `make demo`",
                  file=sys.stderr)
            return 1
        lines, complete = report(nbformat.read(str(directory / EXECUTED_FILE), as_version=4), directory)
        print("\n".join([f"results of {_shown(directory / EXECUTED_FILE)} (also as ResNet50.html):", *lines]))
        return 0 if complete else 1
    # only what was asked for, so that a default run shows the notebook as the learner has it
    given = {"EPOCHS": options.epochs, "STEPS_PER_EPOCH": options.steps_per_epoch,
             "OUTPUT_DIR": options.output_dir and str(directory)}
    parameters = {name: value for name, value in given.items() if value is not None}
    start = time.perf_counter()
    print(f"executing {_shown(options.notebook)} with {parameters or 'its own parameters'}: a line per "
          f"cell as it finishes, and the training cell's lines as it prints them", flush=True)
    try:
        notebook = execute(options.notebook.resolve(), parameters, progress=sys.stdout)
    except (NotebookFailed, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    executed, html = write_outputs(notebook, directory)
    print(f"executed in {time.perf_counter() - start:.0f} s; wrote {_shown(executed)} and {_shown(html)}")
    lines, complete = report(notebook, directory)
    if not options.no_report or not complete:  # a failed run says why, also under make
        print("\n".join(lines))
    return 0 if complete else 1

if __name__ == "__main__":
    sys.exit(main())
