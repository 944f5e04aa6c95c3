"""Does the SIGNS model hold up beyond its own split? Train the course ResNet50 with one augmentation
set and print the test accuracy and the stress curve (resnet_course.stress), plain and framed.

    .venv/bin/python bench/signs_generalization.py                          # the notebook's recipe
    .venv/bin/python bench/signs_generalization.py --augment course --epochs 12  # the old recipe
    .venv/bin/python bench/signs_generalization.py --label-smoothing 0.1 --seed 2

Prints the machine and versions, one line per epoch, then one `RESULT {json}` line for the log
(bench/signs_generalization.md): fit seconds, test accuracy (also mirror-averaged, as the notebook's
saved model predicts) and the wrong test photos, the accuracy at every stress severity on the images
as they are and framed by hand_framing.model_view (what load_my_image does; also mirror-averaged),
and the accuracy on perturb_images' milder copy.
"""
import argparse
import json
import time

from resnet_course import tf_environment

tf_environment.apply_defaults()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from resnet_course.hand_framing import model_view  # noqa: E402
from resnet_course.inference import predict_probabilities  # noqa: E402
from resnet_course.machine import machine_line  # noqa: E402
from resnet_course.perturbations import perturb_images  # noqa: E402
from resnet_course.reference import ResNet50  # noqa: E402
from resnet_course.signs_files import load_dataset  # noqa: E402
from resnet_course.stress import SEVERITIES, stress_images  # noqa: E402
from resnet_course.training import (  # noqa: E402
    RandomColourTemperature,
    cosine_schedule,
    make_augmenter,
    make_train_dataset,
    set_batchnorm_momentum,
)

L = keras.layers
# The sets compared in bench/signs_generalization.md; "notebook" is training.make_augmenter.
AUGMENTERS = {
    "notebook": make_augmenter,
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
    p.add_argument("--ema", action="store_true", help="Adam's exponential moving average of the weights")
    p.add_argument("--save", metavar="PATH", help="also save the trained network (.keras, takes 0-1 pixels)")
    p.add_argument("--load", metavar="PATH", help="evaluate this saved network instead of training one")
    return p.parse_args(argv)


def predicted(model, X, flip_average=False):
    """Inference-mode predicted classes for uint8 images X; flip_average: from the mean of the
    probabilities for each image and its mirror image (test-time augmentation)."""
    return predict_probabilities(model, X, raw_pixels=False, mirror_average=flip_average).argmax(axis=1)


def accuracy(model, X, y, flip_average=False):
    return float(np.mean(predicted(model, X, flip_average) == y))


def main(argv=None):
    options = parse_args(argv)
    print(machine_line(), flush=True)
    X_train, Y_train, X_test, Y_test, _ = load_dataset()
    y_train, y_test = Y_train.reshape(-1), Y_test.reshape(-1)
    if options.load:
        evaluate(keras.models.load_model(options.load), X_test, y_test,
                 {"load": options.load, "fit_seconds": None})
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
    start = time.perf_counter()
    model.fit(dataset, epochs=options.epochs, steps_per_epoch=steps, verbose=2)
    fit_seconds = time.perf_counter() - start
    if options.save:
        model.save(options.save)
    evaluate(model, X_test, y_test, {"augment": options.augment, "epochs": options.epochs, "seed": options.seed,
              "label_smoothing": options.label_smoothing, "ema": options.ema,
              "fit_seconds": round(fit_seconds, 1)})


def evaluate(model, X_test, y_test, result):
    """Print the RESULT line: result's settings and the model's accuracies."""
    test_predictions = predicted(model, X_test)
    errors = np.flatnonzero(test_predictions != y_test)
    result["test"] = float(np.mean(test_predictions == y_test))
    result["test_flip_average"] = accuracy(model, X_test, y_test, flip_average=True)
    stressed = {s: stress_images(X_test, s) for s in SEVERITIES}
    result["stress"] = {s: accuracy(model, stressed[s], y_test) for s in SEVERITIES}
    framed = {s: np.stack([model_view(x) for x in stressed[s]]) for s in SEVERITIES}
    result["stress_framed"] = {s: accuracy(model, framed[s], y_test) for s in SEVERITIES}
    result["stress_framed_flip_average"] = {s: accuracy(model, framed[s], y_test, flip_average=True)
                                            for s in SEVERITIES}
    result["test_errors"] = [[int(i), int(y_test[i])] for i in errors]
    result["perturbed"] = accuracy(model, perturb_images(X_test, seed=0), y_test)
    print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
