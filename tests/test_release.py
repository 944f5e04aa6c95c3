"""The learner notebook ResNet50.ipynb is the nbgrader release of the source notebook and gives nothing away."""
import ast
import json
import re
import shutil
import subprocess

import nbformat
import pytest

import learner_notebooks
from resnet_course.course import bundle, notebook_sync, release
from resnet_course.paths import ROOT

EXERCISES = notebook_sync.EXERCISES


@pytest.fixture(scope="module")
def release_text():
    assert release.RELEASE_NOTEBOOK.is_file(), "ResNet50.ipynb is missing; run `make release`"
    return release.RELEASE_NOTEBOOK.read_text(encoding="utf8")


@pytest.fixture(scope="module")
def fresh_release():
    return release.generate()


@pytest.fixture(scope="module")
def release_cells(release_text):
    return json.loads(release_text)["cells"]


def _source(cell):
    return "".join(cell["source"])


def test_committed_release_equals_a_fresh_generation(release_text, fresh_release):
    assert release_text == fresh_release, "ResNet50.ipynb is stale; run `make release`"


def test_the_setup_cell_pins_the_current_learner_files():
    _, changed = release.fresh_source(bundle.learner_files(), bundle.addresses(**release.configured_addresses()))
    assert changed == [], f"the source notebook is stale ({changed}); run `make release`"


def _cell(notebook, cell_id):
    return next(cell for cell in notebook.cells if cell.get("id") == cell_id)


def _setup_constant(source, name):
    """The literal value the setup cell assigns to name."""
    assignment = next(node for node in ast.parse(source).body if isinstance(node, ast.Assign)
                      and getattr(node.targets[0], "id", None) == name)
    return ast.literal_eval(assignment.value)


@pytest.mark.parametrize("path", [release.SOURCE_NOTEBOOK, release.RELEASE_NOTEBOOK], ids=["source", "release"])
def test_the_committed_notebooks_carry_no_address(path):
    """This project publishes no course: no download address, no Colab badge, no placeholder."""
    notebook = nbformat.read(str(path), as_version=4)
    assert _setup_constant(_cell(notebook, bundle.SETUP_CELL_ID).source, "FILES_URL") == ""
    assert "Open In Colab" not in _cell(notebook, release.INTRO_CELL_ID).source
    assert "resnet-course-kit" not in path.read_text(encoding="utf8")
    assert release.configured_addresses() == dict.fromkeys(release.ADDRESS_OPTIONS)


@pytest.mark.parametrize("path", [release.SOURCE_NOTEBOOK, release.RELEASE_NOTEBOOK], ids=["source", "release"])
def test_a_release_without_a_colab_address_says_nothing_about_a_badge(path):
    # Issue 29, finding 6: "Click the badge above" stood above no badge.
    intro = _cell(nbformat.read(str(path), as_version=4), release.INTRO_CELL_ID).source
    assert "badge" not in intro.lower(), intro
    assert bundle.NOTEBOOK_COLAB_WITHOUT_BADGE in intro
    assert bundle.with_colab_badge(bundle.with_colab_badge(intro, "https://x.example/nb"), "") == intro


def test_the_setup_cell_is_shown_collapsed_and_names_no_kit_tooling():
    # A learner need not read the setup cell's machinery: JupyterLab shows it collapsed, Colab as a form.
    for path in (release.SOURCE_NOTEBOOK, release.RELEASE_NOTEBOOK):
        setup = _cell(nbformat.read(str(path), as_version=4), bundle.SETUP_CELL_ID)
        assert setup.metadata["jupyter"] == {"source_hidden": True} and setup.metadata["cellView"] == "form"
        assert setup.source.startswith("#@title Setup")
        assert "make" not in setup.source.replace("make sure", "") and "resnet_course" not in setup.source


