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
from resnet_course import paths, reference
from tests.wrong_implementations import identity_block_variant

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


@pytest.fixture(scope="module")
def kernel_errors():
    """{name: traceback lines} of the error each cell shows, run in one IPython kernel from the repository root."""
    cells = {"wrong": WRONG_BLOCK, "raising": RAISING_BLOCK, "stub": STUB}
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
