"""The degradation experiment on CIFAR-10: deeper plain nets train worse, deeper ResNets do not.

    python -m resnet_course.training.depth                 # plain-20, plain-56, ResNet-20, ResNet-56
    python -m resnet_course.training.depth --resume        # continue an interrupted run
    python -m resnet_course.training.depth --iterations 2000 --out runs/depth-2k --figures runs/depth-2k

He et al. (2015), Figures 1 and 6: on CIFAR-10 a 56-layer plain net has higher training and
test error than a 20-layer one, while ResNet-56 beats ResNet-20 (their Table 6: 8.75 % and
6.97 % test error after 64k iterations at batch 128). This trains the four nets with one
recipe, the paper's (SGD with momentum 0.9, learning rate 0.1 divided by 10 at 50 % and 75 %
of the iterations, weight decay 1e-4, batch 128, pad-4 crop and flip) with a linear warm-up
of the learning rate over the first 100 iterations (Goyal et al. 2017; without it ResNet-56
does not survive its first steps at 0.1, bench/depth.md), for the same number of iterations
each, and records:

- the training error on the augmented batches (the mean over each --eval-every window, as the
  paper plots it) and the test error on a fixed, stratified test subset, against iterations;
- the L2 norm of the cross-entropy's gradient with respect to every conv layer's kernel, on
  one fixed batch of training images (un-augmented, training-mode BatchNorm), at
  initialisation and at a few points of training.

Writes into --figures (default images/): depth_curves.png (training error dashed, test error
solid, plain nets | ResNets), depth_gradients.png (per-layer gradient norms of the deepest
plain net and ResNet, log scale) and depth_results.json (machine, versions, settings, wall
time, every number). Each net trains in --out/<net>/ with train.py's checkpoints, so
--resume continues where an interrupted run stopped (or extends a finished one with more
--iterations, under the longer run's schedule). The default budget (500 iterations per net in
float32, about 9 minutes alone on a 2-core AVX-512 CPU, an estimated 23-28 on AVX2), why it was
chosen and what it measured: bench/depth.md.
"""
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from resnet_course.learner import tf_environment
from resnet_course.paths import IMAGES_DIR
from resnet_course.training import cli

tf_environment.apply_defaults()  # before TensorFlow loads (oneDNN kernels on every x86 CPU)

PROG = "python -m resnet_course.training.depth"
DEFAULT_MODELS = ("plain20", "plain56", "resnet20", "resnet56")
CURVES_FIGURE = "depth_curves.png"
GRADIENTS_FIGURE = "depth_gradients.png"
RESULTS_JSON = "depth_results.json"
# The run's settings, in --out: --resume and --report-only take them from there, so that a
# longer run is continued or redrawn as it was made, without retyping its options.
RUN_SETTINGS = "depth_settings.json"
# What a resumed run (or a report) may change; every other setting is the run's.
RESUMABLE = ("iterations", "models", "figures", "out")
# Settings every net's TrainConfig holds under the same name (the rest: epochs = --eval-every
# windows, steps_per_epoch = --eval-every; the warm-up is the run's alone).
SHARED_WITH_TRAIN_PY = ("dataset", "batch_size", "lr", "weight_decay", "test_size", "train_size",
                        "seed", "precision")
# He et al. (2015): Table 6 (64k iterations at batch 128; plain nets read off Figure 6, left).
PAPER = {
    "source": "He, Zhang, Ren, Sun (2015), Deep Residual Learning for Image Recognition, "
              "Table 6 and Figure 6 (CIFAR-10, 64k iterations at batch 128)",
    "iterations": 64000,
    "test_error_percent": {"resnet20": 8.75, "resnet56": 6.97},
    "plain_nets": "Figure 6 (left): plain-56 has higher training and test error than "
                  "plain-20 throughout training",
}
# Where the gradient norms are recorded besides initialisation, as fractions of the run.
GRADIENT_FRACTIONS = (0.1, 0.5, 1.0)
GRADIENT_BATCH = 128  # images of the fixed batch the gradient norms are measured on
# Iterations of the default linear warm-up. At 0.1 from the first step ResNet-56's classifier
# overshoots and the net never recovers: its 27 residual branches add up to pooled features
# 1.9 times larger than ResNet-20's, and the loss's curvature grows with their square
# (bench/depth.md, "Diagnosis"). The ramp gives the net the time to shrink them.
DEFAULT_WARMUP = 100


