# Generated from the course's learner/display.py; edit that, not this copy.
"""What the notebook shows while and after training: progress with the time left (and a clean stop
on Kernel -> Interrupt), the model as one row per stage, the training curves, the confusion matrix.
"""
import os
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


def duration(seconds):
    """A duration for people: '45 s', '4.5 min' or '1 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def _count(n, what):
    return f"{n} {what}{'s' if n != 1 else ''}"


class TrainingProgress(keras.callbacks.Callback):
    """Prints how training goes, for whoever waits for it: first the plan (epochs of steps; the
    first epoch also builds the graph, so it takes longer), during the first epoch a line after
    step 1 and every `every` steps with the seconds so far (every=0: none), then one line per
    epoch with its metrics (metrics=False: without), its seconds and the time left, estimated
    from the epochs after the first. log: the function that prints a line; initial_epoch: as
    fit's (a resumed run)."""

    def __init__(self, epochs, steps_per_epoch, every=10, metrics=True, log=print, initial_epoch=0):
        super().__init__()
        self.epochs, self.steps, self.every = epochs, steps_per_epoch, every
        self.metrics, self.log, self.initial_epoch, self.seconds = metrics, log, initial_epoch, []

    def on_train_begin(self, logs=None):
        first = f" (from epoch {self.initial_epoch + 1})" if self.initial_epoch else ""
        epochs = _count(self.epochs - self.initial_epoch, "epoch")
        self.log(f"Training {epochs} of {self.steps} steps{first}. The first epoch also builds the "
                 "graph (TensorFlow compiles the model): it takes longer.")

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if not self.seconds and self.every and (step == 1 or step % self.every == 0) and step < self.steps:
            self.log(f"  step {step}/{self.steps}: {duration(time.perf_counter() - self.start)}")

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)
        steady = self.seconds[1:] or self.seconds  # the first epoch also built the graph
        left = (self.epochs - epoch - 1) * sum(steady) / len(steady)
        names = sorted(logs or {}, key=lambda name: (name.startswith("val_"), not name.endswith("loss")))
        values = ", ".join(f"{name} {logs[name]:.4f}" for name in names)
        if not left:
            timing = f"{duration(sum(self.seconds))} in all"
        else:
            timing = f"{'less than' if len(self.seconds) == 1 else 'about'} {duration(left)} left"
        self.log(f"epoch {epoch + 1}/{self.epochs}{': ' + values if self.metrics and values else ''} "
                 f"({duration(self.seconds[-1])}, {timing})")


def fit_with_progress(model, dataset, epochs, steps_per_epoch, callbacks=(), every=10):
    """model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False,
    verbose=0, callbacks=...) printing TrainingProgress's lines; returns the History of the
    epochs that finished. Kernel -> Interrupt (Ctrl-C) stops training with one line instead of
    pages of traceback; the model keeps the weights of its last step (TensorFlow finishes a step
    before Python sees the interrupt), so the next cells can use it.
    Under nbgrader (NBGRADER_EXECUTION set) it trains 1 epoch of 2 steps: grading needs the
    functions and a model that runs, not a trained one."""
    if os.environ.get("NBGRADER_EXECUTION"):
        print("nbgrader is running this notebook: a token run of 1 epoch of 2 steps.")
        epochs, steps_per_epoch = 1, 2
    history = keras.callbacks.History()
    try:
        model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, shuffle=False, verbose=0,
                  callbacks=[history, TrainingProgress(epochs, steps_per_epoch, every), *callbacks])
    except KeyboardInterrupt:
        done = len(getattr(history, "epoch", []))
        print(f"Training stopped after epoch {done} of {epochs} (interrupted). The model keeps the "
              "weights of its last step: the next cells use it; run this cell again to start over.")
    return history


def _sources(value):
    """Names of the layers whose outputs a get_config() inbound-node structure takes."""
    if isinstance(value, dict):
        config = value.get("config")
        history = config.get("keras_history") if isinstance(config, dict) else None
        return [history[0]] if history else [name for v in value.values() for name in _sources(v)]
    return [name for v in value for name in _sources(v)] if isinstance(value, (list, tuple)) else []


def _short(layer):
    """Conv2D -> Conv, BatchNormalization -> BatchNorm, Activation("relu") -> ReLU, ..."""
    name = type(layer).__name__.replace("2D", "").replace("Normalization", "Norm")
    return {"relu": "ReLU", "softmax": "Softmax"}.get(layer.get_config().get("activation"), name) \
        if name == "Activation" else name


