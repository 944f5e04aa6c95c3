"""train.py on one process against two local workers (--distribute multi-worker on 127.0.0.1):
training images per second and test accuracy after the same steps, on a CIFAR-10 subset.

    python bench/distributed.py                       # the table of bench/distributed.md
    python bench/distributed.py --epochs 2 --steps-per-epoch 5 --json results.json

Every run trains the same recipe (ResNet-20, global batch 128, the CIFAR-10 recipe's one-cycle
schedule, augmentation) for the same number of steps on the same images, so the accuracies
differ only by the per-replica BatchNorm batches and by float rounding. The variants:

- ``none``: train.py --distribute none (one process, TensorFlow's default threads);
- ``multi-worker x1``: a cluster of one worker: the strategy's own cost, no second process;
- ``multi-worker x2``: two worker processes on this machine, each with TensorFlow's default
  threads (one per core each: 2 x 2 threads on 2 cores);
- ``multi-worker x2, 1 thread each``: the same with TF_NUM_INTRAOP_THREADS=1 per worker.

Images per second are the chief's (global images, all workers together) over the epochs after
the first (which traces the graphs). The data: ``--train-per-class`` and ``--test-per-class``
images per class of the shared CIFAR-10 JPEG archive, extracted into a temporary folder.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from resnet_course.learner import tf_environment  # noqa: E402  (imports no TensorFlow)

tf_environment.apply_defaults()

VARIANTS = {
    "none": {"workers": 0, "env": {}},
    "multi-worker x1": {"workers": 1, "env": {}},
    "multi-worker x2": {"workers": 2, "env": {}},
    "multi-worker x2, 1 thread each": {"workers": 2, "env": {"TF_NUM_INTRAOP_THREADS": "1"}},
}


def run_variant(name, arguments, out, log_dir):
    """metrics.json of the variant's run (the chief's), with the wall time of the whole run."""
    spec = VARIANTS[name]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **spec["env"]}
    env.pop("TF_CONFIG", None)
    command = [sys.executable, str(ROOT / "train.py"), *arguments, "--out", str(out)]
    if spec["workers"]:
        from resnet_course.training.distribute import free_ports
        cluster = ",".join(f"127.0.0.1:{p}" for p in free_ports(spec["workers"]))
        commands = [[*command, "--distribute", "multi-worker", "--cluster", cluster,
                     "--task-index", str(i)] for i in range(spec["workers"])]
    else:
        commands = [command]
    start = time.perf_counter()
    logs = [open(log_dir / f"{re.sub(r'[^a-z0-9]+', '-', name)}-{i}.log", "w")
            for i in range(len(commands))]
    processes = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                 for c, log in zip(commands, logs)]
    codes = [p.wait() for p in processes]
    wall = time.perf_counter() - start
    for log in logs:
        log.close()
    if any(codes):
        raise SystemExit(f"{name}: exit codes {codes}; logs in {log_dir}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {"variant": name, "wall_seconds": wall,
            "images_per_second": metrics["train_images_per_second_after_epoch_1"],
            "test_accuracy": metrics["test"]["accuracy"],
            "final_train_loss": metrics["history"]["loss"][-1],
            "machine": metrics["machine"]}


def main(argv=None):
    from resnet_course.data import cifar10

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps-per-epoch", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-per-class", type=int, default=300)
    p.add_argument("--test-per-class", type=int, default=100)
    p.add_argument("--json", type=Path, help="also write the results there")
    args = p.parse_args(argv)

    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as scratch:
        scratch = Path(scratch)
        data = cifar10.extract_subset(cifar10.SHARED_ZIP, scratch / "CIFAR-10-images",
                              args.train_per_class, args.test_per_class)
        arguments = ["--dataset", str(data), "--model", "resnet20", "--epochs", str(args.epochs),
                     "--steps-per-epoch", str(args.steps_per_epoch),
                     "--batch-size", str(args.batch_size), "--seed", "0"]
        log_dir = Path(tempfile.mkdtemp(prefix="bench-distributed-logs-"))
        for name in args.variants:
            print(f"running {name} ...", flush=True)
            rows.append(run_variant(name, arguments, scratch / f"run-{len(rows)}", log_dir))
            print(f"  {rows[-1]['images_per_second']:.1f} images/s, test accuracy "
                  f"{rows[-1]['test_accuracy']:.4f}, {rows[-1]['wall_seconds']:.0f} s", flush=True)
    load_after = os.getloadavg()

    machine = rows[0]["machine"]
    reference = rows[0]["images_per_second"]
    print(f"\nmachine: {machine['cpu']} ({machine['simd']}), {machine['cores']} cores; python "
          f"{machine['python']}, TF {machine['tensorflow']}, Keras {machine['keras']}, numpy "
          f"{machine['numpy']}")
    print(f"load average (1, 5, 15 min): before {', '.join(f'{x:.1f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.1f}' for x in load_after)}")
    print(f"{args.epochs} epochs x {args.steps_per_epoch} steps x {args.batch_size} images, "
          f"{args.train_per_class * 10} training / {args.test_per_class * 10} test images\n")
    print("| variant | images/s (global) | vs none | test accuracy | final train loss | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['variant']} | {row['images_per_second']:.1f} | "
              f"{row['images_per_second'] / reference:.2f}x | {row['test_accuracy']:.4f} | "
              f"{row['final_train_loss']:.3f} | {row['wall_seconds']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"arguments": vars(args) | {"json": str(args.json)},
                                         "load_before": load_before, "load_after": load_after,
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