@dataclass(frozen=True)
class Settings:
    """One run of the experiment (every net gets the same)."""
    dataset: str = "cifar10"
    models: tuple = DEFAULT_MODELS
    iterations: int = 500
    eval_every: int = 50
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 1e-4
    test_size: int | None = 2000
    train_size: int | None = None
    precision: str = "float32"
    # iterations of the linear warm-up, lr / N, 2 lr / N, ... up to lr (0: none); None: the
    # default, min(DEFAULT_WARMUP, a fifth of the iterations)
    warmup: int | None = None
    seed: int = 0
    out: str = "runs/depth"
    figures: str = str(IMAGES_DIR)

    def __post_init__(self):
        if self.warmup is None:  # frozen: resolved once, so the JSON records the number
            object.__setattr__(self, "warmup", min(DEFAULT_WARMUP, self.iterations // 5))

    @property
    def windows(self):
        return self.iterations // self.eval_every

    def gradient_iterations(self):
        """0 and GRADIENT_FRACTIONS of the run, each at the end of an --eval-every window."""
        points = {0}
        for fraction in GRADIENT_FRACTIONS:
            points.add(max(1, round(self.windows * fraction)) * self.eval_every)
        return sorted(points)


def build_parser():
    p = cli.OneLineParser(prog=PROG, description=__doc__,
                          formatter_class=cli.argparse.RawDescriptionHelpFormatter)
    d = Settings()
    p.add_argument("--dataset", metavar="NAME|PATH",
                   help=f"cifar10, or a CIFAR-10 archive or folder (default: {d.dataset})")
    p.add_argument("--models", nargs="+", metavar="NAME",
                   help=f"nets to train, plain and residual (default: {' '.join(d.models)})")
    p.add_argument("--iterations", type=int, metavar="N",
                   help=f"training steps of every net (default: {d.iterations})")
    p.add_argument("--eval-every", type=int, metavar="N",
                   help=f"iterations between test evaluations (and checkpoints); must divide "
                        f"--iterations (default: {d.eval_every})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help=f"images per step (default: {d.batch_size}, the paper's)")
    p.add_argument("--lr", type=float,
                   help=f"learning rate before the two drops (default: {d.lr}, the paper's)")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help=f"L2 weight decay of the kernels (default: {d.weight_decay}, the paper's)")
    p.add_argument("--warmup", type=int, metavar="N",
                   help="raise the learning rate linearly over the first N iterations, --lr / N, "
                        "2 --lr / N, ... --lr (Goyal et al. 2017), 0 for none (default: "
                        f"{DEFAULT_WARMUP}, or a fifth of --iterations if that is fewer)")
    p.add_argument("--test-size", type=int, metavar="N",
                   help=f"stratified test subset every evaluation uses (default: {d.test_size})")
    p.add_argument("--train-size", type=int, metavar="N",
                   help="train on a stratified subset of N images (default: all 50,000)")
    p.add_argument("--precision", choices=("float32", "bfloat16"),
                   help="bfloat16 is faster only on CPUs with AVX512_BF16 or AMX and rounds "
                        "differently: the default keeps every machine's numbers comparable "
                        f"(default: {d.precision})")
    p.add_argument("--seed", type=int, help=f"weights, batches, augmentation (default: {d.seed})")
    p.add_argument("--out", metavar="DIR",
                   help=f"run folder, one checkpointed sub-folder per net (default: {d.out})")
    p.add_argument("--figures", metavar="DIR",
                   help=f"where the figures and {RESULTS_JSON} go (default: images/)")
    p.add_argument("--resume", action="store_true",
                   help="continue the nets in --out from their checkpoints, with the run's own "
                        "settings (saved in --out); only --iterations and --models may change "
                        "(default: off)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the figures and the JSON from the checkpoints in "
                        "--out as far as they got, with the run's own settings (default: off)")
    p.add_argument("--overwrite", action="store_true",
                   help="start again even if --out holds a run (default: off, refuse)")
    return p


def settings_from(args):
    """The Settings of this invocation: the options given; with --resume or --report-only, the
    run's own settings in --out for every option not given (TrainError if a given one differs,
    other than RESUMABLE)."""
    from resnet_course.training.train_config import TrainError

    given = {k: v for k, v in vars(args).items()
             if k not in ("resume", "overwrite", "report_only") and v is not None}
    if "models" in given:
        given["models"] = tuple(given["models"])
    stored = {}
    if args.resume or args.report_only:
        out = Path(given.get("out", Settings.out))
        stored = stored_settings(out)
        for key, value in stored.items():
            if key not in RESUMABLE and key in given and given[key] != value:
                raise TrainError(f"--{key.replace('_', '-')} {given[key]} differs from the run's "
                                 f"{value} in {out}; a continued or redrawn run keeps its settings "
                                 f"(only --iterations and --models may change).")
    settings = Settings(**{**{k: v for k, v in stored.items() if k not in ("figures", "out")}, **given})
    check_settings(settings)
    return settings


def stored_settings(out):
    """The settings of the run in ``out`` ({} if there is none): its RUN_SETTINGS, or for a run
    made before that file existed, what its nets' checkpoints hold (all but the warm-up)."""
    import json

    from resnet_course.training.checkpoints import CHECKPOINT_STATE, read_checkpoint

    path = Path(out) / RUN_SETTINGS
    if path.is_file():
        stored = json.loads(path.read_text())
        stored["models"] = tuple(stored["models"])
        return stored
    nets = [folder for folder in sorted(Path(out).glob("*")) if (folder / CHECKPOINT_STATE).is_file()]
    if not nets:
        return {}
    config = read_checkpoint(nets[0])[0]["config"]  # net_config's inverse
    return {**{key: config[key] for key in SHARED_WITH_TRAIN_PY}, "models": tuple(net.name for net in nets),
            "iterations": config["epochs"] * config["steps_per_epoch"], "eval_every": config["steps_per_epoch"]}


def check_settings(s):
    """TrainError (a ValueError) naming the first setting that cannot work."""
    from resnet_course.models.architectures import VARIANTS, plain_name, resolve
    from resnet_course.training.train_config import TrainError

    for key in ("iterations", "eval_every", "batch_size", "test_size", "train_size"):
        if getattr(s, key) is not None and getattr(s, key) < 1:
            raise TrainError(f"--{key.replace('_', '-')} must be at least 1, got {getattr(s, key)}.")
    if s.lr <= 0:
        raise TrainError(f"--lr must be above 0, got {s.lr}.")
    for key in ("weight_decay", "seed", "warmup"):
        if getattr(s, key) < 0:
            raise TrainError(f"--{key.replace('_', '-')} must be 0 or more, got {getattr(s, key)}.")
    if s.warmup and s.warmup >= s.iterations // 2:
        raise TrainError(f"--warmup must end before the first drop of the learning rate, at half "
                         f"--iterations ({s.iterations // 2}); got {s.warmup}.")
    if s.iterations % s.eval_every:
        raise TrainError(f"--eval-every {s.eval_every} must divide --iterations {s.iterations}.")
    if len(set(s.models)) != len(s.models):
        raise TrainError(f"--models names a net twice: {' '.join(s.models)}.")
    cifar_nets = [name for name, variant in VARIANTS.items() if variant.style == "cifar"]
    for name in s.models:
        try:
            key, _ = resolve(name)
        except ValueError:
            key = None
        if key not in cifar_nets:
            raise TrainError(f"--models {name}: not a CIFAR-10 net of He et al.'s section 4.2; "
                             f"choose from {' '.join(cifar_nets)} and their plain twins "
                             f"({' '.join(map(plain_name, cifar_nets))}).")


def label(name):
    """'plain56' -> 'plain-56', 'resnet20' -> 'ResNet-20' (the paper's names)."""
    depth = layers_in_name(name)
    return f"plain-{depth}" if is_plain(name) else f"ResNet-{depth}"


def is_plain(name):
    from resnet_course.models.architectures import resolve
    return resolve(name)[1]


# ---- one net ------------------------------------------------------------------------------

def net_config(name, s):
    """The TrainConfig of one net: train.py's fields, one --eval-every window per epoch."""
    from resnet_course.training.train_config import TrainConfig
    return TrainConfig(
        **{key: getattr(s, key) for key in SHARED_WITH_TRAIN_PY}, model=name, epochs=s.windows,
        optimizer="sgd", schedule="step", warmup_epochs=0, augment=True, val_split=0.0,
        steps_per_epoch=s.eval_every, out=str(Path(s.out) / name))


def learning_rate(s):
    """The paper's schedule, lr, lr/10 from 50 %, lr/100 from 75 % of the iterations, after
    a linear warm-up: iteration t (0-based) < --warmup N trains at lr (t + 1) / N
    (train.py's "step" schedule with a warm-up)."""
    from resnet_course.training.schedules import step_schedule
    return step_schedule(s.lr, s.iterations, s.warmup)


def conv_layers(model):
    """The model's convolutions in the order the data passes them (input first)."""
    import keras
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def conv_gradient_norms(model, images, one_hot):
    """L2 norm of the gradient of the mean cross-entropy (no weight decay) with respect to
    every conv kernel, input side first: a list of floats. ``images`` float (m, h, w, 3) in
    [0, 1]; BatchNorm in training mode, as a training step sees it; its moving statistics
    are restored afterwards, so measuring changes nothing."""
    import keras
    import tensorflow as tf

    kernels = [layer.kernel for layer in conv_layers(model)]
    saved = [v.numpy() for v in model.non_trainable_variables]
    with tf.GradientTape() as tape:
        probabilities = tf.cast(model(images, training=True), tf.float32)
        loss = tf.reduce_mean(keras.losses.categorical_crossentropy(one_hot, probabilities))
    gradients = tape.gradient(loss, kernels)
    for variable, value in zip(model.non_trainable_variables, saved):
        variable.assign(value)
    return [float(tf.norm(tf.cast(g, tf.float32))) for g in gradients]


def test_point(model, data, batch_size):
    """(test error, mean cross-entropy) of the model on the data's test images."""
    import numpy as np

    from resnet_course.training.inference import predict_probabilities
    probabilities = predict_probabilities(model, data.X_test, batch_size, raw_pixels=False)
    error = float(np.mean(probabilities.argmax(axis=1) != data.y_test))
    picked = probabilities[np.arange(len(data.y_test)), data.y_test]
    return error, float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def gradient_batch(data, seed):
    """The fixed batch of the gradient norms: GRADIENT_BATCH stratified training images."""
    import numpy as np

    from resnet_course.data.sampling import stratified_indices
    size = min(GRADIENT_BATCH, len(data.y_train))
    keep = stratified_indices(data.y_train, size, seed)
    return (data.X_train[keep].astype("float32") / 255.0,
            np.eye(data.num_classes, dtype="float32")[data.y_train[keep]])


def make_recorder(model_name, s, data, history, clock, log):
    """A Keras callback that, after every window, records the test error (and the gradient
    norms where due) into ``history["depth"]`` and logs progress with the time left."""
    import keras

    batch = gradient_batch(data, s.seed)
    due = set(s.gradient_iterations())

    class DepthRecorder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            iteration = (epoch + 1) * s.eval_every
            depth = history["depth"]
            error, loss = test_point(self.model, data, s.batch_size)
            depth["test"].append([iteration, error, loss])
            if iteration in due:
                depth["gradients"][str(iteration)] = conv_gradient_norms(self.model, *batch)
            seconds = time.perf_counter() - self.start
            depth.setdefault("window_seconds", []).append(seconds)
            train_error = 1.0 - float((logs or {}).get("accuracy", float("nan")))
            left = clock.seconds_left(model_name, epoch + 1, seconds)
            log(f"{label(model_name)}: iteration {iteration}/{s.iterations}, training error "
                f"{train_error:.1%}, test error {error:.1%}; {seconds / s.eval_every:.2f} s per "
                f"iteration; about {format_duration(left)} left in all")

    return DepthRecorder()


def layers_in_name(name):
    """The depth a net's name states (plain56 -> 56): what its cost per image scales with."""
    return int("".join(ch for ch in resolve_key(name) if ch.isdigit()) or 1)


def resolve_key(name):
    from resnet_course.models.architectures import resolve
    return resolve(name)[0]


class Clock:
    """Estimates the time left: measured seconds per window for the nets that have run, and
    for the others the measured seconds per window per layer times their layers."""

    def __init__(self, settings):
        self.s = settings
        self.window = {}       # net -> latest seconds per window
        self.done = {}         # net -> windows finished

    def seconds_left(self, name, windows_done, seconds):
        self.window[name], self.done[name] = seconds, windows_done
        per_layer = (sum(self.window[n] / layers_in_name(n) for n in self.window)
                     / len(self.window))
        return sum((self.s.windows - self.done.get(n, 0))
                   * self.window.get(n, per_layer * layers_in_name(n))
                   for n in self.s.models)


def format_duration(seconds):
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def train_net(name, s, data, clock, resume, overwrite, log):
    """Train one net (or continue it from its checkpoint); returns its history dict."""
    import keras

    from resnet_course.training import trainer
    from resnet_course.training.checkpoints import (CHECKPOINT_STATE, EpochRecorder,
                                                    read_checkpoint, restore)
    from resnet_course.training.pipelines import train_pipeline
    from resnet_course.training.train_config import merge_resumed_config

    config = net_config(name, s)
    out = Path(config.out)
    start = 0
    if resume and (out / CHECKPOINT_STATE).is_file():
        state, model_path = read_checkpoint(out)
        try:
            merge_resumed_config(state["config"], config.to_dict())  # TrainError if settings differ
        except TrainError as err:
            raise TrainError(in_this_command_s_terms(str(err))) from None
        start, history = int(state["epoch"]), state["history"]
        model = restore(model_path, config, s.eval_every)
        model.optimizer.learning_rate = learning_rate(s)
    else:
        if resume:
            log(f"{label(name)}: no checkpoint in {out}, so it starts from the beginning")
        out.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(s.seed)
        model = trainer.build(config, data, s.eval_every)
        model.optimizer.learning_rate = learning_rate(s)
        history = {}
    clock.done[name] = start
    if "depth" not in history:  # the state at initialisation
        error, loss = test_point(model, data, s.batch_size)
        history["depth"] = {"test": [[0, error, loss]],
                            "gradients": {"0": conv_gradient_norms(model, *gradient_batch(
                                data, s.seed))},
                            "conv_layers": [layer.name for layer in conv_layers(model)],
                            "parameters": int(model.count_params())}
    if start >= s.windows:
        log(f"{label(name)}: {start * s.eval_every} iterations already done in {out}")
        return history
    log(f"{label(name)} ({model.count_params():,} parameters, {len(conv_layers(model))} conv "
        f"layers): "
        f"iterations {start * s.eval_every + 1}-{s.iterations}, batches of {s.batch_size}")
    # A resumed net draws new batches and augmentations instead of replaying the first ones.
    keras.utils.set_random_seed(s.seed + start)
    recorder = make_recorder(name, s, data, history, clock, log)
    model.fit(train_pipeline(data.X_train, data.y_train, data.num_classes, config, "cifar10",
                             s.seed + start),
              epochs=s.windows, initial_epoch=start, steps_per_epoch=s.eval_every,
              callbacks=[recorder,  # records before the checkpoint is written
                         EpochRecorder(out, config, history, s.eval_every * s.batch_size)],
              shuffle=False, verbose=0)
    return history


# ---- the results ---------------------------------------------------------------------------

def net_results(name, history, s):
    """The numbers of one net, for the JSON and the figures."""
    depth = history["depth"]
    train_seconds = history.get("train_seconds", [])
    # the first window of an invocation also traces the graphs: steady speed without it
    steady = train_seconds[1:] if len(train_seconds) > 1 else train_seconds
    test = depth["test"]
    windows = len(history.get("accuracy", []))
    return {
        "label": label(name), "plain": is_plain(name),
        "parameters": depth["parameters"], "conv_layers": depth["conv_layers"],
        "iterations": windows * s.eval_every,
        "train_curve": {"iteration": [(i + 1) * s.eval_every for i in range(windows)],
                        "error": [1.0 - a for a in history.get("accuracy", [])],
                        "loss_with_weight_decay": history.get("loss", [])},
        "test_curve": {"iteration": [t[0] for t in test], "error": [t[1] for t in test],
                       "loss": [t[2] for t in test]},
        "final_train_error": 1.0 - history["accuracy"][-1] if windows else None,
        "final_test_error": test[-1][1],
        "gradient_norms": {int(k): v for k, v in sorted(depth["gradients"].items(),
                                                        key=lambda kv: int(kv[0]))},
        "train_seconds": float(sum(train_seconds)),
        "seconds_per_iteration": (float(sum(steady) / (len(steady) * s.eval_every))
                                  if steady else None),
    }


def findings(nets):
    """Plain sentences comparing each deeper net with the shallower one of its kind."""
    lines = []
    for plain in (True, False):
        group = sorted((n for n in nets.values() if n["plain"] == plain),
                       key=lambda n: len(n["conv_layers"]))
        for shallow, deep in zip(group, group[1:]):
            if shallow["iterations"] != deep["iterations"]:  # a partial --report-only
                lines.append(f"{deep['label']} ({deep['iterations']} iterations) and "
                             f"{shallow['label']} ({shallow['iterations']}) are not compared: "
                             f"they have not trained as long")
                continue
            for what in ("train", "test"):
                a, b = shallow[f"final_{what}_error"], deep[f"final_{what}_error"]
                if a is None or b is None:
                    continue
                verdict = "higher" if b > a else "lower" if b < a else "the same"
                lines.append(f"{deep['label']} ends with {verdict} {what} error "
                             f"{'as' if verdict == 'the same' else 'than'} {shallow['label']}: "
                             f"{b:.1%} against {a:.1%}")
    return lines


def plot_curves(nets, s):
    """The paper's Figure 6 layout: plain nets left, ResNets right; training error dashed,
    test error solid, against iterations."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = ("tab:orange", "tab:red", "tab:purple", "tab:brown")
    for ax, plain, title in zip(axes, (True, False), ("plain nets", "ResNets")):
        group = sorted((n for n in nets.values() if n["plain"] == plain),
                       key=lambda n: len(n["conv_layers"]))
        for net, colour in zip(group, colours):
            ax.plot(net["train_curve"]["iteration"], 100 * np.asarray(
                net["train_curve"]["error"]), "--", color=colour, label=f"{net['label']} train")
            ax.plot(net["test_curve"]["iteration"], 100 * np.asarray(
                net["test_curve"]["error"]), "-", color=colour, marker=".",
                label=f"{net['label']} test")
        ax.set(title=title, xlabel="iterations", xlim=(0, s.iterations))
        ax.grid(alpha=0.3)
        if group:
            ax.legend()
    axes[0].set_ylabel("error (%)")
    fig.suptitle(f"CIFAR-10, {s.iterations} iterations at batch {s.batch_size}: training error "
                 f"(dashed, augmented batches) and test error (solid, {s.test_size or 'all'} "
                 f"test images)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_gradients(nets):
    """Per-layer gradient norms (log scale) of the deepest plain net and the deepest ResNet,
    one line per recorded iteration."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    deepest = [max((n for n in nets.values() if n["plain"] == plain),
                   key=lambda n: len(n["conv_layers"]), default=None) for plain in (True, False)]
    deepest = [n for n in deepest if n is not None]
    fig, axes = plt.subplots(1, len(deepest), figsize=(5.5 * len(deepest), 4), sharey=True,
                             squeeze=False)
    for ax, net in zip(axes[0], deepest):
        points = net["gradient_norms"]
        cmap = plt.get_cmap("viridis")
        for i, (iteration, norms) in enumerate(points.items()):
            ax.semilogy(range(1, len(norms) + 1), norms, marker=".",
                        color=cmap(i / max(1, len(points) - 1)), label=f"iteration {iteration}")
        ax.set(title=f"{net['label']}: gradient norm per conv layer",
               xlabel="conv layer (1 = next to the input)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("||dL/dW|| of the kernel")
    fig.tight_layout()
    return fig


def write_results(histories, s, wall_seconds, command, log):
    """depth_results.json and the two figures, into s.figures; returns the results dict."""
    from resnet_course.atomic import write_json
    from resnet_course.machine import machine_info
    from resnet_course.training.reporting import save_figure

    nets = {name: net_results(name, histories[name], s) for name in s.models
            if name in histories}
    results = {
        "command": command,
        "settings": {**{k: v for k, v in vars(s).items() if k != "figures"},  # json_text writes tuples as lists
                     "optimizer": "sgd, momentum 0.9",
                     "schedule": (f"linear warm-up from lr/{s.warmup} to lr over {s.warmup} "
                                  f"iterations, then " if s.warmup else "")
                                 + "lr, lr/10 from 50 %, lr/100 from 75 % of the iterations",
                     "augmentation": "pad 4, random 32x32 crop, horizontal flip",
                     "training_error": f"mean over the augmented batches of each "
                                       f"{s.eval_every}-iteration window",
                     "gradient_norms": f"cross-entropy on {GRADIENT_BATCH} fixed un-augmented "
                                       f"training images, BatchNorm in training mode"},
        "machine": machine_info(),
        "wall_seconds": wall_seconds,  # of the training invocation; None: --report-only
        "train_seconds": sum(n["train_seconds"] for n in nets.values()),
        # every window's training steps, test evaluation and checkpoint, over all invocations
        "window_seconds": sum(sum(h.get("seconds", [])) for h in histories.values()),
        "nets": nets,
        "findings": findings(nets),
        "paper": PAPER,
    }
    figures = Path(s.figures)
    figures.mkdir(parents=True, exist_ok=True)
    save_figure(plot_curves(nets, s), figures / CURVES_FIGURE)
    save_figure(plot_gradients(nets), figures / GRADIENTS_FIGURE)
    write_json(figures / RESULTS_JSON, results)
    for line in results["findings"]:
        log(line)
    log(f"wrote {figures / CURVES_FIGURE}, {figures / GRADIENTS_FIGURE} and "
        f"{figures / RESULTS_JSON}")
    return results


def run(s, resume=False, overwrite=False, command=None, log=print):
    """Train every net of ``s`` (Settings) in turn and write the results; returns them."""
    from resnet_course.machine import has_native_bfloat16, machine_line
    from resnet_course.training import trainer

    wall_start = time.perf_counter()
    log(machine_line())
    if s.precision == "bfloat16" and has_native_bfloat16() is False:
        log("note: this CPU has neither AVX512_BF16 nor AMX, so bfloat16 is emulated and "
            "likely slower than --precision float32")
    check_before_training(s, resume, overwrite)
    data = trainer.load_data(net_config(s.models[0], s))
    from resnet_course.atomic import write_json
    Path(s.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(s.out) / RUN_SETTINGS, {k: v for k, v in vars(s).items() if k not in ("figures", "out")})
    log(f"{data.name}: {len(data.y_train)} training images, test error on {len(data.y_test)} "
        f"test images; {s.iterations} iterations of {s.batch_size} per net")
    clock, histories = Clock(s), {}
    with trainer.dtype_policy("mixed_bfloat16" if s.precision == "bfloat16" else "float32"):
        for name in s.models:
            histories[name] = train_net(name, s, data, clock, resume, overwrite, log)
    return write_results(histories, s, time.perf_counter() - wall_start, command, log)


def check_before_training(s, resume, overwrite):
    """TrainError before any net trains for what would stop the run later: a net's folder that
    holds another run, a --figures that is not a folder, a --resume with nothing to continue."""
    from resnet_course.training.checkpoints import check_out_is_free
    from resnet_course.training.train_config import TrainError

    if resume and not Path(s.out).is_dir():
        raise TrainError(f"--resume: {s.out} holds no run to continue; check --out, or start "
                         f"without --resume.")
    if not resume:
        for name in s.models:
            check_out_is_free(Path(s.out) / name, overwrite)
    figures = Path(s.figures)
    if figures.exists() and not figures.is_dir():
        raise TrainError(f"--figures {figures}: a file, not a folder; choose a folder.")
    from resnet_course.data.datasets import DATA_ERRORS, family_of
    try:
        family = family_of(s.dataset)
    except DATA_ERRORS:
        family = None  # loading it says what is wrong
    if family not in (None, "cifar10"):
        raise TrainError(f"--dataset {s.dataset}: this experiment is for CIFAR-10 (32x32 colour "
                         f"images, 10 classes), not {family}.")


def in_this_command_s_terms(message):
    """A train.py resume message in this command's options: its epochs are --eval-every windows."""
    for train_py, here in (("--steps-per-epoch", "--eval-every"), ("--epochs", "--iterations"),
                           ("--model ", "--models ")):
        message = message.replace(train_py, here)
    return message


def stored_histories(s, log=print):
    """{net: history} from the checkpoints in s.out, without training (--report-only): the
    nets not started yet are left out, unfinished ones drawn as far as they got."""
    from resnet_course.training.checkpoints import CHECKPOINT_STATE, read_checkpoint
    from resnet_course.training.train_config import TrainError, merge_resumed_config

    histories = {}
    for name in s.models:
        out = Path(s.out) / name
        if not (out / CHECKPOINT_STATE).is_file():
            log(f"{label(name)}: no checkpoint in {out}, left out")
            continue
        state, _ = read_checkpoint(out)
        # TrainError if the run used other settings than these (only --iterations may differ)
        try:
            merge_resumed_config(state["config"], net_config(name, s).to_dict())
        except TrainError as err:
            raise TrainError(in_this_command_s_terms(str(err))) from None
        histories[name] = state["history"]
        log(f"{label(name)}: {int(state['epoch']) * s.eval_every} iterations in {out}")
    if not histories:
        raise TrainError(f"{s.out}: no net has a checkpoint yet; start the run without "
                         f"--report-only.")
    return histories


def main(argv=None):
    args = build_parser().parse_args(argv)  # --help and bad options exit here, without TF
    tf_environment.import_tensorflow_quietly()  # without its start-up notice

    from resnet_course.training.train_config import TrainError

    def body():
        settings = settings_from(args)
        command = " ".join([PROG, *(sys.argv[1:] if argv is None else map(str, argv))])
        if args.report_only:
            write_results(stored_histories(settings), settings, None, command, print)
        else:
            run(settings, resume=args.resume, overwrite=args.overwrite, command=command)

    return cli.run_main(PROG, body, (TrainError, OSError),
                        interrupted="interrupted; every net keeps its last checkpoint in "
                                    "--out, continue with --resume")


if __name__ == "__main__":
    sys.exit(main())
