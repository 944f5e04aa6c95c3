"""The learner bundle (release/ResNet50/, ResNet50.zip, ResNet50-files.zip) holds exactly the learner's
files, gives nothing away and is reproducible. That it alone runs the solved notebook top to bottom,
its modules from its own folder, is tested where a learner runs it: in JupyterLab (tests/test_browser.py)."""
import re
import zipfile

import nbformat
import pytest

import learner_notebooks
from resnet_course.course import bundle
from resnet_course.paths import ASSIGNMENT, LEARNER_MODULES, SOURCE_NOTEBOOK

EXPECTED_FILES = {f"{ASSIGNMENT}.ipynb", "README.md", "requirements.txt", "ATTRIBUTION.md",
                  bundle.LICENSE_NAME, *LEARNER_MODULES,
                  "datasets/train_signs.h5", "datasets/test_signs.h5", "datasets/heldout_signs.h5", "images/my_image.jpg",
                  "images/identity_block.png", "images/convolutional_block.png", "images/resnet50.png",
                  "images/skip_connection.png", "images/depth_curves.png", "images/depth_gradients.png",
                  "images/depth_results.json"}
NOTEBOOK_ONLY = {f"{ASSIGNMENT}.ipynb", "README.md", "requirements.txt"}
# Text that only the instructor's side holds: solution and hidden-test markers, the grader's
# check functions' hidden cases, the instructor package and nbgrader itself.
FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "HIDDEN_CASES",
             "GENERATED HIDDEN CASES", "reference.py", "nbgrader_config", "gradebook")
INSTRUCTOR_IMPORT = re.compile(r"^\s*(from|import)\s+resnet_course\b", re.MULTILINE)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return learner_notebooks.build_bundle(tmp_path_factory.mktemp("release"))


def _every_file(files_zip, bundle_dir, bundle_zip):
    """{where: bytes} of every file of the three outputs, zip members included."""
    found = {f"{bundle_dir.name}/{path.relative_to(bundle_dir)}": path.read_bytes()
             for path in sorted(bundle_dir.rglob("*")) if path.is_file()}
    for archive_path in (files_zip, bundle_zip):
        with zipfile.ZipFile(archive_path) as archive:
            found.update({f"{archive_path.name}:{name}": archive.read(name) for name in archive.namelist()})
    return found


def _hidden_parameter_count():
    """The parameter count the hidden ResNet50 case expects (a number only the grader knows)."""
    cell = next(c for c in nbformat.read(str(SOURCE_NOTEBOOK), as_version=4).cells if c.get("id") == "ResNet50_test")
    hidden = cell.source.split("BEGIN HIDDEN TESTS", 1)[1]
    return re.search(r"'params': (\d+)", hidden).group(1)


def test_the_bundle_holds_exactly_the_learner_files(built):
    files_zip, bundle_dir, bundle_zip = built
    listed = {str(path.relative_to(bundle_dir)) for path in bundle_dir.rglob("*") if path.is_file()}
    assert listed == EXPECTED_FILES
    with zipfile.ZipFile(bundle_zip) as archive:
        assert set(archive.namelist()) == {f"{ASSIGNMENT}/{name}" for name in EXPECTED_FILES}
    with zipfile.ZipFile(files_zip) as archive:
        assert set(archive.namelist()) == EXPECTED_FILES - NOTEBOOK_ONLY


def test_no_file_gives_anything_away(built):
    solution_lines = learner_notebooks.solution_lines()
    forbidden = (*FORBIDDEN, _hidden_parameter_count(), f"{int(_hidden_parameter_count()):,}")
    assert "X = Add()([X_shortcut, X])" in solution_lines  # the scan knows the solution at all
    everything = _every_file(*built)
    assert len(everything) == 2 * len(EXPECTED_FILES) + len(EXPECTED_FILES - NOTEBOOK_ONLY)
    for where, data in everything.items():
        text = data.decode("latin-1")  # binary files too: a marker would show in their bytes
        for marker in forbidden:
            assert marker not in text, f"{where} contains {marker!r}"
        assert not INSTRUCTOR_IMPORT.search(text), f"{where} imports resnet_course"
        leaked = {line.strip() for line in text.splitlines()} & solution_lines
        assert not leaked, f"{where} holds solution lines {sorted(leaked)}"


def test_the_learner_requirements_leave_out_the_instructor_tools(built):
    requirements = (built[1] / "requirements.txt").read_text(encoding="utf8").lower()
    assert "tensorflow" in requirements and "jupyterlab" in requirements
    assert "nbgrader" not in requirements


