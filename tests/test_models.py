"""The ResNet family builder: structure against keras.applications and the course
reference, parameter counts, plain twins, option A shortcut, saving, seeds, decay."""
from functools import lru_cache

import keras
import numpy as np
import pytest

from resnet_course.course import reference
from resnet_course.models import resnet
from resnet_course.models.fused import ZeroPadShortcut
from resnet_course.models.resnet import MODEL_NAMES, PLAIN_MODEL_NAMES, build_model

CIFAR_NAMES = ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
CIFAR10_NETS = (*CIFAR_NAMES, "resnet9")  # the variants made for 32x32 CIFAR-10
IMAGENET_CLASSES, CIFAR_CLASSES, COURSE_CLASSES = 1000, 10, 6


def layer_table(model):
    """(class name, layer name, output shape) of every layer but the input."""
    return [(type(l).__name__, l.name, tuple(l.output.shape)) for l in model.layers[1:]]


def class_names(model):
    return [type(l).__name__ for l in model.layers]


def count(model, layer_class, name_suffix=""):
    return sum(isinstance(l, layer_class) and l.name.endswith(name_suffix) for l in model.layers)


def small_shape(name):
    """32x32 for every variant but the course's, whose AveragePooling2D(2) head needs 64."""
    return (64, 64, 3) if name.startswith("course") else (32, 32, 3)


def canonical_classes(name):
    if name.startswith("course"):
        return COURSE_CLASSES
    cifar = name in CIFAR10_NETS or name.replace("plain", "resnet") in CIFAR10_NETS
    return CIFAR_CLASSES if cifar else IMAGENET_CLASSES


@lru_cache(maxsize=None)
def small_model(name):
    """Every variant once, at a small input and its dataset's number of classes. With a
    global-average-pool head the parameter count does not depend on the input size."""
    return build_model(name, small_shape(name), canonical_classes(name), seed=0)


def tiny_batch(shape, n=2):
    return np.random.default_rng(0).uniform(0, 1, (n, *shape)).astype("float32")


# ---- names and errors ----------------------------------------------------------------

def test_names():
    assert MODEL_NAMES == ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
                           "resnet9", "course_resnet50")
    assert "plain20" in PLAIN_MODEL_NAMES and "plain50" in PLAIN_MODEL_NAMES
    assert "course_plain50" in PLAIN_MODEL_NAMES
    assert {variant.style for variant in resnet.VARIANTS.values()} == set(resnet.STYLES)
    for name in MODEL_NAMES + PLAIN_MODEL_NAMES:
        row = resnet.describe(name)
        assert row.startswith(name) and "blocks" in row


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="resnet20.*plain110"):
        build_model("resnet19", (32, 32, 3), 10)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="course_resnet50 needs input_shape"):
        build_model("course_resnet50", (32, 32, 3), 6)


def test_model_names_follow_the_variant():
    assert build_model("resnet20", (32, 32, 3), 10).name == "resnet20"
    assert build_model("resnet20", (32, 32, 3), 10, plain=True).name == "plain20"
    assert build_model("plain20", (32, 32, 3), 10).name == "plain20"


# ---- ImageNet style against keras.applications ---------------------------------------

def test_resnet50_matches_keras_applications():
    ours = build_model("resnet50", (224, 224, 3), 1000)
    theirs = keras.applications.ResNet50(weights=None)
    assert layer_table(ours) == layer_table(theirs)
    assert ours.count_params() == theirs.count_params() == 25_636_712
    # The widely published 25,557,032 (torchvision) counts trainable weights of convs
    # without bias: the same network, once the conv biases Keras adds are taken away.
    trainable = sum(int(np.prod(w.shape)) for w in ours.trainable_weights)
    conv_biases = sum(int(layer.bias.shape[0]) for layer in ours.layers
                      if isinstance(layer, keras.layers.Conv2D))
    assert trainable - conv_biases == 25_557_032


@pytest.mark.parametrize("name, params", [("resnet101", 44_707_176), ("resnet152", 60_419_944)])
def test_deep_bottleneck_counts_match_keras_applications(name, params):
    assert small_model(name).count_params() == params


# ---- CIFAR style -----------------------------------------------------------------------

@pytest.mark.parametrize("name, paper_params", [
    ("resnet20", 0.27e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6)])
def test_cifar_param_counts_match_the_paper(name, paper_params):
    model = small_model(name)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == pytest.approx(paper_params, rel=0.03)


def test_cifar_depth_is_6n_plus_2():
    for name in CIFAR_NAMES:
        model = small_model(name)
        weighted = count(model, keras.layers.Conv2D) + count(model, keras.layers.Dense)
        assert weighted == int(name.removeprefix("resnet"))
        assert count(model, keras.layers.Conv2D, "_0_conv") == 0  # option A: no projection
        assert count(model, ZeroPadShortcut) == 2          # entering stages 3 and 4


def test_zero_pad_shortcut_subsamples_and_pads_channels():
    x = tiny_batch((5, 5, 2))
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(2, 4)(x))
    assert y.shape == (2, 3, 3, 4)
    np.testing.assert_array_equal(y[..., :2], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 2:], 0)


