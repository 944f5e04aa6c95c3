"""CIFAR-style augmentation of whole batches: pad by 4, random crop back, random flip,
and optionally cutout.

The recipe of He et al. (2015, sec. 4.2); cutout (DeVries & Taylor, 2017) zeroes one
random square of each image, centred anywhere in it (so near an edge it is clipped).
Every image of a batch gets its own crop, flip and square (``keras.layers.RandomCrop``
draws one offset per batch), from stateless random ops seeded by (seed, batch number),
so a pipeline with the same seed repeats exactly.
"""
import tensorflow as tf


def pad_crop_flip(images, seed, padding=4, cutout=0):
    """images: float (batch, h, w, c); seed: int32 tensor of shape (2,); cutout: side of
    the zeroed square, 0 for none. Same shape out."""
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    offsets = tf.random.stateless_uniform((batch, 2), seed=seed, minval=0,
                                          maxval=2 * padding + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(height)          # (batch, h): rows each image keeps
    cols = offsets[:, 1:] + tf.range(width)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform((batch,), seed=seed + [0, 1]) < 0.5
    flipped = tf.where(flip[:, None, None, None], tf.reverse(cropped, axis=[2]), cropped)
    return cut_out(flipped, seed + [0, 2], cutout) if cutout else flipped


def cut_out(images, seed, size):
    """Zero a size x size square of every image, each centred on its own random pixel."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]

    def covered(length, seed):  # (batch, length): which rows (or columns) the square covers
        centre = tf.random.stateless_uniform((batch, 1), seed=seed, minval=0, maxval=length,
                                             dtype=tf.int32)
        offset = tf.range(length) - (centre - size // 2)    # the square may stick out
        return (offset >= 0) & (offset < size)

    square = covered(height, seed)[:, :, None] & covered(width, seed + [0, 1])[:, None, :]
    return tf.where(square[..., None], tf.zeros_like(images), images)


def with_pad_crop_flip(dataset, seed=0, padding=4, cutout=0):
    """Apply pad_crop_flip (with ``cutout``) to every (images, labels) batch of ``dataset``."""
    def augment(index, batch):
        images, labels = batch
        pair = tf.stack([tf.constant(seed, tf.int64), index])
        return pad_crop_flip(images, tf.cast(pair, tf.int32), padding, cutout), labels

    return dataset.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)
