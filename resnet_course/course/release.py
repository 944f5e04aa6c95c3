"""Generates the learner release ResNet50.ipynb from the nbgrader source notebook, and the bundle.

    python -m resnet_course.course.release            # = make release: ./ResNet50.ipynb and release/
    python -m resnet_course.course.release --bundle-url https://course.example.edu/resnet50/ \
        --colab-repository owner/name          # = make release BUNDLE_URL=... COLAB_REPOSITORY=...
    python -m resnet_course.course.release --check    # exit 1 if the setup cell or ./ResNet50.ipynb is stale

The course's addresses (where learners download ResNet50-files.zip, where "Open in Colab" goes)
come from the options, else from ``c.ResNetCourse.bundle_url``, ``colab_repository`` or
``colab_url`` in instructor/nbgrader_config.py, else there are none (bundle.addresses).

In order: the source notebook's setup cell (it pins the learner files' checksum and holds the
download address) and its intro's Colab badge are rewritten when they changed; then the release
notebook; then the files zip and the learner bundle (release/ResNet50-files.zip, release/ResNet50/
and release/ResNet50.zip); last, what to upload where.

`nbgrader generate_assignment` (run in instructor/, without a gradebook database, into a temporary
folder) replaces the solutions with stubs, removes the graded tests' extra cases, locks the read-only
cells and records their checksums; this module then strips any outputs and writes the notebook in
nbformat's canonical JSON, so the same source always gives the same bytes.
"""
import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat

from resnet_course.course import bundle
from resnet_course.paths import ASSIGNMENT, INSTRUCTOR_DIR as INSTRUCTOR, RELEASE_NOTEBOOK, ROOT, SOURCE_NOTEBOOK

INTRO_CELL_ID = "intro"  # the source notebook's first cell: its title, then the Colab badge
CONFIG_SECTION = "ResNetCourse"  # c.ResNetCourse.<option> in nbgrader_config.py
ADDRESS_OPTIONS = ("bundle_url", "colab_repository", "colab_url")


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


