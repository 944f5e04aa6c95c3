"""Fused TensorFlow kernels for training speed: the math of Keras's own layers and optimizers
in fewer passes over memory.

Keras 3 computes BatchNormalization and the optimizers' updates as chains of elementwise
ops, each a full pass over a large tensor; on a 2-core CPU these passes, not the
convolutions, are what separates the trainer from the matmul limit (bench/train_speed.md
has the measurements). TensorFlow has one-kernel versions of the same math:

- ``FusedBatchNormalization``: ``keras.layers.BatchNormalization`` computed by
  ``FusedBatchNormV3`` (oneDNN on x86), which also updates the moving statistics.
  Same variables and config, so weights move freely between the two classes and
  ``portable_model`` turns a model back into plain Keras layers for saving.
  One difference: the fused kernel's moving variance uses the unbiased batch variance
  (n / (n - 1), n = batch x height x width values per channel), Keras's the biased one.
- ``MatMulConv2D``: ``keras.layers.Conv2D`` whose 1x1 convolutions run as one matrix
  product over all pixels (a strided 1x1 convolution first takes every stride-th pixel).
  A 1x1 convolution is exactly that product; oneDNN's matmul kernels (forward and both
  gradients) are faster than its 1x1 convolution kernels here and need no weight reorder.
  Same variables and config as Conv2D; ``portable_model`` turns it back into Conv2D.
- ``FusedAdam`` / ``FusedSGD``: ``keras.optimizers.Adam`` / ``SGD`` whose per-variable
  update is ``ResourceApplyAdam`` / ``ResourceApplyKerasMomentum`` / ``ResourceApplyGradientDescent``,
  the same formulas as Keras's ``update_step``.

Also here: ``ZeroPadShortcut`` (the parameter-free option A shortcut of the CIFAR nets), so that
this one module holds every custom class a saved model or checkpoint may contain
(``CUSTOM_OBJECTS``, which ``resnet_course.training.inference`` passes to ``keras.models.load_model``).

Anything these kernels do not cover (another backend, masks, renorm, amsgrad,
non-float32 variables, ...) falls back to the Keras implementation, so the
classes are always safe to use.
"""
import math
from functools import partial

import keras
import tensorflow as tf
from keras import ops

# FusedBatchNormV3 rejects a smaller epsilon (cuDNN's limit, enforced on every device).
MIN_FUSED_EPSILON = 1.001e-5


def _tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


@keras.saving.register_keras_serializable(package="resnet_course")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization through TensorFlow's fused kernel (NHWC, 4-D input)."""

    def _fusable(self, inputs, mask):
        return (_tensorflow_backend() and mask is None and not self.renorm
                and len(inputs.shape) == 4 and self.axis in (-1, 3)
                and self.epsilon >= MIN_FUSED_EPSILON)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        # The kernel takes bfloat16/float16 activations with float32 statistics, so the
        # activations are not upcast as Keras's own layer does.
        scale = self.gamma if self.scale else tf.ones((channels,), "float32")
        offset = self.beta if self.center else tf.zeros((channels,), "float32")
        is_training = bool(training) and self.trainable
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=scale, offset=offset,
            mean=self.moving_mean, variance=self.moving_variance,
            epsilon=self.epsilon,
            # moving = momentum * moving + (1 - momentum) * batch, inside the kernel
            exponential_avg_factor=1.0 - self.momentum,
            data_format="NHWC", is_training=is_training,
        )
        if is_training:
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return tf.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="resnet_course")
class MatMulConv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D that computes a 1x1 convolution (channels last) as one MatMul."""

    def _as_matmul(self, inputs):
        return (_tensorflow_backend() and len(inputs.shape) == 4 and inputs.shape[-1] is not None
                and self.kernel_size == (1, 1) and self.dilation_rate == (1, 1)
                and self.groups == 1 and self.data_format == "channels_last")

    def convolution_op(self, inputs, kernel):
        if not self._as_matmul(inputs):
            return super().convolution_op(inputs, kernel)
        # With a 1x1 kernel neither padding mode pads: output pixel (i, j) is input pixel
        # (i * stride, j * stride).
        if self.strides != (1, 1):
            inputs = inputs[:, :: self.strides[0], :: self.strides[1], :]
        pixels = tf.shape(inputs)[:-1]
        flat = tf.matmul(tf.reshape(inputs, (-1, inputs.shape[-1])),
                         tf.reshape(kernel, (kernel.shape[2], kernel.shape[3])))
        return tf.reshape(flat, tf.concat([pixels, [self.filters]], axis=0))


PORTABLE_CLASSES = {FusedBatchNormalization: keras.layers.BatchNormalization,
                    MatMulConv2D: keras.layers.Conv2D}


def portable_model(model, dtype="float32"):
    """A copy of ``model`` (nested models included) with every layer of this module
    replaced by the Keras layer it stands for (PORTABLE_CLASSES), same config and weights,
    so that the saved file loads anywhere Keras does. ``dtype``: the copy's layer dtype
    policy (float32 undoes a mixed-precision training policy; None keeps each layer's own)."""

    def clone(layer):
        config = layer.get_config()
        if dtype is not None and "dtype" in config:
            config["dtype"] = dtype
        return PORTABLE_CLASSES.get(type(layer), type(layer)).from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _fused_update_possible(variable):
    # On the TensorFlow backend update_step receives the tf.Variable itself (weight
    # decay, applied before update_step, is unaffected).
    return (_tensorflow_backend() and hasattr(variable, "handle")
            and keras.backend.standardize_dtype(variable.dtype) == "float32")


@keras.saving.register_keras_serializable(package="resnet_course")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose update is one ResourceApplyAdam kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not _fused_update_possible(variable):
            return super().update_step(gradient, variable, learning_rate)
        step = tf.cast(self.iterations + 1, "float32")
        index = self._get_variable_index(variable)
        beta_1 = tf.cast(self.beta_1, "float32")
        beta_2 = tf.cast(self.beta_2, "float32")
        # Same as Keras: lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t),
        # variable -= lr_t * m / (sqrt(v) + epsilon).
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, "float32"), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, "float32"), grad=tf.cast(gradient, "float32"),
        )