def test_the_setup_cell_knows_the_bundle_names():
    source = bundle.setup_cell_source("0" * 64)
    assert _setup_constant(source, "ZIP_NAMES") == [bundle.FILES_ZIP.name, bundle.BUNDLE_ZIP.name]
    assert _setup_constant(source, "NOT_UNPACKED") == set(bundle.NOTEBOOK_ONLY)
    assert f'"{bundle.BUNDLE_DIR.name}/"' in source  # the folder ResNet50.zip holds the files in


def test_a_release_with_addresses_writes_them_into_the_setup_cell_and_the_badge():
    before = release.SOURCE_NOTEBOOK.read_bytes()
    addresses = bundle.addresses(bundle_url="https://course.example.edu/resnet50/", colab_repository="owner/name")
    notebook, changed = release.fresh_source(bundle.learner_files(), addresses)
    assert changed == ["the setup cell (learner files checksum, download address)",
                       "the Colab badge and the sentence on opening the notebook in Colab"]
    released = nbformat.reads(release.generate(notebook=notebook), as_version=4)
    setup = _cell(released, bundle.SETUP_CELL_ID).source
    assert _setup_constant(setup, "FILES_URL") == "https://course.example.edu/resnet50/ResNet50-files.zip"
    assert _setup_constant(setup, "FILES_SHA256") == bundle.files_sha256(bundle.learner_files())
    intro = _cell(released, release.INTRO_CELL_ID).source
    assert intro.splitlines()[2] == bundle.colab_badge(
        "https://colab.research.google.com/github/owner/name/blob/main/ResNet50.ipynb")
    assert bundle.NOTEBOOK_COLAB_WITH_BADGE in intro and bundle.NOTEBOOK_COLAB_WITHOUT_BADGE not in intro
    assert release.SOURCE_NOTEBOOK.read_bytes() == before, "a release in memory writes nothing"


def test_addresses_are_checked():
    assert bundle.addresses("https://lms.example.edu/files/7/download?x=1").files_url.endswith("?x=1")
    assert bundle.addresses("https://example.edu/r/course.zip").files_url == "https://example.edu/r/course.zip"
    assert bundle.addresses("https://example.edu/r").files_url == "https://example.edu/r/ResNet50-files.zip"
    for given, message in (({"bundle_url": "course.example.edu/resnet50"}, "http:// or https://"),
                           ({"colab_repository": "owner"}, "owner/name"),
                           ({"colab_repository": "o/n", "colab_url": "https://x.example"}, "not both")):
        with pytest.raises(bundle.BundleError, match=message):
            bundle.addresses(**given)


