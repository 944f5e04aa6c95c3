"""resnet_course/grading/notebook.py (which file, which cells) and nbgrader_hidden.py (plain nbgrader's
feedback without hidden tests); the Jupyter-semantics cases of tests/grading_cases_jupyter.py run
through student_code and kernel.run_cells (no sandbox) earn what Jupyter gives them."""
import json
import subprocess
import sys
import types

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from resnet_course import paths
from resnet_course.grading import notebook as submitted
from resnet_course.grading.nbgrader_hidden import HIDDEN_FAILED, HideHiddenTests, REMOVED
from tests import grading_cases_jupyter as cases
from tests import grading_submissions as submissions
from tests.grading_batch_cases import FULL

NAME = f"{paths.ASSIGNMENT}.ipynb"


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def source_material():
    """What student_code needs of the grading material, read here from the source notebook."""
    source = nbformat.read(str(paths.SOURCE_NOTEBOOK), as_version=4)
    graded = tuple(types.SimpleNamespace(grade_id=_grade_id(c), points=float(c.metadata["nbgrader"]["points"]),
                                         public=c.source.split("### BEGIN HIDDEN TESTS")[0])
                   for c in source.cells if c.metadata.get("nbgrader", {}).get("grade"))
    return types.SimpleNamespace(
        solutions=tuple(_grade_id(c) for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")),
        graded=graded, packages=next(c.source for c in source.cells if _grade_id(c) == "packages"))


MATERIAL = source_material()


def code_of(data):
    return submitted.student_code(submitted.parse_notebook(data), MATERIAL)


# ---------------------------------------------------------------------------------------------
# find_notebook
# ---------------------------------------------------------------------------------------------

def test_the_assignments_notebook_is_found_without_a_note(tmp_path):
    (tmp_path / NAME).write_text("{}")
    (tmp_path / "scratch.ipynb").write_text("{}")
    assert submitted.find_notebook(tmp_path, paths.ASSIGNMENT) == (tmp_path / NAME, None)


def test_the_only_notebook_under_another_name_is_graded_with_a_note(tmp_path):
    (tmp_path / "ResNet50 (1).ipynb").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "ResNet50-checkpoint.ipynb").write_text("{}")
    (tmp_path / "._ResNet50.ipynb").write_text("")  # a macOS resource fork
    (tmp_path / "timestamp.txt").write_text("2026-11-28 12:00:00 UTC")
    path, note = submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert path == tmp_path / "ResNet50 (1).ipynb"
    assert note == "graded 'ResNet50 (1).ipynb', the only notebook in the submission folder (no ResNet50.ipynb)"


def test_several_notebooks_and_none_by_name_is_a_reason_that_lists_them(tmp_path):
    for name in ("ResNet50 (1).ipynb", "ResNet50 (2).ipynb"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(submitted.SubmissionNotFound) as error:
        submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert str(error.value) == ("no ResNet50.ipynb and 2 other notebooks in the submission folder "
                                "('ResNet50 (1).ipynb', 'ResNet50 (2).ipynb'): rename the one to grade ResNet50.ipynb")


def test_no_notebook_is_a_reason(tmp_path):
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "ResNet50-checkpoint.ipynb").write_text("{}")
    with pytest.raises(submitted.SubmissionNotFound, match="^no notebook: the submission folder holds no ResNet50"):
        submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    with pytest.raises(submitted.SubmissionNotFound, match="^no submission folder"):
        submitted.find_notebook(tmp_path / "absent", paths.ASSIGNMENT)


@pytest.mark.parametrize("data", [b"", b"{\"cells\": [", b"\xff\xfe", json.dumps({"answer": 42}).encode()])
def test_an_unreadable_notebook_is_invalid_with_a_one_line_reason(data):
    with pytest.raises(submitted.InvalidNotebook) as error:
        submitted.parse_notebook(data)
    assert str(error.value) and "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------
# student_code
# ---------------------------------------------------------------------------------------------

def test_a_correct_submission_runs_its_three_solution_cells_and_nothing_else():
    code = code_of(submissions.correct())
    assert [(c.label, c.grade_id, c.defines) for c in code.cells] == [
        (name, name, frozenset({name})) for name in submissions.SOLUTION_CELLS]
    assert (code.missing, code.markdown, code.notes) == ((), (), ())


