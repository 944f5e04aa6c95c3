"""The learner's training helpers (training_utils.py, a copy of resnet_course/learner/training.py), on
tiny arrays and tiny models."""
import keras
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf

from display_utils import plot_confusion_matrix, plot_history
from resnet_course.training.perturbations import perturb_images
from training_utils import (
    batchnorm_layers,
    cosine_schedule,
    make_augmenter,
    make_train_dataset,
    mirror,
    recalibrate_batchnorm,
    save_for_inference,
    set_batchnorm_momentum,
    with_input_scaling,
)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def labels():
    return np.eye(6, dtype="float32")[np.arange(10) % 6]


def tiny_model(momentum=0.99):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization(axis=3, momentum=momentum)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))


def first_batches(dataset, n):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


@pytest.mark.parametrize("augment", [False, True])
def test_train_dataset_gives_full_float_batches_forever(images, labels, augment):
    batches = first_batches(make_train_dataset(images, labels, batch_size=4, augment=augment), 7)
    assert len(batches) == 7  # 10 images, yet 7 batches of 4: the pipeline repeats
    for x, y in batches:
        assert x.shape == (4, 16, 16, 3) and x.dtype == np.float32
        assert y.shape == (4, 6) and y.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_train_dataset_scales_uint8_and_keeps_float_inputs(images, labels):
    from_uint8 = first_batches(make_train_dataset(images, labels, 4, augment=False, seed=3), 3)
    from_float = first_batches(make_train_dataset(images / 255.0, labels, 4, augment=False, seed=3), 3)
    for (a, ya), (b, yb) in zip(from_uint8, from_float):
        np.testing.assert_allclose(a, b, atol=1e-6)
        np.testing.assert_array_equal(ya, yb)


def test_train_dataset_keeps_image_label_pairs_when_shuffling(images, labels):
    # Label the images by their mean brightness so we can check which label travels with which image.
    x = np.repeat(np.arange(10, dtype="float32")[:, None, None, None] / 10, 16, axis=1)
    x = np.repeat(np.repeat(x, 16, axis=2), 3, axis=3)
    y = np.eye(10, dtype="float32")
    for batch, onehot in first_batches(make_train_dataset(x, y, 5, augment=False), 4):
        np.testing.assert_allclose(batch.mean(axis=(1, 2, 3)) * 10, onehot.argmax(axis=1), atol=1e-5)


def test_train_dataset_is_reproducible_and_reshuffles_each_epoch(images, labels):
    a = first_batches(make_train_dataset(images, labels, 5, augment=True, seed=1), 4)
    b = first_batches(make_train_dataset(images, labels, 5, augment=True, seed=1), 4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    epoch1 = np.concatenate([x for x, _ in a[:2]])
    epoch2 = np.concatenate([x for x, _ in a[2:]])
    assert not np.allclose(epoch1, epoch2)  # new order and new random changes in the next epoch


def test_train_dataset_rejects_mismatched_lengths(images, labels):
    with pytest.raises(ValueError, match="10 images but Y has 9 labels"):
        make_train_dataset(images, labels[:9])


def test_augmenter_keeps_shape_and_range_and_changes_images(images):
    x = images.astype("float32") / 255
    out = make_augmenter(seed=0)(x, training=True).numpy()
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, x)


def test_recalibrate_sets_moving_statistics_to_the_data_statistics(images):
    model = tiny_model()
    conv, bn = model.layers[1], model.layers[2]
    x = images.astype("float32") / 255
    recalibrate_batchnorm(model, x, batch_size=4)  # batches of 4, 4 and 2 images
    features = conv(x).numpy()
    np.testing.assert_allclose(bn.moving_mean.numpy(), features.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), features.var(axis=(0, 1, 2)), rtol=1e-3, atol=1e-5)
    assert bn.momentum == 0.99  # the layer's own momentum is given back


def test_recalibrate_changes_no_trained_weight(images):
    model = tiny_model()
    trained = [w.numpy().copy() for w in model.trainable_weights]
    recalibrate_batchnorm(model, images.astype("float32") / 255, batch_size=4)
    for before, after in zip(trained, model.trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())


def test_batchnorm_layers_finds_layers_of_nested_models():
    assert len(list(batchnorm_layers(with_input_scaling(tiny_model())))) == 1


def test_set_batchnorm_momentum_reaches_nested_layers_and_changes_the_update():
    model = tiny_model()
    set_batchnorm_momentum(with_input_scaling(model), 0.5)
    bn = model.layers[2]
    assert bn.momentum == 0.5
    x = np.ones((2, 16, 16, 3), dtype="float32")
    batch_mean = model.layers[1](x).numpy().mean(axis=(0, 1, 2))
    model(x, training=True)  # moving mean: 0.5 * 0 + 0.5 * batch mean
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.5 * batch_mean, rtol=1e-4, atol=1e-6)


