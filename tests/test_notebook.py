"""The nbgrader source notebook: solutions equal reference.py, sane nbgrader metadata, and it runs.

The source notebook is executed once in this file (minutes on 2 cores): by `nbgrader validate`'s
own Validator with the course's nbgrader_config.py, which keeps the notebook it executed for the
tests of its printed results. Under nbgrader the training cell makes a token run of 1 epoch of 2
steps by itself (display.fit_with_progress). The learner's short run with the parameters cell
filled in (demo.with_parameters, what `make demo` and the browser test use) runs in JupyterLab in
tests/test_browser.py; make demo's executor on small notebooks in tests/test_demo_output.py. The
learner release is validated by the `nbgrader validate` command itself; it stops at the first
exercise stub, so only its first cells do real work.
"""
import ast
import io
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator
from nbgrader.validator import Validator
from traitlets.config.loader import PyFileConfigLoader

from learner_notebooks import DURATION, EPOCH_LINE
from resnet_course.course import demo, notebook_sync, release
from resnet_course.training.recipes import RECIPES
from resnet_course.training.trainer import BN_MOMENTUM

SOURCE = notebook_sync.SOURCE_NOTEBOOK
EXERCISES = notebook_sync.EXERCISES
CHECKS = {"identity_block": "check_identity_block", "convolutional_block": "check_convolutional_block",
          "ResNet50": "check_resnet50"}
PUBLIC_TESTS = {"identity_block": "identity_block_test", "convolutional_block": "convolutional_block_test",
                "ResNet50": "ResNet50_test"}


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(str(SOURCE), as_version=4)


def _nbgrader(cell):
    return cell.metadata.get("nbgrader", {})


def _test_cells(notebook):
    return {_nbgrader(c)["grade_id"]: c for c in notebook.cells if _nbgrader(c).get("grade")}


# ---- static checks ----

def test_solution_cells_match_the_reference(notebook):
    assert notebook_sync.drifted(notebook) == [], "run `python -m resnet_course.course.notebook_sync`"


def test_sync_check_names_the_drifted_function_and_sync_repairs_it(tmp_path, capsys):
    copy = tmp_path / "ResNet50.ipynb"
    shutil.copy(SOURCE, copy)
    edited = nbformat.read(str(copy), as_version=4)
    notebook_sync.solution_cells(edited)["convolutional_block"].source += "\n# an edit"
    nbformat.write(edited, str(copy))

    assert notebook_sync.main(["--check", "--notebook", str(copy)]) == 1
    message = capsys.readouterr().out
    assert "convolutional_block" in message and "identity_block" not in message
    assert notebook_sync.sync(copy) == ["convolutional_block"]
    assert notebook_sync.main(["--check", "--notebook", str(copy)]) == 0
    assert copy.read_bytes() == SOURCE.read_bytes()