def generate(instructor=INSTRUCTOR, notebook=None):
    """The text of a freshly generated learner notebook (nothing in the repository is written),
    from the committed source notebook or, when given, from ``notebook`` (a source notebook)."""
    with tempfile.TemporaryDirectory(prefix="resnet50-release-") as scratch:
        release_dir = Path(scratch) / "release"
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--no-db",
                   f"--CourseDirectory.release_directory={release_dir}", "--log-level=WARN"]
        if notebook is not None:
            source_dir = Path(scratch) / "source"
            (source_dir / ASSIGNMENT).mkdir(parents=True)
            nbformat.write(notebook, str(source_dir / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"))
            command.append(f"--CourseDirectory.source_directory={source_dir}")
        result = subprocess.run(command, cwd=instructor, capture_output=True, text=True)
        generated = release_dir / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        if result.returncode != 0 or not generated.is_file():
            raise ReleaseError(f"`nbgrader generate_assignment {ASSIGNMENT}` failed in {instructor} "
                               f"(exit {result.returncode}); fix the source notebook {SOURCE_NOTEBOOK}:\n"
                               f"{result.stdout}{result.stderr}")
        notebook = nbformat.read(str(generated), as_version=4)
    return notebook_text(strip_outputs(notebook))


def configured_addresses(instructor=INSTRUCTOR):
    """{option: value or None} for ADDRESS_OPTIONS as c.ResNetCourse sets them in the course's
    nbgrader_config.py (None where it does not)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(instructor)).load_config()
    section = config[CONFIG_SECTION] if CONFIG_SECTION in config else {}
    return {name: section.get(name) or None for name in ADDRESS_OPTIONS}


def _cell(notebook, cell_id, what, source):
    cell = next((cell for cell in notebook.cells if cell.get("id") == cell_id), None)
    if cell is None:
        raise bundle.BundleError(f"{source.name} has no cell with id {cell_id!r} ({what})")
    return cell


def fresh_source(files, addresses, source=None):
    """(notebook, changed): the source notebook with a setup cell that pins ``files`` and downloads
    from addresses.files_url, and an intro whose Colab badge is addresses.colab_url's; changed
    lists what differs from ``source`` (default: SOURCE_NOTEBOOK; [] when it is up to date).
    BundleError for a missing cell."""
    source = SOURCE_NOTEBOOK if source is None else source
    notebook = nbformat.read(str(source), as_version=4)
    changed = []
    setup = _cell(notebook, bundle.SETUP_CELL_ID, "the learner files' setup cell, before the packages cell", source)
    fresh = bundle.setup_cell_source(bundle.files_sha256(files), addresses.files_url)
    if setup.source != fresh:
        setup.source = fresh
        changed.append("the setup cell (learner files checksum, download address)")
    if any(setup.metadata.get(key) != value for key, value in bundle.SETUP_CELL_METADATA.items()):
        setup.metadata.update(bundle.SETUP_CELL_METADATA)
        changed.append("the setup cell's display (collapsed)")
    intro = _cell(notebook, INTRO_CELL_ID, "the title cell, which carries the Colab badge", source)
    badged = bundle.with_colab_badge(intro.source, addresses.colab_url)
    if intro.source != badged:
        intro.source = badged
        changed.append("the Colab badge and the sentence on opening the notebook in Colab")
    return notebook, changed


def _shown(path):
    """path relative to the repository root when it is inside it (shorter messages)."""
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def publishing_steps(addresses, files_zip=bundle.FILES_ZIP, bundle_zip=bundle.BUNDLE_ZIP,
                     notebook=RELEASE_NOTEBOOK):
    """What the instructor uploads where for these addresses (lines of text)."""
    steps = [f"For learners' own computers: hand out {_shown(bundle_zip)} (the notebook and its files; "
             f"its README says how to open it)."]
    if addresses.files_url:
        steps.append(f"Upload {_shown(files_zip)} so that it downloads from {addresses.files_url}: where "
                     f"the notebook's files are missing (e.g. on Colab), its setup cell fetches them there.")
    else:
        steps.append("The setup cell has no download address (give one with BUNDLE_URL=<web folder> or "
                     "c.ResNetCourse.bundle_url in instructor/nbgrader_config.py): where the notebook's "
                     f"files are missing (e.g. on Colab), learners put {bundle_zip.name} or {files_zip.name} "
                     f"beside the notebook, or upload it on Colab when the setup cell asks.")
    github = re.fullmatch(r"https://colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)",
                          addresses.colab_url)
    if github:
        repository, branch, where = github.groups()
        renamed = "" if where == str(_shown(notebook)) else f" as {where}"
        steps.append(f"Commit {_shown(notebook)}{renamed} and push it to the {branch} branch of "
                     f"github.com/{repository}: the notebook's and README's \"Open in Colab\" badge opens "
                     f"{addresses.colab_url}.")
    elif addresses.colab_url:
        steps.append(f"Put {_shown(notebook)} where {addresses.colab_url} opens it: the notebook's and "
                     f"README's \"Open in Colab\" badge links there.")
    else:
        steps.append("No \"Open in Colab\" badge (give one with COLAB_REPOSITORY=owner/name or COLAB_URL=...): "
                     "on Colab, learners open the notebook with File > Upload notebook.")
    return steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if ResNet50.ipynb is not the release of the source")
    parser.add_argument("--bundle-url", metavar="URL",
                        help="the web folder learners download ResNet50-files.zip from (or the zip's own "
                             "address, ending in .zip); \"\" for none (default: c.ResNetCourse.bundle_url "
                             "in instructor/nbgrader_config.py, else none)")
    parser.add_argument("--colab-repository", metavar="OWNER/NAME",
                        help="the GitHub repository whose main branch holds ResNet50.ipynb at its root, "
                             "for the \"Open in Colab\" badge (default: c.ResNetCourse.colab_repository)")
    parser.add_argument("--colab-url", metavar="URL",
                        help="any other address that opens the notebook in Colab, e.g. a Drive link "
                             "(default: c.ResNetCourse.colab_url)")
    options = parser.parse_args(argv)
    try:
        configured = configured_addresses()
        if options.colab_repository is not None or options.colab_url is not None:
            configured.update(colab_repository=None, colab_url=None)  # one given replaces both
        addresses = bundle.addresses(**{name: configured[name] if getattr(options, name) is None
                                        else getattr(options, name) for name in ADDRESS_OPTIONS})
        files = bundle.learner_files()
        notebook, changed = fresh_source(files, addresses)
        if changed and options.check:
            print(f"{_shown(SOURCE_NOTEBOOK)} is stale: {', '.join(changed)}; run `make release`")
            return 1
        if changed:
            nbformat.write(notebook, str(SOURCE_NOTEBOOK))
            print(f"wrote {', '.join(changed)} of {_shown(SOURCE_NOTEBOOK)}")
        text = generate(notebook=notebook)
    except (ReleaseError, bundle.BundleError) as err:
        print(err, file=sys.stderr)
        return 2
    current = RELEASE_NOTEBOOK.read_text(encoding="utf8") if RELEASE_NOTEBOOK.is_file() else None
    if options.check:
        if current != text:
            print(f"{RELEASE_NOTEBOOK.name} is not the release of {_shown(SOURCE_NOTEBOOK)}; "
                  f"run `make release`")
            return 1
        print(f"{RELEASE_NOTEBOOK.name} is up to date")
        return 0
    if current == text:
        print(f"{RELEASE_NOTEBOOK.name} unchanged")
    else:
        RELEASE_NOTEBOOK.write_text(text, encoding="utf8")
        print(f"wrote {RELEASE_NOTEBOOK.name}")
    written = bundle.write(files, text, colab_url=addresses.colab_url)
    print("wrote", ", ".join(str(_shown(path)) for path in written))
    print("\nTo publish:")
    for step in publishing_steps(addresses):
        print(textwrap.fill(step, width=100, initial_indent="- ", subsequent_indent="  ",
                            break_long_words=False, break_on_hyphens=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
