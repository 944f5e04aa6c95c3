"""`python -m resnet_course.grading [SUBMISSIONS]`: grade a folder of submissions, then print a summary.

    .venv/bin/python -m resnet_course.grading                        # instructor/submitted, local workers
    .venv/bin/python -m resnet_course.grading subs/ --workers 8
    .venv/bin/python -m resnet_course.grading --scheduler tcp://head:8786

Writes the course folder's gradebook.db, autograded/ and grading_journal.jsonl (rerun to resume).
"""
import argparse
import signal
import sys
from pathlib import Path

from resnet_course import paths
from resnet_course.grading.batch import grade_folder, points, summary_table
from resnet_course.grading.submission import Limits


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def parse_args(argv=None):
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m resnet_course.grading", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submissions", nargs="?", type=Path,
                        help="folder in nbgrader's layout <student>/ResNet50/ResNet50.ipynb "
                             "(default: COURSE_DIR/submitted)")
    parser.add_argument("--course-dir", type=Path, default=paths.INSTRUCTOR_DIR,
                        help="nbgrader course folder that gets gradebook.db and autograded/ (default: %(default)s)")
    parser.add_argument("--source", type=Path, help="source notebook (default: COURSE_DIR/source/ResNet50/ResNet50.ipynb)")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://head:8786 "
                                            "(default: a local cluster)")
    parser.add_argument("--workers", type=positive(int), help="local worker processes (default: one per core)")
    parser.add_argument("--timeout", type=positive(float), default=defaults.wall_seconds,
                        help="wall-clock seconds per submission (default: %(default)g)")
    parser.add_argument("--memory-gib", type=positive(float), default=defaults.memory_bytes / 2**30,
                        help="memory limit per submission in GiB (default: %(default)g)")
    parser.add_argument("--max-processes", type=positive(int), default=defaults.max_processes,
                        help="process limit per submission (default: %(default)d)")
    return parser.parse_args(argv)


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM closes the cluster as Ctrl-C does; the journal keeps what is graded


def main(argv=None):
    args = parse_args(argv)
    course_dir = args.course_dir.resolve()
    source = args.source or course_dir / "source" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
    if not source.is_file():
        sys.exit(f"error: {source}: no source notebook")
    limits = Limits(wall_seconds=args.timeout, memory_bytes=int(args.memory_gib * 2**30),
                    max_processes=args.max_processes)
    signal.signal(signal.SIGTERM, _stop)
    try:
        records = grade_folder(args.submissions or course_dir / "submitted", course_dir, args.scheduler,
                               args.workers, limits, source)
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: rerun the same command to grade the rest (what is graded is kept)")
    print(summary_table(records))
    zeros = sum(1 for record in records if points(record) == 0)
    print(f"{len(records)} submissions, {zeros} with zero points; gradebook: {course_dir / 'gradebook.db'}")
    return 1 if any(record["reason"].startswith("grader error") for record in records if record["reason"]) else 0
