"""The judge (resnet_course/grading/judge.py): verdicts from models it rebuilt itself, never from student code.

The artefacts here are made in this process by the producer's own `produce` (what it sends from the
sandbox), from the functions of tests/wrong_implementations.py, or written by hand as a forger would.
The judge must pass every correct variant, give each wrong one the message the learner's notebook
check gives, and refuse, without running anything, what it does not load.
"""
import json
import os
import re
import resource
import threading
import types
from pathlib import Path

import pytest

from resnet_course.course import reference
from resnet_course.grading import judge, producer, submission
from tests import wrong_implementations as implementations

REFERENCE = {"identity_block": reference.identity_block, "convolutional_block": reference.convolutional_block,
             "ResNet50": reference.ResNet50}


@pytest.fixture(scope="module")
def exercises():
    return {exercise.function: exercise for exercise in judge.exercises(submission.load_material())}


def artefacts(exercise, function, cases):
    """{call key: artefact} as the producer would send them for `function`, through JSON."""
    namespace = {**REFERENCE, exercise.function: function}
    return {key: json.loads(json.dumps(producer.produce(call, namespace)))
            for key, call in judge.calls(exercise, cases).items()}


def judged(exercise, function, hidden=False):
    cases = exercise.hidden_cases if hidden else exercise.public_cases
    return judge.judge(exercise, cases, artefacts(exercise, function, cases))


def in_notebook(exercise, function):
    """The message the learner's notebook check gives for `function` (None: it passes)."""
    import resnet_checks

    # The learner's function has the exercise's name (the checks name it in their messages).
    renamed = types.FunctionType(function.__code__, function.__globals__, exercise.function, function.__defaults__,
                                 function.__closure__)
    renamed.__kwdefaults__ = function.__kwdefaults__
    for case in exercise.public_cases:
        try:
            getattr(resnet_checks, exercise.check)(renamed, case)
        except AssertionError as failure:
            return judge.failure_message(failure, judge._context(exercise, case))
    return None


def without_layer_names(message):
    """Keras numbers layer names per process ('conv2d_7'): the two sides name the same layers differently."""
    return re.sub(r"named '[^']*'", "named '...'", message)


def test_hidden_calls_carry_arguments_only(exercises):
    resnet = exercises["ResNet50"]
    assert resnet.hidden_cases[0]["expected"]["params"] == 23608202  # read from the source notebook's literal
    for exercise in exercises.values():
        sent = json.dumps(list(judge.calls(exercise, exercise.hidden_cases).values()))
        for secret in ("23608202", "expected", "mean", "probe", "layers"):
            assert secret not in sent


@pytest.mark.parametrize("name, exercise_name, function", implementations.EQUIVALENT_IMPLEMENTATIONS,
                         ids=[case[0] for case in implementations.EQUIVALENT_IMPLEMENTATIONS])
def test_correct_variants_pass(exercises, name, exercise_name, function):
    assert judged(exercises[exercise_name], function) is None


def test_reference_passes_the_hidden_cases(exercises):
    for name in ("identity_block", "convolutional_block"):
        assert judged(exercises[name], REFERENCE[name], hidden=True) is None


# Every third wrong implementation and the ResNet50 ones whose check reads the whole model.
SAMPLE = implementations.WRONG_IMPLEMENTATIONS[::3] + [
    case for case in implementations.WRONG_IMPLEMENTATIONS if case[0] in (
        "resnet50_blocks_in_training_mode", "resnet50_stem_conv_without_bias")]


@pytest.mark.parametrize("name, exercise_name, function, expected", SAMPLE, ids=[case[0] for case in SAMPLE])
def test_wrong_variants_get_the_notebook_message(exercises, name, exercise_name, function, expected):
    exercise = exercises[exercise_name]
    message = judged(exercise, function)
    if name in getattr(implementations, "DEFAULTS_SEEN_ONLY_IN_THE_NOTEBOOK", ()):
        return  # the producer sends no signature: the judge checks what the calls build
    assert message is not None
    if name in getattr(implementations, "MESSAGES_FROM_THE_RUNNING_CODE", ()):
        return  # the notebook's message rests on what only the running code has: grading gives the general one
    assert expected in message
    assert without_layer_names(message) == without_layer_names(in_notebook(exercise, function))