def test_cells_added_before_the_last_test_run_and_the_training_part_after_it_does_not():
    notebook = submissions.notebook_with({})
    notebook.cells.insert(submitted_index(notebook, "convolutional_block"), new_code_cell("helper = 1\n"))
    notebook.cells.append(new_code_cell("late = 1\n"))
    code = code_of(submissions.to_bytes(notebook))
    index = submitted_index(notebook, "convolutional_block") - 1
    assert [c.label for c in code.cells] == ["identity_block", f"added cell {index}", "convolutional_block",
                                             "ResNet50"]


def submitted_index(notebook, grade_id):
    return next(i for i, cell in enumerate(notebook.cells) if _grade_id(cell) == grade_id)


def test_every_copy_of_a_duplicated_solution_cell_runs_in_order():
    notebook = nbformat.reads(cases.duplicated_cell().decode(), as_version=4)
    first = submitted_index(notebook, "identity_block")
    code = code_of(cases.duplicated_cell())
    assert [c.label for c in code.cells][:2] == ["identity_block", f"identity_block (copy in cell {first + 1})"]
    assert cases.RELU_AFTER_ADD not in code.cells[0].source and cases.RELU_AFTER_ADD in code.cells[1].source
    assert code.notes == (f"identity_block is in 2 cells ({first}, {first + 1}): all run in notebook order and "
                          f"the last definition wins, as in Jupyter",)
    assert code.missing == ()


def current_release(data):
    """The submission with its locked cells as the source notebook has them now (the release notebook
    in the working tree may be older than the source until `make release` runs)."""
    notebook = nbformat.reads(data.decode(), as_version=4)
    source = nbformat.read(str(paths.SOURCE_NOTEBOOK), as_version=4)
    locked = {cell.get("id"): cell.source for cell in source.cells
              if cell.metadata.get("nbgrader", {}).get("locked") and not cell.metadata["nbgrader"].get("grade")}
    for cell in notebook.cells:
        cell.source = locked.get(cell.get("id"), cell.source)
    return notebook


def test_cells_without_nbgrader_metadata_are_matched_by_their_definitions():
    notebook = current_release(cases.metadata_dropped())
    code = code_of(submissions.to_bytes(notebook))
    # the same cells as with metadata: locked cells (setup, packages, the first section's lab) are
    # recognised by their text and not run, nor is anything after the last test (found by its text)
    assert [(c.label, c.grade_id) for c in code.cells] == [(name, name) for name in submissions.SOLUTION_CELLS]
    positions = [i for i, cell in enumerate(notebook.cells) if cell.source.startswith(
        tuple(f"def {name}(" for name in submissions.SOLUTION_CELLS))]
    assert code.notes == tuple(f"cell {i} has no nbgrader metadata: graded as {name}, matched by its definitions"
                               for i, name in zip(positions, submissions.SOLUTION_CELLS))
    assert (code.missing, code.markdown) == ((), ())


def test_a_locked_cell_of_an_older_release_without_metadata_is_still_locked():
    notebook = current_release(cases.metadata_dropped())
    setup = next(cell for cell in notebook.cells if cell.source.startswith("#@title Setup: "))
    lines = setup.source.splitlines()
    setup.source = "\n".join(lines[:1] + ["# an older version of the cell", "FILES_SHA256 = '0' * 64"] + lines[5:9])
    notebook.cells.insert(notebook.cells.index(setup) + 1, new_code_cell("#@title Setup: my own notes\nmine = 1\n"))
    code = code_of(submissions.to_bytes(notebook))
    assert [c.label for c in code.cells] == [f"added cell {notebook.cells.index(setup) + 1}",
                                             *submissions.SOLUTION_CELLS]


def test_a_solution_turned_into_markdown_is_named_not_missing():
    code = code_of(cases.markdown_cell("convolutional_block"))
    assert [c.label for c in code.cells] == ["identity_block", "ResNet50"]
    assert (code.missing, code.markdown) == ((), ("convolutional_block",))
    assert len(code.notes) == 1 and "is a Markdown cell, not a Code cell, so it does not run" in code.notes[0]
    # the same without metadata: recognised by its definition
    notebook = nbformat.reads(cases.markdown_cell("convolutional_block").decode(), as_version=4)
    for cell in notebook.cells:
        cell.metadata = {}
    code = code_of(submissions.to_bytes(notebook))
    assert (code.missing, code.markdown) == ((), ("convolutional_block",))


def test_a_deleted_solution_cell_is_missing():
    code = code_of(submissions.deleted_cells("identity_block"))
    assert (code.missing, code.markdown) == (("identity_block",), ())


