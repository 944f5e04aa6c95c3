"""`python -m resnet_course.grading [SUBMISSIONS]`: grade a folder of submissions, then print a summary.

    .venv/bin/python -m resnet_course.grading                        # instructor/submitted, local workers
    .venv/bin/python -m resnet_course.grading subs/ --workers 8
    .venv/bin/python -m resnet_course.grading --scheduler tcp://head:8786

Writes the course folder's gradebook.db, autograded/ and grading_journal.jsonl (rerun to resume, or
with other limits to grade again). Exit status: 0 when every submission got a final grade; 1 when
some could not be graded (the summary names them; rerun to grade them); 2 when the grading sandbox
does not start on this machine (one line says what is missing), with nothing recorded.
"""
import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from resnet_course import paths
from resnet_course.grading.batch import grade_folder, points, summary_table
from resnet_course.grading.sandbox import SandboxUnavailable, sweep_leftovers
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
    parser.add_argument("--timeout", type=positive(float), default=defaults.cell_seconds,
                        help="seconds per cell, as nbgrader's --ExecutePreprocessor.timeout: a cell that runs "
                             "longer is interrupted; the judge has twice this in CPU time per graded cell (default: %(default)g)")
    parser.add_argument("--memory-gib", type=positive(float), default=defaults.memory_bytes / 2**30,
                        help="memory limit per submission in GiB, its writable space included; the judge's own "
                             "process has as much, at least 2 (default: %(default)g)")
    parser.add_argument("--max-processes", type=positive(int), default=defaults.max_processes,
                        help="process limit per submission (default: %(default)d)")
    parser.add_argument("--disk-mib", type=positive(int), default=defaults.disk_bytes // 2**20,
                        help="size of a submission's writable space in MiB, held in memory (default: %(default)d)")
    return parser.parse_args(argv)


def limits_of(args):
    """The Limits the options ask for (the rest at their defaults)."""
    return dataclasses.replace(Limits(), cell_seconds=args.timeout, memory_bytes=int(args.memory_gib * 2**30),
                               max_processes=args.max_processes, disk_bytes=args.disk_mib * 2**20)


def _stop(signum, frame):
    raise KeyboardInterrupt  # SIGTERM closes the cluster as Ctrl-C does; the journal keeps what is graded


def main(argv=None):
    args = parse_args(argv)
    course_dir = args.course_dir.resolve()
    source = args.source or course_dir / "source" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
    if not source.is_file():
        sys.exit(f"error: {source}: no source notebook")
    signal.signal(signal.SIGTERM, _stop)
    sweep_leftovers()  # scratch folders and cgroups of graders that were killed
    notes = []
    try:
        records = grade_folder(args.submissions or course_dir / "submitted", course_dir, args.scheduler,
                               args.workers, limits_of(args), source, notes=notes)
    except SandboxUnavailable as error:
        print(f"error: cannot grade: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt:
        sys.exit("interrupted: rerun the same command to grade the rest (what is graded is kept)")
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(summary_table(records))
    errors = [record for record in records if record.get("error")]
    zeros = sum(1 for record in records if not record.get("error") and points(record) == 0)
    print(f"{len(records)} submissions: {len(records) - len(errors)} graded ({zeros} with zero points), "
          f"{len(errors)} not graded; gradebook: {course_dir / 'gradebook.db'}")
    if errors:
        print(f"{len(errors)} submission{'s' if len(errors) > 1 else ''} could not be graded (not the students' "
              f"doing, nothing recorded): rerun the same command to grade {'them' if len(errors) > 1 else 'it'}",
              file=sys.stderr)
        return 1
    return 0
