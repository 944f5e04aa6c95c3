"""Train a ResNet of resnet_course.models.resnet on a data set, with checkpoints, metrics and plots.

``run(options, command, resume, overwrite)`` does what train.py promises:

1. load the data (``resnet_course.data.datasets``) and build the model, or reload both model
   and optimizer state from the run's last checkpoint (``--resume``);
2. ``model.fit`` on ONE repeated tf.data pipeline (``resnet_course.training.pipelines``) with
   ``steps_per_epoch``, Keras progress bars, and after every epoch a checkpoint
   (``resnet_course.training.checkpoints``: model + optimizer state, epoch, history) written atomically;
3. recalibrate the BatchNorm statistics on augmented training images
   (``resnet_course.learner.training.recalibrate_batchnorm``), evaluate
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

With ``distribute`` (``resnet_course.training.distribute``) the model, optimizer and metrics are
built in a tf.distribute strategy's scope (the GPUs of one machine, or several workers), the
global batch is split over the replicas and only the chief writes into the run folder.

A resumed run is the run it continues: the pipeline's batches and augmentation are functions
of (seed, step) (``pipelines``), so a run stopped after epoch k and resumed trains on what
the uninterrupted run trained on; a resume with nothing left to train writes nothing.

The config (``resnet_course.training.train_config``) is resolved once, and with it the data set's
family (which recipe and augmentation it gets). Errors the user can fix raise TrainError
(one line, no traceback in the CLI).
"""
import contextlib
import json
import shlex
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from resnet_course.atomic import atomic_output, write_json
from resnet_course.data import datasets
from resnet_course.learner.display import TrainingProgress, plot_confusion_matrix, plot_history
from resnet_course.learner.training import recalibrate_batchnorm, with_input_scaling
from resnet_course.machine import has_native_bfloat16, machine_info
from resnet_course.models import resnet
from resnet_course.models.fused import FAST_LAYERS, portable_model
from resnet_course.training import distribute as distributing
from resnet_course.training import inference, reporting
from resnet_course.training.checkpoints import (EpochRecorder, check_out_is_free, read_checkpoint,
                                                restore)
from resnet_course.training.pipelines import (eval_pipeline, recalibration_images, split_validation,
                                              train_pipeline)
from resnet_course.training.recipes import PRECISIONS
from resnet_course.training.schedules import make_optimizer, make_schedule
from resnet_course.training.train_config import TrainError, merge_resumed_config, resolve_config

# Moving statistics that keep up with the weights (bench/signs_recipe.md: Keras's 0.99 lags).
BN_MOMENTUM = 0.9


def load_data(config):
    try:
        return datasets.load(config.dataset, train_size=config.train_size,
                             test_size=config.test_size, seed=config.seed)
    except datasets.DATA_ERRORS as err:
        raise TrainError(str(err)) from None


def build(config, data, steps_per_epoch, layers=None):
    """The compiled model of ``config``; ``layers``: build_model's layer factories (None:
    fused.FAST_LAYERS; the benchmarks pass others to measure each one)."""
    try:
        model = resnet.build_model(config.model, data.input_shape, data.num_classes,
                                   weight_decay=config.weight_decay, seed=config.seed,
                                   bn_momentum=BN_MOMENTUM,
                                   **(FAST_LAYERS if layers is None else layers))
    except ValueError as err:
        raise TrainError(f"--model {config.model}: {err}") from None
    model.compile(optimizer=make_optimizer(config, make_schedule(config, steps_per_epoch)),
                  loss=keras.losses.CategoricalCrossentropy(
                      label_smoothing=config.label_smoothing),
                  metrics=["accuracy"])
    return model


