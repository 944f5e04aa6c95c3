"""Train the course ResNet50 on the SIGNS data with one recipe and print what it measures.

    .venv/bin/python bench/signs_recipe.py                     # the chosen recipe
    .venv/bin/python bench/signs_recipe.py --bn-momentum 0.99  # the same with Keras's default momentum

Prints the machine and versions, then per epoch: seconds, images/s, loss and accuracy on
the (augmented) training batches; at the end the test accuracy in inference mode (BatchNorm
moving statistics), with batch statistics, after recalibrate_batchnorm, and on the perturbed
test copy, plus one `RESULT {json}` line for the log (bench/signs_recipe.md).
"""
import argparse
import json
import time

from resnet_course.learner import tf_environment

tf_environment.apply_defaults()  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from resnet_course.course.reference import ResNet50  # noqa: E402
from resnet_course.learner.signs_files import load_dataset  # noqa: E402
from resnet_course.learner.training import (  # noqa: E402
    batchnorm_layers,
    cosine_schedule,
    make_augmenter,
    make_train_dataset,
    recalibrate_batchnorm,
    set_batchnorm_momentum,
)
from resnet_course.machine import machine_line  # noqa: E402
from resnet_course.paths import DATASETS_DIR  # noqa: E402
from resnet_course.training.perturbations import perturb_images  # noqa: E402


PERTURBED_COPIES = 5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak (or constant) learning rate")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="cosine",
                   help="cosine: linear warm-up then cosine decay to 0 (cosine_schedule)")
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--bn-momentum", type=float, default=0.9,
                   help="set every BatchNorm layer's momentum before compile (Keras default 0.99)")
    p.add_argument("--augment", choices=["none", "default", "flip"], default="default",
                   help="default: make_augmenter; flip: make_augmenter plus a random horizontal flip")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--eval-every-epoch", action="store_true",
                   help="also print the inference-mode test accuracy after every epoch (costs time)")
    p.add_argument("--save-weights", help="save the trained weights (before any recalibration) here")
    p.add_argument("--load-weights", help="skip training: evaluate these weights (saved by --save-weights)")
    p.add_argument("--data-dir", default=str(DATASETS_DIR))
    return p.parse_args(argv)


class EpochClock(keras.callbacks.Callback):
    """Wall time of every epoch, and optionally the inference-mode test accuracy after it."""

    def __init__(self, images_per_epoch, X_test=None, Y_test=None):
        super().__init__()
        self.images_per_epoch = images_per_epoch
        self.X_test, self.Y_test = X_test, Y_test
        self.seconds = []
        self.test_accuracy = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        self.seconds.append(seconds)
        line = (f"epoch {epoch + 1:3d}: {seconds:6.1f} s, {self.images_per_epoch / seconds:6.1f} images/s, "
                f"loss {logs['loss']:.4f}, train acc (augmented batches) {logs['accuracy']:.3f}")
        if self.X_test is not None:
            self.test_accuracy.append(accuracy(self.model.predict(self.X_test, verbose=0), self.Y_test))
            line += f", test acc (inference) {self.test_accuracy[-1]:.3f}"
        print(line, flush=True)


def accuracy(probabilities, Y_onehot):
    return float(np.mean(np.argmax(probabilities, axis=1) == np.argmax(Y_onehot, axis=1)))


def batch_statistics_accuracy(model, X, Y, batch_size):
    """Accuracy when every BatchNorm normalizes with the statistics of the current test batch.

    A training-mode call also moves the moving statistics, so they are restored afterwards.
    """
    layers = list(batchnorm_layers(model))
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    probabilities = np.concatenate([model(X[i:i + batch_size], training=True).numpy()
                                    for i in range(0, len(X), batch_size)])
    for layer, (mean, variance) in zip(layers, saved):
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)
    return accuracy(probabilities, Y)


def add_flip(dataset, seed):
    flip = keras.layers.RandomFlip("horizontal", seed=seed + 10)
    return dataset.map(lambda images, labels: (flip(images, training=True), labels))


