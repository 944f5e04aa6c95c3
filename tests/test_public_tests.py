"""The learner's checks (public_tests.py, resnet_checks.py, check_cases.py) and their expected
values (resnet_course.course.expected_values).

The reference solution passes every public and hidden case; each plausible wrong solution
fails with its own message and each equivalent one passes; the generated expected values are up
to date; the learner's check modules stand alone (no resnet_course import).
"""
import ast
import copy
import functools
import sys
from types import SimpleNamespace

import keras
import nbformat
import pytest
from keras.initializers import random_uniform
from keras.layers import BatchNormalization, Dense, Flatten, Input
from keras.models import Model

import public_tests
import resnet_checks
from resnet_course import paths
from resnet_course.course import expected_values, reference
from tests.wrong_implementations import EQUIVALENT_IMPLEMENTATIONS, WRONG_IMPLEMENTATIONS

ENTRY_POINTS = {
    "identity_block": public_tests.identity_block_test,
    "convolutional_block": public_tests.convolutional_block_test,
    "ResNet50": public_tests.ResNet50_test,
}
CHECKS = {
    "identity_block": public_tests.check_identity_block,
    "convolutional_block": public_tests.check_convolutional_block,
    "ResNet50": public_tests.check_resnet50,
}


@functools.cache
def _reference_resnet50(input_shape, classes):
    return reference.ResNet50(input_shape, classes)


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """The reference ResNet50, built once per shape: checks and generator only read the model."""
    return _reference_resnet50(tuple(input_shape), classes)


REFERENCE = SimpleNamespace(identity_block=reference.identity_block,
                            convolutional_block=reference.convolutional_block, ResNet50=ResNet50)


@pytest.fixture(scope="module")
def hidden_cases():
    return expected_values.compute_cases(expected_values.HIDDEN_SPECS, REFERENCE)


@pytest.fixture(scope="module")
def public_cases():
    return expected_values.compute_cases(expected_values.PUBLIC_SPECS, REFERENCE)


@pytest.mark.parametrize("exercise", list(ENTRY_POINTS))
def test_reference_passes_the_public_checks(exercise, capsys):
    ENTRY_POINTS[exercise](getattr(REFERENCE, exercise))
    assert capsys.readouterr().out == f"{resnet_checks.GREEN}All tests passed!{resnet_checks.RESET}\n"


@pytest.mark.parametrize("exercise", list(CHECKS))
def test_reference_passes_the_hidden_cases(exercise, hidden_cases):
    assert hidden_cases[exercise]
    for case in hidden_cases[exercise]:
        CHECKS[exercise](getattr(REFERENCE, exercise), case)


def test_hidden_cases_use_other_inputs_and_arguments_than_the_public_ones():
    for exercise in CHECKS:
        public = [(s.get("input"), s["args"]) for s in expected_values.PUBLIC_SPECS[exercise]]
        for spec in expected_values.HIDDEN_SPECS[exercise]:
            assert spec["args"] not in [args for _, args in public]
            assert spec.get("input") is None or spec["input"] not in [inp for inp, _ in public]


@pytest.mark.parametrize("name, exercise, target, message",
                         WRONG_IMPLEMENTATIONS, ids=[w[0] for w in WRONG_IMPLEMENTATIONS])
def test_wrong_implementation_fails_with_its_own_message(name, exercise, target, message, capsys):
    with pytest.raises(public_tests.CheckFailed) as failure:
        ENTRY_POINTS[exercise](target)
    text = str(failure.value)
    assert text.startswith(exercise), text
    assert message in text, text
    assert "All tests passed" not in capsys.readouterr().out


@pytest.mark.parametrize("name, exercise, target", EQUIVALENT_IMPLEMENTATIONS,
                         ids=[e[0] for e in EQUIVALENT_IMPLEMENTATIONS])
def test_equivalent_implementation_passes_the_public_and_hidden_checks(name, exercise, target, hidden_cases,
                                                                        capsys):
    ENTRY_POINTS[exercise](target)
    assert "All tests passed!" in capsys.readouterr().out
    for case in hidden_cases[exercise]:
        CHECKS[exercise](target, case)


def test_wrong_implementation_messages_are_distinct():
    messages = [w[3] for w in WRONG_IMPLEMENTATIONS]
    assert len(WRONG_IMPLEMENTATIONS) >= 12
    # Two mistakes may share a message only across exercises (e.g. ReLU before the Add).
    assert len({(w[1], w[3]) for w in WRONG_IMPLEMENTATIONS}) == len(messages)


def _symbolic_only(fix):
    """A block that is right while the checks read its layers (symbolic input) and wrong when it
    computes numbers: only the numeric comparison can catch it."""
    def identity_block(X, f, filters, training=True, initializer=random_uniform):
        if isinstance(X, keras.KerasTensor):
            return reference.identity_block(X, f, filters, training, initializer)
        return fix(X, f, filters, training, initializer)
    return identity_block


def test_numeric_check_catches_an_ignored_training_flag():
    ignores_training = _symbolic_only(lambda X, f, filters, training, init:
                                      reference.identity_block(X, f, filters, False, init))
    with pytest.raises(public_tests.CheckFailed,
                       match="with training=True the block returns the inference outputs"):
        public_tests.identity_block_test(ignores_training)


def test_numeric_check_catches_a_hard_coded_training_mode():
    always_training = _symbolic_only(lambda X, f, filters, training, init:
                                     reference.identity_block(X, f, filters, True, init))
    with pytest.raises(public_tests.CheckFailed,
                       match="with training=False the block returns the training-mode outputs"):
        public_tests.identity_block_test(always_training)


