"""The data sets train.py and evaluate.py know: a name or a path -> arrays + class names.

- ``signs``: the course's SIGNS files in ``datasets/`` (``resnet_course.learner.signs_files.load_dataset``);
- ``cifar10``: CIFAR-10 from its default source (``resnet_course.data.cifar10``);
- the path of a folder holding ``train_signs.h5`` and ``test_signs.h5`` (SIGNS format);
- the path of a CIFAR-10 source (``cifar-10-python.tar.gz``, the image zip, or a folder);
- for evaluation only, the path of one SIGNS-format ``.h5`` file (e.g. the course's
  ``test_signs.h5``: keys ``test_set_x``, ``test_set_y``, ``list_classes``).

Images are uint8 (m, h, w, 3), labels int64 (m,) indexing ``class_names``.
"""
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from resnet_course.data import cifar10
from resnet_course.data.sampling import stratified_indices
from resnet_course.learner import signs_files
from resnet_course.learner.signs_files import DatasetError
from resnet_course.paths import DATASETS_DIR

DATASET_NAMES = ("signs", "cifar10")
DATA_ERRORS = (DatasetError, cifar10.CifarError)  # what loading raises for bad input


@dataclass(frozen=True)
class Dataset:
    name: str            # "signs", "cifar10" or the path given
    family: str          # "signs" or "cifar10": which augmentation it gets
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple

    @property
    def input_shape(self):
        return tuple(self.X_test.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)


@dataclass(frozen=True)
class EvalSplit:
    """One labelled split to evaluate a model on."""
    name: str            # e.g. "signs test", "test_signs.h5"
    X: np.ndarray
    y: np.ndarray
    class_names: tuple


def _unknown(spec):
    return DatasetError(
        f"unknown data set {spec!r}: give one of {', '.join(DATASET_NAMES)}, a folder with "
        f"train_signs.h5 and test_signs.h5, or a CIFAR-10 archive or folder."
    )


def family_of(spec):
    """'signs' or 'cifar10' for a data set name or path, without loading it."""
    if spec in DATASET_NAMES:
        return spec
    path = Path(spec)
    if not path.exists():
        raise _unknown(spec)
    if path.suffix == ".h5" or (path.is_dir() and any(path.glob("*_signs.h5"))):
        return "signs"
    return "cifar10"


def signs_class_names(classes):
    return tuple(str(c) for c in np.asarray(classes).tolist())


def _subset(X, y, size, seed, what):
    if size is None:
        return X, y
    if not 1 <= size <= len(y):
        raise DatasetError(f"a {what} subset of {size} images: there are {len(y)}; choose 1 "
                           f"to {len(y)} (or leave it out for all).")
    keep = stratified_indices(y, size, seed)
    return X[keep], y[keep]


def load(spec, train_size=None, test_size=None, seed=0, splits=("train", "test")):
    """The Dataset named or found at ``spec`` (train and test splits).

    ``train_size``/``test_size``: stratified, seeded subsets (None: everything).
    ``splits``: what is needed; CIFAR-10 then decodes only those (the others are None).
    Raises DatasetError or cifar10.CifarError (both ValueError) with one clear message.
    """
    family = family_of(spec)
    if family == "cifar10":
        source = None if spec == "cifar10" else spec
        X_train, y_train, X_test, y_test, names = cifar10.load_cifar10(
            source, train_size=train_size, test_size=test_size, seed=seed, splits=splits)
        return Dataset(str(spec), family, X_train, y_train, X_test, y_test, tuple(names))
    folder = DATASETS_DIR if spec == "signs" else Path(spec)
    if not folder.is_dir():
        raise DatasetError(f"{spec}: training needs a folder with train_signs.h5 and "
                           f"test_signs.h5, not a single file.")
    try:
        X_train, Y_train, X_test, Y_test, classes = signs_files.load_dataset(folder)
    except DatasetError as err:  # the learner's message names the course's zip; here the data builder
        raise DatasetError(f"{err} In this repository `make data` builds the SIGNS files.") from None
    X_train, y_train = _subset(X_train, Y_train.reshape(-1), train_size, seed, "train")
    X_test, y_test = _subset(X_test, Y_test.reshape(-1), test_size, seed, "test")
    return Dataset(str(spec), family, X_train, y_train, X_test, y_test,
                   signs_class_names(classes))


def _h5_split_name(file):
    """'train' for a file holding only train_set_*, else 'test' (the loader reports problems)."""
    try:
        with h5py.File(file, "r") as f:
            keys = set(f.keys())
    except OSError:
        return "test"
    return "train" if "train_set_x" in keys and "test_set_x" not in keys else "test"


def load_eval_split(spec, size=None, seed=0):
    """The split to evaluate on: the test split of a data set, or one SIGNS-format .h5 file."""
    path = Path(spec)
    if spec not in DATASET_NAMES and path.suffix == ".h5":
        split = _h5_split_name(path)
        # the learner's loader and its checks, so both accept exactly the same files
        X, y, classes = signs_files.load_split(path, split)
        X, y = _subset(X, y, size, seed, split)
        return EvalSplit(f"{path} ({split}_set)", X, y, signs_class_names(classes))
    data = load(spec, test_size=size, seed=seed, splits=("test",))
    return EvalSplit(f"{data.name} test", data.X_test, data.y_test, data.class_names)


def default_class_names(num_classes):
    """Class names for a model whose data set is unknown, guessed from its output size."""
    if num_classes == len(cifar10.CLASS_NAMES):
        return cifar10.CLASS_NAMES
    return tuple(str(i) for i in range(num_classes))
