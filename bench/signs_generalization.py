"""Does the SIGNS model hold up beyond its own split? Train the course ResNet50 with one augmentation
set and print the test accuracy and the stress curve (resnet_course.learner.stress), plain and framed.

    .venv/bin/python bench/signs_generalization.py                          # the notebook's recipe
    .venv/bin/python bench/signs_generalization.py --augment course --epochs 12  # the old recipe
    .venv/bin/python bench/signs_generalization.py --label-smoothing 0.1 --seed 2
    .venv/bin/python bench/signs_generalization.py --mixup 0.2              # mix pairs of augmented photos
    .venv/bin/python bench/signs_generalization.py --save /tmp/s0.keras     # keep the network ...
    .venv/bin/python bench/signs_generalization.py --load /tmp/s0.keras --tta-stretch 1.25  # ... re-evaluate it

Prints the machine and versions, one line per epoch, then one `RESULT {json}` line for the log
(bench/signs_generalization.md): fit seconds, test accuracy (also mirror-averaged, as the notebook's
saved model predicts) and the wrong test photos, the accuracy at every stress severity on the images
as they are and framed by hand_framing.model_view (what load_my_image does; also mirror-averaged),
the recall of every sign (mirror-averaged) on the test split and at every severity, and the accuracy
on perturb_images' milder copy; when datasets/heldout_signs.h5 is there, the accuracy and recall per
sign on those held-out photos from another source (resnet_course.data.heldout), alone and mirror-averaged.
--train-data DIR trains on DIR/train_signs.h5 (e.g. a mixed training set) and still tests on datasets/.

    .venv/bin/python bench/signs_generalization.py --train-data /tmp/mixed   # another training set
"""
import argparse
import json
import time
from pathlib import Path

from resnet_course.learner import tf_environment

tf_environment.apply_defaults()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from resnet_course.course.reference import ResNet50  # noqa: E402
from resnet_course.learner.hand_framing import model_view  # noqa: E402
from resnet_course.learner.signs_files import load_dataset, load_split  # noqa: E402
from resnet_course.learner.stress import SEVERITIES, recall_per_class, stress_images  # noqa: E402
from resnet_course.learner.training import (  # noqa: E402
    RandomColourTemperature,
    cosine_schedule,
    make_augmenter,
    make_train_dataset,
    set_batchnorm_momentum,
)
from resnet_course.machine import machine_line  # noqa: E402
from resnet_course.paths import DATASETS_DIR  # noqa: E402

HELDOUT = DATASETS_DIR / "heldout_signs.h5"
from resnet_course.training.inference import predict_probabilities  # noqa: E402
from resnet_course.training.perturbations import perturb_images  # noqa: E402

L = keras.layers


