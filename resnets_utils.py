# Generated from the course's learner/signs_files.py; edit that, not this copy.
"""Helpers for the ResNet50 assignment: loading the SIGNS data, a look at it, your own photo.

Stand-alone (numpy, h5py, matplotlib, Pillow); at import it checks that TensorFlow and Keras
are recent enough for the course.
"""
import importlib.metadata
import math
import re
import sys
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hand_framing import model_view, to_8_bits


# ---- Versions ---- (identical numbers on these; older Keras lacks arguments the course uses)
SUPPORTED_TENSORFLOW = ("2.18", "2.21")
SUPPORTED_KERAS = ("3.8", "3.15")


class VersionError(ImportError):
    """TensorFlow or Keras is older than the course supports."""


def installed_version(module):
    """The imported module's version (what runs), else the installed one, without importing."""
    if module in sys.modules:
        return getattr(sys.modules[module], "__version__", None)
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None


def _major_minor(version):
    return tuple(int(number) for number in re.findall(r"\d+", version)[:2])


def check_versions(tensorflow_version=None, keras_version=None):
    """VersionError naming the installed and the supported versions if either is too old."""
    tensorflow_version = tensorflow_version or installed_version("tensorflow")
    keras_version = keras_version or installed_version("keras")
    if any(found and _major_minor(found) < _major_minor(supported[0]) for found, supported in
           ((tensorflow_version, SUPPORTED_TENSORFLOW), (keras_version, SUPPORTED_KERAS))):
        raise VersionError(
            f"this course needs TensorFlow {'-'.join(SUPPORTED_TENSORFLOW)} with Keras "
            f"{'-'.join(SUPPORTED_KERAS)}; installed: TensorFlow {tensorflow_version}, Keras "
            f"{keras_version}. Upgrade: pip install 'tensorflow>={SUPPORTED_TENSORFLOW[0]}'")


check_versions()

# ---- Data ----
IMAGE_SHAPE = (64, 64, 3)
DATA_FILES = {"train": "train_signs.h5", "test": "test_signs.h5"}
REBUILD_HINT = "replace it with the course's file (download it again, or unzip it from the course's zip, ResNet50.zip)"


class DatasetError(ValueError):
    """A SIGNS data file is missing or not in the expected format; the message says the fix."""

    def _render_traceback_(self):  # IPython (Jupyter) shows this one line, not frames of this module
        return [f"{type(self).__name__}: {self}"]


class ImageError(ValueError):
    """A photo given to load_my_image is missing or cannot be read as an image."""

    _render_traceback_ = DatasetError._render_traceback_


def _bad_file(file, problem):
    return DatasetError(f"{file}: {problem}; {REBUILD_HINT}.")


def _read_h5_dataset(f, file, key):
    """f[key] as a numpy array, or DatasetError if it is absent or not a dataset."""
    if key not in f or not isinstance(f[key], h5py.Dataset):
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise _bad_file(file, f"missing dataset '{key}' (found: {found}); this is not a SIGNS "
                              f"data file")
    return np.array(f[key][()])


def load_split(file, split):
    """(X, Y, classes) of the ``split`` ("train" or "test") part of one SIGNS file, checked:
    X uint8 (m, 64, 64, 3), Y int64 (m,). Raises DatasetError like load_dataset."""
    file = Path(file)
    if not file.is_file():
        raise DatasetError(f"{file}: file not found; put the course's {file.name} into {file.parent}/ (it is "
                           "in the course's zip, ResNet50.zip).")
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
        raise _bad_file(file, f"not a readable HDF5 file, probably truncated or corrupt "
                              f"(h5py: {err})") from None

    if X.dtype != np.uint8 or X.ndim != 4 or X.shape[1:] != IMAGE_SHAPE or len(X) == 0:
        raise _bad_file(file, f"'{x_key}' should be uint8 images of shape (m, 64, 64, 3), "
                              f"found {X.dtype} {X.shape}")
    for key, values in ((y_key, Y), ("list_classes", classes)):
        if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
            raise _bad_file(file, f"'{key}' should be a 1-D integer array, found "
                                  f"{values.dtype} {values.shape}")
    if len(Y) != len(X):
        raise _bad_file(file, f"'{x_key}' has {len(X)} images but '{y_key}' has {len(Y)} labels")
    unknown = np.setdiff1d(Y, classes)
    if unknown.size:
        raise _bad_file(file, f"labels {unknown.tolist()} in '{y_key}' are not in "
                              f"list_classes {classes.tolist()}")
    return X, Y.astype(np.int64), classes.astype(np.int64)


def load_dataset(path="datasets"):
    """Load the SIGNS data set from ``path``/train_signs.h5 and ``path``/test_signs.h5.

    Returns X_train_orig, uint8 (m_train, 64, 64, 3); Y_train_orig, int64 (1, m_train), the class of
    each image; X_test_orig, uint8 (m_test, 64, 64, 3); Y_test_orig, int64 (1, m_test); classes, int64
    (6,), the classes [0 1 2 3 4 5].

    Raises DatasetError (a ValueError) saying which file is wrong, how, and how to fix it.
    """
    path = Path(path)
    train_file, test_file = path / DATA_FILES["train"], path / DATA_FILES["test"]
    X_train_orig, Y_train_orig, train_classes = load_split(train_file, "train")
    X_test_orig, Y_test_orig, classes = load_split(test_file, "test")
    if not np.array_equal(train_classes, classes):
        raise DatasetError(
            f"{train_file} and {test_file} list different classes ({train_classes.tolist()} vs "
            f"{classes.tolist()}): they do not belong together; {REBUILD_HINT} for both.")
    return X_train_orig, Y_train_orig.reshape(1, -1), X_test_orig, Y_test_orig.reshape(1, -1), classes


def convert_to_one_hot(Y, C):
    """One-hot labels (C, m) of the labels Y (any shape, values 0..C-1); as in the course,
    transpose the result (``convert_to_one_hot(Y, C).T``) to get (m, C)."""
    Y = np.asarray(Y)
    if not np.issubdtype(Y.dtype, np.integer) or Y.size and (Y.min() < 0 or Y.max() >= C):
        raise ValueError(f"convert_to_one_hot expects integer labels in 0..{C - 1}, got "
                         f"{Y.dtype} values {np.unique(Y)[:10].tolist()}")
    return np.eye(C)[Y.reshape(-1)].T


def show_samples(X, Y, classes, n=12, seed=0, columns=6):
    """Plot ``n`` random images of X (m, h, w, 3) with their labels Y ((1, m) or (m,)); the
    same ``seed`` shows the same images. Returns the Figure (a script calls ``plt.show()``)."""
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


def load_photo(path):
    """A photo as uint8 (h, w, 3) RGB, upright (EXIF orientation, as phones store it); a
    transparent background becomes white, like the SIGNS backgrounds."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: file not found; put your photo (JPEG or PNG) there or pass its path.")
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img = to_8_bits(img) if img.mode.startswith("I") or img.mode == "F" else img  # 16-bit, float
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                img = img.convert("RGBA")
                img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError(f"{path}: not an image file Pillow can read ({err}); use a JPEG or "
                         f"PNG photo.") from None


def load_my_image(path, size=64):
    """A photo as the model sees it: uint8 (1, size, size, 3), for ``model.predict(x / 255.)``.

    Any size, from a phone as it comes, hand anywhere: load_photo, then hand_framing.model_view
    finds the hand by its colour against the plain background and crops a square around it (so it
    fills the frame as in the SIGNS photos), resized with Lanczos as the SIGNS files were."""
    return model_view(load_photo(path), size)[np.newaxis]
