"""Helpers for the ResNet50 assignment: loading the SIGNS data, a look at it, your own photo.

Stand-alone: it needs only numpy, h5py, matplotlib, Pillow (and TensorFlow/Keras).
"""
import math
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


# ---- Data ----

IMAGE_SHAPE = (64, 64, 3)
DATA_FILES = {"train": "train_signs.h5", "test": "test_signs.h5"}
REBUILD_HINT = "delete it and run `make data` (or download the course's file again)"


class DatasetError(ValueError):
    """A SIGNS data file is missing or not in the expected format; the message says how to fix it."""


class ImageError(ValueError):
    """A photo given to load_my_image is missing or cannot be read as an image."""


def _read_h5_dataset(f, file, key):
    """f[key] as a numpy array, or DatasetError if it is absent or not a dataset."""
    if key not in f or not isinstance(f[key], h5py.Dataset):
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise DatasetError(
            f"{file}: missing dataset '{key}' (found: {found}); this is not a SIGNS data file, "
            f"{REBUILD_HINT}."
        )
    return np.array(f[key][()])


def load_split(file, split):
    """One SIGNS-format file, checked: (X, Y, classes) of its ``split`` ("train" or "test")
    part; X uint8 (m, 64, 64, 3), Y int64 of shape (m,). Raises DatasetError like
    load_dataset (which reads the two files through it)."""
    file = Path(file)
    if not file.is_file():
        raise DatasetError(
            f"{file}: file not found; run `make data` to build it (or copy the course's "
            f"{file.name} into {file.parent}/)."
        )
    x_key, y_key = f"{split}_set_x", f"{split}_set_y"
    try:
        with h5py.File(file, "r") as f:
            X = _read_h5_dataset(f, file, x_key)
            Y = _read_h5_dataset(f, file, y_key)
            classes = _read_h5_dataset(f, file, "list_classes")
    except DatasetError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        # h5py reports a truncated or non-HDF5 file as OSError, damaged contents variously
        raise DatasetError(
            f"{file}: not a readable HDF5 file, probably truncated or corrupt (h5py: {err}); "
            f"{REBUILD_HINT}."
        ) from None

    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[1:] != IMAGE_SHAPE or len(X) == 0:
        raise DatasetError(
            f"{file}: '{x_key}' should be uint8 images of shape (m, 64, 64, 3), found "
            f"{X.dtype} {X.shape}; {REBUILD_HINT}."
        )
    for key, values in ((y_key, Y), ("list_classes", classes)):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise DatasetError(
                f"{file}: '{key}' should be a 1-D integer array, found {values.dtype} "
                f"{values.shape}; {REBUILD_HINT}."
            )
    if len(Y) != len(X):
        raise DatasetError(
            f"{file}: '{x_key}' has {len(X)} images but '{y_key}' has {len(Y)} labels; "
            f"{REBUILD_HINT}."
        )
    unknown = np.setdiff1d(Y, classes)
    if unknown.size:
        raise DatasetError(
            f"{file}: labels {unknown.tolist()} in '{y_key}' are not in list_classes "
            f"{classes.tolist()}; {REBUILD_HINT}."
        )
    return X, Y.astype(np.int64), classes.astype(np.int64)


def load_dataset(path="datasets"):
    """Load the SIGNS data set from ``path``/train_signs.h5 and ``path``/test_signs.h5.

    Returns:
    X_train_orig -- uint8 array (m_train, 64, 64, 3)
    Y_train_orig -- int64 array (1, m_train), the class of each image
    X_test_orig -- uint8 array (m_test, 64, 64, 3)
    Y_test_orig -- int64 array (1, m_test)
    classes -- int64 array (6,), the classes [0 1 2 3 4 5]

    Raises DatasetError (a ValueError) with one message saying which file is wrong,
    how, and how to fix it.
    """
    path = Path(path)
    train_file, test_file = path / DATA_FILES["train"], path / DATA_FILES["test"]
    X_train_orig, Y_train_orig, train_classes = load_split(train_file, "train")
    X_test_orig, Y_test_orig, classes = load_split(test_file, "test")
    if not np.array_equal(train_classes, classes):
        raise DatasetError(
            f"{train_file} and {test_file} list different classes ({train_classes.tolist()} vs "
            f"{classes.tolist()}): they do not belong together; {REBUILD_HINT} for both."
        )
    return (X_train_orig, Y_train_orig.reshape((1, -1)),
            X_test_orig, Y_test_orig.reshape((1, -1)), classes)