def test_nbgrader_metadata_is_valid(notebook):
    MetadataValidator().validate_nb(notebook)  # raises on missing or duplicate grade ids
    ids = [_nbgrader(c)["grade_id"] for c in notebook.cells if _nbgrader(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    cell_ids = [c.id for c in notebook.cells]
    assert len(cell_ids) == len(set(cell_ids)), "cell ids must be unique"
    solutions = [c for c in notebook.cells if _nbgrader(c).get("solution")]
    assert sorted(_nbgrader(c)["grade_id"] for c in solutions) == sorted(EXERCISES)
    assert all(c.cell_type == "code" and not _nbgrader(c)["locked"] for c in solutions)


def test_each_exercise_has_a_locked_graded_test_cell_with_markers(notebook):
    tests = _test_cells(notebook)
    assert sorted(tests) == sorted(f"{name}_test" for name in EXERCISES)
    for name in EXERCISES:
        cell = tests[f"{name}_test"]
        meta = _nbgrader(cell)
        assert cell.cell_type == "code" and meta["locked"] and not meta["solution"] and meta["points"] > 0
        lines = cell.source.splitlines()
        # globals().get: run before the exercise's cell (e.g. after a restart), the check says so in one line
        assert lines[0].startswith(f'{PUBLIC_TESTS[name]}(globals().get("{name}"))'), "the cell starts with the public check"
        for marker in ("### BEGIN HIDDEN TESTS", f"from public_tests import {CHECKS[name]}",
                       f"# BEGIN GENERATED HIDDEN CASES {name}", "# END GENERATED HIDDEN CASES",
                       "for case in HIDDEN_CASES:", f"    {CHECKS[name]}({name}, case)", "### END HIDDEN TESTS"):
            assert marker in lines, f"{name}_test: missing the line {marker!r}"


def test_solution_markers_only_in_solution_cells(notebook):
    # nbgrader treats any line holding the marker as a solution region, even in markdown
    for cell in notebook.cells:
        if not _nbgrader(cell).get("solution"):
            assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source, cell.id


def test_committed_source_has_no_outputs_and_no_instructor_imports(notebook):
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"outputs in cell {cell.id}"
            assert not re.search(r"\bresnet_course\b", cell.source), f"cell {cell.id} imports resnet_course"


def test_run_parameters_are_one_tagged_cell_of_literals_just_before_training(notebook):
    ids = [c.id for c in notebook.cells]
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert [c.id for c in tagged] == ["parameters"]
    assert ids.index("parameters") == ids.index("training") - 1
    assignments = [node for node in ast.parse(tagged[0].source).body]
    assert all(isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
               for node in assignments), "plain literals only (papermill convention)"
    assert {node.targets[0].id for node in assignments} == {"EPOCHS", "STEPS_PER_EPOCH", "OUTPUT_DIR"}
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    for variable in ("RESNET50_EPOCHS", "RESNET50_TRAIN_STEPS", "RESNET50_OUTPUT_DIR"):
        assert variable not in code, "the run parameters come from the parameters cell"
    assert demo.MODEL_FILE in code
    # nbgrader's token run lives in fit_with_progress (display_utils), not in the learner's cells
    assert "NBGRADER_EXECUTION" not in code and "fit_with_progress(" in notebook.cells[ids.index("training")].source


def test_notebook_trains_with_train_py_s_signs_recipe(notebook):
    # One recipe, two ways to run it: the notebook's training cell and train.py --dataset signs.
    recipe = RECIPES["signs"]
    cells = {c.id: c.source for c in notebook.cells}
    assert f"EPOCHS = {recipe['epochs']}\n" in cells["parameters"]
    training = cells["training"]
    assert f"RECIPE_EPOCHS = {recipe['epochs']}  #" in training, "the short-run note compares with the recipe"
    for expected in (f"BATCH_SIZE = {recipe['batch_size']}\n",
                     'loss="categorical_crossentropy"', "keras.optimizers.Adam(",
                     f"set_batchnorm_momentum(model, {BN_MOMENTUM})", "cosine_schedule(", "make_train_dataset("):
        assert expected in training, expected
    assert float(re.search(r"peak_learning_rate=([0-9.e-]+),", training).group(1)) == recipe["lr"]
    assert recipe["optimizer"] == "adam" and recipe["schedule"] == "cosine" and recipe["warmup_epochs"] == 1
    assert recipe.get("label_smoothing", 0) == 0 and recipe["augment"]


def test_parameters_are_injected_right_after_the_parameters_cell(notebook):
    filled = demo.with_parameters(notebook, EPOCHS=3, OUTPUT_DIR="/tmp/x")
    index = [c.id for c in notebook.cells].index("parameters")
    injected = filled.cells[index + 1]
    assert injected.source == "EPOCHS = 3\nOUTPUT_DIR = '/tmp/x'"
    assert injected.metadata["tags"] == [demo.INJECTED_TAG]
    assert len(filled.cells) == len(notebook.cells) + 1 and notebook.cells[index + 1].id == "training"
    with pytest.raises(ValueError, match="unknown notebook parameter.*EPOCS"):
        demo.with_parameters(notebook, EPOCS=3)
    untagged = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("EPOCHS = 1")])
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        demo.with_parameters(untagged, EPOCHS=3)


# ---- execution (the expensive part) ----

class _KeepingValidator(Validator):
    """nbgrader's Validator (what `nbgrader validate` runs), keeping the notebook it executed."""
    executed = None

    def _preprocess(self, nb):
        self.executed = super()._preprocess(nb)
        return self.executed


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """(`nbgrader validate`'s output on the source, the notebook it executed, the folder it ran in)."""
    folder = tmp_path_factory.mktemp("validate")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(release.INSTRUCTOR)).load_config()
    validator = _KeepingValidator(config=config)
    validator.stream = printed = io.StringIO()  # where it prints its verdict (sys.stdout when nbgrader loads)
    validator.validate_and_print(str(_beside_a_copy(SOURCE, folder)))
    assert validator.executed is not None, printed.getvalue()[-3000:]
    return printed.getvalue(), validator.executed, folder


@pytest.fixture(scope="module")
def executed(validated):
    return validated[1], validated[2] / "outputs"


def test_nbgrader_validate_passes_on_the_source(validated):
    output, _, folder = validated
    assert "Success! Your notebook passes all the tests." in output, output[-3000:]
    assert (folder / "outputs" / demo.MODEL_FILE).is_file(), "the token run trained and saved a model"


