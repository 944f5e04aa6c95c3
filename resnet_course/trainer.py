"""Train a ResNet of resnet_course.models on a data set, with checkpoints, metrics and plots.

``run(options, command, resume, overwrite)`` does what train.py promises:

1. load the data (``resnet_course.datasets``) and build the model, or reload both model
   and optimizer state from the run's last checkpoint (``--resume``);
2. ``model.fit`` on ONE repeated tf.data pipeline (``resnets_utils.make_train_dataset``,
   plus pad-crop-flip for CIFAR) with ``steps_per_epoch``, Keras progress bars, and after
   every epoch a checkpoint (model + optimizer state, epoch, history) written atomically;
3. recalibrate the BatchNorm statistics on augmented training images
   (``resnets_utils.recalibrate_batchnorm``), evaluate
   on the test split and write, into the run folder: ``model.keras`` (input scaling
   inside: it takes raw 0-255 images), ``metrics.json``, ``curves.png``,
   ``confusion_matrix.png`` and ``inference.png``.

metrics.json holds: ``command`` and ``config`` (every setting, defaults filled in),
``dataset`` (sizes, class names, what the per-epoch validation used), ``model`` (name,
parameters), ``history`` (per epoch: loss, accuracy, val_loss, val_accuracy, lr, seconds,
train_seconds, images_per_second), ``test`` (accuracy, cross-entropy loss, per-class
precision/recall/F1/support, confusion matrix, and the accuracy before the BatchNorm
recalibration), ``wall_seconds`` (this invocation), ``train_seconds``,
``train_images_per_second`` (also without epoch 1, which traces the graphs) and
``machine`` (CPU, cores, python/TF/Keras/numpy versions).  The checkpoint stays after the
run, so ``--resume --epochs N`` can extend it.

Errors the user can fix raise TrainError (one line, no traceback in the CLI).
"""
import contextlib
import dataclasses
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import resnets_utils
from resnet_course import datasets, inference, models, reporting
from resnet_course.atomic import atomic_output, write_json
from resnet_course.augmentation import with_pad_crop_flip
from resnet_course.fused import FUSED_OPTIMIZERS, portable_model
from resnet_course.machine import has_native_bfloat16, machine_info
from resnet_course.recipes import DEFAULT_DATASET, OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES
from resnet_course.sampling import stratified_indices

SGD_MOMENTUM = 0.9
ONECYCLE_START_DIVISOR = 25      # one-cycle starts at lr / 25 ...
ONECYCLE_RISE_FRACTION = 0.3     # ... reaches lr after 30% of the steps ...
ONECYCLE_FINAL_FRACTION = 4e-6   # ... and anneals to lr * 4e-6 (fastai's defaults)
STEP_DROPS = (0.5, 0.75)         # "step": lr / 10 at 50% and 75% of training (He et al.)
# BatchNorm statistics over 10,000 images are as good as over 50,000 (their standard error
# is already ~1% of a standard deviation) and take a fifth of the time.
RECALIBRATION_IMAGES = 10_000

CHECKPOINT_STATE = "checkpoint.json"
CHECKPOINT_PATTERN = "checkpoint-epoch{epoch:04d}.keras"
RUN_FILES = ("model.keras", "metrics.json", "curves.png", "confusion_matrix.png",
             "inference.png", CHECKPOINT_STATE)


class TrainError(ValueError):
    """A problem the user can fix (bad option, missing data, damaged checkpoint, ...)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in the checkpoint and in metrics.json."""
    dataset: str
    model: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    schedule: str
    warmup_epochs: int
    weight_decay: float | None    # None: the model's own default (models.build_model)
    augment: bool
    train_size: int | None
    test_size: int | None
    val_split: float              # 0: the per-epoch validation is the test split
    seed: int
    steps_per_epoch: int | None   # None: one pass over the training images
    out: str
    precision: str = "float32"    # a key of PRECISIONS (default for checkpoints before it)
    cutout: int = 0               # side of the square cutout zeroes (CIFAR-10), 0: none
    label_smoothing: float = 0.0  # weight of the uniform distribution in the targets

    def to_dict(self):
        return dataclasses.asdict(self)