def test_recorded_outcomes_read_as_in_the_notebook(exercises):
    exercise = exercises["identity_block"]
    keys = judge.calls(exercise, exercise.public_cases)

    def replayed(artefact):
        return judge.judge(exercise, exercise.public_cases, dict.fromkeys(keys, artefact))

    assert "is not implemented yet" in replayed({"outcome": "raised", "type": "NotImplementedError", "message": ""})
    assert "returned None: end the function with `return X`" in replayed({"outcome": "none"})
    assert "the output is not computed from the input X" in replayed({"outcome": "disconnected"})
    assert "returned a ndarray" in replayed({"outcome": "not_tensor", "type": "ndarray"})
    raised = replayed({"outcome": "raised", "type": "ValueError", "message": "bad shapes",
                       "frames": [["<cell identity_block>", 7, "identity_block", "X = Add()([X, Y])"]]})
    assert "raised ValueError: bad shapes" in raised and "line 7" in raised and "X = Add()([X, Y])" in raised
    assert "received no result" in judge.judge(exercise, exercise.public_cases, {})


# ---------------------------------------------------------------------------------------------
# Hand-made artefacts: what a forger inside the sandbox could send instead
# ---------------------------------------------------------------------------------------------

def block_model(exercise, call):
    """The reference block's serialized model for one call (what an honest producer sends)."""
    return producer.produce(call, REFERENCE)["model"]


def test_a_config_that_claims_a_pass_is_judged_on_what_it_computes(exercises):
    exercise = exercises["identity_block"]
    calls = judge.calls(exercise, exercise.public_cases)
    forged = {}
    for key, call in calls.items():
        model = json.loads(json.dumps(block_model(exercise, call)).replace('"class_name": "Add"',
                                                                           '"class_name": "Subtract"'))
        forged[key] = {"outcome": "model", "passed": True, "message": judge.PASSED, "params": 123,
                       "outputs": [[0.0]], "model": {**model, "weights": [[1.0]], "passed": True}}
    message = judge.judge(exercise, exercise.public_cases, forged)
    assert message is not None and "Subtract" in message


def marshalled_lambda(marker):
    import base64
    import marshal

    def code():
        Path(marker).write_text("the judge ran it")

    return {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
            "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
                "code": base64.b64encode(marshal.dumps(code.__code__)).decode(), "defaults": None,
                "closure": None}}}}


def functional(*layers):
    return {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
            "config": {"name": "m", "trainable": True, "layers": list(layers), "input_layers": [],
                       "output_layers": []}}


@pytest.mark.parametrize("layer, reason", [
    ("lambda", "Lambda layer"),
    ({"module": "os", "class_name": "system", "registered_name": None, "config": {"command": "true"}}, "os.system"),
    ({"module": "subprocess", "class_name": "Popen", "registered_name": None, "config": {}}, "subprocess.Popen"),
    ({"module": "__main__", "class_name": "MyBlock", "registered_name": "MyBlock", "config": {}}, "__main__.MyBlock"),
    ({"module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
      "config": {"filepath": "/etc"}}, "keras.layers.TFSMLayer"),
    ({"module": "keras.layers", "class_name": "Activation", "registered_name": None,
      "config": {"activation": {"module": "keras.src.saving.saving_lib", "class_name": "function",
                                "config": "load_model", "registered_name": "function"}}},
     "keras.src.saving.saving_lib.function"),
])
def test_models_whose_loading_would_run_code_are_refused_unloaded(tmp_path, layer, reason):
    marker = tmp_path / "ran"
    config = functional(marshalled_lambda(marker) if layer == "lambda" else layer)
    with pytest.raises(judge.Refused) as refused:
        judge.load(config)
    assert reason in refused.value.args[0] and "grading does not" in refused.value.args[0]
    assert not marker.exists()


