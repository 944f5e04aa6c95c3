"""The ResNet family as data: one builder, every variant a row of a table.

A variant is a *style* (stem, head, shortcut kind and the layer conventions shared by
a group of networks, ``STYLES`` here) plus its stages: blocks per stage and block widths,
d2l-style (the table, ``resnet_course.models.architectures.VARIANTS``, is free of Keras).

- ImageNet style, ``resnet18`` ... ``resnet152``: the stem, head, layer names and
  conventions of ``keras.applications.ResNet50`` (v1: stride on the first 1x1 conv of a
  bottleneck, conv biases, BatchNorm epsilon 1.001e-5, projection shortcuts).
  ResNet-18/34 use torchvision's basic block with the same conventions.
- CIFAR style, ``resnet20`` ... ``resnet110`` (He et al. 2015, sec. 4.2): 3x3 stem with
  16 filters, three stages of n basic blocks at 16/32/64 filters, option A shortcuts
  (parameter-free: subsample and zero-pad channels), He-normal init, weight decay 1e-4.
- ResNet-9, ``resnet9`` (D. Page, "How to train your ResNet", 2018): prep conv 64, then
  stages of 128, 256 and 512 filters, each opened by conv, BN, ReLU and a 2x2 max-pool,
  the first and last followed by one identity basic block; global max-pool head.
- Course style, ``course_resnet50``: ``resnet_course.course.reference.ResNet50`` rebuilt by this
  builder (no padding before the max-pool, AveragePooling2D(2) + Flatten head, the
  course's seeded initializers): same layers in the same order, so the two models'
  weights files are interchangeable.

Every variant also exists as a plain net (``plain=True`` or a name like ``plain50``):
the same layers without the shortcuts and the Add, for the degradation experiment.

Layer names follow keras.applications: ``conv2_block1_1_conv`` is the first conv of the
first block of stage conv2; ``_0_conv``/``_0_bn``/``_0_pad`` are the shortcut's layers.
"""
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable

import keras
from keras import layers
from keras.initializers import GlorotUniform, HeNormal, RandomUniform

from resnet_course.models.architectures import (  # noqa: F401 (MODEL_NAMES: part of this API)
    BOTTLENECK_EXPANSION, MODEL_NAMES, PLAIN_MODEL_NAMES, VARIANTS, plain_name, resolve)
from resnet_course.models.fused import ZeroPadShortcut


# --------------------------------------------------------------------------------------
# Styles: the data (the variants are rows of resnet_course.models.architectures.VARIANTS).
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Style:
    """What a group of variants shares: everything but depth and widths."""

    label: str
    input_shape: tuple          # canonical input size
    min_input_size: int         # smaller inputs shrink to nothing before the head
    stem: Callable              # stem(x, make, filters) -> x
    head: Callable              # head(x, make, classes) -> x
    first_stride: int           # stride of the first stage (later stages use 2)
    shortcut: str               # "projection" (1x1 conv + BN), "zero_pad" (option A), or
                                # "identity" (a style whose blocks never reshape)
    use_bias: bool
    bn_epsilon: float
    weight_decay: float         # default for build_model(weight_decay=None)
    # Kernel initializer class per role: "stem", "first_block" (the first block of a
    # stage), "other_block", "dense".
    initializers: dict = field(default_factory=dict)
    # Seed every initializer gets when the caller passes no seed (None: unseeded).
    default_seed: int | None = None
    # Add([shortcut, main]) as keras.applications, or Add([main, shortcut]) as the
    # course's convolutional_block: Functional lists the layers feeding one layer in
    # the order of its inputs, so this fixes the order of model.layers and the weights.
    add_shortcut_first: bool = True
    # How a stage halves the resolution: "block", its first block strides (He et al.);
    # "conv_pool", it opens with a 3x3 conv to its width, BN, ReLU and a 2x2 max-pool,
    # and its blocks (maybe none) keep the shape (ResNet-9).
    downsample: str = "block"


# ---- stems and heads ------------------------------------------------------------------

