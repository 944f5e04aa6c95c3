"""A run's checkpoints: written after every epoch (model + optimizer state, epoch, history,
config), read back and restored by --resume.
"""
import json
import time
from pathlib import Path

import keras

from resnet_course.atomic import atomic_output, write_json
from resnet_course.training import inference
from resnet_course.training.schedules import current_learning_rate, make_schedule
from resnet_course.training.train_config import TrainConfig, TrainError

CHECKPOINT_STATE = "checkpoint.json"
CHECKPOINT_PATTERN = "checkpoint-epoch{epoch:04d}.keras"
RUN_FILES = ("model.keras", "metrics.json", "curves.png", "confusion_matrix.png",
             "inference.png", CHECKPOINT_STATE)


def read_checkpoint(out):
    """(state dict, path of its model file) of the run in ``out``; TrainError if unusable."""
    state_path = Path(out) / CHECKPOINT_STATE
    if not state_path.is_file():
        raise TrainError(f"{state_path}: no checkpoint to resume from; start the run "
                         f"without --resume (or give the --out of an earlier run).")
    try:
        state = json.loads(state_path.read_text())
        epoch, model_file = int(state["epoch"]), state["model_file"]
        state["config"], state["history"]  # noqa: B018  (must be present)
        TrainConfig(**state["config"])
    except (ValueError, KeyError, TypeError) as err:
        raise TrainError(f"{state_path}: damaged checkpoint state ({type(err).__name__}: "
                         f"{err}); restore it or start a new run in another --out.") from None
    model_path = Path(out) / model_file
    if not model_path.is_file():
        raise TrainError(f"{model_path}: the checkpoint's model file (epoch {epoch}) is "
                         f"missing; start a new run in another --out.")
    return state, model_path


def check_out_is_free(out, overwrite):
    """Refuse to overwrite an earlier run's files unless asked to."""
    found = [name for name in RUN_FILES if (Path(out) / name).exists()]
    if found and not overwrite:
        raise TrainError(f"{out} already holds a run ({', '.join(found)}); continue it with "
                         f"--resume, choose another --out, or pass --overwrite.")


class EpochRecorder(keras.callbacks.Callback):
    """Per epoch: times, images/s, learning rate and Keras' logs into ``history``, then a
    checkpoint (model + optimizer state, epoch, history, config) written atomically."""

    def __init__(self, out, config, history, images_per_epoch):
        super().__init__()
        self.out, self.config, self.history = Path(out), config, history
        self.images_per_epoch = images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.last_batch_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        end = time.perf_counter()
        train_seconds = self.last_batch_end - self.start
        record = {**{k: float(v) for k, v in (logs or {}).items()},
                  "lr": current_learning_rate(self.model.optimizer),
                  "seconds": end - self.start, "train_seconds": train_seconds,
                  "images_per_second": self.images_per_epoch / max(train_seconds, 1e-9)}
        for key, value in record.items():
            self.history.setdefault(key, []).append(value)
        self.save(epoch + 1)

    def save(self, epoch):
        name = CHECKPOINT_PATTERN.format(epoch=epoch)
        with atomic_output(self.out / name) as tmp:
            self.model.save(tmp)
        write_json(self.out / CHECKPOINT_STATE, {
            "epoch": epoch, "model_file": name, "history": self.history,
            "config": self.config.to_dict()})
        for old in self.out.glob(CHECKPOINT_PATTERN.replace("{epoch:04d}", "*")):
            if old.name != name:  # the state now points at the new file
                old.unlink(missing_ok=True)


def restore(model_path, config, steps_per_epoch):
    """The checkpointed model with its optimizer state; the schedule is rebuilt for the
    (possibly extended) number of epochs and continues from the saved step count."""
    try:
        model = inference.load_model_file(model_path, compile=True)
    except inference.ModelFileError as err:
        raise TrainError(f"damaged checkpoint: {err} Start a new run in another --out.") from None
    if model.optimizer is None:
        raise TrainError(f"{model_path}: the checkpoint has no optimizer state; start a new "
                         f"run in another --out.")
    model.optimizer.learning_rate = make_schedule(config, steps_per_epoch)
    return model