class RandomCastShadow(L.Layer):
    """The hand's shadow on the wall: the pixels whose chromaticity differs from the top and side
    borders' (the hand, hand_framing's rule with a fixed threshold), moved by up to offset of the
    frame in a random direction and blurred, darken the others by up to darkness."""

    def __init__(self, darkness, offset, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.darkness, self.offset, self.seed_generator = darkness, offset, keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        if not training:
            return images
        ops, batch, size = keras.ops, keras.ops.shape(images)[0], images.shape[1]
        chroma = images[..., :2] / (ops.sum(images, axis=-1, keepdims=True) + 0.01)
        border = (ops.mean(chroma[:, :3], axis=(1, 2)) + ops.mean(chroma[:, :, :3], axis=(1, 2))
                  + ops.mean(chroma[:, :, -3:], axis=(1, 2)))[:, None, None, :] / 3
        hand = ops.cast(ops.norm(chroma - border, axis=-1, keepdims=True) > 0.04, images.dtype)
        angle = keras.random.uniform((batch,), 0, 2 * np.pi, seed=self.seed_generator)
        distance = keras.random.uniform((batch,), 0, self.offset * size, seed=self.seed_generator)
        zero, one = ops.zeros_like(angle), ops.ones_like(angle)
        moves = ops.stack([one, zero, -distance * ops.cos(angle), zero, one, -distance * ops.sin(angle),
                           zero, zero], axis=1)
        shadow = ops.image.affine_transform(hand, moves, fill_mode="constant")
        shadow = ops.average_pool(ops.average_pool(shadow, 5, 1, "same"), 5, 1, "same")
        darkness = keras.random.uniform((batch, 1, 1, 1), 0, self.darkness, seed=self.seed_generator)
        return images * (1 - darkness * shadow * (1 - hand))


def turned_and_shadowed(seed):
    """The notebook's set with a cast shadow first and a turned hand (horizontal squeeze up to 40 %
    and shear) after the flip."""
    layers = make_augmenter(seed).layers
    return keras.Sequential([RandomCastShadow(0.5, 0.15, seed=seed + 7), layers[0],
                             L.RandomZoom(0.0, (0.0, 0.4), fill_mode="nearest", seed=seed + 8),
                             L.RandomShear(0.15, 0.0, fill_mode="nearest", seed=seed + 9), *layers[1:]])


def mildly_turned(seed):
    """The notebook's set with a milder turned hand after the flip and no cast shadow: a horizontal
    squeeze up to 20 % and a horizontal shear up to 7.5 % (half of turned_and_shadowed's)."""
    layers = make_augmenter(seed).layers
    return keras.Sequential([layers[0], L.RandomZoom(0.0, (0.0, 0.2), fill_mode="nearest", seed=seed + 8),
                             L.RandomShear(0.075, 0.0, fill_mode="nearest", seed=seed + 9), *layers[1:]])


# The sets compared in bench/signs_generalization.md; "notebook" is training.make_augmenter.
AUGMENTERS = {
    "notebook": make_augmenter,
    "turned": turned_and_shadowed,
    "turned_mild": mildly_turned,
    "course": lambda seed: keras.Sequential([  # the recipe before issue 13
        L.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
        L.RandomZoom(0.1, fill_mode="nearest", seed=seed + 1),
        L.RandomRotation(0.04, fill_mode="nearest", seed=seed + 2),
        L.RandomBrightness(0.2, value_range=(0.0, 1.0), seed=seed + 3),
        L.RandomContrast(0.2, value_range=(0.0, 1.0), seed=seed + 4)]),
    "strong": lambda seed: keras.Sequential([  # zoom out to half size, shifts of 20 %
        L.RandomFlip("horizontal", seed=seed),
        L.RandomRotation(0.125, fill_mode="nearest", seed=seed + 1),
        L.RandomZoom((-0.1, 0.5), fill_mode="nearest", seed=seed + 2),
        L.RandomTranslation(0.2, 0.2, fill_mode="nearest", seed=seed + 3),
        L.RandomBrightness(0.3, value_range=(0.0, 1.0), seed=seed + 4),
        L.RandomContrast(0.3, value_range=(0.0, 1.0), seed=seed + 5),
        RandomColourTemperature(0.15, seed=seed + 6)]),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--augment", choices=sorted(AUGMENTERS), default="notebook")
    p.add_argument("--epochs", type=int, default=22)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--mixup", type=float, default=0.0, metavar="ALPHA",
                   help="after the augmenter, blend each batch's images and labels with a shuffled copy's "
                        "(keras.layers.MixUp; weights ~ Beta(ALPHA, ALPHA)); 0: off")
    p.add_argument("--ema", action="store_true", help="Adam's exponential moving average of the weights")
    p.add_argument("--train-data", metavar="DIR", default=None,
                   help="train on DIR/train_signs.h5 instead of datasets/ (test, stress and held-out as usual)")
    p.add_argument("--save", metavar="PATH", help="also save the trained network (.keras, takes 0-1 pixels)")
    p.add_argument("--load", metavar="PATH", help="evaluate this saved network instead of training one")
    p.add_argument("--tta-stretch", type=float, default=None, metavar="FACTOR",
                   help="also average over copies stretched sideways by FACTOR about the centre (and mirrored)")
    return p.parse_args(argv)


def mixed(mix_layer):
    """A tf.data map function: a batch (images, one-hot labels) through a Keras mixing layer
    (MixUp, CutMix), which blends images and labels together."""
    def mix(images, labels):
        blended = mix_layer({"images": images, "labels": labels}, training=True)
        return blended["images"], blended["labels"]
    return mix


def predicted(model, X, flip_average=False):
    """Inference-mode predicted classes for uint8 images X; flip_average: from the mean of the
    probabilities for each image and its mirror image (test-time augmentation)."""
    return predict_probabilities(model, X, raw_pixels=False, mirror_average=flip_average).argmax(axis=1)


def stretched(X, factor):
    """uint8 images X (m, h, w, 3) stretched sideways by factor about the centre column (linear
    interpolation, edge columns repeated): a turned hand made wide again."""
    width = X.shape[2]
    source = np.clip(((np.arange(width) - (width - 1) / 2) / factor + (width - 1) / 2), 0, width - 1)
    low = np.floor(source).astype(int)
    high, weight = np.minimum(low + 1, width - 1), (source - low)[None, None, :, None]
    X = X.astype(np.float32)
    return np.round(X[:, :, low] * (1 - weight) + X[:, :, high] * weight).astype(np.uint8)


def tta_predicted(model, X, factor):
    """Classes from the mean probabilities of X, its stretched copy and both mirror images."""
    return sum(predict_probabilities(model, images, raw_pixels=False, mirror_average=True)
               for images in (X, stretched(X, factor))).argmax(axis=1)


def accuracy(model, X, y, flip_average=False):
    return float(np.mean(predicted(model, X, flip_average) == y))


def main(argv=None):
    options = parse_args(argv)
    print(machine_line(), flush=True)
    X_train, Y_train, X_test, Y_test, _ = load_dataset()
    if options.train_data:
        X_train, Y_train, _ = load_split(Path(options.train_data) / "train_signs.h5", "train")
    y_train, y_test = Y_train.reshape(-1), Y_test.reshape(-1)
    if options.load:
        evaluate(keras.models.load_model(options.load), X_test, y_test,
                 {"load": options.load, "fit_seconds": None}, options.tta_stretch)
        return
    keras.utils.set_random_seed(options.seed)
    model = ResNet50((64, 64, 3), 6)
    set_batchnorm_momentum(model, 0.9)
    steps = len(X_train) // options.batch_size
    model.compile(optimizer=keras.optimizers.Adam(cosine_schedule(options.epochs, steps, 1e-3, 1),
                                                  use_ema=options.ema),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=options.label_smoothing),
                  metrics=["accuracy"])
    dataset = make_train_dataset(X_train, keras.utils.to_categorical(y_train, 6), options.batch_size,
                                 augment=False, seed=options.seed)
    augmenter = AUGMENTERS[options.augment](options.seed)
    dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels))
    if options.mixup:
        dataset = dataset.map(mixed(keras.layers.MixUp(options.mixup, seed=options.seed + 10)))
    start = time.perf_counter()
    model.fit(dataset, epochs=options.epochs, steps_per_epoch=steps, verbose=2)
    fit_seconds = time.perf_counter() - start
    if options.save:
        model.save(options.save)
    evaluate(model, X_test, y_test, {"augment": options.augment, "epochs": options.epochs, "seed": options.seed,
              "label_smoothing": options.label_smoothing, "mixup": options.mixup, "ema": options.ema,
              "train_data": options.train_data, "train_images": int(len(y_train)),
              "fit_seconds": round(fit_seconds, 1)}, options.tta_stretch)