def convert_to_one_hot(Y, C):
    """One-hot encode the labels Y (any shape, values 0..C-1) -> float array of shape (C, m).

    As in the course: transpose the result (``convert_to_one_hot(Y, C).T``) to get (m, C).
    """
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.integer) or Y.size and (Y.min() < 0 or Y.max() >= C):
        raise ValueError(f"convert_to_one_hot expects integer labels in 0..{C - 1}, got "
                         f"{Y.dtype} values {np.unique(Y)[:10].tolist()}")
    Y = np.eye(C)[Y.reshape(-1)].T
    return Y


def show_samples(X, Y, classes, n=12, seed=0, columns=6):
    """Plot ``n`` random images of X (m, h, w, 3) with their labels Y ((1, m) or (m,)).

    The same ``seed`` shows the same images.  Returns the matplotlib Figure (in a notebook
    it is displayed at the end of the cell; in a script call ``plt.show()``).
    """
    X, labels = np.asarray(X), np.asarray(Y).reshape(-1)
    n = min(n, len(X))
    picks = np.random.default_rng(seed).choice(len(X), size=n, replace=False)
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks):
        ax.imshow(X[i])
        ax.set_title(f"y = {classes[labels[i]]}", fontsize=9)
    fig.tight_layout()
    return fig