def stage_rows(model):
    """A ResNet (blocks that end in an Add layer) as one row per stage: the layers before the
    first block (stage 1), the blocks grouped by their output shape (stages 2, 3, ...), the layers
    after the last block (head). Rows: dicts of stage, layers (what it is made of), output_shape
    (without the batch) and parameters."""
    config = model.get_config()["layers"]
    inputs = {c["name"]: _sources(c["inbound_nodes"]) for c in config}
    seen = {}  # each layer with its ancestors (get_config lists them in the order of the graph)
    for c in config:
        seen[c["name"]] = {c["name"]}.union(*(seen[name] for name in inputs[c["name"]]))
    adds = [c["name"] for c in config if c["class_name"] == "Add"]
    # stage 1: what both paths of the first block stand on
    stem = set.intersection(*(seen[name] for name in inputs[adds[0]])) if adds else set(seen)
    block_of = {}  # -1: stage 1; k: the block that ends with adds[k]; len(adds): the head
    for c in config:
        name = c["name"]
        block_of[name] = -1 if name in stem else sum(add in seen[name] for add in adds if add != name)
        if name not in adds and inputs[name] and set(inputs[name]) <= set(adds):
            block_of[name] -= 1  # the activation after an Add ends that Add's block
    members = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            members.setdefault(block_of[layer.name], []).append(layer)

    def row(stage, layers, made_of=None):
        return {"stage": stage, "layers": made_of or ", ".join(_short(layer) for layer in layers),
                "output_shape": tuple(layers[-1].output.shape[1:]),
                "parameters": sum(layer.count_params() for layer in layers)}

    rows = [row("stage 1" if adds else "all layers", members.pop(-1))]
    stages = []  # [layers, convolutional blocks, identity blocks] of blocks with one output shape
    for block in range(len(adds)):
        shape = tuple(members[block][-1].output.shape[1:])
        if not stages or tuple(stages[-1][0][-1].output.shape[1:]) != shape:
            stages.append([[], 0, 0])
        identity = any(block_of[source] < block for source in inputs[adds[block]])
        stages[-1][0] += members[block]
        stages[-1][2 if identity else 1] += 1
    for number, (layers, convolutional, identity) in enumerate(stages, start=2):
        made_of = " + ".join(_count(n, f"{kind} block") for n, kind in
                             [(convolutional, "convolutional"), (identity, "identity")] if n)
        rows.append(row(f"stage {number}", layers, made_of))
    if len(adds) in members:
        rows.append(row("head", members[len(adds)]))
    return rows


def summary_by_stage(model, print_fn=print):
    """Prints model as a table of stage_rows(model) and the total: a short model.summary(), which
    lists every layer."""
    rows = stage_rows(model)
    width = max(len(r["layers"]) for r in rows)
    print_fn(f"{'':8}  {'made of':{width}}  {'output shape':15}  {'parameters':>10}")
    for r in rows:
        print_fn(f"{r['stage']:8}  {r['layers']:{width}}  {str(r['output_shape']):15}  "
                 f"{r['parameters']:>10,}")
    total = _count(len(model.layers), "layer") + " (model.summary() lists each one)"
    print_fn(f"{'total':8}  {total:{width}}  {'':15}  {model.count_params():>10,}")


def plot_history(history):
    """Loss and accuracy per epoch (training, and validation when present) of a fit() History."""
    values = history.history if hasattr(history, "history") else history
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric in zip(axes, ["loss", "accuracy"]):
        for prefix, label in [("", "training"), ("val_", "validation")]:
            if prefix + metric in values:
                curve = values[prefix + metric]
                ax.plot(range(1, len(curve) + 1), curve, marker=".", label=label)
        ax.set(xlabel="epoch", title=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(y_true, y_pred, class_names):
    """Counts of (true class, predicted class) pairs; y_true, y_pred: labels or one-hot rows."""
    y_true, y_pred = (y.argmax(axis=-1) if y.ndim == 2 else y.reshape(-1)
                      for y in (np.asarray(y_true), np.asarray(y_pred)))
    n = len(class_names)
    counts = np.zeros((n, n), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(counts, cmap="Blues")
    for i, j in np.ndindex(n, n):
        ax.text(j, i, counts[i, j], ha="center", va="center",
                color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xticks=range(n), xticklabels=class_names, yticks=range(n), yticklabels=class_names,
           xlabel="predicted", ylabel="true", title=f"accuracy {np.mean(y_true == y_pred):.1%}")
    fig.tight_layout()
    return fig
