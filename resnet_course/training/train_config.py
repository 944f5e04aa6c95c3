"""What a training run depends on: TrainConfig, resolved from the command line and the data
set's recipe, checked, and merged with a checkpoint's on --resume.

Errors the user can fix raise TrainError (one line, no traceback in the CLI).
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from resnet_course.data import datasets
from resnet_course.models import resnet
from resnet_course.training.recipes import DEFAULT_DATASET, OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES


class TrainError(ValueError):
    """A problem the user can fix (bad option, missing data, damaged checkpoint, ...)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in the checkpoint and in metrics.json."""
    dataset: str
    model: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    schedule: str
    warmup_epochs: int
    weight_decay: float | None    # None: the model's own default (resnet.build_model)
    augment: bool
    train_size: int | None
    test_size: int | None
    val_split: float              # 0: the per-epoch validation is the test split
    seed: int
    steps_per_epoch: int | None   # None: one pass over the training images
    out: str
    precision: str = "float32"    # a key of PRECISIONS (default for checkpoints before it)
    cutout: int = 0               # side of the square cutout zeroes (CIFAR-10), 0: none
    label_smoothing: float = 0.0  # weight of the uniform distribution in the targets

    def to_dict(self):
        return dataclasses.asdict(self)


# Options a resumed run may change; all others must match the checkpoint.
RESUMABLE_CHANGES = ("epochs", "out")


def resolve_config(options):
    """A TrainConfig from CLI options, where None means "the data set's recipe default"."""
    dataset = options.get("dataset") or DEFAULT_DATASET
    family = family_of(dataset)
    recipe = RECIPES[family]

    def default(field):  # the recipe's value, else TrainConfig's own default, else None
        return recipe.get(field.name, None if field.default is dataclasses.MISSING
                          else field.default)

    values = {f.name: default(f) if options.get(f.name) is None else options[f.name]
              for f in dataclasses.fields(TrainConfig)}
    values["dataset"] = dataset
    if options.get("lr") is None and values["batch_size"] != recipe["batch_size"]:
        values["lr"] = scaled_lr(recipe["lr"], recipe["batch_size"], values["batch_size"])
    if values["out"] is None:
        values["out"] = str(Path("runs") / f"{Path(dataset).stem}-{values['model']}")
    config = TrainConfig(**values)
    check_config(config, family)
    return config


def scaled_lr(lr, reference_batch, batch):
    """The linear scaling rule (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): the
    recipe's peak rate ``lr`` at its ``reference_batch``, times batch / reference_batch, for
    a run whose --batch-size (the global batch, over all replicas) differs and whose --lr
    is not given."""
    return lr * batch / reference_batch


def family_of(dataset):
    """Which recipe and augmentation the data set gets ("signs" or "cifar10")."""
    try:
        return datasets.family_of(dataset)
    except datasets.DATA_ERRORS as err:
        raise TrainError(str(err)) from None


def check_config(config, family):
    """TrainError naming the first setting out of range; ``family``: the data set's."""
    try:
        resnet.describe(config.model)
    except ValueError as err:
        raise TrainError(str(err)) from None
    for key in ("epochs", "batch_size", "warmup_epochs", "train_size", "test_size",
                "steps_per_epoch"):
        value = getattr(config, key)
        minimum = 0 if key == "warmup_epochs" else 1
        if value is not None and value < minimum:
            raise TrainError(f"--{key.replace('_', '-')} must be at least {minimum}, got {value}.")
    if not config.lr > 0:
        raise TrainError(f"--lr must be positive, got {config.lr}.")
    if config.weight_decay is not None and config.weight_decay < 0:
        raise TrainError(f"--weight-decay must be >= 0, got {config.weight_decay}.")
    if not 0 <= config.val_split < 1:
        raise TrainError(f"--val-split must be a fraction in [0, 1), got {config.val_split}.")
    if config.schedule not in SCHEDULES or config.optimizer not in OPTIMIZERS:
        raise TrainError(f"unknown schedule {config.schedule!r} or optimizer {config.optimizer!r}.")
    if config.cutout < 0:
        raise TrainError(f"--cutout must be >= 0 pixels, got {config.cutout}.")
    if config.cutout and not (config.augment and family == "cifar10"):
        raise TrainError("--cutout is part of the CIFAR-10 augmentation: it needs a CIFAR-10 "
                         "data set and --augment.")
    if not 0 <= config.label_smoothing < 1:
        raise TrainError(f"--label-smoothing must be in [0, 1), got {config.label_smoothing}.")
    if config.precision not in PRECISIONS:
        raise TrainError(f"--precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {config.precision!r}.")


def merge_resumed_config(stored, options):
    """The stored config, with the options the user gave that a resumed run may change;
    TrainError when another given option contradicts the checkpoint."""
    stored = TrainConfig(**stored)
    changes = {}
    for key, value in options.items():
        if value is None or key not in stored.to_dict() or value == getattr(stored, key):
            continue
        if key not in RESUMABLE_CHANGES:
            raise TrainError(f"--{key.replace('_', '-')} {value} differs from the checkpoint's "
                             f"{getattr(stored, key)}; a resumed run keeps its settings (only "
                             f"--epochs may change).")
        changes[key] = value
    config = dataclasses.replace(stored, **changes)
    check_config(config, family_of(config.dataset))
    return config