def imagenet_stem(x, make, filters, pad_before_pool=True):
    """7x7/2 conv, BN, ReLU, 3x3/2 max-pool (keras.applications; the course omits the
    padding before the pool)."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = make.conv(x, filters, 7, strides=2, padding="valid", role="stem", name="conv1")
    x = make.bn_relu(x, "conv1")
    if pad_before_pool:
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def cifar_stem(x, make, filters):
    """3x3 conv, BN, ReLU at full resolution (He et al. 2015, sec. 4.2)."""
    x = make.conv(x, filters, 3, role="stem", name="conv1")
    return make.bn_relu(x, "conv1")


def global_pool_head(x, make, classes):
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return make.dense(x, classes)


def global_max_pool_head(x, make, classes, scale=0.125):
    """Global max-pool, then the dense layer on ``scale`` times the features: Page's
    ResNet-9 multiplies its logits by 0.125, which keeps the first losses and the
    classifier's steps small (the max of 16 ReLU outputs is large)."""
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    x = layers.Rescaling(scale, name="max_pool_scale")(x)
    return make.dense(x, classes)


def course_head(x, make, classes):
    """The course's head: AveragePooling2D(2) over the final 2x2 map, then Flatten."""
    x = layers.AveragePooling2D(2, name="avg_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    return make.dense(x, classes)


IMAGENET = Style(
    label="ImageNet (keras.applications v1)",
    input_shape=(224, 224, 3), min_input_size=32,
    stem=imagenet_stem, head=global_pool_head, first_stride=1,
    shortcut="projection", use_bias=True, bn_epsilon=1.001e-5, weight_decay=0.0,
    initializers=dict.fromkeys(("stem", "first_block", "other_block", "dense"), GlorotUniform),
)
CIFAR = Style(
    label="CIFAR (He et al. 2015, sec. 4.2)",
    input_shape=(32, 32, 3), min_input_size=8,
    stem=cifar_stem, head=global_pool_head, first_stride=1,
    # Every conv is followed by BatchNorm, whose beta makes a conv bias redundant.
    shortcut="zero_pad", use_bias=False, bn_epsilon=1e-3, weight_decay=1e-4,
    initializers=dict.fromkeys(("stem", "first_block", "other_block", "dense"), HeNormal),
)
COURSE = Style(
    label="course (resnet_course.course.reference.ResNet50)",
    # 37 is the smallest input whose last stage is 2x2, as AveragePooling2D(2) needs.
    input_shape=(64, 64, 3), min_input_size=37,
    stem=partial(imagenet_stem, pad_before_pool=False), head=course_head, first_stride=1,
    shortcut="projection", use_bias=True, bn_epsilon=1e-3, weight_decay=0.0,
    initializers={"stem": GlorotUniform, "first_block": GlorotUniform,
                  "other_block": RandomUniform, "dense": GlorotUniform},
    default_seed=0, add_shortcut_first=False,
)
# D. Page's ResNet-9 ("How to train your ResNet", 2018; the DAWNBench CIFAR-10 entry):
# few, wide layers, which suit short schedules and use a CPU's cores better than the
# 16-channel convs of ResNet-20.
RESNET9 = replace(
    CIFAR, label="ResNet-9 (Page 2018, DAWNBench)", head=global_max_pool_head,
    # Its blocks keep their input's shape, so no shortcut ever needs to reshape.
    shortcut="identity", bn_epsilon=1e-5, weight_decay=5e-4, downsample="conv_pool",
)

# The style keys of resnet_course.models.architectures.VARIANTS.
STYLES = {"imagenet": IMAGENET, "cifar": CIFAR, "resnet9": RESNET9, "course": COURSE}


# --------------------------------------------------------------------------------------
# Layer factory: the conventions of one build (layers, epsilon, init, seeds, decay).
# --------------------------------------------------------------------------------------

class _LayerMaker:
    def __init__(self, style, weight_decay, seed, conv_layer, pointwise_conv_layer, norm_layer,
                 bn_momentum):
        self.style = style
        self.conv_layer = conv_layer or partial(layers.Conv2D, use_bias=style.use_bias)
        self.pointwise_conv_layer = pointwise_conv_layer or self.conv_layer
        self.norm_layer = norm_layer or layers.BatchNormalization
        self.bn_momentum = bn_momentum
        # Keras adds l2 * sum(w**2) to the loss, whose gradient is 2 * l2 * w; halving
        # makes the decay term weight_decay * w, as in the paper's SGD weight decay.
        self.regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
        self.seed = seed
        self.layers_made = 0

    def _initializer(self, role):
        if self.seed is None:
            seed = self.style.default_seed
        else:  # distinct seeds: an initializer with a fixed seed repeats its values
            seed = self.seed + self.layers_made
        self.layers_made += 1
        return self.style.initializers[role](seed=seed)

    def conv(self, x, filters, kernel_size, name, role, strides=1, padding="same"):
        conv_layer = self.pointwise_conv_layer if kernel_size == 1 else self.conv_layer
        return conv_layer(
            filters, kernel_size, strides=strides, padding=padding,
            kernel_initializer=self._initializer(role),
            kernel_regularizer=self.regularizer,
            name=f"{name}_conv",
        )(x)

    def bn(self, x, name):
        return self.norm_layer(axis=3, epsilon=self.style.bn_epsilon, momentum=self.bn_momentum,
                               name=f"{name}_bn")(x)

    def bn_relu(self, x, name):
        return layers.Activation("relu", name=f"{name}_relu")(self.bn(x, name))

    def dense(self, x, classes):
        return layers.Dense(
            classes, activation="softmax",
            kernel_initializer=self._initializer("dense"),
            kernel_regularizer=self.regularizer,
            # Under a mixed-precision policy the softmax still runs in float32, as Keras's
            # mixed-precision guide advises for the output layer.
            dtype="float32" if keras.config.dtype_policy().name.startswith("mixed") else None,
            name="predictions",
        )(x)


# --------------------------------------------------------------------------------------
# Blocks and stages.
# --------------------------------------------------------------------------------------

def shortcut(x, make, kind, channels, stride, role, name):
    """The block's skip path: "identity", "projection" (1x1 conv + BN) or "zero_pad"."""
    if kind == "identity":
        return x
    if kind == "zero_pad":
        return ZeroPadShortcut(stride, channels, name=f"{name}_0_pad")(x)
    x = make.conv(x, channels, 1, strides=stride, padding="valid", role=role,
                  name=f"{name}_0")
    return make.bn(x, f"{name}_0")


def basic_block(x, make, width, stride, role, name):
    """3x3 conv (with the stride), BN, ReLU, 3x3 conv, BN (ResNet-18/34, CIFAR nets)."""
    x = make.conv(x, width, 3, strides=stride, role=role, name=f"{name}_1")
    x = make.bn_relu(x, f"{name}_1")
    x = make.conv(x, width, 3, role=role, name=f"{name}_2")
    return make.bn(x, f"{name}_2")


def bottleneck_block(x, make, width, stride, role, name):
    """1x1 conv (with the stride, as keras.applications v1), 3x3 conv, 1x1 conv to 4x."""
    x = make.conv(x, width, 1, strides=stride, padding="valid", role=role, name=f"{name}_1")
    x = make.bn_relu(x, f"{name}_1")
    x = make.conv(x, width, 3, role=role, name=f"{name}_2")
    x = make.bn_relu(x, f"{name}_2")
    x = make.conv(x, width * BOTTLENECK_EXPANSION, 1, padding="valid", role=role,
                  name=f"{name}_3")
    return make.bn(x, f"{name}_3")


MAIN_PATHS = {"basic": basic_block, "bottleneck": bottleneck_block}


def residual_block(x, make, variant, width, stride, first_in_stage, plain, name):
    """Main path plus skip path, added, then ReLU; a plain block drops the skip path."""
    channels = variant.out_channels(width)
    role = "first_block" if first_in_stage else "other_block"
    main_path = MAIN_PATHS[variant.block]
    if plain:
        y = main_path(x, make, width, stride, role, name)
    else:
        reshapes = stride != 1 or x.shape[-1] != channels
        kind = make.style.shortcut if reshapes else "identity"
        s = shortcut(x, make, kind, channels, stride, role, name)
        y = main_path(x, make, width, stride, role, name)
        operands = [s, y] if make.style.add_shortcut_first else [y, s]
        y = layers.Add(name=f"{name}_add")(operands)
    return layers.Activation("relu", name=f"{name}_out")(y)


def conv_pool(x, make, width, name):
    """ResNet-9's way into a stage: 3x3 conv to the new width, BN, ReLU, 2x2 max-pool."""
    x = make.conv(x, width, 3, role="first_block", name=f"{name}_pool")
    x = make.bn_relu(x, f"{name}_pool")
    return layers.MaxPooling2D(2, name=f"{name}_pool_pool")(x)


def stage(x, make, variant, width, blocks, stride, plain, name):
    """``blocks`` blocks; the first one carries the stride and the change of width
    (unless the style opens the stage with ``conv_pool``, which does both)."""
    if make.style.downsample == "conv_pool":
        x, stride = conv_pool(x, make, width, name), 1
    for i in range(blocks):
        x = residual_block(x, make, variant, width, stride if i == 0 else 1,
                           first_in_stage=i == 0, plain=plain, name=f"{name}_block{i + 1}")
    return x


# --------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------

def describe(name):
    """One human-readable table row, e.g. for --help or the README."""
    key, plain = resolve(name)
    v = VARIANTS[key]
    style = STYLES[v.style]
    out = "x4 out" if v.block == "bottleneck" else "out = width"
    skip = "no shortcuts" if plain else f"{style.shortcut} shortcuts"
    if style.downsample == "conv_pool":
        skip = f"stem {v.stem_width}, each stage opens with conv + max-pool, {skip}"
    shape = "x".join(map(str, style.input_shape))
    return (f"{plain_name(key) if plain else key:<16} {style.label}; {v.block} blocks "
            f"{'-'.join(map(str, v.blocks))}, widths {'-'.join(map(str, v.widths))} "
            f"({out}), {skip}, input {shape}")


def build_model(name, input_shape, classes, plain=False, weight_decay=None, seed=None,
                conv_layer=None, pointwise_conv_layer=None, norm_layer=None, bn_momentum=0.99):
    """Build a ResNet (or its plain twin) as a keras.Model named after the variant.

    Arguments:
    name -- one of MODEL_NAMES, or of PLAIN_MODEL_NAMES (which implies plain=True)
    input_shape -- (height, width, channels), channels last
    classes -- number of classes of the softmax output
    plain -- drop every shortcut and Add (the degradation experiment's baseline)
    weight_decay -- L2 weight decay on conv and dense kernels (gradient term
                    weight_decay * w); None: the style's default, 1e-4 for the CIFAR
                    nets, 5e-4 for resnet9, none otherwise; 0 disables it
    seed -- int: reproducible initial weights (each layer gets seed + its index);
            None: random, except course_resnet50, which then uses the course's seed 0
    conv_layer -- what makes each convolution, called like keras.layers.Conv2D(filters,
                 kernel_size, strides=, padding=, kernel_initializer=, kernel_regularizer=,
                 name=) (as torchvision's norm_layer); None: Conv2D with the style's bias
                 convention (biases in the ImageNet and course nets, as keras.applications
                 and the course). ``partial(Conv2D, use_bias=False)`` drops them: every conv
                 feeds a BatchNorm, which subtracts the batch mean, so a conv bias gets no
                 gradient and dropping it changes nothing but speed and the count.
    pointwise_conv_layer -- the same for the 1x1 convolutions (None: conv_layer), e.g.
                 resnet_course.models.fused.MatMulConv2D, one matrix product (faster on oneDNN)
    norm_layer -- called like keras.layers.BatchNormalization(axis=, epsilon=, momentum=,
                 name=); None: that class. resnet_course.models.fused.FusedBatchNormalization is
                 the same math and weights in one TensorFlow kernel (faster)
    bn_momentum -- BatchNorm momentum of the moving statistics (Keras's default 0.99)
    (resnet_course.models.fused.FAST_LAYERS: the trainer's fastest choice of the three layers)
    """
    key, named_plain = resolve(name)
    plain = plain or named_plain
    variant = VARIANTS[key]
    style = STYLES[variant.style]
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or min(input_shape[:2]) < style.min_input_size:
        raise ValueError(
            f"{key} needs input_shape (height, width, channels) with height and width "
            f">= {style.min_input_size}, got {input_shape}; its usual size is "
            f"{style.input_shape}."
        )
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}.")
    if weight_decay is None:
        weight_decay = style.weight_decay

    make = _LayerMaker(style, weight_decay, seed, conv_layer, pointwise_conv_layer, norm_layer,
                       bn_momentum)
    inputs = keras.Input(input_shape)
    x = style.stem(inputs, make, variant.stem_width or variant.widths[0])
    for i, (blocks, width) in enumerate(zip(variant.blocks, variant.widths)):
        stride = style.first_stride if i == 0 else 2
        x = stage(x, make, variant, width, blocks, stride, plain, name=f"conv{i + 2}")
    outputs = style.head(x, make, classes)
    return keras.Model(inputs, outputs, name=plain_name(key) if plain else key)

