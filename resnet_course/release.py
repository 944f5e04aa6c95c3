"""Generates the learner release ResNet50.ipynb from the nbgrader source notebook, and the bundle.

    python -m resnet_course.release            # = make release: ./ResNet50.ipynb and release/
    python -m resnet_course.release --check    # exit 1 if the setup cell or ./ResNet50.ipynb is stale

In order: the learner files zip (release/ResNet50-files.zip, resnet_course.bundle) first, because
the source notebook's setup cell pins its sha256 (rewritten here when it changed); then the release
notebook; then the learner bundle (release/ResNet50/ and release/ResNet50.zip) that holds both.

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

from resnet_course import bundle
from resnet_course.paths import ASSIGNMENT, INSTRUCTOR_DIR as INSTRUCTOR, RELEASE_NOTEBOOK, ROOT, SOURCE_NOTEBOOK


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


def stale_setup_cell(files, source=SOURCE_NOTEBOOK):
    """(notebook, its setup cell, the cell's fresh source) when the source notebook's setup cell
    does not pin these learner files, else None. BundleError when the cell is missing."""
    notebook = nbformat.read(str(source), as_version=4)
    cell = next((cell for cell in notebook.cells if cell.get("id") == bundle.SETUP_CELL_ID), None)
    if cell is None:
        raise bundle.BundleError(f"{source.name} has no code cell with id {bundle.SETUP_CELL_ID!r} "
                                 f"(the learner files' setup cell, before the packages cell)")
    fresh = bundle.setup_cell_source(bundle.sha256(bundle.zip_bytes(files)))
    return None if cell.source == fresh else (notebook, cell, fresh)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if ResNet50.ipynb is not the release of the source")
    options = parser.parse_args(argv)
    try:
        files = bundle.learner_files()
        stale = stale_setup_cell(files)
        if stale and options.check:
            print(f"the setup cell of {SOURCE_NOTEBOOK.relative_to(ROOT)} does not pin the current "
                  f"learner files; run `make release`")
            return 1
        if stale:
            notebook, cell, fresh = stale
            cell.source = fresh
            nbformat.write(notebook, str(SOURCE_NOTEBOOK))
            print(f"wrote the setup cell of {SOURCE_NOTEBOOK.relative_to(ROOT)} (new learner files checksum)")
        text = generate()
    except (ReleaseError, bundle.BundleError) as err:
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
    written = bundle.write(files, text)
    print("wrote", ", ".join(str(path.relative_to(ROOT)) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