def test_numeric_check_catches_wrong_values():
    scaled = _symbolic_only(lambda X, f, filters, training, init:
                            reference.identity_block(X, f, filters, training, init) * 1.5)
    with pytest.raises(public_tests.CheckFailed, match=r"wrong output values with training=False .* example 1"):
        public_tests.identity_block_test(scaled)


def test_a_raising_function_is_reported_with_its_exception():
    def identity_block(X, f, filters, training=True, initializer=random_uniform):
        raise KeyError("F4")

    with pytest.raises(public_tests.CheckFailed, match="raised KeyError: 'F4'"):
        public_tests.identity_block_test(identity_block)


def test_a_resnet50_returning_none_is_reported():
    with pytest.raises(public_tests.CheckFailed, match="returned None: end the function with `return X` "
                                                       r"\(the keras.Model\)"):
        public_tests.ResNet50_test(lambda input_shape=(64, 64, 3), classes=6: None)


def test_batch_dependence_in_inference_mode_is_caught():
    X = Input((4, 4, 3))
    Y = Dense(2, activation="softmax")(Flatten()(BatchNormalization(axis=3)(X, training=True)))
    with pytest.raises(public_tests.CheckFailed, match="changes with the rest of the batch.*training=None"):
        resnet_checks._check_inference_mode("model", Model(X, Y), (4, 4, 3))


def test_the_stored_expected_values_are_up_to_date(public_cases, hidden_cases):
    notebook = None
    if expected_values.NOTEBOOK.exists():
        notebook = nbformat.read(str(expected_values.NOTEBOOK), as_version=4)
    stale = expected_values.stale_parts(public_cases, hidden_cases,
                                        expected_values.CHECK_CASES.read_text(), notebook)
    assert stale == [], "run `make expected`: " + ", ".join(stale)


def test_check_mode_names_a_stale_value(public_cases, hidden_cases):
    changed = copy.deepcopy(public_cases)
    changed["convolutional_block"][1]["expected"]["outputs"][0]["probe"] += 0.01
    text = expected_values.CHECK_CASES.read_text()
    assert expected_values.stale_parts(changed, hidden_cases, text, None) == [
        "check_cases.py: CONVOLUTIONAL_BLOCK_CASES"]


def test_check_cases_is_exactly_the_generated_text(public_cases):
    assert expected_values.CHECK_CASES.read_text() == expected_values.render_check_cases(public_cases)


def test_check_mode_command_line(capsys):
    # The blocks are recomputed here; the ResNet50 builds come from the cache.
    assert expected_values.main(["--check"], implementation=REFERENCE) == 0
    assert "up to date" in capsys.readouterr().out


def test_rendering_is_deterministic(public_cases):
    first = expected_values.render_check_cases(public_cases)
    assert first == expected_values.render_check_cases(copy.deepcopy(public_cases))


def test_notebook_regions_are_rewritten_in_place(tmp_path, public_cases, hidden_cases):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("text")] + [
        nbformat.v4.new_code_cell(f"x = 1\n{expected_values.HIDDEN_BEGIN}{name}\nHIDDEN_CASES = []\n"
                                  f"{expected_values.HIDDEN_END}\nfor case in HIDDEN_CASES: pass")
        for name in expected_values.EXERCISES]
    path = tmp_path / "ResNet50.ipynb"
    nbformat.write(notebook, str(path))
    assert expected_values.write_notebook(hidden_cases, path) == (list(expected_values.EXERCISES), [])
    written = path.read_bytes()
    assert expected_values.write_notebook(hidden_cases, path) == ([], [])
    assert path.read_bytes() == written
    rewritten = nbformat.read(str(path), as_version=4)
    stale = expected_values.stale_parts(public_cases, hidden_cases, "", rewritten)
    assert [part for part in stale if "hidden" in part] == []
    assert rewritten.cells[1].source.startswith("x = 1\n")
    assert rewritten.cells[1].source.endswith("for case in HIDDEN_CASES: pass")


LEARNER_CHECK_MODULES = ("public_tests.py", "resnet_checks.py", "check_cases.py")


@pytest.mark.parametrize("module", LEARNER_CHECK_MODULES)
def test_the_learner_check_modules_stand_alone(module):
    source = (paths.ROOT / module).read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    allowed = {"numpy", "keras", "tensorflow", "resnet_checks", "check_cases"}
    assert imported <= allowed | set(sys.stdlib_module_names), imported
    assert "resnet_course" not in source
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    assert not defined & {"identity_block", "convolutional_block", "ResNet50"}


def test_public_tests_is_what_the_learner_reads():
    assert len((paths.ROOT / "public_tests.py").read_text().splitlines()) < 200
    # The source notebook's hidden tests import the generic checks from public_tests.
    for name in ("check_identity_block", "check_convolutional_block", "check_resnet50", "CheckFailed"):
        assert getattr(public_tests, name) is getattr(resnet_checks, name)


def test_the_source_folder_links_the_check_modules():
    for module in LEARNER_CHECK_MODULES:
        link = paths.SOURCE_DIR / module
        assert link.is_symlink() and link.resolve() == (paths.ROOT / module).resolve(), link


def test_the_template_defaults_are_the_reference_solution_s():
    # resnet_checks.TEMPLATE_DEFAULTS (a learner file cannot import the reference) restates them
    import inspect

    import resnet_checks
    from resnet_course.course import reference

    for name, defaults in resnet_checks.TEMPLATE_DEFAULTS.items():
        signature = inspect.signature(getattr(reference, name))
        declared = {p.name: p.default for p in signature.parameters.values() if p.default is not p.empty}
        assert declared.keys() == defaults.keys(), name
        for argument, value in defaults.items():
            assert declared[argument] is value or declared[argument] == value, (name, argument)
        assert resnet_checks.TEMPLATE_SIGNATURES[name].startswith(f"{name}(")
        assert resnet_checks.declared_default_problem(name, getattr(reference, name)) == ""