def test_the_readme_says_how_to_open_it_on_colab_and_the_supported_versions(built):
    readme = (built[1] / "README.md").read_text(encoding="utf8")
    assert readme.startswith("# ") and "Open In Colab" not in readme  # no address: no badge
    assert bundle.COLAB_WITHOUT_BADGE in readme and "upload\n  `ResNet50.zip`" in readme
    assert "TensorFlow 2.18-2.21 with Keras 3.8-3.15" in readme
    colab_url = "https://colab.research.google.com/github/owner/name/blob/main/ResNet50.ipynb"
    badged = bundle.readme(colab_url)
    assert badged.startswith(bundle.colab_badge(colab_url) + "\n\n# ") and bundle.COLAB_WITH_BADGE in badged


def test_the_zips_are_reproducible(built, tmp_path):
    again = learner_notebooks.build_bundle(tmp_path)
    for first, second in ((built[0], again[0]), (built[2], again[2])):
        assert first.read_bytes() == second.read_bytes(), f"{first.name} differs between two builds"


def test_the_release_notebook_pins_the_files_either_zip_holds(built):
    notebook = nbformat.read(str(built[1] / f"{ASSIGNMENT}.ipynb"), as_version=4)
    setup = notebook.cells[[c.cell_type for c in notebook.cells].index("code")]
    assert setup.get("id") == bundle.SETUP_CELL_ID, "the setup cell must be the first code cell"
    assert f'FILES_SHA256 = "{bundle.files_sha256(bundle.learner_files())}"' in setup.source, \
        "the release's setup cell pins other learner files: run `make release`"
    # what the setup cell checks: the files of either zip, ResNet50.zip's without its own three
    files_zip, _, bundle_zip = built
    with zipfile.ZipFile(files_zip) as archive:
        in_files_zip = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(bundle_zip) as archive:
        in_bundle_zip = {name.removeprefix(f"{ASSIGNMENT}/"): archive.read(name) for name in archive.namelist()}
    in_bundle_zip = {name: data for name, data in in_bundle_zip.items() if name not in bundle.NOTEBOOK_ONLY}
    assert in_bundle_zip == in_files_zip
    assert bundle.files_sha256(in_files_zip) == bundle.files_sha256(bundle.learner_files())


# What a learner does not have (issue 29, finding 6): the kit's make targets, its package and the
# release's machinery. A learner has the notebook, its files, the course's web page and Colab.
KIT_TOOLING = re.compile(r"`make\b|\bmake (release|data|expected|lab|demo|depth|setup|test|generated)\b"
                         r"|\bresnet_course\b|\bpython -m resnet_course|learner_bundle|release\.py|bundle\.py")


def _learner_text(name, data):
    """What a learner reads of a file: a notebook's cell sources, a text file's text; None for binaries
    and for images/depth_results.json, the record of the run behind the figures (its command included)."""
    if name.endswith(".ipynb"):
        return "\n".join(cell.source for cell in nbformat.reads(data.decode("utf8"), as_version=4).cells)
    if name.endswith((".py", ".md", ".txt")):
        return data.decode("utf8")
    return None


def test_no_learner_file_names_the_kits_tooling(built):
    for where, data in _every_file(*built).items():
        text = _learner_text(where, data)
        if text is None:
            continue
        found = sorted({match.group(0) for match in KIT_TOOLING.finditer(text)})
        assert not found, f"{where} mentions {found}: a learner has no make, no package and no release tools"


def test_the_learner_modules_messages_name_no_kit_tooling(tmp_path):
    # The errors a learner meets first: the data files missing or damaged, a photo that is not there.
    import resnets_utils

    messages = []
    for attempt in (lambda: resnets_utils.load_dataset(tmp_path),
                    lambda: resnets_utils.load_my_image(tmp_path / "my_hand.jpg")):
        with pytest.raises(ValueError) as info:
            attempt()
        messages.append(str(info.value))
    (tmp_path / "train_signs.h5").write_text("not HDF5")
    (tmp_path / "test_signs.h5").write_text("not HDF5")
    with pytest.raises(ValueError) as info:
        resnets_utils.load_dataset(tmp_path)
    messages.append(str(info.value))
    for message in messages:
        assert not KIT_TOOLING.search(message), message
        assert "ResNet50.zip" in message or "photo" in message, message
