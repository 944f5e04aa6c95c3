"""Load a saved Keras classifier (.keras, or the legacy HDF5 .h5) and get class probabilities for
uint8 images.

A model saved by train.py has its input scaling inside (``resnet_course.learner.training.with_input_scaling``:
it takes raw 0-255 pixels); a model saved straight after ``model.fit`` on ``X / 255``
(as a notebook might) takes 0-1 pixels.  ``takes_raw_pixels`` tells them apart by the
Rescaling layer, so callers always pass uint8 images.
"""
import os
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

# The custom layers and optimizers a saved model or checkpoint may hold, for load_model.
from resnet_course.learner.hand_framing import centre_square, resized
from resnet_course.models.fused import CUSTOM_OBJECTS
# ImageError: what load_image_for raises, for its callers (evaluate.py).
from resnet_course.learner.signs_files import ImageError, load_my_image, load_photo  # noqa: F401

# How a photo is cut to a model's square input: "hand" finds the hand against the plain
# background (hand_framing, as the notebook's load_my_image does: SIGNS models), "centre"
# takes the largest centred square (any other kind of photo, e.g. for CIFAR-10 models).
CROPS = ("hand", "centre")


class ModelFileError(ValueError):
    """The file is missing or is not a Keras model this code can load."""


ZIP_MAGIC = b"PK\x03\x04"                # a .keras file is a zip archive
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"     # the legacy .h5 / .hdf5 format (Keras 2, tf.keras)
KINDS = {"keras": ".keras", "h5": ".h5"}  # what model_file_kind returns: the suffix Keras wants for it


def _hdf5_stored_size(path):
    """The file size an HDF5 file's superblock (at offset 0) records (base address plus end-of-file
    address), or None when the superblock is unreadable or of an unknown version."""
    with open(path, "rb") as file:
        header = file.read(128)
    if len(header) < 12:
        return None
    version = header[8]
    if version in (0, 1):  # offsets size at byte 13; base, free-space, end-of-file addresses after
        offsets, start = header[13], 24 + (4 if version == 1 else 0)
    elif version in (2, 3):  # offsets size at byte 9; base, extension, end-of-file addresses after
        offsets, start = header[9], 12
    else:
        return None
    fmt = {4: "<I", 8: "<Q"}.get(offsets)
    if fmt is None or len(header) < start + 3 * offsets:
        return None
    base = struct.unpack_from(fmt, header, start)[0]
    end = struct.unpack_from(fmt, header, start + 2 * offsets)[0]
    return base + end


