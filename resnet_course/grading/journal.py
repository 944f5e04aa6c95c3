"""The grader's journal: one JSON line per graded submission, fsync'd as each result arrives.

A line is keyed by the student, the sha256 of the notebook they submitted and a digest of the grading
material, so a rerun skips exactly what was graded (and regrades a submission, or a whole batch,
whose notebook or tests changed since). The journal is what makes a
killed grader resume with nothing lost and nothing graded twice; the gradebook is filled from it.
A line cut short by a kill is ignored (its submission is graded again).
"""
import hashlib
import json
import os
import pickle
from dataclasses import asdict

from resnet_course.grading.submission import CellResult


def submission_key(student, notebook_bytes, material_digest):
    """The student, the sha256 of their notebook and the grading material's digest (new tests: regraded)."""
    return f"{student}:{hashlib.sha256(notebook_bytes).hexdigest()}:{material_digest}"


def material_digest(material):
    """A short digest of what grading depends on (the tests, the packages cell, the learner modules)."""
    return hashlib.sha256(pickle.dumps(material, protocol=4)).hexdigest()[:16]


def to_record(key, result):
    """The journal line's content for a SubmissionResult (everything but the feedback notebook)."""
    return {"key": key, "student": result.student, "reason": result.reason, "seconds": result.seconds,
            "cells": [asdict(cell) for cell in result.cells]}


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