def test_a_huge_model_is_refused_before_anything_is_allocated():
    import keras

    with keras.StatelessScope(initialize_variables=False):
        X = keras.Input((64,))
        config = keras.saving.serialize_keras_object(keras.Model(X, keras.layers.Dense(10**9)(X)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(judge.Refused, match="too large: 65,000,000,000 parameters"):
        judge.load(config)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 2**10  # KiB: no 256 GB weight


def test_huge_activations_and_deep_nesting_are_refused():
    import keras

    with keras.StatelessScope(initialize_variables=False):
        X = keras.Input((8, 8, 1))
        config = keras.saving.serialize_keras_object(keras.Model(X, keras.layers.ZeroPadding2D(10**5)(X)))
    with pytest.raises(judge.Refused, match="too large: its layers output"):
        judge.load(config)
    deep = functional()
    for _ in range(200):
        deep = {"config": [deep]}
    assert "nested more than" in judge.validate(functional(deep))


def test_records_over_the_limit_are_dropped_whole():
    import queue

    read, write = os.pipe()
    records = queue.Queue()
    reader = threading.Thread(target=submission._reader, args=(os.fdopen(read, "rb"), records))
    reader.start()
    with os.fdopen(write, "wb") as stream:
        stream.write(b'{"kind": "artefact", "pad": "' + b"x" * (9 * 2**20) + b'"}\n')
        stream.write(b"[[[[" * 100_000 + b"\n")  # nested past Python's recursion limit: not a record
        stream.write(b'{"kind": "done"}\n')
    reader.join(timeout=60)
    assert [records.get_nowait() for _ in range(3)] == [{"kind": "oversized"}, {"kind": "done"}, None]


# ---------------------------------------------------------------------------------------------
# Through the sandbox: what the scores say, and what is never a grade
# ---------------------------------------------------------------------------------------------

LIMITS = submission.Limits(cell_seconds=30, wall_seconds=180)


@pytest.fixture(scope="module")
def material():
    return submission.load_material()


def test_an_undefined_function_names_the_cell_that_failed(material):
    from tests import grading_submissions as submissions

    broken = "import numpy as np\n\nX = undefined_name + 1\n" + submissions.reference_source("identity_block")
    result = submission.grade_submission("broken", submissions.with_cell_source("identity_block", broken),
                                         material, LIMITS)
    messages = {cell.grade_id: cell.message for cell in result.cells}
    assert result.points == 3 and result.reason is None
    assert messages["identity_block_test"].startswith(
        "identity_block is not defined: cell 'identity_block' raised NameError: name 'undefined_name' is not defined")
    assert "line 3" in messages["identity_block_test"]
    # ResNet50 calls identity_block: its check's error says why that name is missing
    assert "name 'identity_block' is not defined" in messages["ResNet50_test"]
    assert "(identity_block is not defined: cell 'identity_block' raised NameError" in messages["ResNet50_test"]


def test_a_broken_packages_cell_is_a_grading_fault_not_a_grade(material):
    import dataclasses

    from tests import grading_submissions as submissions

    cells = tuple(dataclasses.replace(cell, source="raise RuntimeError('no such module here')")
                  if cell.kind == "packages" else cell for cell in material.cells)
    with pytest.raises(submission.GradingFault, match="the packages cell failed: RuntimeError: no such module"):
        submission.grade_submission("anyone", submissions.correct(), dataclasses.replace(material, cells=cells),
                                    LIMITS)


def test_a_sandbox_that_does_not_start_is_a_grading_fault(material, monkeypatch):
    from resnet_course.grading import sandbox
    from tests import grading_submissions as submissions

    def unavailable(*args, **kwargs):
        raise getattr(sandbox, "SandboxUnavailable", OSError)("bwrap: not found")

    monkeypatch.setattr(submission, "Sandbox", unavailable)
    with pytest.raises(submission.GradingFault, match="the sandbox did not start: bwrap: not found"):
        submission.grade_submission("anyone", submissions.correct(), material, LIMITS)


def test_registered_names_and_compile_settings_are_not_loaded(exercises):
    config = functional({"module": "keras.layers", "class_name": "Dense", "registered_name": "Custom>Evil",
                         "config": {"units": 1}})
    with pytest.raises(judge.Refused, match="names the class 'Custom>Evil'"):
        judge.load(config)
    # A ResNet50 that compiles its model: the compile settings are dropped unread, the model is judged
    import keras

    def compiled(input_shape=(64, 64, 3), classes=6):
        model = reference.ResNet50(input_shape, classes)
        model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
        return model

    exercise = exercises["ResNet50"]
    made = artefacts(exercise, compiled, exercise.public_cases)
    assert any("compile_config" in json.dumps(artefact) for artefact in made.values())
    assert judge.judge(exercise, exercise.public_cases, made) is None


@pytest.mark.parametrize("artefact", [
    5, {"outcome": ["model"]}, {"outcome": "model"}, {"outcome": "model", "model": "text"},
    {"outcome": "raised", "type": 3}, {"outcome": "raised", "frames": [["f", "1", "n", "t"]]},
    {"outcome": "too_large", "bytes": 1e308}, {"outcome": "interrupted", "seconds": "60"},
])
def test_a_malformed_artefact_fails_its_check_and_never_raises(exercises, artefact):
    exercise = exercises["identity_block"]
    forged = {key: artefact for key in judge.calls(exercise, exercise.public_cases)}
    assert "malformed result" in judge.judge(exercise, exercise.public_cases, forged)


@pytest.mark.parametrize("record", [
    {"results": 5, "defined": 5}, {"results": [], "defined": [3]}, {"results": [{"label": 1, "status": "ok"}],
                                                                    "defined": []},
    {"results": [{"label": "a", "status": "passed"}], "defined": []},
    {"results": [{"label": "a", "status": "ok", "error": ["x"]}], "defined": []},
])
def test_a_malformed_cells_record_is_recognised(record):
    assert submission.cells_record_problem({"kind": "cells", **record}) is not None
    assert submission.cells_record_problem({"kind": "cells", "results": [
        {"label": "a", "status": "error", "error": "E", "line": "line 1", "note": None}], "defined": ["f"]}) is None


def test_a_model_built_on_another_input_shape_is_refused(exercises):
    exercise = exercises["identity_block"]
    calls = judge.calls(exercise, exercise.public_cases)
    key, call = next(iter(calls.items()))
    wider = {**call, "input_shape": [2 * call["input_shape"][0], *call["input_shape"][1:]]}
    with pytest.raises(judge.Refused, match="its Input has the shape"):
        judge.load(block_model(exercise, wider), tuple(call["input_shape"]))


def test_the_run_limit_counts_each_call_with_a_cells_limit():
    limits = submission.Limits(cell_seconds=30)
    assert limits.run_seconds(4, calls=10) - limits.run_seconds(4) == 300


def test_orthogonal_initializers_on_huge_kernels_are_refused_before_any_qr():
    """An Orthogonal initializer runs a QR decomposition (cubic in the kernel's size): a 9000 x 9000 kernel
    (within MAX_PARAMS) would hold the judge for minutes, so it is refused unloaded; small ones load."""
    import keras

    from resnet_course.grading import judge

    X = keras.Input((9000,))
    huge = keras.Model(X, keras.layers.Dense(9000, kernel_initializer="orthogonal")(X))
    with pytest.raises(judge.Refused, match="Orthogonal"):
        judge.load(keras.saving.serialize_keras_object(huge), (9000,))
    X = keras.Input((8, 8, 3))
    small = keras.Model(X, keras.layers.Conv2D(4, 3, kernel_initializer="orthogonal")(X))
    assert judge.load(keras.saving.serialize_keras_object(small), (8, 8, 3)).count_params() == 112


# ---------------------------------------------------------------------------------------------
# The producer builds each call's model without weights, as a notebook only when that fails
# ---------------------------------------------------------------------------------------------

def test_the_producer_makes_no_weight(exercises, monkeypatch):
    """The models the producer serializes get no weights (the judge makes its own): with every weight
    initialization made to fail, each call of the checks still sends its model."""
    from keras.src.backend.common import global_state
    from keras.src.backend.common.variables import Variable

    def refuse(*args, **kwargs):
        raise AssertionError("the producer initialized a weight")

    monkeypatch.setattr(Variable, "_initialize", refuse)
    pending = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    for name in ("identity_block", "ResNet50"):
        exercise = exercises[name]
        produced = artefacts(exercise, REFERENCE[name], exercise.public_cases)
        assert {artefact["outcome"] for artefact in produced.values()} == {"model"}
    # and nothing is left for Keras to initialize later
    assert list(global_state.get_global_attribute("uninitialized_variables", []) or []) == pending


def test_a_function_that_needs_its_weights_is_built_as_in_a_notebook(exercises):
    """A block that needs a real variable while it builds (a keras.Variable from an array cannot be made
    without weights) is built again as the notebook builds it: it passes, as it does in Jupyter."""
    import keras
    import numpy as np

    def identity_block(X, f, filters, training=True, initializer=None):
        keras.Variable(np.zeros(3, dtype="float32"))  # needs its value now
        return reference.identity_block(X, f, filters, training=training, initializer=initializer)

    assert judged(exercises["identity_block"], identity_block) is None


# ---------------------------------------------------------------------------------------------
# ResNet50's check compares what the model computes (issue 27, item 4)
# ---------------------------------------------------------------------------------------------

def test_a_resnet50_without_its_arithmetic_gets_nothing(exercises):
    """Zero kernels, dilated 3x3 convolutions, epsilon=1000 and constant moving statistics: the layer
    structure and the parameter count are the course's, the outputs are 1/6 for every image. It fails
    the public case naming the first layer and setting, and the hidden case (pass/fail only)."""
    from tests import grading_cases_arithmetic as arithmetic_attack

    exercise = exercises["ResNet50"]
    public = judged(exercise, arithmetic_attack.ResNet50)
    assert public is not None
    assert "stage 1 layer 2 (Conv2D, named '" in public
    assert "kernel_initializer=Zeros(), expected kernel_initializer=GlorotUniform(seed=0)" in public
    assert judged(exercise, arithmetic_attack.ResNet50, hidden=True) is not None
