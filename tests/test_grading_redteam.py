"""Red-team attacks on a claim of docs/GRADING.md that once broke it (each test asserts the hole is
closed), and attacks that hold but were not covered elsewhere.

Two kinds:
- through the grader's real command (`python -m resnet_course.grading`) on a copy of the course
  folder: a student function that, called with the hidden arguments in the sandbox, tries to carry
  one of them out through what the grader reports of the run (the exit status of the producer, the
  number of oversized records): the hidden input shape (96, 96, 3) and the 10 classes must not
  appear in the feedback notebook, the gradebook or the grader's summary; and a cell that writes a
  malformed record on the channel gets a zero, not a grader error;
- the judge alone (no sandbox): a model config whose layer outputs exceed MAX_ACTIVATIONS inside a
  nested model or behind unknown (None) dimensions must be refused before anything is computed, for
  the check's eager calls as for its symbolic one.
"""
import json
import subprocess
import sys

import pytest

from resnet_course import paths
from tests import grading_submissions as submissions
from tests.test_grading_batch import make_course, submit

OPTIONS = ("--workers", "1", "--timeout", "40", "--memory-gib", "2", "--max-processes", "64")

# ResNet50, called with the hidden arguments (only the hidden phase differs from the public
# (64, 64, 3) / 6 classes), ends the producer with the hidden input size as its exit status.
EXIT_STATUS_LEAK = '''
import os

def ResNet50(input_shape=(64, 64, 3), classes=6):
    if tuple(input_shape) != (64, 64, 3):
        os._exit(int(input_shape[0]) % 256)
    raise NotImplementedError
'''

# ResNet50, called with the hidden arguments, writes `classes` over-long lines on the producer's
# channel: the grader counts them in a note of the feedback.
OVERSIZED_COUNT_LEAK = '''
import gc

def ResNet50(input_shape=(64, 64, 3), classes=6):
    if tuple(input_shape) != (64, 64, 3):
        channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "output"))
        line = "x" * (8 * 2**20 + 16) + "\\n"
        for _ in range(int(classes)):
            channel.output.write(line)
            channel.output.flush()
    raise NotImplementedError
'''

# A solution cell writes a well-formed JSON record of a known kind with fields of the wrong type on the
# producer's channel: the grader's reader loop raises TypeError and the submission is reported as "not
# the students' doing", never graded, on every rerun (the command exits 1).
MALFORMED_RECORD = '''
import gc
channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "send"))
channel.send(kind="cells", results=5, defined=5)

def ResNet50(input_shape=(64, 64, 3), classes=6):
    raise NotImplementedError
'''

ATTACKS = {"exit-status-leak": EXIT_STATUS_LEAK, "oversized-count-leak": OVERSIZED_COUNT_LEAK,
           "malformed-record": MALFORMED_RECORD}