@keras.saving.register_keras_serializable(package="resnet_course")
class FusedSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD whose update is one kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if not _fused_update_possible(variable):
            return super().update_step(gradient, variable, learning_rate)
        lr = tf.cast(learning_rate, "float32")
        gradient = tf.cast(gradient, "float32")
        if not self.momentum:
            tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=lr, delta=gradient)
            return
        # Keras's formula: m = momentum * m - lr * g; variable += m (nesterov:
        # variable += momentum * m - lr * g), which is what this kernel computes.
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle, accum=self.momentums[self._get_variable_index(variable)].handle,
            lr=lr, grad=gradient, momentum=tf.cast(self.momentum, "float32"),
            use_nesterov=self.nesterov,
        )


FUSED_OPTIMIZERS = {"adam": FusedAdam, "sgd": FusedSGD}


# ---- the option A shortcut: a layer of its own so that saved models reload ----

@keras.saving.register_keras_serializable(package="resnet_course")
class ZeroPadShortcut(keras.layers.Layer):
    """Option A shortcut of He et al. (2015): keeps every ``stride``-th pixel and pads
    the channels with zeros up to ``channels``; it has no parameters."""

    def __init__(self, stride, channels, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)
        self.channels = int(channels)

    def build(self, input_shape):
        if input_shape[-1] > self.channels:
            raise ValueError(
                f"ZeroPadShortcut {self.name!r} can only add channels: input has "
                f"{input_shape[-1]}, target is {self.channels}."
            )

    def call(self, x):
        x = x[:, :: self.stride, :: self.stride, :]
        extra = self.channels - x.shape[-1]
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])

    def compute_output_shape(self, input_shape):
        def subsampled(size):
            return None if size is None else math.ceil(size / self.stride)

        batch, height, width, _ = input_shape
        return (batch, subsampled(height), subsampled(width), self.channels)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "channels": self.channels}


# The trainer's layers (build_model's factories): no conv biases (the BatchNorm after every
# conv cancels them), BatchNorm in one fused kernel, 1x1 convolutions as one matrix product
# each. Speed without changing the math (bench/train_speed.md).
FAST_LAYERS = {"conv_layer": partial(keras.layers.Conv2D, use_bias=False),
               "pointwise_conv_layer": partial(MatMulConv2D, use_bias=False),
               "norm_layer": FusedBatchNormalization}

# What a saved model or checkpoint of this project may hold besides Keras's own classes
# (inference.load_model_file passes it to keras.models.load_model).
CUSTOM_OBJECTS = {cls.__name__: cls for cls in (FusedBatchNormalization, MatMulConv2D,
                                                 ZeroPadShortcut, FusedAdam, FusedSGD)}