def load_my_image(path, size=64):
    """Load a photo as a uint8 array (1, size, size, 3), ready for ``model.predict(x / 255.)``.

    The photo is turned upright (EXIF orientation, as phones store it), converted to RGB
    (a transparent background becomes white, like the SIGNS backgrounds), cropped to its
    largest centred square (the SIGNS photos are square; cropping keeps the hand's
    proportions, where squeezing would distort them) and resized with antialiasing
    (Lanczos, the filter used to build the SIGNS files).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found; put your photo (JPEG or PNG) there or pass "
                         f"its path.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, img)
            img = img.convert("RGB")
            side = min(img.size)
            left, top = (img.width - side) // 2, (img.height - side) // 2
            img = img.crop((left, top, left + side, top + side))
            img = img.resize((size, size), Image.LANCZOS)
            return np.asarray(img, dtype=np.uint8)[np.newaxis]
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"{path}: not an image file Pillow can read ({err}); use a JPEG or "
                         f"PNG photo.") from None


# ---- Training helpers ----
# Training a ResNet50 on 1,080 photos on a CPU in a few minutes, so that it also works
# in inference mode (BatchNorm using its moving statistics) and on photos taken elsewhere:
# one tf.data pipeline with augmentation, a warm-up + cosine learning-rate schedule, and
# BatchNorm moving averages that keep up with the weights (momentum 0.9), or else are
# re-estimated with the final weights (recalibrate_batchnorm).
import keras  # noqa: E402  (the training helpers are the only part that needs TensorFlow)
import tensorflow as tf  # noqa: E402


def _to_unit_range(X):
    """Float32 images in [0, 1]: uint8 images are divided by 255, float images are kept as they are."""
    X = tf.convert_to_tensor(X)
    if X.dtype == tf.uint8:
        return tf.cast(X, tf.float32) / 255.0
    return tf.cast(X, tf.float32)


def make_augmenter(seed=0):
    """The random changes applied to every training image, on images in [0, 1].

    Each one imitates a difference between two photos of the same sign: where the hand is
    (shift), how far it is (zoom), how it is tilted (rotation), the light (brightness,
    contrast). No flips: a vertical flip turns a hand upside down, a sign no one makes, and a
    horizontal flip turns the right hand of every photo into a left hand, which the model
    then has to learn too (with flips the accuracy on perturb_images copies was lower).
    """
    return keras.Sequential([
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomRotation(0.04, fill_mode="nearest", seed=seed + 2),  # +-15 degrees
        keras.layers.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=seed + 3),
        keras.layers.RandomContrast(0.2, value_range=(0.0, 1.0), seed=seed + 4),
    ], name="augmenter")


def make_train_dataset(X, Y, batch_size=32, augment=True, seed=0):
    """One endless tf.data pipeline of shuffled (and augmented) training batches.

    Arguments:
    X -- images (m, 64, 64, 3): float in [0, 1] as the notebook prepares them (X_train_orig / 255),
         or uint8 in [0, 255], which are divided by 255 here
    Y -- one-hot labels (m, classes), as categorical_crossentropy expects
    batch_size -- images per batch; every batch is full (the last partial batch of an epoch
                  continues into the next epoch)
    augment -- apply make_augmenter(seed) to every batch
    seed -- makes the shuffling and the augmentation reproducible

    The pipeline repeats forever, so give fit() the number of batches per epoch:
        model.fit(make_train_dataset(X, Y), epochs=..., steps_per_epoch=len(X) // batch_size,
                  shuffle=False)  # the pipeline shuffles; shuffle=False only silences a Keras notice
    Building it once and reusing it across epochs avoids the pause fit() makes when it
    rebuilds its input pipeline from numpy arrays at every epoch.
    """
    if len(X) != len(Y):
        raise ValueError(f"make_train_dataset: X has {len(X)} images but Y has {len(Y)} labels; "
                         "pass the images and the one-hot labels of the same examples.")
    dataset = tf.data.Dataset.from_tensor_slices((X, np.asarray(Y, dtype="float32")))
    dataset = dataset.shuffle(len(X), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda images, labels: (_to_unit_range(images), labels))
    if augment:
        augmenter = make_augmenter(seed)
        dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def cosine_schedule(epochs, steps_per_epoch, peak_learning_rate=1e-3, warmup_epochs=1):
    """Learning rate that rises linearly from 0 for warmup_epochs, then falls to 0 along a cosine.

    The warm-up avoids large first steps while BatchNorm statistics are still settling; ending
    at 0 lets the weights, and the BatchNorm moving averages that follow them, come to rest.
    """
    warmup_steps = warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=(epochs - warmup_epochs) * steps_per_epoch,
        warmup_target=peak_learning_rate, warmup_steps=warmup_steps)


def set_batchnorm_momentum(model, momentum=0.9):
    """Set the momentum of every BatchNorm layer of model (call it before compile).

    predict() and evaluate() normalize with each BatchNorm layer's moving averages of the batch
    statistics; every batch moves them a fraction 1 - momentum towards the current batch.
    The Keras default, 0.99, averages over about 100 batches: 3 epochs of this small data set,
    during which the weights, and so the statistics, change a lot. After 8 epochs some moving
    variances of the course ResNet50 were still 19 times too large and the test accuracy in
    inference mode was 30 %. With 0.9 (about 10 batches) they follow the weights: 100 %.
    """
    for layer in batchnorm_layers(model):
        layer.momentum = momentum
    return model


def batchnorm_layers(model):
    """Every BatchNormalization layer of model, including those of nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            yield layer
        elif hasattr(layer, "layers"):
            yield from batchnorm_layers(layer)


def recalibrate_batchnorm(model, X, batch_size=32, seed=0):
    """Replace every BatchNorm layer's moving mean and variance by its statistics over X.

    During training each BatchNorm layer normalizes with the statistics of the current batch
    and keeps a slow moving average of them for inference. After a short training the average
    still remembers the early weights, so predict() and evaluate() normalize with the wrong
    numbers. This pass runs the FINAL model over X in training mode, batch by batch (shuffled
    batches, like in training), and sets each layer's moving statistics to the mean and
    variance of its inputs over all of X. Only the moving statistics change; no weight learns.
    (A model trained with set_batchnorm_momentum(model, 0.9) does not need it.)

    Arguments:
    model -- a keras model containing BatchNormalization layers
    X -- images in the form the model takes (the training set, without augmentation)
    batch_size -- images per forward pass; use the training batch size
    seed -- order in which the images are grouped into batches
    """
    layers = list(batchnorm_layers(model))
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0  # a training-mode call then stores exactly that batch's statistics
    sums = [0.0] * len(layers)
    sums_of_squares = [0.0] * len(layers)
    # Compiled once (after the momentum change, which it captures): about 3x faster than eager calls.
    forward = tf.function(lambda batch: model(batch, training=True), autograph=False,
                          reduce_retracing=True)
    order = np.random.default_rng(seed).permutation(len(X))
    try:
        for start in range(0, len(X), batch_size):
            batch = np.asarray(X)[order[start:start + batch_size]]
            forward(tf.constant(batch, dtype=tf.float32))
            for i, layer in enumerate(layers):  # sums over images of E[x] and E[x^2] per batch
                mean, variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
                sums[i] = sums[i] + len(batch) * mean
                sums_of_squares[i] = sums_of_squares[i] + len(batch) * (variance + mean**2)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    for layer, total, total_of_squares in zip(layers, sums, sums_of_squares):
        mean = total / len(X)
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(np.maximum(total_of_squares / len(X) - mean**2, 0.0))
    return model