def test_a_solution_copy_after_the_last_test_does_not_run():
    notebook = submissions.notebook_with({})
    notebook.cells.append(new_code_cell(submissions.reference_source("identity_block")))
    code = code_of(submissions.to_bytes(notebook))
    assert [c.label for c in code.cells] == list(submissions.SOLUTION_CELLS)
    assert code.notes == (f"cell {len(notebook.cells) - 1} (identity_block) comes after the last test cell: not run",)


def test_a_leftover_magic_is_kept_for_the_kernel():
    code = code_of(cases.magic_line())
    assert code.cells[0].source.rstrip().endswith("%debug") and code.cells[0].defines == {"identity_block"}


# ---------------------------------------------------------------------------------------------
# The Jupyter cases, run as the producer runs them (no sandbox): the points Jupyter gives
# ---------------------------------------------------------------------------------------------

E2E = r"""
import json, sys, types
sys.path.insert(0, ".")
from resnet_course.grading import notebook as submitted
from resnet_course.grading.kernel import run_cells
from tests import grading_cases_jupyter as cases
from tests.test_grading_notebook import MATERIAL

pristine = {"__name__": "__main__"}
exec(compile(MATERIAL.packages, "<packages>", "exec"), pristine)
results = {}
for name, (data, expected, *file_name) in cases.jupyter_cases().items():
    code = submitted.student_code(submitted.parse_notebook(data), MATERIAL)
    namespace = dict(pristine)
    runs = run_cells([(cell.label, cell.source) for cell in code.cells], namespace, CELL_SECONDS)
    points = {}
    for graded in MATERIAL.graded:
        try:
            exec(compile(graded.public, graded.grade_id, "exec"), {**namespace, **pristine})
            points[graded.grade_id] = graded.points
        except Exception as error:
            points[graded.grade_id] = 0.0
    results[name] = {"points": points, "runs": runs, "notes": list(code.notes)}
print("RESULTS " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def jupyter_results():
    done = subprocess.run([sys.executable, "-c", E2E.replace("CELL_SECONDS", "3")], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


def test_the_jupyter_cases_earn_the_points_jupyter_gives(jupyter_results):
    expected = {name: case[1].points for name, case in cases.jupyter_cases().items()}
    assert {name: result["points"] for name, result in jupyter_results.items()} == expected


def test_the_jupyter_cases_say_what_grading_decided(jupyter_results):
    debug = jupyter_results["jupyter-debug-line"]["runs"][0]
    assert (debug["label"], debug["status"]) == ("identity_block", "ok")
    assert debug["note"].endswith("%debug does not run in grading (skipped)")
    slow = next(run for run in jupyter_results["jupyter-slow-cell"]["runs"] if run["label"].startswith("added cell"))
    assert (slow["status"], slow["error"]) == ("interrupted", "interrupted after 3 s")
    assert all(run["status"] == "ok" for name, result in jupyter_results.items() for run in result["runs"]
               if run is not slow and not run["label"].startswith("added cell"))
    assert len(jupyter_results["jupyter-no-metadata"]["notes"]) == 3
    assert "Markdown" in jupyter_results["jupyter-markdown-cell"]["notes"][0]


def test_the_batch_cases_are_six_with_the_saved_copy_under_its_own_name():
    all_cases = cases.jupyter_cases()
    assert len(all_cases) == 6
    assert all_cases["jupyter-saved-as-copy"][2] == "ResNet50 (1).ipynb"
    assert all(case[1].points.keys() == FULL.keys() for case in all_cases.values())


# ---------------------------------------------------------------------------------------------
# Plain nbgrader's feedback: HideHiddenTests (the full nbgrader run is in test_instructor_commands.py)
# ---------------------------------------------------------------------------------------------

GRADED_SOURCE = ("identity_block_test(identity_block)\n\n### BEGIN HIDDEN TESTS\nfrom public_tests import check\n"
                 "HIDDEN_CASES = [{'name': 'hidden 1', 'params': 23608202, 'mean': 62.66874}]\n"
                 "for case in HIDDEN_CASES:\n    check(identity_block, case)\n### END HIDDEN TESTS\n")


def graded_cell(outputs):
    cell = new_code_cell(GRADED_SOURCE, outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "identity_block_test", "points": 3, "solution": False,
                                 "locked": True}
    return cell


def feedback(*cells):
    notebook = nbformat.v4.new_notebook(cells=list(cells))
    notebook, _ = HideHiddenTests().preprocess(notebook, {})
    return notebook


def shown(notebook):
    return json.dumps([{"source": cell.source, "outputs": cell.get("outputs", [])} for cell in notebook.cells])


def test_hidden_regions_leave_the_source_and_the_hidden_parts_output_is_dropped():
    passed = "\x1b[92mAll tests passed!\x1b[0m\n"
    notebook = feedback(graded_cell([
        new_output("stream", name="stdout", text=passed + "(2, 6, 6, 5)\n"),  # printed during the hidden part
        new_output("display_data", data={"text/plain": "a figure"}),
        new_output("error", ename="CheckFailed", evalue="identity_block(f=3, filters=[3, 2, 5]): wrong",
                   traceback=["Check failed: identity_block(f=3, filters=[3, 2, 5]): wrong"])]))
    cell = notebook.cells[0]
    assert cell.source == "identity_block_test(identity_block)\n"
    assert [output.get("text") or output.get("evalue") for output in cell.outputs] == [passed, HIDDEN_FAILED]
    assert cell.outputs[1].traceback == [HIDDEN_FAILED]


def test_a_public_failure_keeps_its_message_without_the_cells_frames():
    check = new_output("error", ename="CheckFailed", evalue="identity_block(f=2): the shortcut is missing",
                       traceback=["Check failed: identity_block(f=2): the shortcut is missing"])
    generic = new_output("error", ename="NameError", evalue="name 'identity_block' is not defined", traceback=[
        "Cell In[13], line 1\n----> 1 identity_block_test(identity_block)\n      3 ### BEGIN HIDDEN TESTS",
        "NameError: name 'identity_block' is not defined"])
    hidden_line = new_output("error", ename="ValueError", evalue="bad", traceback=["Cell In[13], line 7\n..."])
    kept = [feedback(graded_cell([output])).cells[0].outputs[0] for output in (check, generic, hidden_line)]
    assert kept[0].traceback == check.traceback
    assert kept[1].traceback == ["NameError: name 'identity_block' is not defined"]
    assert (kept[2].evalue, kept[2].traceback) == (HIDDEN_FAILED, [HIDDEN_FAILED])


@pytest.mark.parametrize("leak", ["[{'name': 'hidden 1', 'params': 23608202, 'mean': 62.66874}]",
                                  "the model has 23,608,202 parameters", "<b>HIDDEN_CASES</b>",
                                  "mean \x1b[1m62.66874\x1b[0m", "### END HIDDEN TESTS"])
def test_any_output_showing_hidden_content_is_removed(leak):
    student = new_code_cell("print(globals()['HIDDEN' + '_CASES'])\n", outputs=[
        new_output("stream", name="stdout", text=f"{leak}\n"),
        new_output("execute_result", data={"text/html": f"<p>{leak}</p>"}, execution_count=3),
        new_output("stream", name="stderr", text="harmless\n")])
    notebook = feedback(graded_cell([new_output("stream", name="stdout", text="All tests passed!\n")]), student)
    outputs = notebook.cells[1].outputs
    assert [output.get("text") for output in outputs] == [REMOVED + "\n", REMOVED + "\n", "harmless\n"]
    assert notebook.cells[1].source == student.source
    assert "23608202" not in shown(notebook) and "HIDDEN_CASES" not in shown(notebook)


def test_a_student_cannot_break_the_feedback_with_markers_of_their_own():
    notebook = feedback(graded_cell([]), new_markdown_cell("### BEGIN HIDDEN TESTS (never closed)\ntext"),
                        new_code_cell("x = 1  # END HIDDEN TESTS\ny = 2\n"))
    assert notebook.cells[1].source == "" and notebook.cells[2].source == "x = 1  # END HIDDEN TESTS\ny = 2\n"


def test_the_course_config_registers_the_preprocessor_for_feedback():
    config = (paths.INSTRUCTOR_DIR / "nbgrader_config.py").read_text()
    assert "c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]" in config


def test_a_zip_alone_is_named_with_unzip_it_and_never_opened(tmp_path):
    """Issue 27, item 9e: a submission that is only ResNet50.zip got "holds no ResNet50.ipynb", silent
    about the zip."""
    from tests.grading_cases_limits import zipped
    (tmp_path / "ResNet50.zip").write_bytes(zipped(submissions.correct()))
    (tmp_path / "timestamp.txt").write_text("2026-11-28 12:00:00 UTC")
    with pytest.raises(submitted.SubmissionNotFound) as error:
        submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert str(error.value) == ("no notebook: the submission folder holds ResNet50.zip (an archive, not a notebook): "
                                "unzip it and hand in ResNet50.ipynb")
    (tmp_path / "ResNet50.zip").unlink()
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(submitted.SubmissionNotFound) as error:
        submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert str(error.value) == ("no notebook: the submission folder holds no ResNet50.ipynb "
                                "(it holds 'notes.txt', 'timestamp.txt')")


def test_a_folder_named_like_the_notebook_is_graded_by_its_one_notebook_with_a_note(tmp_path):
    """Issue 27, item 9e: a *folder* named ResNet50.ipynb holding the notebook got "holds no
    ResNet50.ipynb", which was false."""
    (tmp_path / NAME).mkdir()
    (tmp_path / NAME / NAME).write_bytes(submissions.correct())
    path, note = submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert path == tmp_path / NAME / NAME
    assert note == "ResNet50.ipynb is a folder, not a notebook: graded the notebook inside it, ResNet50.ipynb/'ResNet50.ipynb'"
    (tmp_path / NAME / "copy.ipynb").write_text("{}")
    with pytest.raises(submitted.SubmissionNotFound) as error:
        submitted.find_notebook(tmp_path, paths.ASSIGNMENT)
    assert str(error.value) == ("no notebook: ResNet50.ipynb in the submission folder is a folder holding 2 notebooks "
                                "('ResNet50.ipynb', 'copy.ipynb'): hand in the notebook file itself")
