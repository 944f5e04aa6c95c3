"""Load a saved .keras classifier and get class probabilities for uint8 images.

A model saved by train.py has its input scaling inside (``resnet_course.training.with_input_scaling``:
it takes raw 0-255 pixels); a model saved straight after ``model.fit`` on ``X / 255``
(as a notebook might) takes 0-1 pixels.  ``takes_raw_pixels`` tells them apart by the
Rescaling layer, so callers always pass uint8 images.
"""
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

# The custom layers and optimizers a saved model or checkpoint may hold, for load_model.
from resnet_course.fused import CUSTOM_OBJECTS
from resnet_course.hand_framing import centre_square, resized
# ImageError: what load_image_for raises, for its callers (evaluate.py).
from resnet_course.signs_files import ImageError, load_my_image, load_photo  # noqa: F401

# How a photo is cut to a model's square input: "hand" finds the hand against the plain
# background (hand_framing, as the notebook's load_my_image does: SIGNS models), "centre"
# takes the largest centred square (any other kind of photo, e.g. for CIFAR-10 models).
CROPS = ("hand", "centre")


class ModelFileError(ValueError):
    """The file is missing or is not a Keras model this code can load."""


def load_model_file(path, compile=False):
    """The keras.Model saved at ``path`` (.keras); ModelFileError with one clear line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found; give the .keras file written by "
                             f"train.py (DIR/model.keras) or by the notebook.")
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: not a .keras file; save models with model.save("
                             f"'name.keras') (Keras 3 format).")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a Keras model file (a .keras file is a zip archive, "
                             f"this one is not; it may be truncated): save it again.")
    try:
        model = keras.models.load_model(path, compile=compile, custom_objects=CUSTOM_OBJECTS)
    except Exception as err:  # Keras raises many types for a damaged or foreign file
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