def run(options, command=None, resume=False, overwrite=False, log=print, distribute=None):
    """Train as the options say (dict of TrainConfig fields, None = default); returns the
    metrics dict also written to OUT/metrics.json (on a non-chief worker: None, it writes
    nothing). ``distribute``: dict of make_distribution's arguments (kind, cluster,
    task_index, timeout), None for one replica."""
    wall_start = time.perf_counter()
    model_path = None
    if resume:  # the checkpoint's config, with what a resumed run may change
        out = Path(options.get("out") or resolve_config(options).out)
        state, model_path = read_checkpoint(out)
        config = merge_resumed_config(state["config"], {**options, "out": str(out)})
        start_epoch, history = int(state["epoch"]), state["history"]
        finished = finished_metrics(out, start_epoch)
        if start_epoch >= config.epochs and finished is not None:
            log(f"{out}: nothing to train: the run has {start_epoch} epochs (--epochs "
                f"{config.epochs}); its files are unchanged. Raise --epochs to train more.")
            return finished
    else:
        config = resolve_config(options)
        out = Path(config.out)
        start_epoch, history = 0, {}
    distribution = distributing.make_distribution(**(distribute or {}), log=log)
    if config.batch_size % distribution.replicas:
        raise TrainError(f"--batch-size {config.batch_size} (the global batch) does not split "
                         f"over {distribution.replicas} replicas; give a multiple of "
                         f"{distribution.replicas}.")
    if not resume and distribution.is_chief:
        check_out_is_free(out, overwrite)
    if config.precision == "bfloat16" and has_native_bfloat16() is False:
        log("note: this CPU has neither AVX512_BF16 nor AMX, so bfloat16 is emulated and "
            "likely slower than --precision float32")
    # Workers other than the chief write their checkpoints where nobody reads them.
    write_to = out if distribution.is_chief else Path(tempfile.mkdtemp(prefix="worker-"))
    try:
        with dtype_policy(PRECISIONS[config.precision]):
            metrics = _train_and_report(config, out, write_to, start_epoch, history, model_path,
                                        command, log, distribution)
        if metrics is None:  # a worker other than the chief: it waits while the chief writes
            distribution.barrier()
            return None
    except distributing.PEER_ERRORS as err:  # a collective failed: a peer is gone or silent
        if not distribution.multi_worker:
            raise
        raise TrainError(distributing.lost_worker_message(
            err, distribution, out, len(history.get("loss", [])))) from None
    finally:
        if write_to != out:
            shutil.rmtree(write_to, ignore_errors=True)
    metrics["wall_seconds"] = time.perf_counter() - wall_start
    write_json(out / "metrics.json", metrics)
    log(f"test accuracy {metrics['test']['accuracy']:.4f}, loss {metrics['test']['loss']:.4f}; "
        f"results in {out}/")
    try:
        distribution.barrier()
    except distributing.PEER_ERRORS as err:  # the results are written: nothing is lost
        log(f"note: another worker left before the end ({type(err).__name__}); the results "
            f"in {out} are complete")
    return metrics


def finished_metrics(out, epochs):
    """The metrics.json of a run in ``out`` that finished after ``epochs`` epochs (model.keras
    written), else None (e.g. stopped between its last checkpoint and its results)."""
    try:
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    done = isinstance(metrics, dict) and metrics.get("epochs_completed") == epochs
    return metrics if done and (Path(out) / "model.keras").is_file() else None


