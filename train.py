"""Train a ResNet on SIGNS or CIFAR-10 from the command line.

    python train.py --dataset cifar10 --out runs/r20     # resnet20, bench/cifar10.md recipe
    python train.py --dataset cifar10 --model plain20 --train-size 5000 --out runs/p20
    python train.py --dataset signs --out runs/signs       # course ResNet50, the notebook's recipe
    python train.py --out runs/r20 --resume --epochs 40      # continue (or extend) a run
    python train.py --dataset cifar10 --precision bfloat16 --out runs/r20-bf16  # CPUs with bf16
    python train.py --dataset cifar10 --distribute mirrored --out runs/r20   # the GPUs here
    python train.py --dataset cifar10 --distribute multi-worker --cluster 10.0.0.1:2222,10.0.0.2:2222 --task-index 0 --out runs/r20   # on 10.0.0.1 (and --task-index 1 on 10.0.0.2)

Writes into --out: a checkpoint after every epoch (model + optimizer state, history;
--resume continues from it), then model.keras (input scaling inside: it takes raw
0-255 images), metrics.json, curves.png, confusion_matrix.png and inference.png.
Options left out take the data set's recipe (shown as "signs: ... / cifar10: ...").

With --distribute, --batch-size is still the global batch (split over the replicas), so the
recipe trains as on one CPU; only the chief (task 0) writes into --out, and every worker
resumes a multi-worker run from the chief's checkpoint (--out shared, or a copy of it).
"""
import sys

from resnet_course.learner import tf_environment
from resnet_course.models.architectures import MODEL_NAMES, PLAIN_MODEL_NAMES
from resnet_course.training import cli
from resnet_course.training.recipes import (DEFAULT_DATASET, DISTRIBUTE, OPTIMIZERS, PRECISIONS,
                                           RECIPES, SCHEDULES, WORKER_TIMEOUT)

tf_environment.apply_defaults()  # before TensorFlow loads (oneDNN kernels on every x86 CPU)

PROG = "train.py"
# Where the run's replicas are, not what it computes: a resumed run may change them.
DISTRIBUTION_OPTIONS = ("distribute", "cluster", "task_index", "worker_timeout")


def recipe_default(field):
    return " / ".join(f"{name}: {recipe[field]}" for name, recipe in RECIPES.items())


