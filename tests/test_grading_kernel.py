"""resnet_course/grading/kernel.py: cells run as a Jupyter kernel runs them (IPython's transformation,
magics, one namespace, a later definition wins), errors with the learner's line, one time limit per
cell. Run directly, without the sandbox (the producer runs the same function inside it)."""
import ast
import signal
import subprocess
import sys

import pytest

from resnet_course import paths
from resnet_course.grading import kernel
from resnet_course.grading.kernel import defined_names, run_cells

KERNEL_FILE = paths.ROOT / "resnet_course" / "grading" / "kernel.py"


def run(*sources, seconds=5.0):
    """(results, namespace) of cells named a, b, c... run in a fresh namespace."""
    namespace = {}
    results = run_cells([(chr(ord("a") + i), source) for i, source in enumerate(sources)], namespace, seconds)
    return results, namespace


def test_a_leftover_debug_line_is_skipped_with_a_note_and_the_cell_defines_its_function():
    results, namespace = run("def identity_block(X):\n    return X\n\n%debug\n")
    assert results[0]["status"] == "ok" and results[0]["error"] is None
    assert results[0]["note"] == "line 4: %debug does not run in grading (skipped)"
    assert namespace["identity_block"](7) == 7


@pytest.mark.parametrize("line", ["%matplotlib inline", "%pip install keras", "%load_ext autoreload",
                                  "%autoreload 2", "%pdb on", "%run other.py", "%reset -f", "%cd /"])
def test_magics_that_cannot_run_in_grading_are_skipped_and_the_rest_runs(line):
    results, namespace = run(f"x = 1\n{line}\ny = 2\n")
    assert results[0]["status"] == "ok", results
    assert results[0]["note"].startswith(f"line 2: {line.split()[0]}")
    assert (namespace["x"], namespace["y"]) == (1, 2)


def test_shell_commands_are_skipped_and_captured_output_is_empty():
    results, namespace = run("!pip install foo\nfiles = !ls\ndone = True\n")
    assert results[0]["status"] == "ok"
    assert results[0]["note"] == ("line 1: !pip install foo is a shell command: shell commands do not run in grading "
                                  "(skipped); line 2: !ls is a shell command: shell commands do not run in grading "
                                  "(skipped)")
    assert list(namespace["files"]) == [] and namespace["done"] is True


def test_magics_that_run_as_in_a_kernel():
    results, namespace = run("%%time\ndef f(x):\n    return 2 * x\n", "%time y = f(3)\n", "f?\n",
                             "%%capture shown\nprint('hello')\nz = f(y)\n")
    assert [r["status"] for r in results] == ["ok"] * 4 and all(r["note"] is None for r in results)
    assert (namespace["y"], namespace["z"]) == (6, 12)
    assert namespace["shown"].stdout == "hello\n"


def test_a_cell_magic_that_cannot_run_skips_its_cell():
    results, namespace = run("%%bash\necho hi > /dev/null\n", "%%writefile notes.txt\nhello\n", "after = 1\n")
    assert [r["status"] for r in results] == ["skipped", "skipped", "ok"]
    assert results[0]["note"] == "%%bash does not run in grading (the cell was skipped)"
    assert namespace["after"] == 1


def test_every_copy_runs_and_the_last_definition_wins():
    results, namespace = run("def f():\n    return 'early'\n", "def f():\n    return 'fixed'\n")
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert namespace["f"]() == "fixed"


def test_an_error_ends_only_its_cell_and_names_the_learners_line():
    results, namespace = run("def f(x):\n    y = x + 1\n    return 1 / (y - y)\n", "before = 1\nz = f(2)\nafter = 1\n",
                             "next_cell = True\n")
    assert results[1]["status"] == "error"
    assert results[1]["error"] == "ZeroDivisionError: division by zero"
    assert results[1]["line"] == "cell 'a', line 3: return 1 / (y - y)"  # the deepest line of the learner's
    assert namespace["before"] == 1 and "after" not in namespace and namespace["next_cell"] is True
    results, _ = run("x = 1\nundefined_name + 1\n")
    assert (results[0]["error"], results[0]["line"]) == ("NameError: name 'undefined_name' is not defined",
                                                          "line 2: undefined_name + 1")


