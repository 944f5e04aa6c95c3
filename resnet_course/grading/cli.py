"""`python -m resnet_course.grading [SUBMISSIONS]`: grade a folder of submissions, then print a summary.

    .venv/bin/python -m resnet_course.grading                        # instructor/submitted, local workers
    .venv/bin/python -m resnet_course.grading subs/ --workers 8
    .venv/bin/python -m resnet_course.grading --scheduler tls://head:8786 \
        --tls-ca-file ca.pem --tls-cert grader.pem --tls-key grader-key.pem

Writes the course folder's gradebook.db, autograded/ and grading_journal.jsonl (rerun to resume, or
with other limits to grade again). The local cluster listens on 127.0.0.1 with mutual TLS under a
certificate made for the run: no other process, of another user or of the grader's own, can connect
to it. Exit status: 0 when every submission got a final grade; 1 when some could not be graded (the
summary names them; rerun to grade them) or a folder was skipped because its name cannot be a
student id (rename it and rerun); 2 when the grading sandbox does not start on this machine (one
line says what is missing) or the cluster options are refused (one line says why), with nothing
recorded.
"""
import argparse
import dataclasses
import signal
import sys
from pathlib import Path

from resnet_course import paths
from resnet_course.grading.batch import (DASHBOARD_ADDRESS, ClusterRefused, cluster_security, grade_folder, points,
                                         summary_table)
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
    parser.add_argument("--scheduler", help="address of a running Dask scheduler, tls://head:8786 with the "
                                            "--tls-* files (default: a local cluster with mutual TLS on 127.0.0.1)")
    parser.add_argument("--tls-ca-file", type=Path, help="with --scheduler tls://...: the CA certificate that signed "
                                                         "the cluster's certificates (default: Dask's configuration, "
                                                         "distributed.comm.tls.ca-file)")
    parser.add_argument("--tls-cert", type=Path, help="with --scheduler tls://...: the grader's certificate (default: "
                                                      "distributed.comm.tls.client.cert)")
    parser.add_argument("--tls-key", type=Path, help="with --scheduler tls://...: the grader's private key, unless it "
                                                     "is in the certificate's file (default: "
                                                     "distributed.comm.tls.client.key)")
    parser.add_argument("--insecure-plain-tcp", action="store_true",
                        help="allow --scheduler tcp://...: connections neither encrypted nor authenticated, so whoever "
                             "reaches the cluster runs code as its workers' user and reads the hidden tests")
    parser.add_argument("--dashboard", nargs="?", const=DASHBOARD_ADDRESS, metavar="ADDRESS",
                        help="the local cluster's Dask dashboard, plain HTTP with no login: any user of this machine "
                             "can watch it (task names hold the student ids); default address %(const)s "
                             "(default: no dashboard)")
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
    security = None
    if args.scheduler:
        try:
            security = cluster_security(args.scheduler, args.tls_ca_file, args.tls_cert, args.tls_key,
                                        args.insecure_plain_tcp)
        except ClusterRefused as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if security is None:
            print(f"warning: --insecure-plain-tcp: the connections to {args.scheduler} are neither encrypted nor "
                  "authenticated: whoever reaches the scheduler or a worker can run code as the workers' user, read the "
                  "hidden tests and change the grades", file=sys.stderr)
        if args.dashboard:
            print("note: --dashboard is for the local cluster; a running cluster's dashboard is its scheduler's",
                  file=sys.stderr)
    elif args.tls_ca_file or args.tls_cert or args.tls_key or args.insecure_plain_tcp:
        print("error: --tls-ca-file, --tls-cert, --tls-key and --insecure-plain-tcp are for --scheduler (the local "
              "cluster makes its own certificate)", file=sys.stderr)
        return 2
    elif args.dashboard:
        print(f"note: the dashboard is at http://{args.dashboard}/status (plain HTTP, no login: any user of this "
              "machine can watch it)", file=sys.stderr)
    signal.signal(signal.SIGTERM, _stop)
    sweep_leftovers()  # scratch folders and cgroups of graders that were killed
    notes = []
    try:
        records = grade_folder(args.submissions or course_dir / "submitted", course_dir, args.scheduler,
                               args.workers, limits_of(args), source, notes=notes, security=security,
                               dashboard=None if args.scheduler else args.dashboard)
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
    skipped = [record for record in records if record.get("skipped")]
    graded = [record for record in records if not record.get("error") and not record.get("skipped")]
    zeros = sum(1 for record in graded if points(record) == 0)
    print(f"{len(records)} submissions: {len(graded)} graded ({zeros} with zero points), "
          f"{len(errors) + len(skipped)} not graded; gradebook: {course_dir / 'gradebook.db'}")
    if errors:
        print(f"{len(errors)} submission{'s' if len(errors) > 1 else ''} could not be graded (not the students' "
              f"doing, nothing recorded): rerun the same command to grade {'them' if len(errors) > 1 else 'it'}",
              file=sys.stderr)
    if skipped:
        print(f"{len(skipped)} folder{'s' if len(skipped) > 1 else ''} skipped: {'their names' if len(skipped) > 1 else 'its name'} "
              f"cannot be nbgrader student ids (the summary says why; nothing recorded): rename "
              f"{'them' if len(skipped) > 1 else 'it'} and rerun", file=sys.stderr)
    return 1 if errors or skipped else 0