# ---------------------------------------------------------------------------------------------
# What grading writes for a browser (issue 27, item 2; the browser itself: tests/test_browser_grading.py)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "cell 'added cell 7' raised ValueError: <script>alert(1)</script><img src=x onerror=alert(1)>",
    "[click](javascript:alert(1)) ![x](http://example.org/x.png) <http://example.org/> &lt;b&gt; `<b>`",
    "identity_block: *not* __bold__ $x$ \\$ back\\slash # heading? | table |"])
def test_markdown_text_renders_as_exactly_its_text(text):
    import html

    from nbconvert.filters import markdown2html
    rendered = markdown2html(submitted.markdown_text(text)).strip()
    assert rendered.startswith("<p>") and rendered.endswith("</p>") and "<" not in rendered[3:-4]
    assert html.unescape(rendered[3:-4]) == text


def test_without_outputs_clears_what_the_student_saved_and_keeps_unreadable_bytes():
    notebook = nbformat.v4.new_notebook()
    cell = new_code_cell("x = 1")
    cell.outputs = [new_output("display_data", data={"text/html": "<script>alert(1)</script>" * 1000})]
    cell.execution_count = 3
    notebook.cells = [new_markdown_cell("notes"), cell]
    cleared = nbformat.reads(submitted.without_outputs(nbformat.writes(notebook).encode()), as_version=4)
    assert [(c.source, c.get("outputs"), c.get("execution_count")) for c in cleared.cells] == [
        ("notes", None, None), ("x = 1", [], None)]
    for unreadable in (b"{not json", b'{"answer": 42}', "caf\u00e9".encode("latin-1")):
        assert submitted.without_outputs(unreadable) == unreadable


def test_a_worker_gets_the_submission_without_its_saved_outputs(tmp_path):
    """Issue 27, item 9(d): 80 MB of a student's old outputs made an 80 MiB Dask message and a 91 MB
    autograded notebook; the journal's key is still the file's (a rerun replays it)."""
    from resnet_course.grading import batch
    from resnet_course.grading.journal import submission_key

    notebook = submissions.notebook_with({})
    heavy = next(cell for cell in notebook.cells if cell.cell_type == "code" and "nbgrader" not in cell.metadata)
    heavy.outputs = [new_output("display_data", data={"image/png": "A" * 8_000_000})]
    data = submissions.to_bytes(notebook)
    folder = tmp_path / "ada" / paths.ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / f"{paths.ASSIGNMENT}.ipynb").write_bytes(data)
    (found,) = batch.find_submissions(tmp_path, paths.ASSIGNMENT, "settings")
    assert len(found.notebook) < len(data) - 7_900_000 and b"AAAA" not in found.notebook
    assert found.key == submission_key("ada", data, "settings", f"{paths.ASSIGNMENT}.ipynb")