def test_source_notebook_runs_top_to_bottom(executed):
    notebook, out = executed
    text = "\n".join(demo.stream_lines(notebook))
    assert text.count("All tests passed!") >= len(EXERCISES), "every public check prints its success"
    line = demo.accuracy_line(notebook)
    assert line is not None and re.fullmatch(r"Test accuracy: \d+\.\d%", line), line
    assert (out / demo.MODEL_FILE).is_file(), "the notebook saves the trained model"


def _printed(notebook, cell_id):
    cell = next(c for c in notebook.cells if c.id == cell_id)
    return [line for output in cell.outputs if output.get("output_type") == "stream" and output.get("name") == "stdout"
            for line in output["text"].splitlines()]


def test_training_under_nbgrader_is_a_token_run_that_says_its_plan_and_each_epoch_with_its_time(executed):
    notebook, _ = executed
    printed = _printed(notebook, "training")
    assert printed[0] == "nbgrader is running this notebook: a token run of 1 epoch of 2 steps.", printed
    assert printed[1].startswith("Training 1 epoch of 2 steps. The first epoch also builds the graph"), printed
    assert re.fullmatch(rf"  step 1/2: {DURATION}", printed[2]), printed
    assert len(printed) == 4 and EPOCH_LINE.fullmatch(printed[3]), printed


def test_section_1_s_sentence_states_the_printed_numbers_and_the_text_holds_for_them(executed, notebook):
    printed = _printed(executed[0], "deep_training")
    losses = [float(re.search(r"last 50 steps: ([0-9.]+)", line).group(1)) for line in printed[:3]]
    shallow, plain, residual = losses
    sentence = " ".join(printed[3:])
    assert f"plain stack ends at {plain:.3f}" in sentence and f"stack's {shallow:.3f}" in sentence, sentence
    assert f"depth ends at {residual:.3f}" in sentence, sentence
    # what deep_conclusion states without numbers: the deep plain stack ends far above the shallow
    # one, the residual stack of the same depth about as well as the shallow one
    assert plain > 3 * shallow and residual < 1.5 * shallow + 0.02, losses
    conclusion = next(c.source for c in notebook.cells if c.id == "deep_conclusion")
    assert "0.69" not in conclusion and "ln 2" not in conclusion, "numbers belong to the printed line"


def test_summary_is_one_row_per_stage_with_the_total(executed):
    printed = _printed(executed[0], "summary")
    assert [line.split()[0] for line in printed[1:]] == ["stage"] * 5 + ["head", "total"], printed
    assert printed[-1].split()[-1] == "23,600,006" and "model.summary()" in printed[-1]


def test_section_6_reports_the_heldout_photos_when_they_are_built(executed):
    """The held-out cell (issue 28) runs in the whole notebook: per-sign lines with the file, else one line."""
    from resnet_course.paths import DATASETS_DIR
    printed = _printed(executed[0], "heldout")
    if (DATASETS_DIR / "heldout_signs.h5").is_file():
        assert printed[0].startswith("Held-out photos: ") and "licence CC BY 4.0" in printed[0], printed
        assert re.fullmatch(r"Held-out accuracy: [01]\.\d{4} \(\d+ of \d+ photos; mean recall of signs 1-5: [01]\.\d{4}\)", printed[1]), printed
        assert printed[2].startswith("Held-out recall per sign: 1: "), printed
    else:
        assert len(printed) == 1 and printed[0].startswith("No datasets/heldout_signs.h5"), printed


def test_section_7_says_which_mode_scores_higher_from_its_numbers(executed):
    printed = _printed(executed[0], "batchnorm_pitfall")
    text = "\n".join(printed)
    inference = float(re.search(r"inference mode, any batch size: +test accuracy ([0-9.]+)", text).group(1))
    training = {int(size): float(accuracy) for size, accuracy in
                re.findall(r"training mode, batches of +(\d+) photos: test accuracy ([0-9.]+)", text)}
    above = [size for size, accuracy in training.items() if accuracy > inference]
    if above:
        assert printed[-1].startswith(f"Here training mode with batches of {', '.join(map(str, above))} photos "
                                      f"scores above inference mode"), printed[-1]
    else:
        assert printed[-1].startswith("Inference mode"), printed[-1]


def test_executed_notebook_is_written_as_notebook_and_html(executed, tmp_path):
    notebook, _ = executed
    ipynb, html = demo.write_outputs(notebook, tmp_path)
    assert nbformat.read(str(ipynb), as_version=4).cells[0].source == notebook.cells[0].source
    assert "Test accuracy:" in html.read_text(encoding="utf8")


