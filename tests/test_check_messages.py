"""What a learner sees when a check fails: one short block in Jupyter (exercise and case, what is
wrong, expected vs got, a hint) and no traceback through the checking machinery; the lines of their
own code when their code raised; one line when the function is still the stub. Plain Python and
pytest still get an AssertionError with the message, and under nbgrader the cell still fails.
"""
import re

import keras
import nbformat
import pytest
from keras.initializers import random_uniform
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import public_tests
import resnet_checks
from resnet_course import paths
from resnet_course.course import reference
from tests.wrong_implementations import (MESSAGES_FROM_THE_RUNNING_CODE, WRONG_IMPLEMENTATIONS, identity_block_variant,
                                         resnet50_variant)

ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_LINES = 15  # what fits on a screen next to the cell, with room to spare


def _plain(lines):
    return [ANSI.sub("", line) for text in lines for line in text.splitlines()]


def test_a_failed_check_is_an_assertion_error_with_the_message():
    with pytest.raises(AssertionError, match="there is no Add: the shortcut is missing"):
        public_tests.identity_block_test(identity_block_variant(add_shortcut=False))


def test_ipython_shows_the_message_alone():
    with pytest.raises(public_tests.CheckFailed) as failure:
        public_tests.identity_block_test(identity_block_variant(relu_after_add=False))
    lines = _plain(failure.value._render_traceback_())
    assert lines[0].startswith("Check failed: identity_block(X of shape (3, 4, 4, 3), f=2, filters=[4, 4, 3])")
    assert any("missing ReLU after the Add" in line for line in lines)
    assert len(lines) < MAX_LINES
    assert not any("resnet_checks.py" in line or "public_tests.py" in line for line in lines)


def test_the_stub_gets_one_line():
    def identity_block(X, f, filters, training=True, initializer=random_uniform):
        # YOUR CODE HERE
        raise NotImplementedError()

    with pytest.raises(public_tests.CheckFailed) as failure:
        public_tests.identity_block_test(identity_block)
    assert str(failure.value).startswith("identity_block is not implemented yet: write your code where it "
                                         "says # YOUR CODE HERE")
    assert len(_plain(failure.value._render_traceback_())) == 1


def _raises_in_the_learners_code(X, f, filters, training=True, initializer=random_uniform):
    X = reference.identity_block(X, f, filters, training, initializer)
    return X_shortcutt  # noqa: F821  (the learner's typo)


def test_an_error_in_the_learners_code_shows_their_lines_only():
    with pytest.raises(public_tests.CheckFailed) as failure:
        public_tests.identity_block_test(_raises_in_the_learners_code)
    assert "raised NameError: name 'X_shortcutt' is not defined" in str(failure.value)
    frames = failure.value.learner_frames
    assert [frame.name for frame in frames] == ["_raises_in_the_learners_code"]
    lines = _plain(failure.value._render_traceback_())
    assert any("return X_shortcutt" in line for line in lines)
    assert not any("resnet_checks.py" in line or "site-packages" in line for line in lines)


def test_learner_frames_leave_out_keras_and_the_checks():
    def learner_block(X, f, filters, training=True, initializer=random_uniform):
        from keras.layers import Conv2D
        return Conv2D(4, 9)(X)  # a 9x9 kernel on a 4x4 input: Keras raises deep inside its own code

    with pytest.raises(public_tests.CheckFailed) as failure:
        public_tests.identity_block_test(learner_block)
    assert "raised ValueError" in str(failure.value)
    assert [frame.name for frame in failure.value.learner_frames] == ["learner_block"]


# ---- In a real kernel, as the learner runs the notebook ----

SETUP = "from keras.layers import Activation, Add, BatchNormalization, Conv2D\nfrom public_tests import identity_block_test"
WRONG_BLOCK = '''
def identity_block(X, f, filters, training=True, initializer=None):
    F1, F2, F3 = filters
    X = Conv2D(F1, 1, kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=training)
    return Activation("relu")(X)

identity_block_test(identity_block)
'''
RAISING_BLOCK = '''
def identity_block(X, f, filters, training=True, initializer=None):
    F1, F2, F3 = filters
    X = Conv2D(F1, 1, kernel_initializer=initializer(seed=0))(X)
    X = BatchNormalization(axis=3)(X, training=trainig)
    return X

identity_block_test(identity_block)
'''
STUB = '''
def identity_block(X, f, filters, training=True, initializer=None):
    # YOUR CODE HERE
    raise NotImplementedError()

identity_block_test(identity_block)
'''
# Stage 3's first identity block gets stage 4's filters: Keras's Add raises inside the block.
STAGE_WIRING = '''
from keras.initializers import glorot_uniform
from keras.layers import Input, MaxPooling2D, ZeroPadding2D
from keras.models import Model
from public_tests import ResNet50_test
from resnet_course.course.reference import convolutional_block, identity_block

def ResNet50(input_shape=(64, 64, 3), classes=6):
    X_input = Input(input_shape)
    X = ZeroPadding2D((3, 3))(X_input)
    X = Conv2D(64, (7, 7), strides=(2, 2), kernel_initializer=glorot_uniform(seed=0))(X)
    X = Activation("relu")(BatchNormalization(axis=3)(X))
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)
    X = convolutional_block(X, f=3, filters=[64, 64, 256], s=1, training=None)
    X = identity_block(X, 3, [64, 64, 256], training=None)
    X = identity_block(X, 3, [64, 64, 256], training=None)
    X = convolutional_block(X, f=3, filters=[128, 128, 512], s=2, training=None)
    X = identity_block(X, 3, [256, 256, 1024], training=None)
    return Model(inputs=X_input, outputs=X)

ResNet50_test(ResNet50)
'''