def test_the_addresses_can_live_in_nbgrader_config(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text(
        "c = get_config()\nc.ResNetCourse.bundle_url = 'https://course.example.edu/resnet50/'\n")
    assert release.configured_addresses(tmp_path) == {
        "bundle_url": "https://course.example.edu/resnet50/", "colab_repository": None, "colab_url": None}


def test_make_release_passes_the_addresses_given():
    def recipe(*variables):
        return subprocess.run(["make", "-n", "release", *variables], cwd=ROOT, capture_output=True,
                              text=True).stdout
    assert "--bundle-url" not in recipe() and "--colab" not in recipe()
    given = recipe("BUNDLE_URL=https://course.example.edu/resnet50/", "COLAB_REPOSITORY=owner/name")
    assert '--bundle-url "https://course.example.edu/resnet50/"' in given
    assert '--colab-repository "owner/name"' in given
    assert '--bundle-url ""' in recipe("BUNDLE_URL=")  # given empty: none, whatever the config says


def test_the_release_says_what_to_upload_where(monkeypatch, tmp_path, capsys):
    source = tmp_path / "source.ipynb"
    shutil.copy(release.SOURCE_NOTEBOOK, source)
    monkeypatch.setattr(release, "SOURCE_NOTEBOOK", source)
    monkeypatch.setattr(release, "RELEASE_NOTEBOOK", tmp_path / "ResNet50.ipynb")
    monkeypatch.setattr(bundle, "write", lambda files, text, colab_url: [tmp_path / "files.zip"])
    assert release.main(["--bundle-url", "https://course.example.edu/resnet50/"]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "wrote the setup cell (learner files checksum, download address) of" in printed
    assert ("Upload release/ResNet50-files.zip so that it downloads from "
            "https://course.example.edu/resnet50/ResNet50-files.zip") in printed
    assert "No \"Open in Colab\" badge" in printed and "File > Upload notebook" in printed
    assert release.fresh_source(bundle.learner_files(), bundle.addresses(
        "https://course.example.edu/resnet50/"), source)[1] == []

    assert release.main(["--bundle-url", ""]) == 0  # and back: the form without an address
    printed = " ".join(capsys.readouterr().out.split())
    assert "The setup cell has no download address" in printed
    assert "learners put ResNet50.zip or ResNet50-files.zip beside the notebook, or upload it on Colab" in printed


def test_release_has_no_solution_and_no_grader_only_tests(release_text):
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN", "HIDDEN_CASES", "check_identity_block",
                   "check_convolutional_block", "check_resnet50"):
        assert marker not in release_text, f"ResNet50.ipynb contains {marker!r}"


def test_release_contains_no_line_of_the_reference_solution(release_cells):
    solution_lines = learner_notebooks.solution_lines()
    assert "X = Add()([X_shortcut, X])" in solution_lines  # the helper finds the solution lines at all
    leaked = {line.strip() for cell in release_cells for line in _source(cell).splitlines()} & solution_lines
    assert not leaked, f"solution lines in ResNet50.ipynb: {sorted(leaked)}"


def test_each_exercise_is_a_stub_with_its_signature(release_cells):
    stubs = {cell["metadata"]["nbgrader"]["grade_id"]: _source(cell) for cell in release_cells
             if cell["metadata"].get("nbgrader", {}).get("solution")}
    assert sorted(stubs) == sorted(EXERCISES)
    for name, source in stubs.items():
        signature = notebook_sync.reference_source(name).splitlines()[0]
        assert source.startswith(signature), f"{name}: the stub lost its signature line"
        assert "raise NotImplementedError()" in source, f"{name}: no stub to replace"


def test_release_never_imports_the_instructor_package(release_cells):
    for cell in release_cells:
        if cell["cell_type"] == "code":
            assert not re.search(r"\bresnet_course\b", _source(cell)), _source(cell)


def test_release_has_no_outputs(release_cells):
    for cell in release_cells:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_release_keeps_the_public_tests_and_locks_them(release_cells):
    tests = [cell for cell in release_cells if cell["metadata"].get("nbgrader", {}).get("grade")]
    calls = {_source(cell).strip() for cell in tests}
    assert calls == {f'{name}_test(globals().get("{name}"))  # one line if {name}\'s cell has not run'
                     for name in ("identity_block", "convolutional_block", "ResNet50")}
    for cell in tests:
        assert cell["metadata"]["editable"] is False and cell["metadata"]["deletable"] is False
        assert cell["metadata"]["nbgrader"]["checksum"], "nbgrader checksums detect edited test cells"


def test_check_mode_detects_a_stale_release(monkeypatch, tmp_path, capsys, fresh_release):
    stale = tmp_path / "ResNet50.ipynb"
    stale.write_text("{}", encoding="utf8")
    monkeypatch.setattr(release, "RELEASE_NOTEBOOK", stale)
    monkeypatch.setattr(release, "generate", lambda **kwargs: fresh_release)
    assert release.main(["--check"]) == 1
    assert "make release" in capsys.readouterr().out
    assert stale.read_text(encoding="utf8") == "{}"


def test_the_readme_speaks_to_its_users():
    """The README tells users what the kit does; not how it is developed, nor a placeholder address."""
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    for pattern in (r"\bissues? \d+", r"\bsessions?\b", r"\bissues (stops|show)\b", r"resnet-course-kit",
                    r"PUBLISHED_REPOSITORY"):
        assert not re.search(pattern, readme, flags=re.IGNORECASE), pattern
    assert "make release BUNDLE_URL=" in readme and "c.ResNetCourse.bundle_url" in readme