def test_demo_names_the_failing_cell(tmp_path):
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", id="fine"),
                                             nbformat.v4.new_code_cell("1 / 0", id="boom")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(broken, str(path))
    with pytest.raises(demo.NotebookFailed, match=r"cell 1 \(id 'boom'\) raised ZeroDivisionError"):
        demo.execute(path, cwd=tmp_path)


def test_demo_fills_in_the_parameters_and_writes_its_outputs(tmp_path, capsys):
    parameters = nbformat.v4.new_code_cell('EPOCHS = 12\nSTEPS_PER_EPOCH = None\nOUTPUT_DIR = "outputs"',
                                           id="parameters")
    parameters.metadata["tags"] = ["parameters"]
    run = nbformat.v4.new_code_cell(
        "from pathlib import Path\n"
        f"Path(OUTPUT_DIR, {demo.MODEL_FILE!r}).write_text('a model')\n"
        "print(f'Test accuracy: 0.{EPOCHS:04d}')", id="run")
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[parameters, run]), str(path))
    out = tmp_path / "out"
    out.mkdir()
    assert demo.main(["--notebook", str(path), "--epochs", "3", "--output-dir", str(out)]) == 0
    assert "Test accuracy: 0.0003" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["ResNet50.html", "ResNet50.ipynb", demo.MODEL_FILE]


def _beside_a_copy(notebook_path, folder):
    """A copy of the notebook in ``folder``, beside links to what sits beside the original (learner
    modules, datasets/, images/), so that what running it writes stays there; returns the copy."""
    for entry in notebook_path.parent.iterdir():
        if entry.suffix in (".py", "") and not entry.name.startswith("."):
            (folder / entry.name).symlink_to(entry.resolve())
    copy = folder / notebook_path.name
    shutil.copy(notebook_path, copy)
    return copy


def _validate(notebook_path, folder):
    """The `nbgrader validate` command on a copy of the notebook in ``folder``, run from instructor/
    (its nbgrader_config.py lifts the 30 s cell limit)."""
    copy = _beside_a_copy(notebook_path, folder)
    result = subprocess.run([sys.executable, "-m", "nbgrader", "validate", str(copy)],
                            cwd=release.INSTRUCTOR, capture_output=True, text=True)
    return result.stdout + result.stderr


def test_nbgrader_validate_fails_on_the_unsolved_release(tmp_path):
    output = _validate(release.RELEASE_NOTEBOOK, tmp_path)
    assert "VALIDATION FAILED ON 3 CELL(S)" in output, output[-3000:]
    assert "identity_block is not implemented yet" in output, output[-3000:]


# ---- a learner's run that is interrupted, cells run again, a check run alone (issue 29) ----

# The cells of the learner's run that these tests need: training, and what reads its numbers.
INTERRUPTED_RUN_CELLS = ("setup", "packages", "identity_block", "convolutional_block", "ResNet50", "summary", "data",
                         "parameters", "training", "save", "evaluation", "batchnorm_pitfall", "batchnorm_lag",
                         "batchnorm_repair", "my_image", "saved_model")
# Kernel -> Interrupt during epoch 2: a KeyboardInterrupt raised in the training callback, as the
# kernel raises it in the training loop (TensorFlow finishes a step, then Python sees it).
INTERRUPT_IN_EPOCH_2 = """import display_utils

def _interrupt_in_epoch_2(self, batch, logs=None):
    if len(self.seconds) == 1:
        raise KeyboardInterrupt

display_utils.TrainingProgress.on_train_batch_end = _interrupt_in_epoch_2"""
# Cells run again after the whole run, as a learner scrolls back: the summary (it once replaced the
# trained model), then sections 6-8.
RUN_AGAIN = ("summary", "evaluation", "batchnorm_lag", "batchnorm_repair", "my_image", "saved_model")