# Options a resumed run may change; all others must match the checkpoint.
RESUMABLE_CHANGES = ("epochs", "out")


def resolve_config(options):
    """A TrainConfig from CLI options, where None means "the data set's recipe default"."""
    dataset = options.get("dataset") or DEFAULT_DATASET
    try:
        family = datasets.family_of(dataset)
    except datasets.DATA_ERRORS as err:
        raise TrainError(str(err)) from None
    recipe = RECIPES[family]

    def default(field):  # the recipe's value, else TrainConfig's own default, else None
        return recipe.get(field.name, None if field.default is dataclasses.MISSING
                          else field.default)

    values = {f.name: default(f) if options.get(f.name) is None else options[f.name]
              for f in dataclasses.fields(TrainConfig)}
    values["dataset"] = dataset
    if values["out"] is None:
        values["out"] = str(Path("runs") / f"{Path(dataset).stem}-{values['model']}")
    config = TrainConfig(**values)
    check_config(config)
    return config


def check_config(config):
    try:
        models.describe(config.model)
    except ValueError as err:
        raise TrainError(str(err)) from None
    for key in ("epochs", "batch_size", "warmup_epochs", "train_size", "test_size",
                "steps_per_epoch"):
        value = getattr(config, key)
        minimum = 0 if key == "warmup_epochs" else 1
        if value is not None and value < minimum:
            raise TrainError(f"--{key.replace('_', '-')} must be at least {minimum}, got {value}.")
    if not config.lr > 0:
        raise TrainError(f"--lr must be positive, got {config.lr}.")
    if config.weight_decay is not None and config.weight_decay < 0:
        raise TrainError(f"--weight-decay must be >= 0, got {config.weight_decay}.")
    if not 0 <= config.val_split < 1:
        raise TrainError(f"--val-split must be a fraction in [0, 1), got {config.val_split}.")
    if config.schedule not in SCHEDULES or config.optimizer not in OPTIMIZERS:
        raise TrainError(f"unknown schedule {config.schedule!r} or optimizer {config.optimizer!r}.")
    if config.cutout < 0:
        raise TrainError(f"--cutout must be >= 0 pixels, got {config.cutout}.")
    if config.cutout and not (config.augment and datasets.family_of(config.dataset) == "cifar10"):
        raise TrainError("--cutout is part of the CIFAR-10 augmentation: it needs a CIFAR-10 "
                         "data set and --augment.")
    if not 0 <= config.label_smoothing < 1:
        raise TrainError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}.")
    if config.precision not in PRECISIONS:
        raise TrainError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {config.precision!r}.")


# ---- learning rate -----------------------------------------------------------------------

def make_schedule(config, steps_per_epoch):
    """The learning rate (a float or a built-in Keras schedule, so checkpoints reload)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        first = max(1, int(total * STEP_DROPS[0]))
        second = max(first + 1, int(total * STEP_DROPS[1]))
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [first, second], [config.lr, config.lr / 10, config.lr / 100])
    if config.schedule == "onecycle":
        rise = max(1, round(total * ONECYCLE_RISE_FRACTION))
        return keras.optimizers.schedules.CosineDecay(
            config.lr / ONECYCLE_START_DIVISOR, decay_steps=max(1, total - rise),
            alpha=ONECYCLE_FINAL_FRACTION, warmup_target=config.lr, warmup_steps=rise)
    # cosine: linear warm-up, then cosine decay to 0; at least one epoch of decay
    warmup = min(config.warmup_epochs, config.epochs - 1)
    return resnets_utils.cosine_schedule(config.epochs, steps_per_epoch, config.lr, warmup)


def make_optimizer(config, learning_rate):
    """Keras's SGD (momentum 0.9) or Adam, updated by one fused kernel per variable."""
    if config.optimizer == "sgd":
        return FUSED_OPTIMIZERS["sgd"](learning_rate, momentum=SGD_MOMENTUM)
    return FUSED_OPTIMIZERS["adam"](learning_rate)


