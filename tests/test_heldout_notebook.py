"""The notebook's held-out cell (section 6, issue 28), run on its own with a stub model: with
datasets/heldout_signs.h5 it reports accuracy and recall per sign with the file's source and
licence; without the file (the course's own SIGNS files) it says so in one line and goes on."""
import contextlib
import io
from pathlib import Path

import h5py
import matplotlib
import nbformat
import numpy as np

from resnet_course.course import demo
from resnet_course.paths import SOURCE_NOTEBOOK

matplotlib.use("Agg")


class _Stub:
    """predict(X) -> one-hot rows of fixed predictions, like the saved model's probabilities."""
    def __init__(self, predicted):
        self.predicted = np.asarray(predicted)

    def predict(self, X, verbose=0):
        return np.eye(6)[self.predicted[:len(X)]]


def _run_cell(folder, predictor, monkeypatch):
    import matplotlib.pyplot as plt
    from stress import plot_recall_per_class, recall_per_class

    source = next(c.source for c in nbformat.read(str(SOURCE_NOTEBOOK), as_version=4).cells
                  if c.get("id") == "heldout")
    monkeypatch.chdir(folder)
    namespace = {"np": np, "plt": plt, "Path": Path, "predictor": predictor,
                 "classes": np.arange(6), "recalls": {"test": np.ones(6)},
                 "recall_per_class": recall_per_class, "plot_recall_per_class": plot_recall_per_class}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "heldout cell", "exec"), namespace)
    plt.close("all")
    return printed.getvalue().splitlines()


def test_without_the_file_the_cell_says_so_in_one_line(tmp_path, monkeypatch):
    lines = _run_cell(tmp_path, _Stub([]), monkeypatch)
    assert len(lines) == 1 and lines[0].startswith("No datasets/heldout_signs.h5 (optional"), lines
    assert lines[0].startswith(demo.HELDOUT_PREFIXES)  # make demo's report shows it


def test_with_the_file_the_cell_reports_per_sign_with_source_and_licence(tmp_path, monkeypatch):
    (tmp_path / "datasets").mkdir()
    with h5py.File(tmp_path / "datasets" / "heldout_signs.h5", "w") as f:
        f["test_set_x"] = np.zeros((6, 64, 64, 3), np.uint8)
        f["test_set_y"] = np.array([1, 1, 2, 2, 5, 5], np.int64)
        f["list_classes"] = np.arange(6, dtype=np.int64)
        f.attrs["source"], f.attrs["licence"] = "Roboflow Universe test set", "CC BY 4.0"
    lines = _run_cell(tmp_path, _Stub([1, 1, 2, 3, 5, 0]), monkeypatch)
    assert lines == ["Held-out photos: Roboflow Universe test set; licence CC BY 4.0",
                     "Held-out accuracy: 0.6667 (4 of 6 photos; mean recall of signs 1-5: 0.6667)",
                     "Held-out recall per sign: 1: 100% of 2, 2: 50% of 2, 5: 50% of 2"], lines
    assert all(line.startswith(demo.HELDOUT_PREFIXES) for line in lines)
