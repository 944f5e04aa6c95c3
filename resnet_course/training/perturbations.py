"""perturb_images: a mild, fixed "taken elsewhere" copy of SIGNS images, the measure used before
the stress set (resnet_course.learner.stress) replaced it in the notebook; the benchmarks still report it
(bench/signs_recipe.md, bench/signs_generalization.md), so their old and new runs compare.
"""
import keras
import numpy as np

from resnet_course.learner.training import to_unit_range


def perturb_images(X, seed=0):
    """A fixed copy of X (m, 64, 64, 3; float in [0, 1] or uint8, kept) like photos taken elsewhere:
    each image its own shift, rotation, zoom, light (brightness, contrast, colour cast), blur and
    sensor noise. Same seed, same copy."""
    rng = np.random.default_rng(seed)
    geometry = keras.Sequential([
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed),
        keras.layers.RandomRotation(0.03, fill_mode="nearest", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 2)])
    images = geometry(to_unit_range(X), training=True).numpy()
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
