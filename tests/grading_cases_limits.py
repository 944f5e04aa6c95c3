"""Submissions that run into the grader's limits part-way through the notebook (issue 27, items 5, 9b,
9c and 9e), for the robustness batch (`limits_cases()`, merged by tests/grading_batch_cases.py) and
the sandbox's unit tests (tests/test_grading_sandbox.py).

Each runaway cell is one the learner added after identity_block_test: identity_block (and its test)
come before it and keep their points; convolutional_block is defined after it. ResNet50 is left as
the release's stub (grading it builds no model, so the cases are quick):

- IGNORES_INTERRUPT turns off SIGALRM (the kernel's per-cell interrupt) and sleeps: the grader kills
  the sandbox once the cell has outlived its limit by the grace;
- PRINT_LOOP prints without end: its output is capped and it costs its cell's time, never memory;
- MEMORY_HOG allocates past the memory limit: only the tests after it lose their points;
- a submission that is only ResNet50.zip, and a folder named ResNet50.ipynb holding the notebook.
"""
import io
import zipfile

import nbformat

from resnet_course import paths
from tests import grading_submissions as submissions

GRADED = ("identity_block_test", "convolutional_block_test", "ResNet50_test")
NOTHING = dict.fromkeys(GRADED, 0.0)
FIRST_TEST_ONLY = {"identity_block_test": 3.0, "convolutional_block_test": 0.0, "ResNet50_test": 0.0}
FIRST_TWO = {"identity_block_test": 3.0, "convolutional_block_test": 3.0, "ResNet50_test": 0.0}

IGNORES_INTERRUPT = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\ntime.sleep(3600)\n"
PRINT_LOOP = "n = 0\nwhile True:\n    n += 1\n    print(f'line {n} ' + 'spam ' * 100)\n"
MEMORY_HOG = "hog = []\nwhile True:\n    hog.append(b'x' * (64 * 2**20))\n"


def after_first_test(source, solved=("identity_block", "convolutional_block")):
    """(notebook bytes, the added cell's label): `solved` filled with the reference functions, the others
    the release's stubs, and a code cell holding `source` added right after identity_block_test."""
    notebook = submissions.release_notebook()
    for name in solved:
        submissions.cell(notebook, name).source = submissions.reference_source(name)
    index = notebook.cells.index(submissions.cell(notebook, "identity_block_test")) + 1
    notebook.cells.insert(index, nbformat.v4.new_code_cell(source))
    return submissions.to_bytes(notebook), f"added cell {index}"


def zipped(notebook):
    """ResNet50.ipynb inside ResNet50.zip, as a learner who downloads a folder as zip hands it in."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{paths.ASSIGNMENT}/{paths.ASSIGNMENT}.ipynb", notebook)
    return buffer.getvalue()


def limits_cases(limits):
    """{student: (notebook bytes, Expected[, file name])} for the batch; `limits` its Limits."""
    from tests.grading_batch_cases import Expected

    ignoring, ignoring_label = after_first_test(IGNORES_INTERRUPT)
    printing, _ = after_first_test(PRINT_LOOP)
    hogging, hogging_label = after_first_test(MEMORY_HOG)
    memory = f"memory limit ({limits.memory_bytes / 2**30:g} GiB) in cell '{hogging_label}'"
    return {
        "limits-ignores-interrupt": (ignoring, Expected(
            f"cell '{ignoring_label}' ran past its {limits.cell_seconds:g} s limit", FIRST_TEST_ONLY,
            contains=f"cell '{ignoring_label}'")),
        "limits-print-loop": (printing, Expected(None, FIRST_TWO)),
        "limits-memory-after-first-test": (hogging, Expected(memory, FIRST_TEST_ONLY, contains=memory)),
        "limits-only-a-zip": (zipped(submissions.correct()), Expected(
            f"no notebook: the submission folder holds {paths.ASSIGNMENT}.zip", NOTHING), f"{paths.ASSIGNMENT}.zip"),
        # graded: the one notebook inside, with a note (the release's stubs: nothing to earn, quickly)
        "limits-folder-named-like-the-notebook": (submissions.untouched(), Expected(
            None, NOTHING, contains="NotImplementedError"), f"{paths.ASSIGNMENT}.ipynb/{paths.ASSIGNMENT}.ipynb"),
    }
