"""What a learner sees while and after training (display_utils.py, a copy of
resnet_course/learner/display.py): progress lines with the time left, a clean stop on an interrupt, the
model one row per stage; and train.py's per-epoch time left."""
import os
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from display_utils import TrainingProgress, duration, fit_with_progress, stage_rows, summary_by_stage
from resnet_course.course import reference
from resnet_course.paths import DATASETS_DIR as SIGNS_DIR, ROOT

DURATION = r"(?:\d+ s|\d+\.\d min|\d+ h \d\d min)"  # what duration() writes
EPOCH_LINE = re.compile(rf"epoch (\d+)/(\d+): loss \d+\.\d{{4}}, accuracy [01]\.\d{{4}} "
                        rf"\({DURATION}, (?:(?:less than|about) .+ left|.+ in all)\)")


def _tiny_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    return model


def _tiny_data(n=64):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype("float32")
    Y = np.eye(2, dtype="float32")[(X[:, 0] > 0).astype(int)]
    return X, Y


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (45, "45 s"), (89.6, "90 s"), (90, "1.5 min"),
                                           (3599, "60.0 min"), (3600, "1 h 00 min"), (7190, "2 h 00 min")])
def test_duration_reads_like_a_person_would_say_it(seconds, text):
    assert duration(seconds) == text


def test_fit_with_progress_prints_the_plan_steps_of_the_first_epoch_then_one_line_per_epoch(capsys):
    X, Y = _tiny_data()
    history = fit_with_progress(_tiny_model(), _dataset(X, Y), epochs=3, steps_per_epoch=8, every=3)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("Training 3 epochs of 8 steps. The first epoch also builds the graph "
                        "(TensorFlow compiles the model): it takes longer.")
    # steps 1, 3, 6 of the first epoch only (step 8 ends the epoch: its line says the rest)
    assert [re.sub(DURATION + "$", "N s", line) for line in lines[1:4]] == [
        "  step 1/8: N s", "  step 3/8: N s", "  step 6/8: N s"]
    epochs = [EPOCH_LINE.fullmatch(line) for line in lines[4:]]
    assert all(epochs) and [m.group(1) for m in epochs] == ["1", "2", "3"], lines[4:]
    assert "less than" in lines[4] and "about" in lines[5] and lines[6].endswith("in all)")
    assert len(history.history["loss"]) == 3


def test_time_left_is_estimated_from_the_epochs_after_the_first(monkeypatch):
    clock = iter([0.0, 80.0, 80.0, 90.0, 90.0, 110.0])  # epochs of 80, 10 and 20 seconds
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    lines = []
    progress = TrainingProgress(epochs=5, steps_per_epoch=4, every=0, log=lines.append)
    progress.on_train_begin()
    for epoch in range(3):
        progress.on_epoch_begin(epoch)
        progress.on_epoch_end(epoch, {"loss": 1.0, "accuracy": 0.5})
    assert lines[1].endswith("(80 s, less than 5.3 min left)")  # 4 x 80 s, the graph included
    assert lines[2].endswith("(10 s, about 30 s left)")  # 3 x 10 s
    assert lines[3].endswith("(20 s, about 30 s left)")  # 2 x mean(10, 20)


def test_a_resumed_run_says_where_it_starts_and_metrics_can_be_left_to_keras():
    lines = []
    progress = TrainingProgress(epochs=5, steps_per_epoch=4, every=0, metrics=False, log=lines.append,
                                initial_epoch=3)
    progress.on_train_begin()
    progress.on_epoch_begin(3)
    progress.on_epoch_end(3, {"loss": 1.0})
    assert lines[0].startswith("Training 2 epochs of 4 steps (from epoch 4).")
    assert re.fullmatch(rf"epoch 4/5 \({DURATION}, less than {DURATION} left\)", lines[1]), lines[1]


