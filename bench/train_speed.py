"""Training throughput of ResNet50 at 64x64, batch 32: the project's trainer vs the course's recipe.

Each variant runs in its own Python process (thread and oneDNN settings must be fixed before
TensorFlow starts) on the same synthetic SIGNS-shaped data, one after the other, so that the
numbers printed side by side come from one run on one quiet machine.

    python bench/train_speed.py                      # the default variants (--help lists all)
    python bench/train_speed.py --variants course project --epochs 4

Images per second count only the timed epochs (the first epoch, which traces and warms up, is
excluded). The fraction of peak uses 0.63 GFLOP per image for the forward pass at 64x64 and three
times that for a training step, against this CPU's float32 matmul rate measured in the same run.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from resnet_course.learner import tf_environment  # imports no TensorFlow

tf_environment.apply_defaults()  # this process's own TensorFlow (machine facts) starts quiet

FORWARD_GFLOP_PER_IMAGE = 0.63
TRAIN_GFLOP_PER_IMAGE = 3 * FORWARD_GFLOP_PER_IMAGE
IMAGES = 1080
BATCH = 32

# name -> (environment overrides, description). Every variant runs in the project's TensorFlow
# environment (resnet_course.learner.tf_environment: oneDNN kernels on) except where an override says
# otherwise (None: unset, TensorFlow's own default). The "project" variants run train.py's own
# code (resnet_course.training.trainer.build + the resnet_course.learner.training pipeline); the ones in between
# take one step at a time from the course's recipe to it, so that each change is measured alone.
TF_DEFAULT_KERNELS = {"TF_ENABLE_ONEDNN_OPTS": None}
VARIANTS = {
    "course": (TF_DEFAULT_KERNELS, "keras.applications.ResNet50 + model.fit on numpy arrays "
                                   "(the course's recipe, in TensorFlow's default environment)"),
    "course-onednn": ({}, "course with TF_ENABLE_ONEDNN_OPTS=1 (TensorFlow's own default only "
                          "on CPUs with AVX-512 VNNI/BF16 or AMX)"),
    "tfdata": ({}, "same model, one tf.data pipeline reused across epochs (repeat + steps_per_epoch)"),
    "builder": ({}, "course_resnet50 from the builder as the course has it (conv biases, Keras "
                    "BatchNorm, Keras Adam) + training.make_train_dataset"),
    "bf16-only": ({}, "builder + Keras mixed_bfloat16 policy, nothing else"),
    "no-bias": ({}, "builder without the conv biases (BatchNorm cancels them)"),
    "fused-bn": ({}, "no-bias + FusedBatchNormalization (one FusedBatchNormV3 kernel)"),
    "fused-adam": ({}, "fused-bn + FusedAdam (1x1 convolutions still Keras Conv2D)"),
    "project": ({}, "fused-adam + 1x1 convolutions as MatMul: train.py's path, --precision "
                    "float32 (the default)"),
    "bf16-fused-adam": ({}, "fused-adam with --precision bfloat16"),
    "project-bf16": ({}, "train.py's path with --precision bfloat16"),
    "project-bf16-spe8": ({}, "project-bf16 compiled with steps_per_execution=8"),
    "project-bf16-inter1": ({"TF_NUM_INTEROP_THREADS": "1"},
                            "project-bf16 with one inter-op thread (default: one per core)"),
    "project-bf16-no-onednn": ({"TF_ENABLE_ONEDNN_OPTS": "0"},
                               "project-bf16 with TensorFlow's oneDNN ops switched off"),
    "project-tf-default": (TF_DEFAULT_KERNELS, "project in TensorFlow's default environment"),
}
DEFAULT_VARIANTS = ("course", "course-onednn", "tfdata", "builder", "bf16-only", "no-bias",
                    "fused-bn", "fused-adam", "project", "bf16-fused-adam", "project-bf16")
# train.py's path (trainer.build) with some of its layers (fused.FAST_LAYERS) replaced;
# pointwise_conv_layer None: the 1x1 convolutions are made like the others (Conv2D)
TRAINER_STEPS = {"fused-adam": {"pointwise_conv_layer": None},
                 "bf16-fused-adam": {"pointwise_conv_layer": None}}

# builder-based variants: (conv_bias, fused_batchnorm, fused optimizer, precision)
BUILDER_STEPS = {
    "builder": (True, False, False, "float32"),
    "bf16-only": (True, False, False, "bfloat16"),
    "no-bias": (False, False, False, "float32"),
    "fused-bn": (False, True, False, "float32"),
}


def synthetic_signs(seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(IMAGES, 64, 64, 3), dtype=np.uint8)
    y = rng.integers(0, 6, size=IMAGES)
    return x, y


class EpochTimer:
    """Keras callback factory kept lazy so the parent process never imports TensorFlow."""

    @staticmethod
    def make():
        import keras

        class _Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                self._t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter() - self._t)

        return _Timer()


def trainer_model(precision, overrides, steps, epochs=None):
    """(compiled model, dataset) as train.py --dataset signs makes them, on the synthetic data:
    trainer.build (model, BatchNorm momentum, optimizer, schedule) with fused.FAST_LAYERS
    updated by ``overrides``, and trainer.train_pipeline with augmentation off, so that only
    the model and the input path are compared."""
    from types import SimpleNamespace

    from resnet_course.models.fused import FAST_LAYERS
    from resnet_course.training import pipelines, trainer
    from resnet_course.training.recipes import PRECISIONS
    from resnet_course.training.train_config import resolve_config
    config = resolve_config({"dataset": "signs", "epochs": epochs, "augment": False,
                                     "precision": precision, "out": "unused"})
    with trainer.dtype_policy(PRECISIONS[precision]):
        model = trainer.build(config, SimpleNamespace(input_shape=(64, 64, 3), num_classes=6),
                              steps, layers={**FAST_LAYERS, **overrides})
    x, y = synthetic_signs()
    return model, pipelines.train_pipeline(x, y, 6, config, "signs", seed=0)


def run_variant(name, epochs):
    """Runs in the child process; returns a dict of measurements."""
    import keras
    import numpy as np
    import tensorflow as tf

    x, y = synthetic_signs()
    steps = IMAGES // BATCH
    timer = EpochTimer.make()
    if name in ("course", "course-onednn"):
        model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        xs = x[: steps * BATCH].astype("float32") / 255.0
        ys = keras.utils.to_categorical(y[: steps * BATCH], 6)
        model.fit(xs, ys, batch_size=BATCH, epochs=epochs, callbacks=[timer], verbose=0)
    elif name == "tfdata":
        model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=6)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        ds = (tf.data.Dataset.from_tensor_slices((x.astype("float32") / 255.0,
                                                  keras.utils.to_categorical(y, 6)))
              .shuffle(IMAGES, seed=0).repeat().batch(BATCH, drop_remainder=True)
              .prefetch(tf.data.AUTOTUNE))
        model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    elif name in BUILDER_STEPS:
        from functools import partial

        from resnet_course.learner.training import make_train_dataset
        from resnet_course.models.fused import FusedBatchNormalization
        from resnet_course.models.resnet import build_model
        conv_bias, fused_bn, fused_opt, precision = BUILDER_STEPS[name]
        if precision == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
        model = build_model("course_resnet50", (64, 64, 3), 6, bn_momentum=0.9,
                            conv_layer=partial(keras.layers.Conv2D, use_bias=conv_bias),
                            norm_layer=FusedBatchNormalization if fused_bn else None)
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        ds = make_train_dataset(x, keras.utils.to_categorical(y, 6), BATCH, augment=False, seed=0)
        model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    elif name.startswith("project") or name in TRAINER_STEPS:
        precision = "bfloat16" if "bf16" in name else "float32"
        model, ds = trainer_model(precision, TRAINER_STEPS.get(name, {}), steps, epochs)
        if name.endswith("-spe8"):
            model.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],
                          steps_per_execution=8)
        model.fit(ds, steps_per_epoch=steps, epochs=epochs, callbacks=[timer], verbose=0)
    else:
        raise SystemExit(f"unknown variant {name!r}; choose from {sorted(VARIANTS)}")
    timed = timer.times[1:]
    images = steps * BATCH * len(timed)
    return {
        "variant": name,
        "epoch_seconds": [round(t, 2) for t in timer.times],
        "images_per_second": images / sum(timed),
        "slowest_epoch_s": max(timed),
        "fastest_epoch_s": min(timed),
    }


def matmul_peak_gflops(dtype="float32", n=2048, repeats=20):
    """Sustained matmul rate of this CPU through TensorFlow, in GFLOP/s."""
    import tensorflow as tf
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    tf.linalg.matmul(a, a).numpy()  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        c = tf.linalg.matmul(a, a)
    c.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9


def child_main(args):
    if args.variant == "peak":
        result = {"float32": matmul_peak_gflops("float32"), "bfloat16": matmul_peak_gflops("bfloat16")}
    else:
        result = run_variant(args.variant, args.epochs)
    print("RESULT " + json.dumps(result))


def run_child(variant, epochs):
    env = dict(os.environ)  # with tf_environment's defaults (top)
    for name, value in VARIANTS.get(variant, ({}, ""))[0].items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    out = subprocess.run([sys.executable, __file__, "--child", variant, "--epochs", str(epochs)],
                         env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"variant {variant} failed:\n{out.stderr[-3000:]}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="VARIANT",
                        help=f"variants to run, in order, from: {', '.join(VARIANTS)} "
                             f"(default: {' '.join(DEFAULT_VARIANTS)}; the bf16 ones only on "
                             f"CPUs with bfloat16 units, elsewhere they are emulated and slow)")
    parser.add_argument("--epochs", type=int, default=6,
                        help="epochs per variant; the first is not timed (default: 6)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", dest="variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.variant:
        return child_main(args)

    from resnet_course.machine import has_native_bfloat16, machine_info, machine_line
    print(machine_line())
    variants = args.variants
    if variants is None:
        native_bf16 = has_native_bfloat16() is not False
        variants = [name for name in DEFAULT_VARIANTS if native_bf16 or "bf16" not in name]
        if len(variants) < len(DEFAULT_VARIANTS):
            print("this CPU has no bfloat16 units: the bf16 variants are left out "
                  "(name them in --variants to run them emulated)")
    peak = run_child("peak", 0)
    print(f"matmul peak: float32 {peak['float32']:.0f} GFLOP/s, bfloat16 {peak['bfloat16']:.0f} GFLOP/s")
    results = []
    width = max(map(len, variants))
    for name in variants:
        r = run_child(name, args.epochs)
        r["fraction_of_fp32_peak"] = r["images_per_second"] * TRAIN_GFLOP_PER_IMAGE / peak["float32"]
        results.append(r)
        print(f"{name:{width}s} {r['images_per_second']:7.1f} img/s  "
              f"({r['fraction_of_fp32_peak']:.0%} of fp32 peak; epochs {r['epoch_seconds']} s)  "
              f"- {VARIANTS[name][1]}")
    by_name = {r["variant"]: r for r in results}
    if "course" in by_name:
        for r in results:
            if r["variant"] != "course":
                print(f"{r['variant']} / course = "
                      f"{r['images_per_second'] / by_name['course']['images_per_second']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_info(), "peak_gflops": peak,
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
