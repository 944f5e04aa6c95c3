"""The grader's journal: one JSON line per graded submission, fsync'd as each result arrives.

A line is keyed by the student, the sha256 of the file they submitted (its name and bytes) and a
digest of the settings that decide a result (`settings_digest`: the limits and the checks version,
i.e. the grading material, the grading code that runs the student's cells, judges and scores them,
and resnet_checks.py), so a rerun skips exactly what was graded with the same settings, and grades
again a submission whose notebook changed, or a whole batch whose tests, checks or limits changed
(a larger `--timeout` grades the timed-out submissions again instead of replaying them).

Only final grades are journaled: an outcome the student did not cause (the sandbox did not start, a
worker was lost, a grader error) never is, so a rerun grades it. The journal is what makes a killed
grader resume with nothing lost and nothing graded twice; the gradebook is filled from it. A line
cut short by a kill is ignored (its submission is graded again).
"""
import hashlib
import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

from resnet_course import paths
from resnet_course.grading.submission import CellResult

GRADING_DIR = Path(__file__).resolve().parent
# The code that decides a result (what runs in the sandbox, which cells, the judge, the scores, the
# sandbox's mounts); the client-side modules that only record results are not in it.
CHECKS_SOURCES = tuple(GRADING_DIR / name for name in (
    "producer.py", "kernel.py", "judge.py", "bounded.py", "notebook.py", "submission.py", "sandbox.py")) + (
    paths.ROOT / "resnet_checks.py",)


def checks_version(material):
    """A digest of what the checks are: the grading material (tests, hidden cases, packages cell, learner
    modules) and the source of CHECKS_SOURCES that exist."""
    digest = hashlib.sha256(pickle.dumps(material, protocol=4))
    for path in CHECKS_SOURCES:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def settings_digest(material, limits):
    """A short digest of everything that decides a result besides the submission: the checks version
    and the limits (`dataclasses.asdict(limits)`)."""
    settings = {"checks": checks_version(material), "limits": asdict(limits)}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def submission_key(student, notebook_bytes, settings, file_name=""):
    """The student, the sha256 of their file (name and bytes) and the settings' digest."""
    content = hashlib.sha256(file_name.encode() + b"\0" + notebook_bytes).hexdigest()
    return f"{student}:{content}:{settings}"


def to_record(key, result, note=None):
    """The journal line's content for a SubmissionResult (everything but the feedback notebook)."""
    return {"key": key, "student": result.student, "reason": result.reason, "seconds": result.seconds,
            "note": note, "cells": [asdict(cell) for cell in result.cells]}


def cells_of(record):
    return tuple(CellResult(**cell) for cell in record["cells"])


class Journal:
    """Append-only JSON lines at `path`; `records` maps key -> record for every complete line."""

    def __init__(self, path):
        self.path = path
        self.records = {}
        if path.exists():
            for line in path.read_bytes().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:  # the last line of a killed run
                    continue
                if isinstance(record, dict) and "key" in record:
                    self.records[record["key"]] = record

    def append(self, record):
        """Writes `record` durably (fsync) before returning; a kill afterwards cannot lose it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with open(self.path, "ab") as journal:
            if journal.tell() and not self._ends_with_newline():
                journal.write(b"\n")  # after a torn last line
            journal.write(line)
            journal.flush()
            os.fsync(journal.fileno())
        self.records[record["key"]] = record

    def _ends_with_newline(self):
        with open(self.path, "rb") as journal:
            journal.seek(-1, os.SEEK_END)
            return journal.read(1) == b"\n"