def test_perturb_images_is_deterministic_and_keeps_dtype_and_range(images):
    x = images.astype("float32") / 255
    a, b = perturb_images(x, seed=0), perturb_images(x, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert not np.allclose(a, x)
    assert not np.allclose(a, perturb_images(x, seed=1))
    as_uint8 = perturb_images(images, seed=0)
    assert as_uint8.dtype == np.uint8
    assert np.abs(as_uint8.astype(float) / 255 - a).max() <= 1 / 255 + 1e-6


def test_with_input_scaling_saves_loads_and_matches_the_model_on_scaled_images(images, tmp_path):
    model = tiny_model()
    expected = model.predict(images / 255.0, verbose=0)
    wrapped = with_input_scaling(model)
    path = tmp_path / "signs.keras"
    wrapped.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(loaded.predict(images.astype("float32"), verbose=0), expected, atol=1e-5)


def test_save_for_inference_leaves_the_optimizer_state_out(images, labels, tmp_path):
    model = tiny_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.fit(images / 255.0, labels, epochs=1, verbose=0)
    expected = model.predict(images / 255.0, verbose=0)
    with_optimizer = tmp_path / "with_optimizer.keras"
    with_input_scaling(model).save(with_optimizer)
    path = tmp_path / "signs.keras"
    save_for_inference(model, path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-5)
    assert getattr(loaded, "optimizer", None) is None
    assert model.optimizer is not None  # the model itself can still train
    # Adam's two moments per weight stay behind: the file holds the weights once, not thrice
    weights_bytes = sum(w.numpy().nbytes for w in model.weights)
    assert with_optimizer.stat().st_size - path.stat().st_size > 1.5 * weights_bytes


def test_cosine_schedule_warms_up_then_decays_to_zero():
    schedule = cosine_schedule(epochs=5, steps_per_epoch=10, peak_learning_rate=1e-3, warmup_epochs=1)
    rates = [float(schedule(step)) for step in range(51)]
    assert rates[0] == 0.0
    assert rates[10] == pytest.approx(1e-3)
    assert rates[5] == pytest.approx(5e-4)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))
    assert rates[50] == pytest.approx(0.0, abs=1e-9)


def test_plot_history_draws_loss_and_accuracy():
    history = {"loss": [1.0, 0.5], "accuracy": [0.5, 0.8], "val_loss": [1.1, 0.7], "val_accuracy": [0.4, 0.7]}
    fig = plot_history(history)
    loss_ax, accuracy_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(accuracy_ax.lines) == 2
    np.testing.assert_array_equal(accuracy_ax.lines[0].get_ydata(), [0.5, 0.8])
    plt.close(fig)


def test_plot_confusion_matrix_counts_pairs():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.eye(3)[[0, 1, 1, 2, 2, 0]]  # one-hot predictions are accepted too
    fig = plot_confusion_matrix(y_true, y_pred, ["a", "b", "c"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "1", "0", "0", "1", "0", "1", "0", "2"]
    plt.close(fig)


def test_save_for_inference_with_mirror_average_answers_the_mean_over_each_image_and_its_mirror(
        images, tmp_path):
    # tiny_model is not mirror-symmetric (its convolution is not), so the average is a new answer.
    model = tiny_model()
    alone = model.predict(images / 255.0, verbose=0)
    mirrored = model.predict(images[:, :, ::-1] / 255.0, verbose=0)
    assert np.abs(alone - mirrored).max() > 1e-4
    path = tmp_path / "signs.keras"
    returned = save_for_inference(model, path, mirror_average=True)
    loaded = keras.models.load_model(path)
    for predictor in (returned, loaded):
        np.testing.assert_allclose(predictor.predict(images, verbose=0), (alone + mirrored) / 2, atol=1e-5)
        # a photo and its mirror image get the same answer
        np.testing.assert_allclose(predictor.predict(images[:, :, ::-1], verbose=0),
                                   predictor.predict(images, verbose=0), atol=1e-5)
    assert any(isinstance(layer, keras.layers.Rescaling) for layer in loaded.layers)  # takes 0-255


def test_mirror_swaps_left_and_right_exactly():
    images = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3)).astype("float32")
    inputs = keras.Input((5, 7, 3))
    mirrored = keras.Model(inputs, mirror(inputs)).predict(images, verbose=0)
    np.testing.assert_array_equal(mirrored, images[:, :, ::-1])