def model_file_kind(path):
    """ "keras" (a zip archive) or "h5" (an HDF5 file: the legacy format), told by the file's first
    bytes, not its name. ModelFileError with one line for a missing file, a truncated one (a zip
    without its end-of-central-directory record, an HDF5 file shorter than its superblock says)
    or one that is neither."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; give the .keras file written by "
                             f"train.py (DIR/model.keras) or by the notebook.")
    with open(path, "rb") as file:
        head = file.read(8)
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: truncated: a zip archive (as a .keras file is) whose end, its "
                                 f"central directory, is missing; copy or save it again.")
        return "keras"
    if head == HDF5_SIGNATURE:
        stored = _hdf5_stored_size(path)
        if stored is not None and path.stat().st_size < stored:
            raise ModelFileError(f"{path}: truncated: an HDF5 file of {path.stat().st_size} bytes whose "
                                 f"superblock says {stored}; copy or save it again.")
        return "h5"
    raise ModelFileError(f"{path}: not a Keras model file: neither a .keras file (a zip archive) nor a "
                         f"legacy HDF5 .h5 file.")


def _keras_path(path, kind, scratch):
    """A path with the suffix Keras's load_model wants for this kind (it goes by the name): path
    itself, or a link (else a copy) to it in scratch."""
    if path.suffix.lower() in ((".h5", ".hdf5") if kind == "h5" else (".keras",)):
        return path
    named = Path(scratch) / f"model{KINDS[kind]}"
    try:
        os.symlink(path.resolve(), named)
    except OSError:
        shutil.copyfile(path, named)
    return named


def _require_model_config(path):
    """ModelFileError unless the HDF5 file holds a Keras model (its model_config attribute)."""
    import h5py

    with h5py.File(path, "r") as file:
        if "model_config" not in file.attrs:
            raise ModelFileError(f"{path}: an HDF5 file without a Keras model in it (no model_config); "
                                 f"if it is a data set, give it with --data.")


def load_model_file(path, compile=False):
    """The keras.Model saved at ``path``: a .keras file, or a legacy HDF5 one (.h5, .hdf5), told
    by content (model_file_kind), whatever its name; ModelFileError with one clear line otherwise."""
    path = Path(path)
    kind = model_file_kind(path)
    try:
        if kind == "h5":
            _require_model_config(path)
        with tempfile.TemporaryDirectory(prefix="model-") as scratch:
            model = keras.models.load_model(_keras_path(path, kind, scratch), compile=compile,
                                            custom_objects=CUSTOM_OBJECTS)
    except ModelFileError:
        raise
    except Exception as err:  # Keras and h5py raise many types for a damaged or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFileError(f"{path}: not a loadable Keras model ({reason[:200]}).") from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelFileError(f"{path}: expected a classifier with one image input and one "
                             f"output.")
    return model


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def takes_raw_pixels(model):
    """True when the model scales its input itself (has a Rescaling layer)."""
    return any(isinstance(layer, keras.layers.Rescaling) for layer in _all_layers(model))


def input_shape(model):
    """(height, width, channels) the model expects."""
    return tuple(model.input_shape[1:])


def num_classes(model):
    return int(model.output_shape[-1])


def check_images_fit(model, X, what):
    expected = input_shape(model)
    if tuple(X.shape[1:]) != expected:
        raise ModelFileError(
            f"the model takes images of shape {'x'.join(map(str, expected))} but {what} has "
            f"{'x'.join(map(str, X.shape[1:]))}; evaluate it on the data set it was trained for."
        )


def predict_probabilities(model, X, batch_size=64, raw_pixels=None, mirror_average=False):
    """Class probabilities (m, classes) for uint8 images X (m, h, w, 3).

    ``raw_pixels``: None to ask ``takes_raw_pixels``; False divides by 255 first.
    ``mirror_average``: the mean of the probabilities of each image and of its left-right
    mirror image (test-time augmentation for models trained with random flips).
    """
    if raw_pixels is None:
        raw_pixels = takes_raw_pixels(model)
    if len(X) == 0:
        return np.zeros((0, num_classes(model)), dtype=np.float32)
    scale = 1.0 if raw_pixels else 1.0 / 255.0
    # uint8 in memory, scaled batch by batch: a float copy of a whole data set is 4x larger
    batches = (tf.data.Dataset.from_tensor_slices(np.asarray(X))
               .batch(batch_size)
               .map(lambda x: tf.cast(x, tf.float32) * scale))
    probabilities = np.asarray(model.predict(batches, verbose=0))
    if mirror_average:
        mirrored = batches.map(lambda x: tf.reverse(x, axis=[2]))
        probabilities = (probabilities + np.asarray(model.predict(mirrored, verbose=0))) / 2
    return probabilities


def load_image_for(model, path, crop="hand"):
    """One photo as uint8 (1, h, w, 3) at the model's input size: upright (EXIF), RGB, cut to a
    square as ``crop`` says (CROPS), resized with Lanczos."""
    height, width, _ = input_shape(model)
    if height != width:
        raise ModelFileError(f"the model takes {height}x{width} images; single-image "
                             f"prediction needs a square input.")
    if crop == "hand":
        return load_my_image(path, size=height)
    if crop != "centre":
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    return resized(centre_square(load_photo(path)), height)[np.newaxis]