@pytest.fixture(scope="module")
def kernel_errors():
    """{name: traceback lines} of the error each cell shows, run in one IPython kernel from the repository root."""
    cells = {"wrong": WRONG_BLOCK, "raising": RAISING_BLOCK, "stub": STUB, "stage wiring": STAGE_WIRING}
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP)] + [nbformat.v4.new_code_cell(c) for c in cells.values()]
    NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(paths.ROOT)}}).execute()
    errors = {}
    for name, cell in zip(cells, notebook.cells[1:]):
        (error,) = [output for output in cell.outputs if output.output_type == "error"]
        errors[name] = _plain(error.traceback)
    return errors


def test_kernel_shows_a_short_message_without_the_checks_frames(kernel_errors):
    lines = kernel_errors["wrong"]
    assert lines[0].startswith("Check failed: identity_block(X of shape (3, 4, 4, 3)")
    assert any("ReLU before the Add" in line or "there is no Add" in line for line in lines), lines
    assert len(lines) < MAX_LINES, lines
    assert not any("resnet_checks.py" in line or "public_tests.py" in line for line in lines), lines


def test_kernel_shows_the_learners_own_line(kernel_errors):
    lines = kernel_errors["raising"]
    assert any("raised NameError: name 'trainig' is not defined" in line for line in lines), lines
    assert any("BatchNormalization(axis=3)(X, training=trainig)" in line for line in lines), lines
    assert len(lines) < MAX_LINES, lines
    assert not any("resnet_checks.py" in line or "site-packages" in line for line in lines), lines


def test_kernel_shows_one_line_for_the_stub(kernel_errors):
    assert kernel_errors["stub"] == [
        "Check failed: identity_block is not implemented yet: write your code where it says "
        "# YOUR CODE HERE (and delete the `raise NotImplementedError()` line)."]


def test_kernel_names_the_block_of_a_wrong_stage_and_shows_the_learners_call(kernel_errors):
    lines = kernel_errors["stage wiring"]
    assert lines[0].startswith("Check failed: ResNet50(input_shape=(64, 64, 3), classes=6): stage 3, block 2 "
                               "(identity block) is called with filters [256, 256, 1024]"), lines
    assert any("X = identity_block(X, 3, [256, 256, 1024], training=None)" in line for line in lines), lines
    # The learner's call is the last line shown: not the Add inside the block, which is right.
    assert not any("Add()" in line or "reference.py" in line for line in lines), lines
    assert len(lines) < MAX_LINES, lines


def test_a_failed_check_still_fails_the_cell_as_nbgrader_runs_it():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(STUB)]
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(paths.ROOT)}})
    with pytest.raises(CellExecutionError, match="not implemented yet"):
        client.execute()


class Opaque(keras.layers.Layer):
    """A layer of the learner's own class that Keras cannot describe (no get_config for `scale`)."""

    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def call(self, x):
        return self.scale(x)


def test_a_layer_keras_cannot_describe_gets_a_message_not_a_traceback():
    def identity_block(X, f, filters, training=True, initializer=random_uniform):
        return Opaque(lambda x: 2 * x)(reference.identity_block(X, f, filters, training, initializer))

    with pytest.raises(public_tests.CheckFailed, match="the checks cannot read the layers you built"):
        public_tests.identity_block_test(identity_block)


# ---- ResNet50: messages that point at the cause ----

def _resnet50_failure(target):
    with pytest.raises(public_tests.CheckFailed) as failure:
        public_tests.ResNet50_test(target)
    return failure.value