def build_parser():
    p = cli.OneLineParser(prog=PROG, description=__doc__,
                          formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", metavar="NAME|PATH",
                   help="signs, cifar10, a folder with train_signs.h5 + test_signs.h5, or a "
                        "CIFAR-10 source (cifar-10-python.tar.gz, the image zip, or a folder "
                        f"of either) (default: {DEFAULT_DATASET})")
    p.add_argument("--model", metavar="NAME",
                   help=f"one of {', '.join(MODEL_NAMES)}, or a plain (no-shortcut) twin: "
                        f"{', '.join(PLAIN_MODEL_NAMES)} (default: {recipe_default('model')})")
    p.add_argument("--epochs", type=int, metavar="N",
                   help=f"passes over the training images, or of --steps-per-epoch batches "
                        f"(default: {recipe_default('epochs')})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help=f"images per training step, over all replicas with --distribute "
                        f"(default: {recipe_default('batch_size')})")
    p.add_argument("--lr", type=float,
                   help=f"peak learning rate (default: the recipe's, {recipe_default('lr')}, "
                        f"scaled linearly with --batch-size from the recipe's batch: "
                        f"lr x batch / recipe batch, Goyal et al. 2017)")
    p.add_argument("--optimizer", choices=OPTIMIZERS,
                   help=f"sgd has momentum 0.9 (default: {recipe_default('optimizer')})")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="cosine: linear warm-up then cosine decay to 0; onecycle: from lr/25 "
                        "up to lr over 30%% of the steps, then cosine annealing to ~0; step: "
                        "lr/10 at 50%% and 75%% of the steps; constant "
                        f"(default: {recipe_default('schedule')})")
    p.add_argument("--warmup-epochs", type=int, metavar="N",
                   help=f"warm-up of the cosine schedule (default: "
                        f"{recipe_default('warmup_epochs')})")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help="L2 weight decay on conv and dense kernels, 0 for none (default: "
                        "signs: the model's own, 1e-4 for resnet20..110, 5e-4 for resnet9 (and "
                        "their plain twins), 0 otherwise / cifar10: 5e-4)")
    p.add_argument("--augment", action=cli.argparse.BooleanOptionalAction,
                   help="random augmentation of the training images: for CIFAR-10 pad 4 + "
                        "random 32x32 crop + horizontal flip, for SIGNS the notebook's "
                        "augmentation (default: on)")
    p.add_argument("--cutout", type=int, metavar="PIXELS",
                   help="CIFAR-10 augmentation also zeroes a PIXELS x PIXELS square of every "
                        "training image, centred anywhere in it (DeVries & Taylor 2017; 8 is "
                        "usual) (default: 0, none)")
    p.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="train towards targets (1 - EPS) one-hot + EPS uniform, e.g. 0.1; "
                        "the per-epoch losses include it, the final test loss does not "
                        "(default: 0)")
    p.add_argument("--train-size", type=int, metavar="N",
                   help="train on a stratified, seeded subset of N images (default: all)")
    p.add_argument("--test-size", type=int, metavar="N",
                   help="evaluate on a stratified, seeded subset of N test images (default: all)")
    p.add_argument("--val-split", type=float, metavar="FRACTION",
                   help="hold out this stratified fraction of the training images for the "
                        "per-epoch validation (default: 0, validate on the test split)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="float32, or bfloat16 activations with float32 weights (Keras's "
                        "mixed_bfloat16; faster on CPUs with AVX512_BF16 or AMX); model.keras "
                        "is saved in float32 either way (default: float32)")
    p.add_argument("--seed", type=int, help="seeds weights, subsets, shuffling, augmentation "
                                            "(default: 0)")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="batches per epoch, e.g. 2 for a quick check (default: one pass over "
                        "the training images)")
    p.add_argument("--distribute", choices=DISTRIBUTE,
                   help="none: one replica; mirrored: tf.distribute.MirroredStrategy over this "
                        "machine's GPUs (its CPU when it has none); multi-worker: "
                        "MultiWorkerMirroredStrategy over the processes of TF_CONFIG or "
                        "--cluster, one per machine (default: none)")
    p.add_argument("--cluster", metavar="HOST:PORT,...",
                   help="multi-worker: every worker's address, the chief first; writes TF_CONFIG "
                        "(default: TF_CONFIG from the environment)")
    p.add_argument("--task-index", type=int, metavar="N",
                   help="multi-worker with --cluster: which worker this process is; 0, the chief, "
                        "writes the checkpoints and results (default: none)")
    p.add_argument("--worker-timeout", type=float, metavar="SECONDS",
                   default=WORKER_TIMEOUT,
                   help="multi-worker: how long to wait for the other workers at the start and "
                        "at every collective step before taking one for lost (default: "
                        "%(default)s)")
    p.add_argument("--out", metavar="DIR",
                   help="run folder for checkpoint and results (default: runs/<dataset>-<model>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; only --epochs (and "
                        "where it runs: --distribute, --cluster, ...) may change; nothing "
                        "left to train: nothing is written (default: off)")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run even if --out holds one (default: off, refuse)")
    p.add_argument("--list-models", action="store_true", help="describe every model and exit")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)  # --help and bad options exit here, without TF
    tf_environment.import_tensorflow_quietly()  # without its start-up notice
    if args.list_models:
        from resnet_course.models.resnet import describe
        print("\n".join(describe(name) for name in MODEL_NAMES))
        return 0

    from resnet_course.training import trainer

    distribute = {"kind": args.distribute, "cluster": args.cluster,
                  "task_index": args.task_index, "timeout": args.worker_timeout}
    options = {key: value for key, value in vars(args).items()
               if key not in ("resume", "overwrite", "list_models", *DISTRIBUTION_OPTIONS)}
    command = [PROG, *(sys.argv[1:] if argv is None else argv)]
    def train():
        trainer.run(options, command=command, resume=args.resume, overwrite=args.overwrite,
                    distribute=distribute)

    return cli.run_main(PROG, train, (trainer.TrainError, OSError),
                        interrupted="interrupted; the last finished epoch is checkpointed in "
                                    "--out, continue with --resume")


if __name__ == "__main__":
    sys.exit(main())
