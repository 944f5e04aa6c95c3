"""The judge is bounded like the producer (issue 27, item 3; item 7's Constant rule).

An `identity_block` that returns a lattice of 83 `Add` layers (each Add takes the two before it)
passes every size bound, but the checks' old graph walk (`resnet_checks.LayerGraph.trace`) did about
2.4x more work per level: the judge never finished, the batch hung. The attacks here are written as
the student would write them; each test has a short timeout (pytest-timeout) so that the old code
fails it instead of hanging the suite. The checks' walk is now linear in the graph's size and capped
in layer calls; the judging of each submission runs in a forked child of a judge host process under a
wall-clock and memory limit (resnet_course/grading/bounded.py), whose overrun is the student's reason
("the checks could not finish on your model: ..."), or only the fixed "Failed the hidden tests."
when it happens in the hidden phase.
"""
import json
import time

import pytest

from resnet_course.course import reference
from resnet_course.grading import bounded, judge, producer, submission
from tests.grading_cases_judge import HIDDEN_LATTICE_SOURCE, LEVELS

REFERENCE = {"identity_block": reference.identity_block, "convolutional_block": reference.convolutional_block,
             "ResNet50": reference.ResNet50}

def lattice_block(X, f, filters, training=True, initializer=None):
    from keras.layers import Activation, Add

    a, b = X, X
    for _ in range(LEVELS):
        a, b = b, Add()([a, b])
    return Activation("relu")(b)


def hidden_lattice_block(X, f, filters, training=True, initializer=None):
    if X.shape[-1] != 5:
        return reference.identity_block(X, f, filters, training=training, initializer=initializer)
    return lattice_block(X, f, filters, training, initializer)


@pytest.fixture(scope="module")
def exercises():
    return {exercise.function: exercise for exercise in judge.exercises(submission.load_material())}


def artefacts(exercise, function, cases):
    namespace = {**REFERENCE, exercise.function: function}
    return {key: json.loads(json.dumps(producer.produce(call, namespace)))
            for key, call in judge.calls(exercise, cases).items()}


@pytest.mark.timeout(60)
def test_the_checks_walk_a_lattice_in_linear_time():
    import keras

    import resnet_checks

    X = keras.Input((4, 4, 3))
    graph = resnet_checks.LayerGraph(keras.Model(X, lattice_block(X, 2, [4, 4, 3])))
    started = time.monotonic()
    steps = graph.trace()
    assert time.monotonic() - started < 5
    assert sum(step.branches is not None for step in steps) >= LEVELS // 2  # the merges the block check counts


@pytest.mark.timeout(120)
def test_the_lattice_block_fails_its_check_with_a_reason_in_the_notebook_and_in_the_judge(exercises):
    import resnet_checks

    exercise = exercises["identity_block"]
    with pytest.raises(resnet_checks.CheckFailed, match="merge layers"):
        resnet_checks.check_identity_block(lattice_block, exercise.public_cases[0])
    message = judge.judge(exercise, exercise.public_cases, artefacts(exercise, lattice_block, exercise.public_cases))
    assert "merge layers (Add); a block has exactly one" in message


@pytest.mark.timeout(60)
def test_a_block_over_the_layer_cap_gets_a_check_message():
    import keras
    from keras.layers import Activation, Add

    import resnet_checks

    X = keras.Input((4, 4, 3))  # wide, not deep: Keras itself cannot make a Model of a chain of 2,000 layers
    model = keras.Model(X, Add()([Activation("linear")(X) for _ in range(resnet_checks.MAX_LAYER_CALLS)]))
    with pytest.raises(resnet_checks.CheckFailed, match=f"more than the {resnet_checks.MAX_LAYER_CALLS:,} layer calls"):
        resnet_checks.resnet50_items(model, "ResNet50()")


@pytest.mark.timeout(120)
def test_the_hidden_only_lattice_fails_its_hidden_check_quickly(exercises):
    exercise = exercises["identity_block"]
    public = artefacts(exercise, hidden_lattice_block, exercise.public_cases)
    assert judge.judge(exercise, exercise.public_cases, public) is None
    hidden = artefacts(exercise, hidden_lattice_block, exercise.hidden_cases)
    assert judge.judge(exercise, exercise.hidden_cases, hidden) is not None


# ---------------------------------------------------------------------------------------------
# The bounded judge: a forked child of the judge host, under a wall clock and a memory limit
# ---------------------------------------------------------------------------------------------

def spinner(item, mark):
    """A stand-in judging step for the host (imported there by name): marks its phase, then computes
    for `seconds` of CPU time."""
    seconds, phase = item
    if phase:
        mark(phase)
    started = time.process_time()
    while time.process_time() - started < seconds:
        pass
    return f"spun {seconds}"


def sleeper(item, mark):
    time.sleep(item)
    return "slept"


def allocator(item, mark):
    blocks = []
    for _ in range(item):
        blocks.append(bytearray(64 * 2**20))
        blocks[-1][::4096] = b"x" * len(blocks[-1][::4096])  # touch every page
    return len(blocks)


def raiser(item, mark):
    raise ValueError("the check machinery itself is broken")


def dier(item, mark):
    import os

    os._exit(3)


def by_name(function):
    return f"{__name__}:{function.__name__}"


@pytest.mark.timeout(300)
def test_an_overrun_is_reported_per_item_and_the_next_items_are_judged():
    started = time.monotonic()
    outcomes = bounded.run(by_name(spinner), [(0, None), (600, "hidden"), (0, None)], seconds=3,
                           memory_bytes=2**30)
    assert time.monotonic() - started < 150  # not the 600 s the second item asked for
    assert outcomes[0] == bounded.Outcome("spun 0")
    assert outcomes[1].overrun == "time" and outcomes[1].phase == "hidden"
    assert outcomes[2] == bounded.Outcome("spun 0")


