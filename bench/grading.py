"""Grading speed: plain `nbgrader autograde` (as the README documented it) vs the course's grader.

Both grade copies of one correct submission in a temporary course folder (never instructor/):

- plain autograde: `cd <course> && .venv/bin/nbgrader autograde ResNet50 --student S`, one student
  after another, on nbgrader's collected submissions (the whole release folder, datasets included,
  so the notebook runs as a student's does), after `nbgrader generate_assignment` made the gradebook;
- the grader: `python -m resnet_course.grading <submitted> --workers 2` on the same folder.

    .venv/bin/python -m bench.grading                        # 20 submissions each (from the repository root)
    .venv/bin/python -m bench.grading --autograde-count 4    # plain autograde is slow: time fewer of them

Submissions per minute count the whole command's wall time (start-up included); the median is of
the per-submission times (autograde: each student's command; the grader: each grading step).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resnet_course import machine, paths
from resnet_course.grading.batch import JOURNAL_NAME
from tests import grading_submissions as submissions

NBGRADER = paths.ROOT / ".venv" / "bin" / "nbgrader"
NOT_COPIED = {"gradebook.db", "submitted", "autograded", "feedback", "release", JOURNAL_NAME, ".nbgrader.log"}


def run(command, cwd):
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, command))}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done


def make_course(folder, count):
    """A course copy (links resolved: datasets and learner files are real files) with `count` collected
    correct submissions, each a copy of the release folder with the student's notebook."""
    course = folder / "instructor"
    shutil.copytree(paths.INSTRUCTOR_DIR, course, ignore=lambda _, names: NOT_COPIED & set(names))
    run([NBGRADER, "generate_assignment", paths.ASSIGNMENT, "--force"], course)
    notebook = submissions.correct()
    for index in range(count):
        student = course / "submitted" / f"student-{index:03d}" / paths.ASSIGNMENT
        shutil.copytree(course / "release" / paths.ASSIGNMENT, student)
        (student / f"{paths.ASSIGNMENT}.ipynb").write_bytes(notebook)
    return course


def plain_autograde(course, count):
    seconds = []
    for student in sorted(path.name for path in (course / "submitted").iterdir())[:count]:
        start = time.monotonic()
        run([NBGRADER, "autograde", paths.ASSIGNMENT, "--student", student], course)
        seconds.append(time.monotonic() - start)
    return sum(seconds), seconds


def course_grader(course, workers):
    grader_course = course.parent / "graded-by-the-grader"
    grader_course.mkdir()
    shutil.copytree(course / "source", grader_course / "source")
    start = time.monotonic()
    run([sys.executable, "-m", "resnet_course.grading", course / "submitted", "--course-dir", grader_course,
         "--workers", str(workers)], paths.ROOT)
    wall = time.monotonic() - start
    records = [json.loads(line) for line in (grader_course / JOURNAL_NAME).read_text().splitlines()]
    if any(record["reason"] or sum(c["points"] for c in record["cells"]) != 10 for record in records):
        sys.exit("the grader did not give every correct submission full marks")
    return wall, [record["seconds"] for record in records]


def row(name, wall, seconds):
    rate = 60 * len(seconds) / wall
    return rate, f"| {name} | {len(seconds)} | {wall:.1f} | {rate:.2f} | {statistics.median(seconds):.1f} |"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20, help="submissions for the grader (default: %(default)s)")
    parser.add_argument("--autograde-count", type=int, help="of them, graded by plain autograde (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    env_path = os.environ.get("PATH", "")
    print(machine.machine_line())
    print(f"PATH holds the venv: {str(NBGRADER.parent) in env_path.split(os.pathsep)}")
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        course = make_course(Path(folder), args.count)
        grader_wall, grader_seconds = course_grader(course, args.workers)
        autograde_wall, autograde_seconds = plain_autograde(course, args.autograde_count or args.count)
    autograde_rate, autograde_row = row("plain `nbgrader autograde` (one student at a time)", autograde_wall,
                                        autograde_seconds)
    grader_rate, grader_row = row(f"`python -m resnet_course.grading --workers {args.workers}`", grader_wall,
                                  grader_seconds)
    print("| grader | submissions | wall s | submissions/min | median s/submission |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(autograde_row)
    print(grader_row)
    print(f"speed-up: {grader_rate / autograde_rate:.1f}x submissions per minute")


if __name__ == "__main__":
    main()
