"""Grading speed: plain `nbgrader autograde` (as the README documented it) vs the course's grader.

Both grade copies of one correct submission in a temporary course folder (never instructor/):

- plain autograde: `cd <course> && .venv/bin/nbgrader autograde ResNet50 --student S`, one student
  after another, on nbgrader's collected submissions (the whole release folder, datasets included,
  so the notebook runs as a student's does), after `nbgrader generate_assignment` made the gradebook;
- the grader: `python -m resnet_course.grading <submitted> --workers 2` on the same folder.

    .venv/bin/python -m bench.grading                        # 20 submissions each (from the repository root)
    .venv/bin/python -m bench.grading --autograde-count 4    # plain autograde is slow: time fewer of them
    .venv/bin/python -m bench.grading --count 10 --autograde-count 2 --rounds 2   # interleaved halves

Submissions per minute count the whole command's wall time (start-up included); the median is of
the per-submission times (autograde: each student's command; the grader: each grading step). On a
shared machine both halves must run under comparable load: each half's row gives the 1-minute load
average sampled while it ran (min-max) and the CPU seconds per submission of the child processes that
were waited for (user + system; load changes it much less than wall time). That is all of plain
autograde (nbgrader and its kernel) but only the grader's own processes (client and Dask workers):
its sandboxes are killed when their run ends, so their CPU time is not counted. `--rounds N` runs
the halves N times, alternating, each round on other students.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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


class LoadSampler:
    """Samples the 1-minute load average every `every` seconds while in its context; `.text()` is
    "min-max" of the samples. `.cpu` is the CPU seconds (user + system) that child processes ended
    within the context used."""

    def __init__(self, every=2.0):
        self.every, self.samples, self.cpu = every, [], 0.0
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self):
        self._cpu_start = _children_cpu()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        self.cpu = _children_cpu() - self._cpu_start

    def text(self):
        return f"{min(self.samples):.1f}-{max(self.samples):.1f}"


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plain_autograde(course, students):
    seconds = []
    with LoadSampler() as load:
        for student in students:
            start = time.monotonic()
            run([NBGRADER, "autograde", paths.ASSIGNMENT, "--student", student], course)
            seconds.append(time.monotonic() - start)
    return Half(sum(seconds), seconds, load)


def course_grader(course, students, workers, name):
    """The grader on `students` (a submissions folder of links to their collected folders)."""
    submitted = course.parent / f"{name}-submitted"
    submitted.mkdir()
    for student in students:
        (submitted / student).symlink_to(course / "submitted" / student, target_is_directory=True)
    grader_course = course.parent / name
    grader_course.mkdir()
    shutil.copytree(course / "source", grader_course / "source")
    with LoadSampler() as load:
        start = time.monotonic()
        run([sys.executable, "-m", "resnet_course.grading", submitted, "--course-dir", grader_course,
             "--workers", str(workers)], paths.ROOT)
        wall = time.monotonic() - start
    records = [json.loads(line) for line in (grader_course / JOURNAL_NAME).read_text().splitlines()]
    if len(records) != len(students) or any(record["reason"] or sum(c["points"] for c in record["cells"]) != 10
                                            for record in records):
        sys.exit("the grader did not give every correct submission full marks")
    return Half(wall, [record["seconds"] for record in records], load)


class Half:
    """One timed half: wall seconds of the whole, the per-submission seconds, its LoadSampler."""

    def __init__(self, wall, seconds, load):
        self.wall, self.seconds, self.load = wall, seconds, load

    @property
    def rate(self):
        return 60 * len(self.seconds) / self.wall


def row(name, halves):
    seconds = [s for half in halves for s in half.seconds]
    wall = sum(half.wall for half in halves)
    cpu = sum(half.load.cpu for half in halves)
    loads = ", ".join(half.load.text() for half in halves)
    rate = 60 * len(seconds) / wall
    return rate, (f"| {name} | {len(seconds)} | {wall:.1f} | {rate:.2f} | {statistics.median(seconds):.1f} | "
                  f"{cpu / len(seconds):.1f} | {loads} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20, help="submissions for the grader per round "
                                                              "(default: %(default)s)")
    parser.add_argument("--autograde-count", type=int, help="submissions graded by plain autograde per round "
                                                            "(default: --count)")
    parser.add_argument("--rounds", type=int, default=1, help="times the two halves run, alternating "
                                                              "(default: %(default)s)")
    parser.add_argument("--autograde-first", action="store_true", help="start each round with plain autograde")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    autograde_count = args.autograde_count or args.count
    env_path = os.environ.get("PATH", "")
    print(machine.machine_line())
    print(f"PATH holds the venv: {str(NBGRADER.parent) in env_path.split(os.pathsep)}")
    grader_halves, autograde_halves = [], []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        per_round = max(args.count, autograde_count)
        course = make_course(Path(folder), per_round * args.rounds)
        students = sorted(path.name for path in (course / "submitted").iterdir())
        for index in range(args.rounds):
            mine = students[index * per_round:(index + 1) * per_round]
            halves = [("grader", lambda: grader_halves.append(
                          course_grader(course, mine[:args.count], args.workers, f"graded-{index}"))),
                      ("autograde", lambda: autograde_halves.append(plain_autograde(course, mine[:autograde_count])))]
            for name, half in (halves[::-1] if args.autograde_first else halves):
                print(f"round {index + 1}: {name} ({time.strftime('%H:%M:%S')} UTC)", flush=True)
                half()
    autograde_rate, autograde_row = row("plain `nbgrader autograde` (one student at a time)", autograde_halves)
    grader_rate, grader_row = row(f"`python -m resnet_course.grading --workers {args.workers}`", grader_halves)
    print("| grader | submissions | wall s | submissions/min | median s/submission | CPU s/submission "
          "| load average (1 min) while it ran, per round |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print(autograde_row)
    print(grader_row)
    print(f"speed-up: {grader_rate / autograde_rate:.1f}x submissions per minute")
    for index, (grader, autograde) in enumerate(zip(grader_halves, autograde_halves)):
        print(f"round {index + 1}: grader {grader.rate:.2f}/min (load {grader.load.text()}), autograde "
              f"{autograde.rate:.2f}/min (load {autograde.load.text()}): {grader.rate / autograde.rate:.1f}x")


if __name__ == "__main__":
    main()