@contextlib.contextmanager
def dtype_policy(name):
    """Keras's global dtype policy set to ``name`` for the block, then restored."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _train_and_report(config, out, write_to, start_epoch, history, model_path, command, log,
                      distribution):
    """Train (from scratch, or from the checkpoint at ``model_path``), then ``finish`` (on the
    chief; other workers return None). Checkpoints go to ``write_to``."""
    data = load_data(config)
    splits = split_validation(data, config)
    steps_per_epoch = config.steps_per_epoch or max(1, len(splits.y_train) // config.batch_size)
    # The same seed for a fresh and a resumed run: the pipeline is a function of (seed, step).
    keras.utils.set_random_seed(config.seed)

    resume = model_path is not None
    with distribution.scope():  # variables of the model, optimizer and metrics: per replica
        if resume:
            model = restore(model_path, config, steps_per_epoch)
        else:
            model = build(config, data, steps_per_epoch)
    if resume:
        if inference.input_shape(model) != data.input_shape:
            raise TrainError(f"{model_path}: the checkpoint's model takes "
                             f"{inference.input_shape(model)} images, the data has "
                             f"{data.input_shape}.")
        log(f"resuming {out} after epoch {start_epoch} of {config.epochs}")
    elif distribution.is_chief:
        out.mkdir(parents=True, exist_ok=True)
    if distribution.strategy is not None:
        log(f"{distribution.describe()}; global batch {config.batch_size} = "
            f"{config.batch_size // distribution.replicas} per replica, peak lr {config.lr:g}")
    log(f"{config.model} ({model.count_params():,} parameters) on {data.name}: "
        f"{len(splits.y_train)} training images, validation on {splits.validation}, "
        f"{steps_per_epoch} steps of {config.batch_size} per epoch")

    recorder = EpochRecorder(write_to, config, history, steps_per_epoch * config.batch_size)
    if start_epoch < config.epochs:
        pipeline = train_pipeline(splits.X_train, splits.y_train, data.num_classes, config,
                                  data.family, config.seed,
                                  start_step=start_epoch * steps_per_epoch)
        validation = eval_pipeline(splits.X_val, splits.y_val, data.num_classes,
                                   config.batch_size)
        callbacks = [recorder, keras.callbacks.ProgbarLogger(),
                     # Keras's bar shows each epoch's steps; then TrainingProgress its time and
                     # the time left (after the bar: in this order; the pipeline shuffles)
                     TrainingProgress(config.epochs, steps_per_epoch, every=0, metrics=False,
                                      log=log, initial_epoch=start_epoch)]
        if distribution.strategy is not None:
            pipeline = pipeline.with_options(distributing.dataset_options())
            validation = validation.with_options(distributing.dataset_options())
            distributing.build_for_fit(model, distribution, pipeline.element_spec)
            if distribution.replicas > 1:
                callbacks.insert(0, distributing.AverageMovingStatistics(distribution.strategy))
        model.fit(pipeline, epochs=config.epochs, initial_epoch=start_epoch,
                  steps_per_epoch=steps_per_epoch, validation_data=validation,
                  callbacks=callbacks, shuffle=False, verbose=1)
    else:
        log(f"the checkpoint has all {start_epoch} epochs; writing the run's results")

    if distribution.strategy is not None:
        log(f"worker {distribution.task_index}: weights fingerprint "
            f"{distributing.weights_fingerprint(model)}")
        if not distribution.is_chief:
            log(f"worker {distribution.task_index} done; waiting while the chief writes the "
                f"results")
            return None
        model = local_copy(model)  # the results need no strategy (the other workers are done)
    test = finish(model, data, splits, config, history, out, log)
    metrics = _run_facts(command, config, data, splits, model, history, start_epoch, resume,
                         steps_per_epoch)
    metrics["distribution"] = distribution.to_dict()
    metrics["test"] = test
    return metrics


def local_copy(model):
    """The model with its weights, outside any tf.distribute strategy."""
    with tf.distribute.get_strategy().scope():  # the default strategy
        copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def finish(model, data, splits, config, history, out, log):
    """BatchNorm recalibration, the test evaluation, the plots and model.keras.

    The test figures are those of the saved file: model.keras is the trained model in
    plain Keras float32 layers (resnet_course.models.fused.portable_model)."""
    scaled = with_input_scaling(model)
    before = reporting.summarize(
        inference.predict_probabilities(scaled, data.X_test, config.batch_size, True),
        data.y_test, data.class_names)
    X_recalibration = recalibration_images(splits, data.num_classes, config, data.family)
    log(f"recalibrating the BatchNorm statistics on {len(X_recalibration)} training images"
        f"{', augmented as in training' if config.augment else ''} ...")
    recalibrate_batchnorm(scaled, X_recalibration, config.batch_size, seed=config.seed)
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
        reporting.save_figure(plot_history(curves), out / "curves.png")
    reporting.save_figure(reporting.rotate_long_tick_labels(plot_confusion_matrix(
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
                  "description": " ".join(resnet.describe(config.model).split()),
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