def test_cifar_model_survives_a_keras_file_round_trip(tmp_path):
    model = build_model("resnet20", (32, 32, 3), 10, seed=1)
    path = tmp_path / "resnet20.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = tiny_batch((32, 32, 3))
    np.testing.assert_array_equal(model.predict(x, verbose=0), reloaded.predict(x, verbose=0))
    assert reloaded.name == "resnet20"


# ---- ResNet-9 ---------------------------------------------------------------------------

def test_resnet9_is_pages_network():
    """Prep conv 64; conv-pool 128 + a block; conv-pool 256; conv-pool 512 + a block; global
    max-pool; the dense layer on 0.125 x the features (D. Page, "How to train your ResNet")."""
    model = small_model("resnet9")
    convs = [l for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(l.name, l.filters, tuple(l.output.shape[1:3])) for l in convs] == [
        ("conv1_conv", 64, (32, 32)),
        ("conv2_pool_conv", 128, (32, 32)),
        ("conv2_block1_1_conv", 128, (16, 16)), ("conv2_block1_2_conv", 128, (16, 16)),
        ("conv3_pool_conv", 256, (16, 16)),
        ("conv4_pool_conv", 512, (8, 8)),
        ("conv4_block1_1_conv", 512, (4, 4)), ("conv4_block1_2_conv", 512, (4, 4))]
    assert count(model, keras.layers.Dense) == 1 and count(model, keras.layers.Add) == 2
    assert count(model, keras.layers.MaxPooling2D) == 3
    assert count(model, keras.layers.GlobalMaxPooling2D) == 1
    assert model.get_layer("max_pool_scale").scale == 0.125
    # Page's 6,573,120 (convs and dense without bias, BatchNorm scale and shift) + 10 biases
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 6_573_130
    assert "conv + max-pool, identity shortcuts" in resnet.describe("resnet9")


# ---- the course's ResNet50 -------------------------------------------------------------

def test_course_variant_is_the_reference_resnet50(tmp_path):
    ref = reference.ResNet50(input_shape=(64, 64, 3), classes=6)
    ours = build_model("course_resnet50", (64, 64, 3), 6)
    assert class_names(ours) == class_names(ref)
    assert [l.output.shape for l in ours.layers] == [l.output.shape for l in ref.layers]
    assert ours.count_params() == ref.count_params() == 23_600_006
    # Same initializers and seeds, same layer order: the very same initial weights.
    for a, b in zip(ours.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Weights files are interchangeable (Keras addresses them by layer order and class).
    seeded = build_model("course_resnet50", (64, 64, 3), 6, seed=1)
    path = tmp_path / "course.weights.h5"
    seeded.save_weights(path)
    ref.load_weights(path)
    x = tiny_batch((64, 64, 3))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(seeded(x, training=False)),
                                  keras.ops.convert_to_numpy(ref(x, training=False)))


# ---- plain twins and forward passes --------------------------------------------------

@pytest.mark.parametrize("name", MODEL_NAMES)
def test_plain_twin_drops_only_shortcuts_and_adds(name):
    residual = small_model(name)
    plain = small_model(resnet.plain_name(name))
    assert count(residual, keras.layers.Add) > 0
    assert count(plain, keras.layers.Add) == 0
    assert count(plain, ZeroPadShortcut) == 0
    projections = count(residual, keras.layers.Conv2D, "_0_conv")
    assert count(plain, keras.layers.Conv2D) == count(residual, keras.layers.Conv2D) - projections
    assert count(plain, keras.layers.Conv2D, "_0_conv") == 0
    # Everything but the skip paths is the same: same layers in the same order.
    skip = ("_add", "_0_conv", "_0_bn", "_0_pad")
    assert [row for row in layer_table(residual) if not row[1].endswith(skip)] == layer_table(plain)


@pytest.mark.parametrize("name", MODEL_NAMES + PLAIN_MODEL_NAMES)
def test_forward_pass_on_a_tiny_batch(name):
    model = small_model(name)
    probs = keras.ops.convert_to_numpy(model(tiny_batch(small_shape(name)), training=False))
    assert probs.shape == (2, canonical_classes(name))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


# ---- seeds and weight decay ----------------------------------------------------------

def test_seed_makes_weights_reproducible_and_distinct_per_layer():
    first = build_model("resnet20", (32, 32, 3), 10, seed=3).get_weights()
    again = build_model("resnet20", (32, 32, 3), 10, seed=3).get_weights()
    other = build_model("resnet20", (32, 32, 3), 10, seed=4).get_weights()
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    same_shape = [w for w in first if w.shape == (3, 3, 16, 16)]
    assert not np.array_equal(same_shape[0], same_shape[1])


def kernel_regularizers(model):
    return [l.kernel_regularizer for l in model.layers
            if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]


def test_weight_decay_defaults_per_style():
    cifar = kernel_regularizers(small_model("resnet20"))
    assert all(r is not None and r.l2 == pytest.approx(0.5e-4) for r in cifar)
    assert all(r is None for r in kernel_regularizers(small_model("resnet18")))
    assert all(r is None for r in kernel_regularizers(
        build_model("resnet20", (32, 32, 3), 10, weight_decay=0)))
    decayed = kernel_regularizers(build_model("resnet18", (32, 32, 3), 10, weight_decay=1e-3))
    assert all(r.l2 == pytest.approx(0.5e-3) for r in decayed)
