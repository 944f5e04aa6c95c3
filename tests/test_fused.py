"""resnet_course.models.fused computes what Keras's own layer and optimizers compute."""
from functools import partial

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_course.models import resnet
from resnet_course.models.fused import (FAST_LAYERS, FusedAdam, FusedBatchNormalization, FusedSGD,
                                        MatMulConv2D, portable_model)


def _bn_pair(momentum=0.9, epsilon=1e-3, shape=(8, 5, 5, 4)):
    keras_bn = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)
    fused_bn = FusedBatchNormalization(momentum=momentum, epsilon=epsilon)
    keras_bn.build(shape)
    fused_bn.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=4).astype("float32"), rng.normal(size=4).astype("float32"),
               rng.normal(size=4).astype("float32"), rng.uniform(0.5, 2, size=4).astype("float32")]
    keras_bn.set_weights(weights)
    fused_bn.set_weights(weights)
    x = tf.constant(rng.normal(2.0, 3.0, size=shape).astype("float32"))
    return keras_bn, fused_bn, x


def test_fused_batchnorm_matches_keras_in_inference():
    keras_bn, fused_bn, x = _bn_pair()
    np.testing.assert_allclose(fused_bn(x, training=False), keras_bn(x, training=False),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused_bn(x), keras_bn(x), rtol=1e-5, atol=1e-5)


def test_fused_batchnorm_matches_keras_in_training_outputs_gradients_and_statistics():
    keras_bn, fused_bn, x = _bn_pair()
    results = []
    for layer in (keras_bn, fused_bn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 5.0))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append((y, grads, layer.moving_mean.numpy(), layer.moving_variance.numpy()))
    (y_k, g_k, mean_k, var_k), (y_f, g_f, mean_f, var_f) = results
    np.testing.assert_allclose(y_f, y_k, rtol=1e-4, atol=1e-4)
    for got, expected in zip(g_f, g_k):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean_f, mean_k, rtol=1e-5)
    # The fused kernel keeps the unbiased batch variance: n / (n - 1) of Keras's.
    n = 8 * 5 * 5
    batch_var = tf.math.reduce_variance(x, axis=(0, 1, 2)).numpy()
    initial = keras_bn.moving_variance.numpy() - 0.1 * batch_var  # undo Keras's update
    np.testing.assert_allclose(var_f, initial + 0.1 * batch_var * n / (n - 1), rtol=1e-4)


def test_fused_batchnorm_frozen_layer_uses_moving_statistics():
    keras_bn, fused_bn, x = _bn_pair()
    fused_bn.trainable = False
    before = fused_bn.moving_mean.numpy()
    np.testing.assert_allclose(fused_bn(x, training=True), keras_bn(x, training=False),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(fused_bn.moving_mean.numpy(), before)


def test_fused_batchnorm_takes_bfloat16_activations():
    _, fused_bn, x = _bn_pair()
    fused_bn = FusedBatchNormalization(dtype="mixed_bfloat16")
    y = fused_bn(tf.cast(x, "bfloat16"), training=True)
    assert y.dtype == tf.bfloat16
    assert fused_bn.moving_mean.dtype == "float32"


def test_fused_batchnorm_falls_back_where_the_kernel_cannot_go():
    # 2-D input and a tiny epsilon: the Keras computation, not an error.
    layer = FusedBatchNormalization(epsilon=1e-6)
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 3)).astype("float32"))
    y = layer(x, training=True)
    np.testing.assert_allclose(tf.reduce_mean(y, axis=0), 0, atol=1e-5)


def _train(optimizer, steps=3, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(3)])
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = rng.normal(size=(32, 3)).astype("float32")
    model.fit(x, y, batch_size=8, epochs=steps, verbose=0, shuffle=False)
    return model.get_weights()