def build_and_train(args, X_train, Y_train, X_test, Y_test, classes):
    """The model trained with the recipe of args; or loaded from --load-weights; and its timings."""
    model = ResNet50(input_shape=X_train.shape[1:], classes=len(classes))
    set_batchnorm_momentum(model, args.bn_momentum)
    if args.load_weights:
        model.load_weights(args.load_weights)
        return model, {"loaded_weights": args.load_weights}
    dataset = make_train_dataset(X_train, Y_train, args.batch_size, augment=args.augment != "none",
                                 seed=args.seed)
    if args.augment == "flip":
        dataset = add_flip(dataset, args.seed)
    steps_per_epoch = len(X_train) // args.batch_size
    if args.schedule == "cosine":
        learning_rate = cosine_schedule(args.epochs, steps_per_epoch, args.lr, args.warmup_epochs)
    else:
        learning_rate = args.lr
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                  metrics=["accuracy"])

    clock = EpochClock(steps_per_epoch * args.batch_size,
                       *((X_test, Y_test) if args.eval_every_epoch else (None, None)))
    start = time.perf_counter()
    history = model.fit(dataset, epochs=args.epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
                        callbacks=[clock], verbose=0)
    fit_seconds = time.perf_counter() - start
    if args.save_weights:
        model.save_weights(args.save_weights)
    median_epoch = float(np.median(clock.seconds))
    timing = {
        "fit_seconds": round(fit_seconds, 1),
        "median_epoch_seconds": round(median_epoch, 1),
        "images_per_second": round(steps_per_epoch * args.batch_size / median_epoch, 1),
        "last_train_acc_augmented": round(float(history.history["accuracy"][-1]), 4),
        "test_acc_per_epoch": clock.test_accuracy or None,
    }
    print(f"fit: {fit_seconds:.0f} s for {args.epochs} epochs (median epoch "
          f"{timing['median_epoch_seconds']} s, {timing['images_per_second']} images/s)")
    return model, timing


def moving_variances(model):
    return [layer.moving_variance.numpy() for layer in batchnorm_layers(model)]


def variance_ratios(before, model):
    """Per layer: mean over channels of (moving variance before recalibration / after)."""
    ratios = [float(np.mean(b / np.maximum(a, 1e-12))) for b, a in zip(before, moving_variances(model))]
    return round(float(np.median(ratios)), 3), round(float(np.max(ratios)), 3)


def main(argv=None):
    args = parse_args(argv)
    print(machine_line(), flush=True)
    print("settings:", json.dumps(vars(args)), flush=True)
    keras.utils.set_random_seed(args.seed)

    X_train_orig, Y_train_orig, X_test_orig, Y_test_orig, classes = load_dataset(args.data_dir)
    X_train, X_test = X_train_orig / 255.0, X_test_orig / 255.0
    Y_train = np.eye(len(classes))[Y_train_orig.reshape(-1)]
    Y_test = np.eye(len(classes))[Y_test_orig.reshape(-1)]
    # PERTURBED_COPIES perturbed copies of the test split: their mean accuracy varies less
    # than one copy's; copy 0 alone is what the notebook showed before the stress set (perturb_images(X_test)).
    perturbed = [perturb_images(X_test, seed=seed) for seed in range(PERTURBED_COPIES)]

    def accuracies(model, mode):
        perturbed_accs = [accuracy(model.predict(P, verbose=0), Y_test) for P in perturbed]
        found = {f"test_acc_{mode}": accuracy(model.predict(X_test, verbose=0), Y_test),
                 f"perturbed_acc_{mode}": float(np.mean(perturbed_accs)),
                 f"perturbed0_acc_{mode}": perturbed_accs[0]}
        print(f"{mode:>24}: test acc {found[f'test_acc_{mode}']:.3f}, perturbed test acc "
              f"{found[f'perturbed_acc_{mode}']:.3f} (mean of {PERTURBED_COPIES} copies; copy 0: "
              f"{perturbed_accs[0]:.3f})", flush=True)
        return found

    model, result = build_and_train(args, X_train, Y_train, X_test, Y_test, classes)
    result["train_acc_inference"] = accuracy(model.predict(X_train, verbose=0), Y_train)
    result.update(accuracies(model, "inference"))
    result["test_acc_batch_stats"] = batch_statistics_accuracy(model, X_test, Y_test, args.batch_size)
    print(f"{'batch statistics':>24}: test acc {result['test_acc_batch_stats']:.3f}")

    trained_variances = moving_variances(model)
    start = time.perf_counter()
    recalibrate_batchnorm(model, X_train, batch_size=args.batch_size)
    result["recalibrate_seconds"] = round(time.perf_counter() - start, 1)
    median, largest = variance_ratios(trained_variances, model)
    result["bn_variance_ratio_median"], result["bn_variance_ratio_max"] = median, largest
    print(f"recalibrate_batchnorm: {result['recalibrate_seconds']} s; moving variance / training-set "
          f"variance before it: median over layers {median}, max {largest}")
    result["train_acc_recalibrated"] = accuracy(model.predict(X_train, verbose=0), Y_train)
    result.update(accuracies(model, "recalibrated"))

    # The same re-estimation on one augmented copy of the training set: the statistics of the
    # kind of images the model was trained on.
    augmenter = make_augmenter(seed=1000 + args.seed)
    X_train_augmented = augmenter(X_train.astype("float32"), training=True).numpy()
    recalibrate_batchnorm(model, X_train_augmented, batch_size=args.batch_size)
    result.update(accuracies(model, "recalibrated_augmented"))
    print("RESULT", json.dumps({"settings": vars(args), **result}), flush=True)
    return result


if __name__ == "__main__":
    main()
