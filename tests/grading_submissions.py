"""Student submissions for the grading tests: notebook bytes built from the learner release.

Every builder starts from the release notebook (resnet_course.paths.RELEASE_NOTEBOOK, what a student
downloads) and changes cells by their nbgrader grade_id, as a student editing it would:
`correct()` fills the three solution cells with the reference functions' source, `wrong(name)` makes
exactly one function wrong, `with_cell_source` / `with_extra_code` / `deleted_cells` / `corrupt_json`
build the cheats and broken notebooks. The grading tests (sandbox, cheats, the robustness batch)
share these so that they grade the same submissions.
"""
import json

import nbformat

from resnet_course import paths
from resnet_course.course import notebook_sync

SOLUTION_CELLS = ("identity_block", "convolutional_block", "ResNet50")
TEST_CELLS = {"identity_block": "identity_block_test", "convolutional_block": "convolutional_block_test",
              "ResNet50": "ResNet50_test"}

# One plausible mistake per function, as (correct text, wrong text) in the reference source; each one
# breaks its own function's checks and leaves the other functions right.
MISTAKES = {
    # BatchNorm's training flag is not passed on (the block ignores `training`). ResNet50 calls the
    # blocks with training=None, so a ResNet50 built on this block still passes its own check.
    "identity_block": ("(X, training=training)", "(X)"),
    # The shortcut's BatchNorm ignores `training`. (Not the shortcut CONV ignoring its initializer: that
    # changes ResNet50 too, whose check compares every initializer with its seed.)
    "convolutional_block": ("BatchNormalization(axis=3)(X_shortcut, training=training)",
                            "BatchNormalization(axis=3)(X_shortcut)"),
    # Stage 5 has one identity block too few.
    "ResNet50": ("    X = identity_block(X, 3, [512, 512, 2048], training=None)\n"
                 "    X = identity_block(X, 3, [512, 512, 2048], training=None)\n",
                 "    X = identity_block(X, 3, [512, 512, 2048], training=None)\n"),
}


def release_notebook():
    """The learner release as a fresh nbformat object (the untouched download)."""
    return nbformat.read(str(paths.RELEASE_NOTEBOOK), as_version=4)


def to_bytes(notebook):
    return nbformat.writes(notebook).encode()


def cell(notebook, grade_id):
    """The notebook's cell with this nbgrader grade_id (KeyError naming it when absent)."""
    for candidate in notebook.cells:
        if candidate.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return candidate
    raise KeyError(f"the release notebook has no cell with grade_id {grade_id!r}")


def reference_source(name, mistake=False):
    """The reference function's source, as a student would write it in the solution cell."""
    source = notebook_sync.reference_source(name)
    if mistake:
        right, wrong_text = MISTAKES[name]
        if right not in source:
            raise ValueError(f"the mistake for {name} no longer applies to resnet_course/course/reference.py")
        source = source.replace(right, wrong_text)
    return source


def notebook_with(sources):
    """The release with the solution cells filled from the reference, then `sources` ({grade_id: text}) applied."""
    notebook = release_notebook()
    for name in SOLUTION_CELLS:
        cell(notebook, name).source = reference_source(name)
    for grade_id, source in sources.items():
        cell(notebook, grade_id).source = source
    return notebook


def correct():
    """A submission with all three functions right."""
    return to_bytes(notebook_with({}))


def untouched():
    """The release as downloaded: every solution cell still raises NotImplementedError."""
    return to_bytes(release_notebook())


def wrong(function_name):
    """A submission whose `function_name` has one mistake (MISTAKES); the other two are right, and the
    mistake costs only that function's graded cell."""
    return to_bytes(notebook_with({function_name: reference_source(function_name, mistake=True)}))


def with_cell_source(grade_id, source):
    """A correct submission whose cell `grade_id` (a solution or a test cell) holds `source` instead."""
    return to_bytes(notebook_with({grade_id: source}))


def with_extra_code(grade_id, code, correct_function=True):
    """The solution cell `grade_id` with `code` appended, the function right (or left as the stub)."""
    notebook = notebook_with({})
    target = cell(notebook, grade_id)
    if not correct_function:
        target.source = cell(release_notebook(), grade_id).source
    target.source = target.source.rstrip("\n") + "\n\n" + code
    return to_bytes(notebook)


def stub_with_code(grade_id, code):
    """The release's stub of `grade_id` (not implemented) with `code` added before it; other functions right."""
    return with_extra_code(grade_id, code, correct_function=False)


def deleted_cells(*grade_ids):
    """A correct submission with the cells of these grade_ids removed."""
    notebook = notebook_with({})
    notebook.cells = [c for c in notebook.cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
    return to_bytes(notebook)


def corrupt_json():
    """A file cut in the middle: not JSON at all."""
    text = correct()
    return text[: len(text) // 2]


def not_a_notebook():
    """Valid JSON that is not a notebook."""
    return json.dumps({"answer": 42}).encode()


def unsolved_with_cell_source(grade_id, source):
    """The release as downloaded (every function still the stub) whose cell `grade_id` holds `source`:
    grading it runs no model, so it is quick."""
    notebook = release_notebook()
    cell(notebook, grade_id).source = source
    return to_bytes(notebook)


def stub(grade_id):
    """The release's (not implemented) source of a solution cell."""
    return cell(release_notebook(), grade_id).source


def cheat(grade_id, code, test_cell_source=None):
    """A submission whose `grade_id` function is not implemented (returns its input X) but whose cell
    runs `code` hoping to pass anyway; the other solution cells are the release's stubs (so grading it
    is quick). `test_cell_source` also replaces the function's test cell."""
    notebook = release_notebook()
    pretend = "def {name}(X, *args, **kwargs):\n    return X\n".format(name=grade_id)
    cell(notebook, grade_id).source = pretend + "\n" + code
    if test_cell_source is not None:
        cell(notebook, TEST_CELLS[grade_id]).source = test_cell_source
    return to_bytes(notebook)
