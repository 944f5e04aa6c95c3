"""What a trained classifier did on labelled images: numbers, a text report and figures.

Used by train.py (after training) and evaluate.py (on a saved model) so that both print
and store the same summary.
"""
import math

import matplotlib

matplotlib.use("Agg")  # files only; the CLIs never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from resnet_course.atomic import atomic_output  # noqa: E402

PROBABILITY_FLOOR = 1e-7  # as Keras clips probabilities in its cross-entropy


def confusion_matrix(y_true, y_pred, num_classes):
    """counts[i, j]: images of class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def per_class_scores(counts):
    """precision, recall, F1 and support of every class of a confusion matrix (0 when
    undefined, as scikit-learn's zero_division=0)."""
    true_positives = np.diag(counts).astype(float)
    predicted = counts.sum(axis=0)
    support = counts.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(len(counts)), where=predicted > 0)
    recall = np.divide(true_positives, support, out=np.zeros(len(counts)), where=support > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(len(counts)), where=total > 0)
    return precision, recall, f1, support


def summarize(probabilities, y_true, class_names):
    """accuracy, cross-entropy loss, per-class report and confusion matrix, JSON-ready."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = probabilities.argmax(axis=1)
    picked = probabilities[np.arange(len(y_true)), y_true]
    counts = confusion_matrix(y_true, y_pred, len(class_names))
    precision, recall, f1, support = per_class_scores(counts)
    per_class = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    }
    return {
        "images": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)),
        "loss": float(-np.mean(np.log(np.clip(picked, PROBABILITY_FLOOR, 1.0)))),
        "per_class": per_class,
        "macro_avg": {"precision": float(precision.mean()), "recall": float(recall.mean()),
                      "f1": float(f1.mean())},
        "class_names": list(class_names),
        "confusion_matrix": counts.tolist(),
    }


def format_summary(summary):
    """The summary as a text report (per-class table, then the confusion matrix)."""
    names = summary["class_names"]
    width = max(10, *(len(n) for n in names))
    lines = [f"{summary['images']} images: accuracy {summary['accuracy']:.4f}, "
             f"loss {summary['loss']:.4f} (cross-entropy)", "",
             f"{'class':>{width}}  precision  recall     f1  support"]
    for name in names:
        s = summary["per_class"][name]
        lines.append(f"{name:>{width}}  {s['precision']:9.3f}  {s['recall']:6.3f}  "
                     f"{s['f1']:5.3f}  {s['support']:7d}")
    m = summary["macro_avg"]
    lines.append(f"{'macro avg':>{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  "
                 f"{m['f1']:5.3f}  {summary['images']:7d}")
    cell = max(5, *(len(str(v)) + 1 for row in summary["confusion_matrix"] for v in row))
    short = [n[:cell - 1] for n in names]
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"{n:>{cell}}" for n in short)]
    for name, row in zip(names, summary["confusion_matrix"]):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return "\n".join(lines)


def plot_predictions(X, y_true, probabilities, class_names, n=24, seed=0, columns=8):
    """A grid of ``n`` random test images titled "predicted (probability) / true";
    mistakes in red. Returns the Figure."""
    X, y_true = np.asarray(X), np.asarray(y_true).reshape(-1)
    probabilities = np.asarray(probabilities)
    n = min(n, len(X))
    picks = np.sort(np.random.default_rng(seed).choice(len(X), size=n, replace=False))
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 2.3 * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks):
        predicted = int(probabilities[i].argmax())
        wrong = predicted != y_true[i]
        ax.imshow(X[i])
        ax.set_title(f"{class_names[predicted]} ({probabilities[i, predicted]:.2f})\n"
                     f"true: {class_names[y_true[i]]}", fontsize=8,
                     color="red" if wrong else "black")
        if wrong:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2)
    fig.suptitle("predicted (probability) / true class; mistakes in red", fontsize=9)
    return fig


def rotate_long_tick_labels(fig, longer_than=3):
    """Tilt the x tick labels of a figure's first axes when they are words, not digits,
    so that CIFAR-10's class names under a confusion matrix do not overlap."""
    ax = fig.axes[0]
    if any(len(label.get_text()) > longer_than for label in ax.get_xticklabels()):
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
        fig.tight_layout()
    return fig


def save_figure(fig, path, dpi=110):
    """Write the figure to ``path`` (format from its suffix) atomically, then close it."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