def test_a_syntax_error_names_its_line_and_long_messages_are_cut():
    results, _ = run("x = 1\ndef broken(:\n    pass\n", "raise ValueError('x' * 5000)\n")
    assert results[0]["status"] == "error" and results[0]["error"].startswith("SyntaxError: ")
    assert results[0]["line"] == "line 2: def broken(:"
    assert len(results[1]["error"]) == kernel.ERROR_CHARS and results[1]["error"].endswith("...")


@pytest.mark.filterwarnings("ignore:To exit")  # IPython's advice after SystemExit, as in a terminal
def test_sys_exit_ends_only_its_cell():
    results, namespace = run("import sys\nsys.exit(3)\nnot_reached = 1\n", "reached = 1\n")
    assert (results[0]["status"], results[0]["error"]) == ("error", "SystemExit: 3")
    assert "not_reached" not in namespace and namespace["reached"] == 1


def test_a_slow_cell_is_interrupted_at_its_limit_and_the_next_cells_run():
    results, namespace = run("import time\ntime.sleep(300)\n", "after = 1\n", seconds=1)
    assert results[0]["status"] == "interrupted"
    assert results[0]["error"] == "interrupted after 1 s"
    assert results[0]["line"] == "line 2: time.sleep(300)"
    assert results[0]["seconds"] < 10  # 1 s, plus a loaded machine's delay
    assert results[1]["status"] == "ok" and namespace["after"] == 1


def test_a_cell_that_catches_the_interrupt_is_interrupted_again():
    slow = ("import time\ntry:\n    time.sleep(300)\nexcept KeyboardInterrupt:\n    caught = True\n"
            "time.sleep(300)\nnot_reached = True\n")
    results, namespace = run(slow, "after = 1\n", seconds=1)
    assert results[0]["status"] == "interrupted" and results[0]["seconds"] < 20
    assert namespace["caught"] is True and "not_reached" not in namespace and namespace["after"] == 1


def test_no_timer_handler_or_main_module_is_left_behind():
    before, main = signal.getsignal(signal.SIGALRM), sys.modules["__main__"]
    results, namespace = run("x = 1\nimport __main__\nsame = __main__.x == 1\n", "raise KeyError('k')\n", seconds=2)
    assert namespace["same"] is True  # inside, __main__ is the cells' namespace, as in a kernel
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is before
    assert sys.modules["__main__"] is main


def test_the_namespace_given_is_the_one_the_cells_use():
    namespace = {"given": 41}
    run_cells([("a", "answer = given + 1\n")], namespace, 5)
    assert namespace["answer"] == 42


def test_defined_names_are_the_top_level_definitions_after_ipython_transformation():
    source = ("import numpy as np\nfrom keras.layers import Add, Conv2D as C\nimport os.path\n"
              "def identity_block(X):\n    inner = 1\n    return X\n"
              "class Block:\n    attribute = 1\n"
              "a, (b, *c) = 1, (2, 3)\nd: int = 4\ne += 1\nfor i in range(2):\n    f = i\n"
              "with open('x') as g:\n    pass\n"
              "if True:\n    h = 1\nelse:\n    k = 2\n"
              "try:\n    m = 1\nexcept Exception as n:\n    o = 1\n"
              "%debug\nfiles = !ls\n%time timed = 1\n")
    assert defined_names(source) == {"np", "Add", "C", "os", "identity_block", "Block", "a", "b", "c", "d", "e",
                                     "i", "f", "g", "h", "k", "m", "n", "o", "files"}
    assert defined_names("def broken(:\n") == frozenset()
    assert defined_names("%%bash\necho hi\n") == frozenset()


def test_the_kernel_imports_only_the_standard_library_and_ipython():
    # it is copied into the sandbox beside the producer, where resnet_course cannot be imported
    tree = ast.parse(KERNEL_FILE.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"IPython", "traitlets"}


