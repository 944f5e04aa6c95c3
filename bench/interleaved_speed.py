"""Training speed of train.py's ResNet50 with and without one change, epochs interleaved.

bench/train_speed.py runs each variant in its own process, one after the other. This virtual
machine's speed drifts by about 10 % within minutes (train_speed.md, run 2), as much as the
changes worth measuring, so here the models live in one process and train one epoch each in
turn: drift hits them all alike. Each model's figure is its median epoch over the rounds after
the first (which traces the graphs). Same data as train_speed.py: 1,080 synthetic SIGNS-shaped
images, 33 steps of 32 per epoch, at 64x64.

    python bench/interleaved_speed.py                  # 1x1 convolutions: Conv2D vs MatMul
    python bench/interleaved_speed.py --rounds 9 --models conv1x1-bf16 matmul-bf16

Every model is train.py's (bench/train_speed.py's trainer_model) with the changes below.
"""
import argparse
import json
import statistics
from pathlib import Path

from resnet_course.learner import tf_environment  # imports no TensorFlow

tf_environment.apply_defaults()

# its data and constants (imports no TensorFlow); Python puts this script's folder on the path
import train_speed  # noqa: E402

# name -> (precision, changes to fused.FAST_LAYERS, description)
CONV1X1 = {"pointwise_conv_layer": None}
MODELS = {
    "conv1x1-f32": ("float32", CONV1X1, "1x1 convolutions as Keras Conv2D, float32"),
    "matmul-f32": ("float32", {}, "1x1 convolutions as one MatMul (MatMulConv2D), float32"),
    "conv1x1-bf16": ("bfloat16", CONV1X1, "1x1 convolutions as Keras Conv2D, mixed bfloat16"),
    "matmul-bf16": ("bfloat16", {},
                    "1x1 convolutions as one MatMul (MatMulConv2D), mixed bfloat16"),
}


def timed_epoch(model, dataset, steps):
    timer = train_speed.EpochTimer.make()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, callbacks=[timer], verbose=0)
    return timer.times[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        metavar="MODEL", help=f"from: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="epochs per model, one each in turn; the first is not counted "
                             "(default: 7)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the first round is not counted)")

    from resnet_course.machine import machine_info, machine_line
    print(machine_line())
    steps = train_speed.IMAGES // train_speed.BATCH
    built = {name: train_speed.trainer_model(*MODELS[name][:2], steps) for name in args.models}
    times = {name: [] for name in args.models}
    for round_number in range(args.rounds):
        for name, (model, dataset) in built.items():
            times[name].append(timed_epoch(model, dataset, steps))
        print(f"round {round_number + 1}: " + ", ".join(
            f"{name} {times[name][-1]:.2f} s" for name in args.models), flush=True)
    results = []
    images = steps * train_speed.BATCH
    for name in args.models:
        median = statistics.median(times[name][1:])
        results.append({"model": name, "images_per_second": images / median,
                        "epoch_seconds": [round(t, 2) for t in times[name]]})
    width = max(map(len, args.models))
    for r in results:
        print(f"{r['model']:{width}s} {r['images_per_second']:7.1f} img/s (median epoch)  "
              f"- {MODELS[r['model']][2]}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_info(), "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