def test_a_wrong_identity_block_filter_is_named_with_its_stage_and_the_fix():
    failure = _resnet50_failure(resnet50_variant(identity_filters={3: (256, 256, 1024)}))
    lines = _plain(failure._render_traceback_())
    assert lines[:3] == [
        "Check failed: ResNet50(input_shape=(64, 64, 3), classes=6): stage 3, block 2 (identity block) is called "
        "with filters [256, 256, 1024]: an identity block must output the channels it receives (512): its last "
        "filter count must be 512.",
        "  Hint: stage 3's identity blocks take filters [128, 128, 512].",
        "  (this is why its Add raised ValueError: Inputs have incompatible shapes. Received shapes (8, 8, 512) "
        "and (8, 8, 1024))"], lines
    assert "check identity_block and convolutional_block" not in str(failure)
    # Where the learner's code raised: down to the call of the block, not into the (correct) block.
    assert failure.learner_frames[-1].line == ("X = identity_block(X, 3, list((identity_filters or {}).get(stage, "
                                               "filters)), **training)")
    assert len(lines) < MAX_LINES, lines


def test_a_block_added_by_operator_gets_the_same_diagnosis():
    # `X + X_shortcut` raises Keras's broadcast error instead of Add's "incompatible shapes".
    failure = _resnet50_failure(resnet50_variant(identity_filters={4: (128, 128, 512)},
                                                 identity_block=identity_block_variant(merge="operator")))
    assert "stage 4, block 2 (identity block) is called with filters [128, 128, 512]: an identity block must " \
           "output the channels it receives (1024): its last filter count must be 1024." in str(failure)
    assert "Cannot broadcast" in str(failure)


def test_an_identity_block_where_a_stage_starts_is_told_the_convolutional_block_to_write():
    def learner(input_shape=(64, 64, 3), classes=6):  # stage 3 starts with an identity block
        X_input = keras.Input(input_shape)
        X = keras.layers.Conv2D(64, (7, 7), strides=(2, 2))(keras.layers.ZeroPadding2D((3, 3))(X_input))
        X = keras.layers.Activation("relu")(keras.layers.BatchNormalization(axis=3)(X))
        X = keras.layers.MaxPooling2D((3, 3), strides=(2, 2))(X)
        X = reference.convolutional_block(X, f=3, filters=[64, 64, 256], s=1, training=None)
        X = reference.identity_block(X, 3, [64, 64, 256], training=None)
        X = reference.identity_block(X, 3, [64, 64, 256], training=None)
        X = reference.identity_block(X, 3, [128, 128, 512], training=None)
        return keras.Model(X_input, X)

    failure = _resnet50_failure(learner)
    text = str(failure)
    assert "stage 2, block 4 (identity block) is called with filters [128, 128, 512]: an identity block must " \
           "output the channels it receives (256)" in text, text
    assert "Hint: stage 2 has 3 blocks; stage 3 starts with a convolutional block: " \
           "X = convolutional_block(X, f=3, filters=[128, 128, 512], s=2, training=None)." in text, text


def test_a_stage_mistake_replayed_without_the_learners_frames_gets_the_general_hint():
    # What a grader sees when it replays a recorded error: the message alone, no graph to read.
    def replayed(input_shape=(64, 64, 3), classes=6):
        raise ValueError("Inputs have incompatible shapes. Received shapes (8, 8, 512) and (8, 8, 1024)")

    text = str(_resnet50_failure(replayed))
    assert "raised ValueError: Inputs have incompatible shapes" in text
    assert "Hint: an Add got tensors of different shapes: an identity block must output the channels it " \
           "receives" in text, text


def test_the_messages_from_the_running_code_are_wrong_implementations():
    assert MESSAGES_FROM_THE_RUNNING_CODE <= {case[0] for case in WRONG_IMPLEMENTATIONS}


def test_a_layer_not_applied_in_a_model_rebuilt_from_its_config_is_reported_missing():
    # The config holds only the model's own layers: the unapplied one is gone, so the checks say "missing".
    built = resnet50_variant(head="average_unapplied")()
    rebuilt = keras.Model.from_config(built.get_config())
    text = str(_resnet50_failure(lambda input_shape=(64, 64, 3), classes=6: rebuilt))
    assert "missing AveragePooling2D(pool_size=(2, 2), strides=(2, 2), padding='valid') before head" in text, text


def test_blocks_called_without_training_are_told_what_to_write():
    failure = _resnet50_failure(resnet50_variant(block_training="default"))
    lines = _plain(failure._render_traceback_())
    assert lines[1:] == [
        "  Leaving `training` out of a block call means training=True (the block's default).",
        "  Pass training=None to every block, e.g. X = convolutional_block(X, f=3, filters=[64, 64, 256], s=1, "
        "training=None), so that BatchNormalization follows the model's mode: batch statistics in fit(), moving "
        "statistics in predict() and model(X)."], lines
