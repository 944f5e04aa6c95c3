"""The learner notebook ResNet50.ipynb is the nbgrader release of the source notebook and gives nothing away."""
import json
import re

import pytest

import learner_notebooks
from resnet_course import bundle, notebook_sync, release

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
    if release.stale_setup_cell(bundle.learner_files()) is not None:
        pytest.fail("the source notebook's setup cell pins other learner files; run `make release`")


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
    assert calls == {"identity_block_test(identity_block)",
                     "convolutional_block_test(convolutional_block)",
                     "ResNet50_test(ResNet50)"}
    for cell in tests:
        assert cell["metadata"]["editable"] is False and cell["metadata"]["deletable"] is False
        assert cell["metadata"]["nbgrader"]["checksum"], "nbgrader checksums detect edited test cells"


def test_check_mode_detects_a_stale_release(monkeypatch, tmp_path, capsys, fresh_release):
    stale = tmp_path / "ResNet50.ipynb"
    stale.write_text("{}", encoding="utf8")
    monkeypatch.setattr(release, "RELEASE_NOTEBOOK", stale)
    monkeypatch.setattr(release, "generate", lambda: fresh_release)
    assert release.main(["--check"]) == 1
    assert "make release" in capsys.readouterr().out
    assert stale.read_text(encoding="utf8") == "{}"