def current_learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


# ---- data --------------------------------------------------------------------------------

@dataclass
class Splits:
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    validation: str  # what X_val is, for metrics.json


def split_validation(data, config):
    """Hold out a stratified fraction of the training images, or validate on the test split."""
    if not config.val_split:
        return Splits(data.X_train, data.y_train, data.X_test, data.y_test, "the test split")
    size = round(len(data.y_train) * config.val_split)
    if not 1 <= size < len(data.y_train):
        raise TrainError(f"--val-split {config.val_split} of {len(data.y_train)} training "
                         f"images leaves no validation or no training image.")
    held_out = stratified_indices(data.y_train, size, config.seed)
    keep = np.setdiff1d(np.arange(len(data.y_train)), held_out)
    return Splits(data.X_train[keep], data.y_train[keep], data.X_train[held_out],
                  data.y_train[held_out], f"{size} training images held out (stratified)")


def one_hot(y, num_classes):
    return np.eye(num_classes, dtype="float32")[y]


def train_pipeline(X, y, num_classes, config, family, seed):
    """One repeated, shuffled, batched (and augmented) tf.data pipeline for every epoch."""
    signs_augmentation = config.augment and family == "signs"
    dataset = resnets_utils.make_train_dataset(X, one_hot(y, num_classes), config.batch_size,
                                               augment=signs_augmentation, seed=seed)
    if config.augment and family == "cifar10":
        dataset = with_pad_crop_flip(dataset, seed=seed,
                                     cutout=config.cutout).prefetch(tf.data.AUTOTUNE)
    return dataset


def eval_pipeline(X, y, num_classes, batch_size):
    """Batches of (X / 255, one-hot y), scaled batch by batch."""
    return (tf.data.Dataset.from_tensor_slices((X, one_hot(y, num_classes)))
            .batch(batch_size)
            .map(lambda x, t: (tf.cast(x, tf.float32) / 255.0, t))
            .prefetch(tf.data.AUTOTUNE))


# ---- checkpoints -------------------------------------------------------------------------

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


def merge_resumed_config(stored, options):
    """The stored config, with the options the user gave that a resumed run may change;
    TrainError when another given option contradicts the checkpoint."""
    stored = TrainConfig(**stored)
    changes = {}
    for key, value in options.items():
        if value is None or key not in stored.to_dict() or value == getattr(stored, key):
            continue
        if key not in RESUMABLE_CHANGES:
            raise TrainError(f"--{key.replace('_', '-')} {value} differs from the checkpoint's "
                             f"{getattr(stored, key)}; a resumed run keeps its settings (only "
                             f"--epochs may change).")
        changes[key] = value
    config = dataclasses.replace(stored, **changes)
    check_config(config)
    return config


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


# ---- the run -----------------------------------------------------------------------------

def load_data(config):
    try:
        return datasets.load(config.dataset, train_size=config.train_size,
                             test_size=config.test_size, seed=config.seed)
    except datasets.DATA_ERRORS as err:
        raise TrainError(str(err)) from None


# Speed without changing the math (bench/train_speed.md): no conv biases (the BatchNorm
# after every conv cancels them), BatchNorm in one fused kernel, 1x1 convolutions as one
# matrix product each.
MODEL_SPEEDUPS = {"conv_bias": False, "fused_batchnorm": True, "matmul_pointwise": True}