def evaluate(model, X_test, y_test, result, tta_stretch=None):
    """Print the RESULT line: result's settings and the model's accuracies, and the recall of every
    class (the share of its photos predicted right) with mirror averaging, as the saved model predicts
    (tta_stretch: also with tta_predicted's averaging)."""
    def scores(X):  # accuracy of the network alone, accuracy and recall per class mirror-averaged
        alone, mirrored = predicted(model, X), predicted(model, X, flip_average=True)
        return (float(np.mean(alone == y_test)), float(np.mean(mirrored == y_test)),
                [round(float(r), 3) for r in recall_per_class(y_test, mirrored, 6)])

    errors = np.flatnonzero(predicted(model, X_test) != y_test)
    result["test"], result["test_flip_average"], result["recall_test_flip_average"] = scores(X_test)
    stressed = {s: stress_images(X_test, s) for s in SEVERITIES}
    framed = {s: np.stack([model_view(x) for x in stressed[s]]) for s in SEVERITIES}
    for name, sets in (("stress", stressed), ("stress_framed", framed)):
        results = {s: scores(sets[s]) for s in SEVERITIES}
        result[name] = {s: r[0] for s, r in results.items()}
        result[name + "_flip_average"] = {s: r[1] for s, r in results.items()}
        result["recall_" + name + "_flip_average"] = {s: r[2] for s, r in results.items()}
    if tta_stretch:
        result["tta_stretch"] = tta_stretch
        for name, X in [("test", X_test)] + [(f"stress_framed_{s}", framed[s]) for s in SEVERITIES]:
            guesses = tta_predicted(model, X, tta_stretch)
            result[f"tta_{name}"] = [round(float(np.mean(guesses == y_test)), 4),
                                     [round(float(r), 3) for r in recall_per_class(y_test, guesses, 6)]]
    result["test_errors"] = [[int(i), int(y_test[i])] for i in errors]
    result["perturbed"] = accuracy(model, perturb_images(X_test, seed=0), y_test)
    if HELDOUT.is_file():  # real photos from another source (signs 1-5), as they are
        X_held, y_held, _ = load_split(HELDOUT, "test")
        alone, mirrored = predicted(model, X_held), predicted(model, X_held, flip_average=True)
        result["heldout"] = float(np.mean(alone == y_held))
        result["heldout_flip_average"] = float(np.mean(mirrored == y_held))
        result["recall_heldout_flip_average"] = [round(float(r), 3) for r in recall_per_class(y_held, mirrored, 6)]
    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
