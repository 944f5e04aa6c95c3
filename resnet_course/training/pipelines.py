"""The arrays a run trains, validates and recalibrates on, as tf.data pipelines.

The training pipeline is a pure function of (seed, step): pass p over the training images
is the permutation ``stateless_shuffle(range(n), (seed, p))``, batches run on across passes,
and batch t is augmented with random numbers drawn from (seed, t). A pipeline started at
step t (``start_step``, what --resume passes) therefore yields exactly the batches the
uninterrupted run trained on from its step t.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from resnet_course.data.sampling import stratified_indices
from resnet_course.learner.training import make_augmenter, to_unit_range
from resnet_course.training.augmentation import pad_crop_flip
from resnet_course.training.train_config import TrainError

# BatchNorm statistics over 10,000 images are as good as over 50,000 (their standard error
# is already ~1% of a standard deviation) and take a fifth of the time.
RECALIBRATION_IMAGES = 10_000


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


# Keras's random layers (the SIGNS augmentation) draw from a counter-based SeedGenerator:
# batch t sets every generator's counter to t * STEP_STRIDE, so a layer may draw up to
# STEP_STRIDE times per batch before the next batch's numbers overlap.
STEP_STRIDE = 1 << 16


def index_stream(n, seed, start=0):
    """Endless tf.data stream of int64 image indices: pass p over range(n) in the order
    stateless_shuffle(range(n), seed=(seed, p)), from the ``start``-th index on (indices of
    earlier passes are never computed)."""
    first_pass, offset = divmod(int(start), n)

    def one_pass(p):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), p]))
        return tf.data.Dataset.from_tensor_slices(order)

    return (tf.data.Dataset.range(first_pass, np.iinfo(np.int64).max)
            .flat_map(one_pass).skip(offset))


def _seed_generators(model):
    """(generator, its seed) of every Keras SeedGenerator in the layers of ``model``."""
    found = []
    for layer in model._flatten_layers(include_self=False):
        for generator in getattr(layer, "_seed_generators", []):
            found.append((generator, int(generator.state.numpy()[0])))
    return found


def signs_augmentation(seed):
    """The notebook's augmenter as a function (images in [0, 1], step) -> images whose random
    draws depend on (seed, step) only."""
    augmenter = make_augmenter(seed)
    augmenter.build((None, None, None, 3))
    generators = _seed_generators(augmenter)

    def augment(images, step):
        for generator, first in generators:  # ordered before the layers' reads (same resource)
            generator.state.assign(tf.stack([tf.constant(first, generator.state.dtype),
                                             tf.cast(step * STEP_STRIDE, generator.state.dtype)]))
        return augmenter(images, training=True)

    return augment


def train_pipeline(X, y, num_classes, config, family, seed, start_step=0):
    """The endless, shuffled, batched (and augmented: ``family`` says how) tf.data pipeline of
    every epoch, from batch ``start_step`` on: batch t is the same whatever step the pipeline
    starts at (module docstring). Elements: (float32 images in [0, 1], one-hot labels)."""
    images = tf.constant(X)
    labels = tf.constant(one_hot(y, num_classes))
    batch_size = config.batch_size
    stream = (index_stream(len(X), seed, start=start_step * batch_size)
              .batch(batch_size, drop_remainder=True)
              .enumerate(start=start_step))
    cifar_augmentation = config.augment and family == "cifar10"
    signs_augment = signs_augmentation(seed) if config.augment and family == "signs" else None

    def gather(step, indices):
        batch = to_unit_range(tf.gather(images, indices))
        if cifar_augmentation:
            pair = tf.cast(tf.stack([tf.constant(seed, tf.int64), step]), tf.int32)
            batch = pad_crop_flip(batch, pair, cutout=config.cutout)
        elif signs_augment is not None:
            batch = signs_augment(batch, step)
        return batch, tf.gather(labels, indices)

    # The SIGNS augmenter's generators are shared state: one batch at a time, in order.
    parallel = None if signs_augment is not None else tf.data.AUTOTUNE
    return stream.map(gather, num_parallel_calls=parallel).prefetch(tf.data.AUTOTUNE)


def eval_pipeline(X, y, num_classes, batch_size):
    """Batches of (X / 255, one-hot y), scaled batch by batch."""
    return (tf.data.Dataset.from_tensor_slices((X, one_hot(y, num_classes)))
            .batch(batch_size)
            .map(lambda x, t: (tf.cast(x, tf.float32) / 255.0, t))
            .prefetch(tf.data.AUTOTUNE))


def recalibration_images(splits, num_classes, config, family):
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
    pipeline = train_pipeline(X, y, num_classes, config, family, seed=config.seed + 1)
    batches = [images for images, _ in pipeline.take(-(-len(X) // config.batch_size))]
    return np.concatenate(batches)[:len(X)] * 255.0  # recalibrated through the 0-255 model
