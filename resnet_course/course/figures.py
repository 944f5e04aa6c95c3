"""Draws the block diagrams of the assignment into images/ (the project's own drawings).

    python -m resnet_course.course.figures            # = make figures
    python -m resnet_course.course.figures --check    # exit 1 naming the figures that differ

The PNG files are committed; they are drawn with matplotlib's default style and its bundled
font, without a "Software" stamp, so the same environment redraws them byte for byte.
"""
import argparse
import io
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch  # noqa: E402

from resnet_course.paths import IMAGES_DIR  # noqa: E402

IMAGES = IMAGES_DIR
DPI = 110

# One colour per kind of layer, the same in every figure.
COLORS = {
    "conv": "#9ecae1",
    "bn": "#fdd49e",
    "relu": "#fc9272",
    "pool": "#a1d99b",
    "dense": "#bcbddc",
    "pad": "#d9d9d9",
    "block": "#c6dbef",
    "idblock": "#e5f5e0",
}
EDGE = "#333333"
SHORTCUT = "#d62728"
BOX_W, BOX_H, GAP = 1.0, 1.1, 0.32


def _box(ax, x, y, text, kind, w=BOX_W, h=BOX_H, fontsize=8.5):
    """A rounded box centred on (x, y); returns its left and right mid-points."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=COLORS[kind], edgecolor=EDGE, linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, linespacing=1.25)
    return (x - w / 2, y), (x + w / 2, y)


def _adder(ax, x, y, r=0.22):
    ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=EDGE, linewidth=1.2))
    ax.text(x, y, "+", ha="center", va="center", fontsize=13, fontweight="bold")
    return (x - r, y), (x + r, y)


def _arrow(ax, start, end, color=EDGE, style="-|>", lw=1.2, connection="arc3"):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color,
                                 linewidth=lw, connectionstyle=connection, shrinkA=0, shrinkB=0))


def _line(ax, points, color=EDGE, lw=1.2):
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=color, linewidth=lw, solid_capstyle="round")


def _chain(ax, items, x0, y):
    """Draws boxes (text, kind) or "+" left to right with arrows between them; returns their centres."""
    centres, previous_right, x = [], None, x0
    for item in items:
        if item == "+":
            x += 0.22
            left, right = _adder(ax, x, y)
            centres.append(x)
            x += 0.22 + GAP
        else:
            text, kind = item
            x += BOX_W / 2
            left, right = _box(ax, x, y, text, kind)
            centres.append(x)
            x += BOX_W / 2 + GAP
        if previous_right is not None:
            _arrow(ax, previous_right, left)
        previous_right = right
    return centres, previous_right


def _brace(ax, x_from, x_to, y, text):
    """A bracket under a group of boxes with its label."""
    _line(ax, [(x_from, y + 0.12), (x_from, y), (x_to, y), (x_to, y + 0.12)], color="#777777", lw=1.0)
    ax.text((x_from + x_to) / 2, y - 0.12, text, ha="center", va="top", fontsize=8.5, color="#555555")


def _new_axes(width, height, xlim, ylim):
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


MAIN_PATH = [
    ("CONV2D\n1×1, F1", "conv"), ("Batch\nNorm", "bn"), ("ReLU", "relu"),
    ("CONV2D\nf×f, F2\nsame", "conv"), ("Batch\nNorm", "bn"), ("ReLU", "relu"),
    ("CONV2D\n1×1, F3", "conv"), ("Batch\nNorm", "bn"), "+", ("ReLU", "relu"),
]


def _block_main_path(ax, first_conv_text):
    """Input label, the main path of a bottleneck block and the output label; returns the centres."""
    items = [(first_conv_text, "conv")] + MAIN_PATH[1:]
    ax.text(0.0, 0, "X", ha="center", va="center", fontsize=12, fontweight="bold")
    centres, right = _chain(ax, items, 0.9, 0)
    _arrow(ax, (0.25, 0), (0.9, 0))
    _arrow(ax, right, (right[0] + 0.6, 0))
    ax.text(right[0] + 0.9, 0, "output", ha="left", va="center", fontsize=10)
    for first, last, label in ((0, 2, "component 1"), (3, 5, "component 2"), (6, 7, "component 3")):
        _brace(ax, centres[first] - BOX_W / 2, centres[last] + BOX_W / 2, -0.8, label)
    return centres


def draw_identity_block():
    fig, ax = _new_axes(12.6, 3.3, (-0.4, 14.9), (-1.3, 2.7))
    centres = _block_main_path(ax, "CONV2D\n1×1, F1")
    add_x = centres[8]
    # The shortcut leaves X, runs above the main path and enters the addition from the top.
    _line(ax, [(0.55, 0), (0.55, 1.45), (add_x, 1.45)], color=SHORTCUT, lw=1.8)
    _arrow(ax, (add_x, 1.45), (add_x, 0.22), color=SHORTCUT, lw=1.8)
    ax.text((0.55 + add_x) / 2, 1.6, "shortcut: X itself (identity), added before the last ReLU",
            ha="center", va="bottom", fontsize=10, color=SHORTCUT)
    ax.text(7.1, 2.45, "Identity block (input and output have the same shape)", ha="center", va="center",
            fontsize=12, fontweight="bold")
    return fig


def draw_convolutional_block():
    fig, ax = _new_axes(12.6, 4.0, (-0.4, 14.9), (-1.3, 3.55))
    centres = _block_main_path(ax, "CONV2D\n1×1, F1\nstride s")
    add_x = centres[8]
    # The shortcut holds a 1x1 CONV (stride s) and a BatchNorm that give X the output's shape.
    lane = 1.95
    conv_x, bn_x = centres[3], centres[4]
    _line(ax, [(0.55, 0), (0.55, lane)], color=SHORTCUT, lw=1.8)
    _arrow(ax, (0.55, lane), (conv_x - BOX_W / 2, lane), color=SHORTCUT, lw=1.8)
    _box(ax, conv_x, lane, "CONV2D\n1×1, F3\nstride s", "conv")
    _box(ax, bn_x, lane, "Batch\nNorm", "bn")
    _arrow(ax, (conv_x + BOX_W / 2, lane), (bn_x - BOX_W / 2, lane))
    _line(ax, [(bn_x + BOX_W / 2, lane), (add_x, lane)], color=SHORTCUT, lw=1.8)
    _arrow(ax, (add_x, lane), (add_x, 0.22), color=SHORTCUT, lw=1.8)
    ax.text((bn_x + add_x) / 2 + 0.3, lane + 0.15, "shortcut: a 1×1 CONV projects X\nto the output's shape",
            ha="center", va="bottom", fontsize=10, color=SHORTCUT)
    ax.text(7.1, 3.3, "Convolutional block (the shortcut changes the shape)", ha="center", va="center",
            fontsize=12, fontweight="bold")
    return fig


STAGES = [
    # title, boxes (text, kind), output shape
    ("Stage 1", [("ZERO PAD 3", "pad"), ("CONV2D 7×7\n64, stride 2", "conv"), ("BatchNorm", "bn"),
                 ("ReLU", "relu"), ("MAX POOL\n3×3, stride 2", "pool")], "15×15×64"),
    ("Stage 2", [("CONV BLOCK\ns = 1", "block"), ("ID BLOCK ×2", "idblock")], "15×15×256",
     "filters\n64, 64, 256"),
    ("Stage 3", [("CONV BLOCK\ns = 2", "block"), ("ID BLOCK ×3", "idblock")], "8×8×512",
     "filters\n128, 128, 512"),
    ("Stage 4", [("CONV BLOCK\ns = 2", "block"), ("ID BLOCK ×5", "idblock")], "4×4×1024",
     "filters\n256, 256, 1024"),
    ("Stage 5", [("CONV BLOCK\ns = 2", "block"), ("ID BLOCK ×2", "idblock")], "2×2×2048",
     "filters\n512, 512, 2048"),
    ("Output", [("AVG POOL\n2×2", "pool"), ("FLATTEN", "pad"), ("DENSE 6\nsoftmax", "dense")], "6"),
]


def draw_resnet50():
    column_w, column_gap, box_h = 1.75, 0.55, 0.62
    fig, ax = _new_axes(13.2, 4.6, (-1.7, 13.4), (-3.0, 2.4))
    ax.text(-1.1, 0, "INPUT\n64×64×3", ha="center", va="center", fontsize=10, fontweight="bold")
    previous_right = (-0.55, 0)
    for index, (title, boxes, shape, *note) in enumerate(STAGES):
        x = index * (column_w + column_gap) + column_w / 2
        top, bottom = 1.75, -1.75
        ax.add_patch(FancyBboxPatch((x - column_w / 2, bottom), column_w, top - bottom,
                                    boxstyle="round,pad=0.03,rounding_size=0.12", facecolor="#f7f7f7",
                                    edgecolor="#999999", linewidth=1.0))
        ax.text(x, top - 0.25, title, ha="center", va="center", fontsize=10.5, fontweight="bold")
        note_space = 0.65 if note else 0.0
        step = (top - bottom - 0.55 - note_space) / len(boxes)
        for i, (text, kind) in enumerate(boxes):
            y = top - 0.55 - step * (i + 0.5)
            _box(ax, x, y, text, kind, w=column_w - 0.3, h=min(box_h, step - 0.1), fontsize=8.5)
        if note:
            ax.text(x, bottom + 0.4, note[0], ha="center", va="center", fontsize=8, color="#555555")
        ax.text(x, bottom - 0.3, shape, ha="center", va="top", fontsize=9.5, color="#08519c")
        _arrow(ax, previous_right, (x - column_w / 2, 0))
        previous_right = (x + column_w / 2, 0)
    ax.text(5.8, -2.75, "blue: output shape of each stage (m × height × width × channels, m omitted); "
            "a stage's first block halves height and width with stride s", ha="center", va="top",
            fontsize=9, color="#555555")
    ax.text(5.8, 2.2, "ResNet50 (50 layers with weights: 1 + 3×(3+4+6+3) CONV2D + 1 DENSE)",
            ha="center", va="center", fontsize=12, fontweight="bold")
    return fig


def draw_skip_connection():
    fig, ax = _new_axes(9.0, 4.4, (-0.6, 9.9), (-3.1, 2.0))
    rows = (("plain", 0.4, "Two layers of a plain network:  a[l+2] = ReLU(z[l+2])"),
            ("residual", -2.3, "The same layers with a skip connection:  a[l+2] = ReLU(z[l+2] + a[l])"))
    items = [("LINEAR", "conv"), ("ReLU", "relu"), ("LINEAR", "conv")]
    for name, y, caption in rows:
        ax.text(0.0, y, "a[l]", ha="center", va="center", fontsize=12, fontweight="bold")
        chain = items + (["+"] if name == "residual" else []) + [("ReLU", "relu")]
        centres, right = _chain(ax, chain, 1.2, y)
        _arrow(ax, (0.35, y), (1.2, y))
        _arrow(ax, right, (right[0] + 0.7, y))
        ax.text(right[0] + 1.15, y, "a[l+2]", ha="center", va="center", fontsize=12, fontweight="bold")
        ax.text(5.0, y + 1.3, caption, ha="center", va="center", fontsize=10.5)
        if name == "residual":
            add_x = centres[3]
            _line(ax, [(0.75, y), (0.75, y + 0.72), (add_x, y + 0.72)], color=SHORTCUT, lw=1.8)
            _arrow(ax, (add_x, y + 0.72), (add_x, y + 0.22), color=SHORTCUT, lw=1.8)
            ax.text((0.75 + add_x) / 2, y + 0.8, "shortcut (identity)", ha="center", va="bottom", fontsize=10,
                    color=SHORTCUT)
    return fig


FIGURES = {
    "identity_block.png": draw_identity_block,
    "convolutional_block.png": draw_convolutional_block,
    "resnet50.png": draw_resnet50,
    "skip_connection.png": draw_skip_connection,
}


def render(name):
    """The PNG bytes of one figure, drawn with matplotlib's default style."""
    with plt.style.context("default"):
        fig = FIGURES[name]()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
        plt.close(fig)
    return buffer.getvalue()


def stale_figures(directory=IMAGES):
    """Names of the figures whose file is missing or differs from a fresh drawing."""
    return [name for name in FIGURES
            if not (directory / name).is_file() or (directory / name).read_bytes() != render(name)]


def write_figures(directory=IMAGES):
    """Draws every figure into directory; returns the names of the files that changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in FIGURES:
        data, path = render(name), directory / name
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
            changed.append(name)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a figure is stale")
    options = parser.parse_args(argv)
    if options.check:
        stale = stale_figures()
        if stale:
            print("stale figures (run `make figures`): " + ", ".join(stale))
            return 1
        print("figures are up to date")
        return 0
    changed = write_figures()
    print(f"wrote {', '.join(changed)}" if changed else "figures unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
