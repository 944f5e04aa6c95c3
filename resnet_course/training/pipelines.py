"""The arrays a run trains, validates and recalibrates on, as tf.data pipelines."""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from resnet_course.data.sampling import stratified_indices
from resnet_course.learner.training import make_train_dataset
from resnet_course.training.augmentation import with_pad_crop_flip
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


def train_pipeline(X, y, num_classes, config, family, seed):
    """One repeated, shuffled, batched (and augmented: ``family`` says how) tf.data pipeline
    for every epoch."""
    signs_augmentation = config.augment and family == "signs"
    dataset = make_train_dataset(X, one_hot(y, num_classes), config.batch_size,
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
