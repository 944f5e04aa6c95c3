"""Generates the learner release ResNet50.ipynb from the nbgrader source notebook.

    python -m resnet_course.release            # = make release: rewrite ./ResNet50.ipynb
    python -m resnet_course.release --check    # exit 1 if ./ResNet50.ipynb differs from a fresh release

`nbgrader generate_assignment` (run in instructor/, without a gradebook database, into a temporary
folder) replaces the solutions with stubs, removes the graded tests' extra cases, locks the read-only
cells and records their checksums; this module then strips any outputs and writes the notebook in
nbformat's canonical JSON, so the same source always gives the same bytes.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "instructor"
ASSIGNMENT = "ResNet50"
SOURCE_NOTEBOOK = INSTRUCTOR / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE_NOTEBOOK = ROOT / f"{ASSIGNMENT}.ipynb"


class ReleaseError(RuntimeError):
    """nbgrader could not generate the release; the message carries its output."""


def strip_outputs(notebook):
    """Removes outputs, execution counts and execution metadata from every code cell, in place."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    return notebook


def notebook_text(notebook):
    """The notebook as nbformat.write would store it (canonical JSON, final newline)."""
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def generate(instructor=INSTRUCTOR):
    """The text of a freshly generated learner notebook (nothing in the repository is written)."""
    with tempfile.TemporaryDirectory(prefix="resnet50-release-") as release_dir:
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--no-db",
                   f"--CourseDirectory.release_directory={release_dir}", "--log-level=WARN"]
        result = subprocess.run(command, cwd=instructor, capture_output=True, text=True)
        generated = Path(release_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        if result.returncode != 0 or not generated.is_file():
            raise ReleaseError(f"`nbgrader generate_assignment {ASSIGNMENT}` failed in {instructor} "
                               f"(exit {result.returncode}); fix the source notebook {SOURCE_NOTEBOOK}:\n"
                               f"{result.stdout}{result.stderr}")
        notebook = nbformat.read(str(generated), as_version=4)
    return notebook_text(strip_outputs(notebook))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if ResNet50.ipynb is not the release of the source")
    options = parser.parse_args(argv)
    try:
        text = generate()
    except ReleaseError as err:
        print(err, file=sys.stderr)
        return 2
    current = RELEASE_NOTEBOOK.read_text(encoding="utf8") if RELEASE_NOTEBOOK.is_file() else None
    if options.check:
        if current != text:
            print(f"{RELEASE_NOTEBOOK.name} is not the release of {SOURCE_NOTEBOOK.relative_to(ROOT)}; "
                  f"run `make release`")
            return 1
        print(f"{RELEASE_NOTEBOOK.name} is up to date")
        return 0
    if current == text:
        print(f"{RELEASE_NOTEBOOK.name} unchanged")
    else:
        RELEASE_NOTEBOOK.write_text(text, encoding="utf8")
        print(f"wrote {RELEASE_NOTEBOOK.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