@pytest.mark.timeout(300)
def test_a_memory_overrun_is_reported_as_such():
    outcomes = bounded.run(by_name(allocator), [2, 40], seconds=120, memory_bytes=512 * 2**20)
    assert outcomes[0] == bounded.Outcome(2)
    assert outcomes[1].overrun == "memory" and outcomes[1].phase is None


@pytest.mark.timeout(300)
@pytest.mark.parametrize("function, text", [(raiser, "ValueError: the check machinery itself is broken"),
                                            (dier, "exit code 3"), (sleeper, "no result for 5 s")])
def test_a_judge_that_fails_by_itself_is_a_fault_not_an_overrun(function, text):
    """Also a judge that waits without computing (stuck, or starved by the machine's load): its wall
    clock ends it, as the machine's fault, not the student's."""
    with pytest.raises(bounded.JudgeFault, match=text):
        bounded.run(by_name(function), [600], seconds=60, memory_bytes=2**30, wall_seconds=5)


@pytest.mark.timeout(300)
def test_an_overrun_is_the_students_reason_or_only_a_failed_hidden_check(exercises):
    exercise = exercises["identity_block"]
    public = artefacts(exercise, reference.identity_block, exercise.public_cases)
    hidden = artefacts(exercise, reference.identity_block, exercise.hidden_cases)
    verdicts = judge.bounded_verdicts([exercise], public, hidden, seconds=60, memory_bytes=2**30)
    assert verdicts[exercise.grade_id] == judge.Verdict(None, None)
    # Judging the reference takes well over 10 ms: the public phase overruns and says so
    verdicts = judge.bounded_verdicts([exercise], public, hidden, seconds=0.01, memory_bytes=2**30)
    message = verdicts[exercise.grade_id].public
    assert message.startswith("the checks could not finish on your model: ") and "0.01 s of CPU time" in message
    # An overrun after the hidden phase began says nothing more than a failed hidden check
    outcome = bounded.Outcome(None, overrun="time", phase="hidden")
    assert judge.verdict_of(outcome, 5, 2**30) == judge.Verdict(None, judge.HIDDEN_FAILED)


@pytest.mark.timeout(600)
def test_the_hidden_only_lattice_submission_gets_only_the_failed_hidden_check():
    from tests import grading_submissions as submissions

    notebook = submissions.with_cell_source(
        "identity_block", submissions.reference_source("identity_block") + HIDDEN_LATTICE_SOURCE)
    result = submission.grade_submission("hidden-lattice", notebook, submission.load_material(),
                                         submission.Limits(cell_seconds=30, wall_seconds=300))
    messages = {cell.grade_id: cell.message for cell in result.cells}
    assert result.reason is None
    assert messages["identity_block_test"] == judge.HIDDEN_FAILED
    assert result.points == 7


# ---------------------------------------------------------------------------------------------
# Item 7: a Constant initializer carries one number, never an array of the producer's
# ---------------------------------------------------------------------------------------------

def constant_model(value):
    import keras

    X = keras.Input((4,))
    model = keras.Model(X, keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(value))(X))
    return keras.saving.serialize_keras_object(model)


def test_only_scalar_constant_initializers_are_loaded():
    assert judge.load(constant_model(0.5), (4,)).count_params() == 10
    for value in ([[1.0, 2.0]] * 4, [0.5]):
        with pytest.raises(judge.Refused, match="Constant initializer .* one number"):
            judge.load(constant_model(value), (4,))


# ---------------------------------------------------------------------------------------------
# The batch names a submission that takes longer than its limits allow
# ---------------------------------------------------------------------------------------------

def slow_stand_in(student, notebook, material, limits):
    """A grading step for the batch test: "slow" takes 20 s, longer than its (tiny) limits allow."""
    from resnet_course.grading import batch

    if student == "slow":
        time.sleep(20)
    return batch.zero_result(student, material, "graded by the stand-in")


@pytest.mark.timeout(300)
def test_the_progress_names_a_submission_slower_than_its_limits(tmp_path, monkeypatch):
    import io

    from distributed import LocalCluster

    from resnet_course import paths
    from resnet_course.grading import batch
    from tests import grading_submissions as submissions
    from tests.test_grading_batch import make_course, submit

    monkeypatch.setattr(batch, "SLOW_MARGIN_SECONDS", 0.0)
    monkeypatch.setattr(batch, "SLOW_WATCH_SECONDS", 1.0)
    monkeypatch.setattr(bounded, "WALL_MIN_SECONDS", 0.0)  # the judge's wall clock: its CPU time's, once
    monkeypatch.setattr(bounded, "WALL_FACTOR", 1.0)
    limits = submission.Limits(cell_seconds=0.1, wall_seconds=2, judge_seconds=0.5)  # at most 3.5 s each
    course = make_course(tmp_path / "course")
    for student in ("quick", "slow"):
        submit(course, student, submissions.untouched())
    stream = io.StringIO()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        records = batch.grade_folder(course / "submitted", course_dir=course, scheduler=cluster.scheduler_address,
                                     limits=limits, stream=stream, grade=slow_stand_in, check_sandbox=False,
                                     source_notebook=course / "source" / paths.ASSIGNMENT / paths.SOURCE_NOTEBOOK.name)
    assert [record["reason"] for record in records] == ["graded by the stand-in"] * 2
    named = [line for line in stream.getvalue().splitlines() if line.startswith("still grading")]
    assert len(named) == 1 and named[0].startswith("still grading 'slow' after "), stream.getvalue()
    assert named[0].endswith(", longer than its limits allow (4 s)")
