"""The robustness batch (issue 12, item 7; issue 18): one submission per way a course's submissions go wrong.

`batch_cases(...)` gives {student: (notebook bytes, expected[, file name])} for tests/test_grading_batch.py,
built with tests/grading_submissions.py, joined by the hostile submissions of
tests/grading_cases_trust.py (`trust_cases()`) and the Jupyter-semantics cases of
tests/grading_cases_jupyter.py (`jupyter_cases()`), the limits cases of tests/grading_cases_limits.py
(`limits_cases(limits)`) and the ResNet50 without its arithmetic of tests/grading_cases_arithmetic.py
(`arithmetic_cases()`) where those modules exist. A file name, when
given, is what the notebook is called in the submission folder (default ResNet50.ipynb). `expected` is the reason the result must give (or its start, for
limits whose figure is in the message) and the points per graded cell. The probes that reach for
instructor files, another submission, the gradebook or the network report what they reached in the
convolutional_block check's message ("... raised AssertionError: reached []": nothing); the other
functions are left as the release's stubs (what the probes reach does not depend on them, and a
submission that builds no model grades in a fraction of the time), so they earn nothing.
"""
import importlib
from dataclasses import dataclass

from tests import grading_submissions as submissions

FULL = {"identity_block_test": 3.0, "convolutional_block_test": 3.0, "ResNet50_test": 4.0}
NOTHING = dict.fromkeys(FULL, 0.0)
PROBE_CELL = "convolutional_block"
PROBE_MESSAGE = "raised AssertionError: reached []"  # what the failed checks say (then the learner's frames)


@dataclass(frozen=True)
class Expected:
    reason: str | None  # the result's reason must start with this (None: graded normally)
    points: dict  # grade_id -> points
    message: str | None = None  # how every failed cell's message ends, where that is known
    contains: str | None = None  # a text every failed cell's message holds, where that is known


def probe(reads=(), writes=(), connect=None):
    """A convolutional_block cell that tries to read and write `reads` / `writes` and to open a TCP
    connection to `connect` (host, port), then fails its check naming whatever it reached."""
    lines = ["import socket", "reached = []"]
    for path in map(str, reads):
        lines += ["try:", f"    reached.append('read ' + open({path!r}, 'rb').read(40).hex())",
                  "except OSError:", "    pass"]
    for path in map(str, writes):
        lines += ["try:", f"    open({path!r}, 'ab').write(b'pwned')", f"    reached.append('wrote {path}')",
                  "except OSError:", "    pass"]
    if connect:
        lines += ["try:", f"    socket.create_connection({tuple(connect)!r}, timeout=3)", "    reached.append('network')",
                  "except OSError:", "    pass"]
    lines += ["def convolutional_block(*args, **kwargs):", "    raise AssertionError(f'reached {reached!r}')"]
    return submissions.unsolved_with_cell_source(PROBE_CELL, "\n".join(lines) + "\n")


def probed():
    """Nothing earned; the probed cell's message says what was reached (tests/test_grading_batch.py)."""
    return Expected(None, NOTHING)


MONKEYPATCH = ("import public_tests\n"
               "public_tests.check_identity_block = lambda *a, **k: None\n"
               "public_tests.identity_block_test = lambda *a, **k: print('All tests passed!')\n")


# Writes 64 MiB blocks without end before defining identity_block: the sandbox's writable space fills
# up, the cell raises OSError (ENOSPC) and identity_block is never defined.
ENDLESS_WRITER = ("block = b'x' * (64 * 2**20)\n"
                  "with open('filler', 'wb') as filler:\n"
                  "    while True:\n"
                  "        filler.write(block)\n"
                  "        filler.flush()\n")


def endless_writer():
    return submissions.with_cell_source(
        "identity_block", ENDLESS_WRITER + "\n" + submissions.reference_source("identity_block"))


def other_cases(module, function, *args):
    """{student: case} of tests/<module>.py's `function(*args)`, or {} while that module does not exist."""
    try:
        cases = getattr(importlib.import_module(f"tests.{module}"), function)
    except ModuleNotFoundError as error:
        if error.name != f"tests.{module}":
            raise
        return {}
    return cases(*args)


def batch_cases(source_notebook, other_submission, gradebook, listener, limits):
    """{student: (notebook bytes, Expected[, file name])}: the submissions below and those of the trust and
    Jupyter cases; `listener` is a (host, port) that must never be reached; `limits` the batch's Limits
    (their figures appear in the reasons)."""
    memory = f"memory limit ({limits.memory_bytes / 2**30:g} GiB)"
    without_identity_block = {**FULL, "identity_block_test": 0.0, "ResNet50_test": 0.0}  # ResNet50 calls it
    own = {
        "correct": (submissions.correct(), Expected(None, FULL)),
        **{f"wrong-{name}": (submissions.wrong(name), Expected(None, {**FULL, test: 0.0}))
           for name, test in submissions.TEST_CELLS.items()},
        "untouched": (submissions.untouched(), Expected(None, NOTHING)),
        "corrupt-json": (submissions.corrupt_json(), Expected("invalid notebook: ", NOTHING)),
        # ResNet50 calls identity_block too, so its cell fails with it.
        "cells-deleted": (submissions.deleted_cells("identity_block"),
                          Expected("cells missing: identity_block",
                                   {**FULL, "identity_block_test": 0.0, "ResNet50_test": 0.0})),
        # --timeout is per cell: the loop is interrupted, identity_block (after it) is never defined
        "infinite-loop": (submissions.with_cell_source(
            "identity_block", "while True:\n    pass\n\n" + submissions.reference_source("identity_block")),
            Expected(None, without_identity_block, contains=f"ran past its {limits.cell_seconds:g} s limit")),
        "memory-bomb": (submissions.stub_with_code(
            "identity_block", "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 2**20))\n"),
            Expected(memory, NOTHING)),
        "fork-bomb": (submissions.stub_with_code(
            "identity_block", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"),
            Expected("process limit", NOTHING)),
        "reads-source-notebook": (probe(reads=[source_notebook]), probed()),
        "reads-other-submission": (probe(reads=[other_submission]), probed()),
        "reads-gradebook": (probe(reads=[gradebook]), probed()),
        "writes-gradebook": (probe(writes=[gradebook, gradebook.with_name("pwned.txt")]), probed()),
        "network": (probe(connect=listener), probed()),
        # The cheats leave every function unimplemented (grading_submissions.cheat): nothing to earn.
        "monkeypatch": (submissions.cheat("identity_block", MONKEYPATCH), Expected(None, NOTHING)),
        "sys-exit": (submissions.cheat("identity_block", "import sys\nsys.exit(0)\n"), Expected(None, NOTHING)),
        "os-exit": (submissions.cheat("identity_block", "import os\nos._exit(0)\n"),
                    Expected("kernel died", NOTHING)),
        # ResNet50 calls identity_block, so its cell fails with it.
        "endless-writer": (endless_writer(), Expected(None, without_identity_block, contains=(
            f"the sandbox's writable space, {limits.disk_bytes / 2**20:g} MiB, is full"))),
    }
    cases = {**other_cases("grading_cases_trust", "trust_cases"), **other_cases("grading_cases_jupyter", "jupyter_cases"),
             **other_cases("grading_cases_limits", "limits_cases", limits)}
    cases.update(other_cases("grading_cases_judge", "judge_cases"))
    cases.update(other_cases("grading_cases_arithmetic", "arithmetic_cases"))  # ResNet50 without its arithmetic
    clash = sorted(set(cases) & set(own))
    assert not clash, f"students named twice in the batch: {clash}"
    return {**own, **cases}