@pytest.mark.parametrize("fused, reference", [
    (lambda: FusedAdam(1e-2), lambda: keras.optimizers.Adam(1e-2)),
    (lambda: FusedSGD(0.1, momentum=0.9), lambda: keras.optimizers.SGD(0.1, momentum=0.9)),
    (lambda: FusedSGD(0.1, momentum=0.9, nesterov=True),
     lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    (lambda: FusedSGD(0.1), lambda: keras.optimizers.SGD(0.1)),
    (lambda: FusedSGD(keras.optimizers.schedules.CosineDecay(0.1, 10), momentum=0.9,
                      weight_decay=1e-2),
     lambda: keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.1, 10),
                                  momentum=0.9, weight_decay=1e-2)),
], ids=["adam", "sgd-momentum", "sgd-nesterov", "sgd-plain", "sgd-schedule-decay"])
def test_fused_optimizers_follow_the_keras_update(fused, reference):
    for got, expected in zip(_train(fused()), _train(reference())):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_fused_model_trains_like_the_keras_model_and_exports_portable(tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, size=(16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10
    trained = []
    for fused in (False, True):
        model = resnet.build_model("resnet20", (32, 32, 3), 10, seed=3,
                                   norm_layer=FusedBatchNormalization if fused else None)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        trained.append(model)
    keras_model, fused_model = trained
    assert any(isinstance(layer, FusedBatchNormalization) for layer in fused_model.layers)
    np.testing.assert_allclose(fused_model.predict(x, verbose=0),
                               keras_model.predict(x, verbose=0), rtol=2e-3, atol=2e-3)

    portable = portable_model(fused_model)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in portable.layers)
    # Same layers in the same order (clone_model renames only the Input).
    assert ([layer.name for layer in portable.layers[1:]]
            == [layer.name for layer in fused_model.layers[1:]])
    path = tmp_path / "model.keras"
    portable.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), fused_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides, padding, size, use_bias", [
    (1, "valid", 5, False), (2, "valid", 5, True), (2, "same", 6, False), (2, "same", 7, True),
    ((1, 2), "valid", 5, False),
])
def test_matmul_conv_matches_keras_conv_outputs_and_gradients(strides, padding, size, use_bias):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, size, size + 1, 4)).astype("float32"))
    layers = [cls(6, 1, strides=strides, padding=padding, use_bias=use_bias)
              for cls in (keras.layers.Conv2D, MatMulConv2D)]
    for layer in layers:
        layer.build(x.shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in layers[0].get_weights()]
    results = []
    for layer in layers:
        layer.set_weights(weights)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.range(1.0, 7.0))
        results.append((y, tape.gradient(loss, [x, *layer.trainable_weights])))
    (y_conv, g_conv), (y_matmul, g_matmul) = results
    assert y_matmul.shape == y_conv.shape
    np.testing.assert_allclose(y_matmul, y_conv, rtol=1e-5, atol=1e-5)
    for got, expected in zip(g_matmul, g_conv):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_matmul_conv_takes_bfloat16_and_leaves_other_kernels_to_keras():
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 6, 6, 4)).astype("float32"))
    with_policy = MatMulConv2D(8, 1, dtype="mixed_bfloat16")
    assert with_policy(x).dtype == tf.bfloat16
    conv3, matmul3 = keras.layers.Conv2D(8, 3), MatMulConv2D(8, 3)  # not 1x1: Keras's own op
    conv3.build(x.shape)
    matmul3.build(x.shape)
    matmul3.set_weights(conv3.get_weights())
    np.testing.assert_allclose(matmul3(x), conv3(x), rtol=1e-6, atol=1e-6)


def test_matmul_pointwise_model_equals_the_conv_model_and_exports_as_conv(tmp_path):
    x = np.random.default_rng(2).uniform(0, 1, size=(4, 64, 64, 3)).astype("float32")
    no_bias = partial(keras.layers.Conv2D, use_bias=False)
    conv_model = resnet.build_model("course_resnet50", (64, 64, 3), 6, seed=5, conv_layer=no_bias)
    matmul_model = resnet.build_model("course_resnet50", (64, 64, 3), 6, seed=5, conv_layer=no_bias,
                                      pointwise_conv_layer=partial(MatMulConv2D, use_bias=False))
    pointwise = [layer for layer in matmul_model.layers if isinstance(layer, MatMulConv2D)]
    # every 1x1 conv of the 16 bottlenecks (2 each) and the 4 projections; not the 7x7/3x3
    assert len(pointwise) == 36
    assert all(layer.kernel_size == (1, 1) for layer in pointwise)
    np.testing.assert_allclose(matmul_model.predict(x, verbose=0),
                               conv_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    portable = portable_model(matmul_model)
    assert not any(isinstance(layer, MatMulConv2D) for layer in portable.layers)
    portable.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                               matmul_model.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_dropping_conv_biases_matches_the_bias_free_count():
    with_bias = resnet.build_model("resnet50", (224, 224, 3), 1000)
    without = resnet.build_model("resnet50", (224, 224, 3), 1000,
                                 conv_layer=partial(keras.layers.Conv2D, use_bias=False))
    trainable = sum(int(np.prod(w.shape)) for w in without.trainable_weights)
    assert trainable == 25_557_032
    assert with_bias.count_params() - without.count_params() == 26_560


def test_the_builder_takes_the_layers_and_the_batchnorm_momentum():
    model = resnet.build_model("course_resnet50", (64, 64, 3), 6, bn_momentum=0.9, **FAST_LAYERS)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 53
    assert all(isinstance(layer, FusedBatchNormalization) and layer.momentum == 0.9 for layer in norms)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert not any(layer.use_bias for layer in convs)
    assert all(isinstance(layer, MatMulConv2D) == (layer.kernel_size == (1, 1)) for layer in convs)
    default = resnet.build_model("course_resnet50", (64, 64, 3), 6)
    assert all(type(layer) is keras.layers.Conv2D and layer.use_bias
               for layer in default.layers if isinstance(layer, keras.layers.Conv2D))
    assert {layer.momentum for layer in default.layers
            if isinstance(layer, keras.layers.BatchNormalization)} == {0.99}