def _notebook(resnet50_source):
    """The release (stubs, quick to grade) with ResNet50's solution cell replaced."""
    notebook = submissions.release_notebook()
    submissions.cell(notebook, "ResNet50").source = resnet50_source
    return submissions.to_bytes(notebook)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{student: the autograded notebook's text}, the grader's stdout, the gradebook's bytes."""
    course = make_course(tmp_path_factory.mktemp("redteam") / "course")
    for student, source in ATTACKS.items():
        submit(course, student, _notebook(source))
    process = subprocess.run([sys.executable, "-m", "resnet_course.grading", str(course / "submitted"),
                              "--course-dir", str(course), *OPTIONS],
                             cwd=course, capture_output=True, text=True, timeout=1800)
    feedback = {}
    for student in ATTACKS:
        path = course / "autograded" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
        feedback[student] = path.read_text() if path.is_file() else None
    return feedback, process, (course / "gradebook.db").read_bytes()


pytestmark = pytest.mark.timeout(2400)


def test_exit_status_does_not_carry_a_hidden_argument(graded):
    feedback, process, gradebook = graded
    leaked = "exit code 96"
    assert leaked not in feedback["exit-status-leak"]
    assert leaked not in process.stdout
    assert leaked.encode() not in gradebook


def test_oversized_record_count_does_not_carry_a_hidden_argument(graded):
    feedback, _, _ = graded
    text = "".join(json.loads(feedback["oversized-count-leak"])["cells"][0]["source"])
    assert "10 record(s)" not in text


def test_malformed_record_is_the_students_zero_not_a_fault(graded):
    feedback, process, _ = graded
    assert feedback["malformed-record"] is not None, process.stdout[-2000:]
    assert process.returncode == 0


def _upsampling_configs():
    """Two models whose layer outputs, per example, exceed MAX_ACTIVATIONS when applied to the block
    check's 4x4x3 input: upsampled x1200 (69 M values) and pooled back, (a) inside a nested model with
    known shapes, (b) at the top level behind an Input of unknown (None) height and width."""
    import keras

    inner_input = keras.Input((4, 4, 3))
    inner = keras.layers.UpSampling2D(size=(1200, 1200))(inner_input)
    inner = keras.layers.MaxPooling2D(pool_size=(1200, 1200))(inner)
    inner_model = keras.Model(inner_input, inner, name="inner")
    X = keras.Input((4, 4, 3))
    nested = keras.Model(X, inner_model(X))
    unknown_input = keras.Input((None, None, 3))
    Y = keras.layers.UpSampling2D(size=(1200, 1200))(unknown_input)
    Y = keras.layers.MaxPooling2D(pool_size=(1200, 1200))(Y)
    unknown = keras.Model(unknown_input, Y)
    return {"nested": keras.saving.serialize_keras_object(nested),
            "unknown dimensions": keras.saving.serialize_keras_object(unknown)}


@pytest.mark.parametrize("kind", ["nested", "unknown dimensions"])
def test_activation_bound_holds_for_nested_models_and_unknown_dimensions(kind):
    from resnet_course.grading import judge

    config = _upsampling_configs()[kind]
    assert judge.validate(config) is None  # only allow-listed classes: the size bound is the only guard
    with pytest.raises(judge.Refused, match="too large"):
        judge.load(config)


def test_eager_only_artefacts_are_bounded_like_the_symbolic_one():
    import keras

    import resnet_checks
    from resnet_course.course import reference
    from resnet_course.grading import judge, submission

    material = submission.load_material()
    exercise = next(e for e in judge.exercises(material) if e.function == "identity_block")
    symbolic = {judge._key("identity_block", list(case["input"]["shape"][1:]), dict(case["args"]), False,
                           case["expected"]["outputs"][0]["initializer"]) for case in exercise.public_cases}
    artefacts = {}
    for key, call in judge.calls(exercise, exercise.public_cases).items():
        X = keras.Input(tuple(call["input_shape"]))
        if key in symbolic:  # the call whose layers the check inspects: a correct block
            Y = reference.identity_block(X, **call["args"], training=call["training"],
                                         initializer=resnet_checks.fixed_initializer(call["initializer"]))
        else:  # the calls whose outputs only are compared: 4x4 upsampled x1000 inside a nested model
            inner_input = keras.Input(tuple(call["input_shape"]))
            inner = keras.layers.UpSampling2D(size=(1000, 1000))(inner_input)
            inner = keras.layers.MaxPooling2D(pool_size=(1000, 1000))(inner)
            Y = keras.Model(inner_input, inner)(X)
        artefacts[key] = {"outcome": "model", "model": keras.saving.serialize_keras_object(keras.Model(X, Y))}
    message = judge.judge(exercise, exercise.public_cases, artefacts)
    assert "too large" in message


def test_the_sandbox_has_no_writable_space_beyond_its_bounded_tmpfs():
    """/dev is a tmpfs bwrap makes: read-only but for /dev/shm, which is bounded like /tmp."""
    from resnet_course.grading import sandbox

    writer = ("import os\nwritten = 0\ntry:\n    with open('/dev/shm/filler', 'wb') as out:\n"
              "        for _ in range(64):\n            out.write(b'x' * 2**20); out.flush(); written += 2**20\n"
              "except OSError:\n    pass\nprint(written)\n")
    workdir = sandbox.new_scratch_folder()
    try:
        with sandbox.Sandbox(workdir, [sys.executable, "-E", "-s", "-B", "-c", writer], 2**30, 64,
                             disk_bytes=16 * 2**20) as box:
            out, err = box.process.communicate(timeout=120)
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    assert int(out.decode().split()[-1]) <= 16 * 2**20, err.decode()[-2000:]