def _stdout(cell):
    return "".join(o["text"] for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _percent(text, pattern):
    return float(re.search(pattern + r" ([0-9.]+)%", text).group(1))


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """The learner's notebook (the release, solved) planned for 3 epochs of 2 steps and interrupted
    in epoch 2, then the cells RUN_AGAIN run again; (the executed notebook, its first-run cells by id)."""
    import learner_notebooks

    folder = tmp_path_factory.mktemp("interrupted")
    _beside_a_copy(release.RELEASE_NOTEBOOK, folder)
    notebook = learner_notebooks.solved_release(parameters={"EPOCHS": 3, "STEPS_PER_EPOCH": 2,
                                                            "OUTPUT_DIR": str(folder / "outputs")})
    injected = next(i for i, c in enumerate(notebook.cells) if demo.INJECTED_TAG in c.metadata.get("tags", []))
    interrupt = nbformat.v4.new_code_cell(INTERRUPT_IN_EPOCH_2)
    interrupt.id = "interrupt"
    notebook.cells.insert(injected + 1, interrupt)
    kept = set(INTERRUPTED_RUN_CELLS) | {"interrupt", notebook.cells[injected].id}
    notebook.cells = [c for c in notebook.cells if c.cell_type == "code" and c.id in kept]
    first = {c.id: c for c in notebook.cells}
    for cell_id in RUN_AGAIN:
        again = nbformat.v4.new_code_cell(first[cell_id].source)
        again.id = f"again-{cell_id}"
        notebook.cells.append(again)
    executed = learner_notebooks.execute(notebook, folder, allow_errors=True)
    return executed, {c.id: c for c in executed.cells}


def test_an_interrupted_run_says_so_wherever_the_text_quotes_the_full_recipe(interrupted):
    notebook, cells = interrupted
    errors = [(c.id, o["ename"], o["evalue"]) for c in notebook.cells for o in c.outputs
              if o.get("output_type") == "error"]
    assert errors == [], errors
    assert "Training stopped after epoch 1 of 3 (interrupted)" in _stdout(cells["training"])
    evaluation = _stdout(cells["evaluation"])
    note = ("This model trained 1 epoch(s) of 2 steps, interrupted (of the 3 planned); the full recipe trains "
            "22 of 33. The text's figures are the full recipe's, not this run's.")
    assert note in evaluation, evaluation
    # the numbers read as the text gives them: percentages
    assert re.search(r"The network alone: test loss \d+\.\d{4}, test accuracy \d+\.\d%", evaluation), evaluation
    assert re.search(r"Test accuracy: \d+\.\d%", evaluation), evaluation
    photo = _stdout(cells["my_image"])
    predicted = int(re.search(r"Predicted sign: (\d)", photo).group(1))
    assert (predicted != 2) == ("The sample photo shows a sign 2: this model gets it wrong. " + note in photo), photo


def test_section_7_s_sentence_on_its_last_point_matches_an_interrupted_run(interrupted):
    _, cells = interrupted
    lag = _stdout(cells["batchnorm_lag"]).splitlines()
    assert lag[-1].startswith("Training stopped during epoch 2: the model of section 6 has moving statistics "
                              "from later steps than any point here"), lag
    network = _percent(_stdout(cells["evaluation"]), "test accuracy")
    assert _percent(lag[-1], "its test accuracy:") == network
    assert "The last point is the model of section 6" not in "\n".join(lag)


def test_cells_run_again_after_training_give_the_same_results(interrupted):
    _, cells = interrupted
    for cell_id in RUN_AGAIN[1:]:
        assert _stdout(cells[f"again-{cell_id}"]) == _stdout(cells[cell_id]), cell_id
    assert "stage 5" in _stdout(cells["again-summary"])


def test_a_full_run_s_section_7_says_its_last_point_is_section_6_s_model(executed):
    # nbgrader's token run finishes its one epoch: the last point's statistics are the model's own
    notebook, _ = executed
    lag = _printed(notebook, "batchnorm_lag")
    network = float(re.search(r"test accuracy ([0-9.]+)%", "\n".join(_printed(notebook, "evaluation"))).group(1))
    assert lag[-1] == f"The last point is the model of section 6, with its own moving statistics ({network:.1f}%).", lag
    assert float(re.search(r"statistics of epoch  1: test accuracy ([0-9.]+)%", lag[-2]).group(1)) == network
    assert "This model trained 1 epoch(s) of 2 steps; the full recipe trains 22" in "\n".join(_printed(notebook, "evaluation"))


def test_a_check_run_before_its_exercise_says_which_cell_to_run_first(tmp_path):
    # After Kernel -> Restart a learner runs the packages cell, then a check: one line, no NameError.
    import learner_notebooks

    _beside_a_copy(release.RELEASE_NOTEBOOK, tmp_path)
    release_cells = {c.id: c for c in nbformat.read(str(release.RELEASE_NOTEBOOK), as_version=4).cells}
    notebook = nbformat.v4.new_notebook(cells=[release_cells["packages"], release_cells["identity_block_test"]])
    executed = learner_notebooks.execute(notebook, tmp_path, allow_errors=True)
    error = next(o for o in executed.cells[1].outputs if o.get("output_type") == "error")
    assert error["ename"] == "CheckFailed", error
    shown = "\n".join(error["traceback"])
    assert "identity_block is not defined: run the cell that defines it (def identity_block(...)) first" in shown
    assert len(error["traceback"]) == 1 and "NameError" not in shown, shown
