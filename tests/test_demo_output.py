"""make demo's terminal output: a line per executed cell, the training cell's lines as it prints
them, each result once (the run, or --report from the executed notebook), and no kernel warning."""
import re
import subprocess

import nbformat

from resnet_course.course import demo
from resnet_course.paths import ROOT


# what the notebook's held-out cell prints (section 6)
HELDOUT = ["Held-out photos: Roboflow Universe ...; licence CC BY 4.0", "Held-out accuracy: 0.9000 (9 of 10 photos; mean recall of signs 1-5: 0.9000)",
           "Held-out recall per sign: 1: 100% of 5, 5: 80% of 5"]


def _tiny_notebook(path):
    """A parameters cell, a training cell that prints two epoch lines, and a cell with the results."""
    parameters = nbformat.v4.new_code_cell('EPOCHS = 2\nOUTPUT_DIR = "outputs"', id="parameters")
    parameters.metadata["tags"] = ["parameters"]
    training = nbformat.v4.new_code_cell(
        "for epoch in range(EPOCHS):\n    print(f'epoch {epoch + 1}/{EPOCHS}: 1 s, about {EPOCHS - epoch - 1} s left')",
        id=demo.STREAMED_CELLS[0])
    results = nbformat.v4.new_code_cell(
        "from pathlib import Path\n"
        "Path(OUTPUT_DIR).mkdir(exist_ok=True)\n"
        f"Path(OUTPUT_DIR, {demo.MODEL_FILE!r}).write_text('a model')\n"
        "print('Test accuracy: 0.9936')\nprint('Stress severity 1: accuracy 0.98 as they are, 0.97 framed')\n"
        f"for line in {HELDOUT!r}:\n    print(line)\n"
        "print('a line that is not a result')", id="results")
    nbformat.write(nbformat.v4.new_notebook(cells=[parameters, training, results]), str(path))


def test_the_demo_streams_progress_prints_each_result_once_and_no_kernel_warning(tmp_path, capfd):
    path = tmp_path / "tiny.ipynb"
    _tiny_notebook(path)
    out = tmp_path / "out"
    assert demo.main(["--notebook", str(path), "--output-dir", str(out)]) == 0
    printed, errors = capfd.readouterr()
    assert "without encryption" not in printed + errors and errors == "", errors
    lines = printed.splitlines()
    assert "epoch 1/2: 1 s, about 1 s left" in lines and "epoch 2/2: 1 s, about 0 s left" in lines
    # one line per cell (the three and the injected parameters), the training cell's after its lines
    assert sum(bool(re.match(r" +\d+ s  cell +\d ", line)) for line in lines) == 4, lines
    assert lines.index("epoch 2/2: 1 s, about 0 s left") < next(i for i, line in enumerate(lines)
                                                                if "cell  2 training:" in line)
    for result in ("Test accuracy: 0.9936", "Stress severity 1: accuracy 0.98 as they are, 0.97 framed"):
        assert lines.count(result) == 1, lines
    assert "a line that is not a result" not in lines

    # make demo: the run prints no results, the report prints them from the executed notebook
    assert demo.main(["--notebook", str(path), "--output-dir", str(out), "--no-report"]) == 0
    assert "Test accuracy" not in capfd.readouterr().out
    assert demo.main(["--output-dir", str(out), "--report"]) == 0
    reported = capfd.readouterr().out.splitlines()
    assert reported[1:6] == ["Test accuracy: 0.9936", "Stress severity 1: accuracy 0.98 as they are, 0.97 framed",
                             *HELDOUT]
    assert reported[6].startswith("trained model:") and len(reported) == 7


def test_the_report_of_a_missing_run_says_what_to_do(tmp_path, capsys):
    assert demo.main(["--output-dir", str(tmp_path), "--report"]) == 1
    assert "run `make demo`" in capsys.readouterr().err


def test_make_demo_prints_the_results_only_through_the_report():
    # --no-print-directory: under `make test` this make is nested and would print its directory
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "-W", "instructor/source/ResNet50/ResNet50.ipynb",
                             "demo"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "resnet_course.course.demo --no-report" in recipe and recipe.rstrip().endswith("resnet_course.course.demo --report")
    assert "grep" not in recipe


def test_the_source_notebook_has_the_streamed_training_cell():
    notebook = nbformat.read(str(demo.SOURCE_NOTEBOOK), as_version=4)
    assert set(demo.STREAMED_CELLS) <= {cell.get("id") for cell in notebook.cells}
