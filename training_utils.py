# Generated from the course's learner/training.py; edit that, not this copy.
"""Training helpers for the ResNet50 assignment: a ResNet50 trained on 1,080 photos on a CPU in
minutes that works in inference mode (BatchNorm's moving statistics) and on photos taken elsewhere.
"""
import keras
import numpy as np
import tensorflow as tf

from resnets_utils import check_versions

check_versions(tf.__version__, keras.__version__)  # what is imported is what runs

# The plots live in display_utils; notebooks written before still import them from here.
from display_utils import plot_confusion_matrix, plot_history  # noqa: E402, F401


def to_unit_range(X):
    """Float32 images in [0, 1]: uint8 images are divided by 255, float images kept as they are."""
    X = tf.convert_to_tensor(X)
    return tf.cast(X, tf.float32) / 255.0 if X.dtype == tf.uint8 else tf.cast(X, tf.float32)


class RandomColourTemperature(keras.layers.Layer):
    """Warmer or colder light: red x (1 + t), green x (1 + t/3), blue x (1 - t), t ~ U(+-amount)."""

    def __init__(self, amount, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.amount, self.seed_generator = amount, keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        t = keras.random.uniform((keras.ops.shape(images)[0], 1, 1, 1), -self.amount, self.amount,
                                 seed=self.seed_generator)
        gains = keras.ops.concatenate([1 + t, 1 + t / 3, 1 - t], axis=-1)
        return keras.ops.clip(images * gains, 0.0, 1.0)


def make_augmenter(seed=0):
    """Random changes to every training image (in [0, 1]), each like a photo taken elsewhere: the
    other hand (flip; never vertical), tilt, distance, place, light (brightness, contrast, colour
    temperature). Why these ranges: bench/signs_generalization.md."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.125, fill_mode="nearest", seed=seed + 1),  # +-45 degrees
        keras.layers.RandomZoom((-0.1, 0.3), fill_mode="nearest", seed=seed + 2),  # 10% in, 30% out
        keras.layers.RandomTranslation(0.12, 0.12, fill_mode="nearest", seed=seed + 3),
        keras.layers.RandomBrightness(0.25, value_range=(0.0, 1.0), seed=seed + 4),
        keras.layers.RandomContrast(0.25, value_range=(0.0, 1.0), seed=seed + 5),
        RandomColourTemperature(0.12, seed=seed + 6)], name="augmenter")


def make_train_dataset(X, Y, batch_size=32, augment=True, seed=0):
    """One endless tf.data pipeline (no pause between epochs) of shuffled, augmented full batches
    of X (m, 64, 64, 3; float in [0, 1], or uint8) and one-hot Y (m, classes), reproducible by seed:
        model.fit(make_train_dataset(X, Y), epochs=..., steps_per_epoch=len(X) // batch_size,
                  shuffle=False)  # the pipeline shuffles; shuffle=False silences a Keras notice"""
    if len(X) != len(Y):
        raise ValueError(f"make_train_dataset: X has {len(X)} images but Y has {len(Y)} labels; "
                         "pass the images and the one-hot labels of the same examples.")
    dataset = tf.data.Dataset.from_tensor_slices((X, np.asarray(Y, dtype="float32")))
    dataset = dataset.shuffle(len(X), seed=seed).repeat().batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda images, labels: (to_unit_range(images), labels))
    if augment:
        augmenter = make_augmenter(seed)
        dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def cosine_schedule(epochs, steps_per_epoch, peak_learning_rate=1e-3, warmup_epochs=1):
    """Learning rate rising linearly from 0 for warmup_epochs (no large first steps while the
    BatchNorm statistics settle), then falling to 0 along a cosine (weights come to rest)."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=(epochs - warmup_epochs) * steps_per_epoch,
        warmup_target=peak_learning_rate, warmup_steps=warmup_epochs * steps_per_epoch)


def set_batchnorm_momentum(model, momentum=0.9):
    """Set the momentum of every BatchNorm layer (before compile): each batch moves the averages
    predict() uses 1 - momentum towards its statistics. Keras's 0.99 (~100 batches, 3 epochs here)
    lags the changing weights (30 % test accuracy after 8 epochs); 0.9 follows them: 100 %."""
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
    """Set every BatchNorm layer's moving mean and variance to its statistics over X, which the
    moving averages of a short training miss (they remember the early weights): runs the FINAL
    model over X (as the model takes it, unaugmented) in training mode in shuffled batches (seed:
    their order); no weight learns. (set_batchnorm_momentum(model, 0.9) makes it unneeded.)"""
    layers = list(batchnorm_layers(model))
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0  # a training-mode call then stores exactly that batch's statistics
    sums, sums_of_squares = [0.0] * len(layers), [0.0] * len(layers)
    # Compiled once (after the momentum change, which it captures): about 3x faster than eager.
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


def with_input_scaling(model, mirror_average=False):
    """A model sharing model's weights that takes raw images (0-255) and divides them by 255.
    mirror_average: it returns the mean of model's probabilities for each image and for its
    mirror image (left and right swapped: what the training's random flips taught the model to
    see alike), so no prediction depends on which hand signs or on which side it stands."""
    inputs = keras.Input(model.input_shape[1:], name="image_0_255")
    scaled = keras.layers.Rescaling(1.0 / 255, name="rescale_to_0_1")(inputs)
    outputs = model(scaled)
    if mirror_average:
        mirrored = model(mirror(scaled))
        outputs = keras.layers.Average(name="mirror_average")([outputs, mirrored])
    return keras.Model(inputs, outputs, name=f"{model.name}_with_input_scaling")


def mirror(images):
    """Images (batch, h, w, c) with left and right swapped, made of plain layers only (a saved
    keras.ops.flip is an operation whose config Keras 3.8, for one, rejects): width moved last,
    multiplied by a fixed reversed identity matrix, moved back."""
    width = images.shape[2]
    reverse = keras.layers.Dense(width, use_bias=False, trainable=False, name="reverse_width")
    width_last = keras.layers.Permute((1, 3, 2), name="width_last")(images)
    flipped = reverse(width_last)
    reverse.set_weights([np.eye(width, dtype="float32")[::-1]])  # exact: one 1 per row and column
    return keras.layers.Permute((1, 3, 2), name="width_back")(flipped)


def save_for_inference(model, path, mirror_average=False):
    """Save model for predicting, with its input scaling (it takes raw 0-255 images), with
    mirror averaging if asked (with_input_scaling) and without the optimizer's state, which only
    training needs (a third of the size); returns the copy."""
    scaled = with_input_scaling(model, mirror_average)
    copy = keras.models.clone_model(scaled)  # new layers, not compiled: no optimizer
    copy.set_weights(scaled.get_weights())
    copy.save(path)
    return copy
