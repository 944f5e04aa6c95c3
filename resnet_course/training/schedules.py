"""The learning rate and the optimizer of a training run, from its TrainConfig."""
import keras

from resnet_course.learner.training import cosine_schedule
from resnet_course.models.fused import FUSED_OPTIMIZERS

SGD_MOMENTUM = 0.9
ONECYCLE_START_DIVISOR = 25      # one-cycle starts at lr / 25 ...
ONECYCLE_RISE_FRACTION = 0.3     # ... reaches lr after 30% of the steps ...
ONECYCLE_FINAL_FRACTION = 4e-6   # ... and anneals to lr * 4e-6 (fastai's defaults)
STEP_DROPS = (0.5, 0.75)         # "step": lr / 10 at 50% and 75% of training (He et al.)


def make_schedule(config, steps_per_epoch):
    """The learning rate (a float or a built-in Keras schedule, so checkpoints reload)."""
    total = config.epochs * steps_per_epoch
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "step":
        return step_schedule(config.lr, total)
    if config.schedule == "onecycle":
        rise = max(1, round(total * ONECYCLE_RISE_FRACTION))
        return keras.optimizers.schedules.CosineDecay(
            config.lr / ONECYCLE_START_DIVISOR, decay_steps=max(1, total - rise),
            alpha=ONECYCLE_FINAL_FRACTION, warmup_target=config.lr, warmup_steps=rise)
    # cosine: linear warm-up, then cosine decay to 0; at least one epoch of decay
    warmup = min(config.warmup_epochs, config.epochs - 1)
    return cosine_schedule(config.epochs, steps_per_epoch, config.lr, warmup)


def step_schedule(lr, total_steps, warmup_steps=0):
    """He et al.'s steps: lr, then lr / 10 from STEP_DROPS[0] and lr / 100 from STEP_DROPS[1] of
    `total_steps`; with `warmup_steps` N, a linear warm-up first (step t < N trains at lr (t + 1) / N).
    A built-in Keras schedule (one boundary per warm-up step), so checkpoints reload it."""
    first = max(1, int(total_steps * STEP_DROPS[0]))
    second = max(first + 1, int(total_steps * STEP_DROPS[1]))
    ramp = range(max(0, warmup_steps - 1))  # steps 0 .. N-2 below lr; step N-1 reaches it
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [*ramp, first, second], [*(lr * (t + 1) / warmup_steps for t in ramp), lr, lr / 10, lr / 100])


def make_optimizer(config, learning_rate):
    """Keras's SGD (momentum 0.9) or Adam, updated by one fused kernel per variable."""
    if config.optimizer == "sgd":
        return FUSED_OPTIMIZERS["sgd"](learning_rate, momentum=SGD_MOMENTUM)
    return FUSED_OPTIMIZERS["adam"](learning_rate)


def current_learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