def _dataset(X, Y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((X, Y)).repeat().batch(8)


INTERRUPTED_SCRIPT = """
import sys, time
import keras, numpy as np, tensorflow as tf
from display_utils import fit_with_progress

class Slow(keras.callbacks.Callback):  # steps slow enough to interrupt during training
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.05)

X = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
Y = np.eye(2, dtype="float32")[(X[:, 0] > 0).astype(int)]
inputs = keras.Input((4,))
model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
data = tf.data.Dataset.from_tensor_slices((X, Y)).repeat().batch(8)
history = fit_with_progress(model, data, epochs=1000, steps_per_epoch=8, callbacks=[Slow()])
sys.stdout.flush()
print("after:", len(history.history["loss"]), "epochs in the history;",
      "accuracy", model.evaluate(X, Y, verbose=0)[1], flush=True)
"""


def test_an_interrupt_stops_training_in_one_line_and_leaves_a_usable_model(tmp_path):
    # Kernel -> Interrupt sends SIGINT to the kernel's process: the same here, from outside.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-c", INTERRUPTED_SCRIPT], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("epoch 2/1000"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=300)
    lines += out.splitlines()
    assert process.returncode == 0, err[-2000:]
    stopped = [line for line in lines if line.startswith("Training stopped")]
    assert len(stopped) == 1, lines
    assert re.match(r"Training stopped after epoch (\d+) of 1000 \(interrupted\)\.", stopped[0])
    finished = int(re.search(r"after epoch (\d+)", stopped[0]).group(1))
    after = re.fullmatch(r"after: (\d+) epochs in the history; accuracy ([0-9.]+)", lines[-1])
    assert after and int(after.group(1)) == finished >= 2, lines[-3:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]


def test_summary_by_stage_shows_resnet50_in_six_rows_and_its_total(capsys):
    model = reference.ResNet50(input_shape=(64, 64, 3), classes=6)
    rows = stage_rows(model)
    summary_by_stage(model)
    printed = capsys.readouterr().out.splitlines()
    assert [row["stage"] for row in rows] == ["stage 1", "stage 2", "stage 3", "stage 4", "stage 5", "head"]
    assert [row["output_shape"] for row in rows] == [(15, 15, 64), (15, 15, 256), (8, 8, 512), (4, 4, 1024),
                                                     (2, 2, 2048), (6,)]
    assert [row["layers"] for row in rows[1:5]] == [
        "1 convolutional block + 2 identity blocks", "1 convolutional block + 3 identity blocks",
        "1 convolutional block + 5 identity blocks", "1 convolutional block + 2 identity blocks"]
    assert rows[0]["layers"] == "ZeroPadding, Conv, BatchNorm, ReLU, MaxPooling"
    assert rows[-1]["layers"] == "AveragePooling, Flatten, Dense"
    assert sum(row["parameters"] for row in rows) == model.count_params() == 23_600_006
    assert len(printed) == 8 and printed[-1].split()[-1] == "23,600,006"
    assert "model.summary()" in printed[-1]


def test_summary_by_stage_of_a_model_without_blocks_is_one_row(capsys):
    rows = stage_rows(_tiny_model())
    assert [(row["stage"], row["output_shape"], row["parameters"]) for row in rows] == [
        ("all layers", (2,), 58)]


@pytest.mark.skipif(not (SIGNS_DIR / "train_signs.h5").is_file(), reason="make data")
def test_train_py_prints_each_epoch_s_seconds_and_the_time_left(tmp_path, capsys):
    import train

    argv = ["--dataset", "signs", "--model", "resnet20", "--epochs", "2", "--train-size", "48",
            "--test-size", "12", "--steps-per-epoch", "2", "--batch-size", "16", "--out", str(tmp_path / "r")]
    assert train.main(argv) == 0
    out = capsys.readouterr().out
    assert "Training 2 epochs of 2 steps. The first epoch also builds the graph" in out
    assert re.search(rf"^epoch 1/2 \({DURATION}, less than {DURATION} left\)$", out, re.MULTILINE), out
    assert re.search(rf"^epoch 2/2 \({DURATION}, {DURATION} in all\)$", out, re.MULTILINE), out


def test_under_nbgrader_fit_with_progress_makes_a_token_run(monkeypatch, capsys):
    # Plain `nbgrader autograde` runs the whole notebook; grading needs the functions, not the training.
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    X, Y = _tiny_data()
    history = fit_with_progress(_tiny_model(), _dataset(X, Y), epochs=22, steps_per_epoch=33)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "nbgrader is running this notebook: a token run of 1 epoch of 2 steps."
    assert lines[1].startswith("Training 1 epoch of 2 steps.") and len(history.history["loss"]) == 1