def test_an_interrupted_cell_keeps_its_line_while_ipython_does_its_bookkeeping():
    # With Keras loaded, IPython's formatting of a failed cell for its history took seconds: the
    # repeating interrupt landed there (outside the learner's code) and the cell's line was lost.
    script = ("import keras\nfrom resnet_course.grading.kernel import run_cells\n"
              "print(run_cells([('a', 'import time\\ntime.sleep(300)\\n'), ('b', 'x = 1\\n')], {}, 1))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=paths.ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert [(r["status"], r["line"]) for r in results] == [("interrupted", "line 2: time.sleep(300)"), ("ok", None)]


def test_tracebacks_name_the_cell_by_its_label():
    # the checks show the learner's frames ("Where your code raised it"): they name the cell as the feedback does
    namespace = {}
    run_cells([("identity_block", "def f():\n    raise ValueError('x')\n"),
               ("added cell 7", "import traceback\ntry:\n    f()\nexcept ValueError as error:\n"
                                "    frames = [(t.filename, t.lineno)\n"
                                "              for t in traceback.extract_tb(error.__traceback__)]\n"),
               ("identity_block", "g = 1\n")], namespace, 5)
    assert namespace["frames"] == [("<cell added cell 7>", 3), ("<cell identity_block>", 2)]


PRINT_LOOP = """
import resource, sys
sys.path.insert(0, {folder!r})
from kernel import run_cells
loop = "import time\\nstart = time.monotonic()\\nn = 200\\nwhile time.monotonic() - start < 3:\\n    print('spam ' * n)\\n"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
results = run_cells([("printer", loop), ("after", "x = 1")], {{}}, 30)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(repr((grown, results)), file=sys.stderr)
"""


def test_an_endless_print_loop_costs_no_memory_and_its_output_is_capped():
    """Issue 27, item 9b: a cell that prints without end. IPython keeps a copy of everything a cell
    writes (its output history) unless told not to: memory grew with the output until the sandbox's
    memory limit ended the whole run. Now the kernel keeps nothing and passes on at most
    OUTPUT_LINES lines (OUTPUT_BYTES bytes) per cell, as nbgrader's LimitOutput keeps 1000 lines; the
    cell runs on and the next cells run."""
    script = PRINT_LOOP.format(folder=str(KERNEL_FILE.parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    grown, results = ast.literal_eval(done.stderr.strip().splitlines()[-1])
    assert grown < 20_000, f"the print loop grew the process by {grown} KiB"  # ru_maxrss is in KiB
    assert [r["status"] for r in results] == ["ok", "ok"]
    assert results[0]["note"].startswith(f"it wrote more than {kernel.OUTPUT_LINES} lines of output")
    lines = done.stdout.splitlines()
    assert len(lines) <= kernel.OUTPUT_LINES + 1 and lines[-1] == kernel.TRUNCATED


@pytest.mark.parametrize("writes, kept", [
    (["line\n"] * (kernel.OUTPUT_LINES + 5), "line\n" * kernel.OUTPUT_LINES),
    (["x" * (kernel.OUTPUT_BYTES + 10)], "x" * kernel.OUTPUT_BYTES + "\n"),
    (["a\nb\n" * kernel.OUTPUT_LINES], "a\nb\n" * (kernel.OUTPUT_LINES // 2)),
    (["short\n", ""], "short\n"),
])
def test_a_cells_output_is_cut_after_its_last_allowed_line_with_nbgraders_marker(writes, kept):
    import io
    sink, budget = io.StringIO(), {"lines": 0, "bytes": 0, "dropped": 0, "ended": True}
    stream = kernel.CappedStream(sink, budget)
    for data in writes:
        assert stream.write(data) == len(data)
    assert sink.getvalue() == (kept + kernel.TRUNCATED + "\n" if budget["dropped"] else kept)
    assert bool(budget["dropped"]) == (kept != "".join(writes))