def build(config, data, steps_per_epoch, speedups=None):
    """The compiled model of ``config``; ``speedups``: build_model's options (None:
    MODEL_SPEEDUPS; the benchmarks pass others to measure each one)."""
    try:
        model = models.build_model(config.model, data.input_shape, data.num_classes,
                                   weight_decay=config.weight_decay, seed=config.seed,
                                   **(MODEL_SPEEDUPS if speedups is None else speedups))
    except ValueError as err:
        raise TrainError(f"--model {config.model}: {err}") from None
    # Moving statistics that keep up with the weights (bench/signs_recipe.md: 0.99 lags).
    resnets_utils.set_batchnorm_momentum(model, 0.9)
    model.compile(optimizer=make_optimizer(config, make_schedule(config, steps_per_epoch)),
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    return model


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


def run(options, command=None, resume=False, overwrite=False, log=print):
    """Train as the options say (dict of TrainConfig fields, None = default); returns the
    metrics dict also written to OUT/metrics.json."""
    wall_start = time.perf_counter()
    if options.get("out") is None:
        options = {**options, "out": resolve_config(options).out}
    out = Path(options["out"])
    if resume:
        state, model_path = read_checkpoint(out)
        config = merge_resumed_config(state["config"], options)
        start_epoch, history = int(state["epoch"]), state["history"]
    else:
        config = resolve_config(options)
        check_out_is_free(out, overwrite)
        start_epoch, history = 0, {}
    if config.precision == "bfloat16" and has_native_bfloat16() is False:
        log("note: this CPU has neither AVX512_BF16 nor AMX, so bfloat16 is emulated and "
            "likely slower than --precision float32")
    with dtype_policy(PRECISIONS[config.precision]):
        metrics = _train_and_report(config, out, start_epoch, history, resume,
                                    model_path if resume else None, command, log)
    metrics["wall_seconds"] = time.perf_counter() - wall_start
    write_json(out / "metrics.json", metrics)
    log(f"test accuracy {metrics['test']['accuracy']:.4f}, loss {metrics['test']['loss']:.4f}; "
        f"results in {out}/")
    return metrics


@contextlib.contextmanager
def dtype_policy(name):
    """Keras's global dtype policy set to ``name`` for the block, then restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _train_and_report(config, out, start_epoch, history, resume, model_path, command, log):
    data = load_data(config)
    family = datasets.family_of(config.dataset)
    splits = split_validation(data, config)
    steps_per_epoch = config.steps_per_epoch or max(1, len(splits.y_train) // config.batch_size)
    # A resumed run draws new batches and augmentations instead of replaying epoch 1's.
    seed = config.seed + start_epoch
    keras.utils.set_random_seed(seed)

    if resume:
        model = restore(model_path, config, steps_per_epoch)
        if inference.input_shape(model) != data.input_shape:
            raise TrainError(f"{model_path}: the checkpoint's model takes "
                             f"{inference.input_shape(model)} images, the data has "
                             f"{data.input_shape}.")
        log(f"resuming {out} after epoch {start_epoch} of {config.epochs}")
    else:
        model = build(config, data, steps_per_epoch)
        out.mkdir(parents=True, exist_ok=True)
    log(f"{config.model} ({model.count_params():,} parameters) on {data.name}: "
        f"{len(splits.y_train)} training images, validation on {splits.validation}, "
        f"{steps_per_epoch} steps of {config.batch_size} per epoch")

    recorder = EpochRecorder(out, config, history, steps_per_epoch * config.batch_size)
    if start_epoch < config.epochs:
        model.fit(train_pipeline(splits.X_train, splits.y_train, data.num_classes, config,
                                 family, seed),
                  epochs=config.epochs, initial_epoch=start_epoch,
                  steps_per_epoch=steps_per_epoch,
                  validation_data=eval_pipeline(splits.X_val, splits.y_val, data.num_classes,
                                                config.batch_size),
                  callbacks=[recorder], shuffle=False, verbose=1)  # the pipeline shuffles
    else:
        log(f"the checkpoint already has {start_epoch} epochs; raise --epochs to train more")

    test = finish(model, data, splits, config, history, out, log)
    metrics = _run_facts(command, config, data, splits, model, history, start_epoch, resume,
                         steps_per_epoch)
    metrics["test"] = test
    return metrics


def recalibration_images(splits, num_classes, config):
    """Up to RECALIBRATION_IMAGES training images as the training pipeline feeds them
    (scaled to 0-1 and augmented). BatchNorm's statistics must describe the inputs the
    weights were trained on: on CIFAR-10, statistics of un-augmented images cost 2 points
    of test accuracy (84.3 % -> 82.2 % in runs/cifar10-resnet20-10min), augmented ones
    keep it (84.3 %), as Wu & Johnson, "Rethinking 'Batch' in BatchNorm" (2021) advise."""
    X, y = splits.X_train, splits.y_train
    if len(X) > RECALIBRATION_IMAGES:
        keep = stratified_indices(y, RECALIBRATION_IMAGES, config.seed)
        X, y = X[keep], y[keep]
    if not config.augment:
        return X
    pipeline = train_pipeline(X, y, num_classes, config, datasets.family_of(config.dataset),
                              seed=config.seed + 1)
    batches = [images for images, _ in pipeline.take(-(-len(X) // config.batch_size))]
    return np.concatenate(batches)[:len(X)] * 255.0  # recalibrated through the 0-255 model


def finish(model, data, splits, config, history, out, log):
    """BatchNorm recalibration, the test evaluation, the plots and model.keras.

    The test figures are those of the saved file: model.keras is the trained model in
    plain Keras float32 layers (resnet_course.fused.portable_model)."""
    scaled = resnets_utils.with_input_scaling(model)
    before = reporting.summarize(
        inference.predict_probabilities(scaled, data.X_test, config.batch_size, True),
        data.y_test, data.class_names)
    X_recalibration = recalibration_images(splits, data.num_classes, config)
    log(f"recalibrating the BatchNorm statistics on {len(X_recalibration)} training images"
        f"{', augmented as in training' if config.augment else ''} ...")
    resnets_utils.recalibrate_batchnorm(scaled, X_recalibration, config.batch_size,
                                        seed=config.seed)
    exported = portable_model(scaled)
    probabilities = inference.predict_probabilities(exported, data.X_test, config.batch_size, True)
    test = reporting.summarize(probabilities, data.y_test, data.class_names)
    test["accuracy_before_bn_recalibration"] = before["accuracy"]
    log(reporting.format_summary(test))

    with atomic_output(out / "model.keras") as tmp:
        exported.save(tmp)
    curves = {k: v for k, v in history.items()
              if k in ("loss", "accuracy", "val_loss", "val_accuracy")}
    if curves:
        reporting.save_figure(resnets_utils.plot_history(curves), out / "curves.png")
    reporting.save_figure(reporting.rotate_long_tick_labels(resnets_utils.plot_confusion_matrix(
        data.y_test, probabilities.argmax(axis=1), list(data.class_names))),
        out / "confusion_matrix.png")
    reporting.save_figure(reporting.plot_predictions(
        data.X_test, data.y_test, probabilities, data.class_names, seed=config.seed),
        out / "inference.png")
    return test


def _run_facts(command, config, data, splits, model, history, start_epoch, resumed,
               steps_per_epoch):
    per_epoch = history.get("train_seconds", [])
    train_seconds = float(sum(per_epoch))
    images_per_epoch = steps_per_epoch * config.batch_size
    # the first epoch also traces the graphs: a speed figure without it, when there is one
    steady = (images_per_epoch * (len(per_epoch) - 1) / sum(per_epoch[1:])
              if len(per_epoch) > 1 and sum(per_epoch[1:]) > 0 else None)
    return {
        "command": command if isinstance(command, str) else shlex.join(command or []),
        "config": config.to_dict(),
        "dataset": {"name": data.name, "train_images": int(len(splits.y_train)),
                    "validation": splits.validation, "validation_images": int(len(splits.y_val)),
                    "test_images": int(len(data.y_test)), "class_names": list(data.class_names),
                    "input_shape": list(data.input_shape)},
        "model": {"name": config.model, "parameters": int(model.count_params()),
                  "description": " ".join(models.describe(config.model).split()),
                  "file": "model.keras (takes raw 0-255 images)"},
        "history": history,
        "epochs_completed": len(history.get("loss", [])),
        "resumed_from_epoch": start_epoch if resumed else None,
        "train_seconds": train_seconds,
        "train_images_per_second": (images_per_epoch * len(per_epoch) / train_seconds
                                    if train_seconds else None),
        "train_images_per_second_after_epoch_1": steady,
        "machine": machine_info(),
    }