def perturb_images(X, seed=0):
    """A fixed copy of X that looks like photos of the same signs taken elsewhere.

    Every image gets its own small shift, rotation and zoom, a different light (brightness,
    contrast, colour cast), some blur and sensor noise. The same seed always gives the same
    copy, so accuracies on it can be compared between models.

    Arguments:
    X -- images (m, 64, 64, 3), float in [0, 1] or uint8 in [0, 255]
    Returns: the perturbed images, with the dtype and range of X
    """
    rng = np.random.default_rng(seed)
    images = _to_unit_range(X)
    geometry = keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed),
        keras.layers.RandomRotation(0.03, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2),
    ])
    images = geometry(images, training=True).numpy()
    m = len(images)
    blurred = (np.roll(images, 1, axis=1) + np.roll(images, -1, axis=1)
               + np.roll(images, 1, axis=2) + np.roll(images, -1, axis=2) + 4 * images) / 8
    blur = rng.uniform(0.0, 1.0, (m, 1, 1, 1))
    images = blur * blurred + (1 - blur) * images
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(0.7, 1.3, (m, 1, 1, 1))
    brightness = rng.uniform(-0.15, 0.15, (m, 1, 1, 1))
    colour_cast = rng.uniform(0.9, 1.1, (m, 1, 1, 3))
    images = ((images - mean) * contrast + mean + brightness) * colour_cast
    images = np.clip(images + rng.normal(0.0, 0.03, images.shape), 0.0, 1.0)
    if np.asarray(X).dtype == np.uint8:
        return np.round(images * 255).astype(np.uint8)
    return images.astype(np.float32)


def with_input_scaling(model):
    """A model that takes raw images (uint8 or float, 0-255) and divides them by 255 itself.

    Save this one (model.save("signs.keras")): whoever loads it can feed photos directly.
    It shares its weights with model.
    """
    inputs = keras.Input(model.input_shape[1:], name="image_0_255")
    outputs = model(keras.layers.Rescaling(1.0 / 255, name="rescale_to_0_1")(inputs))
    return keras.Model(inputs, outputs, name=f"{model.name}_with_input_scaling")


def save_for_inference(model, path):
    """Save ``model`` for predicting: with its input scaling (with_input_scaling), so that
    the file takes raw 0-255 images, and without the optimizer's state, which only
    training needs (Adam keeps two numbers per weight: the file is a third of the size).
    Returns the saved copy."""
    scaled = with_input_scaling(model)
    copy = keras.models.clone_model(scaled)  # new layers, not compiled: no optimizer
    copy.set_weights(scaled.get_weights())
    copy.save(path)
    return copy


def plot_history(history):
    """Loss and accuracy per epoch (training, and validation when present) of a fit() History."""
    values = history.history if hasattr(history, "history") else history
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric in zip(axes, ["loss", "accuracy"]):
        for prefix, label in [("", "training"), ("val_", "validation")]:
            if prefix + metric in values:
                curve = values[prefix + metric]
                ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true, y_pred, class_names):
    """Counts of (true class, predicted class) pairs; y_true and y_pred are labels or one-hot rows."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    y_true = y_true.argmax(axis=-1) if y_true.ndim == 2 else y_true.reshape(-1)
    y_pred = y_pred.argmax(axis=-1) if y_pred.ndim == 2 else y_pred.reshape(-1)
    n = len(class_names)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, counts[i, j], ha="center", va="center",
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {np.mean(y_true == y_pred):.1%}")
    fig.tight_layout()
    return fig
