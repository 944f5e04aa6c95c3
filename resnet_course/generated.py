"""Every generated file of the project, regenerated in order or checked for staleness.

    python -m resnet_course.generated            # = make generated: run every generator in order
    python -m resnet_course.generated --check    # = make check-generated: exit 1 naming what is stale

Each generator is a module with its own ``--check``; the order is the order of their inputs:
the learner files first (the checks import them), then the expected values (they write
check_cases.py and the source notebook's hidden cases), the solution cells (source
notebook), the learner release (made from the source notebook) and the figures. Each runs in
its own interpreter, as ``make`` would run it, so that no generator sees another's state.
"""
import argparse
import subprocess
import sys

# (module, what it writes), in the order they must run
GENERATORS = (
    ("resnet_course.learner_files", "the learner modules copied from resnet_course/"),
    ("resnet_course.expected_values", "check_cases.py, hidden cases"),
    ("resnet_course.notebook_sync", "source notebook solution cells"),
    ("resnet_course.release", "ResNet50.ipynb, the setup cell's checksum, release/ bundle"),
    ("resnet_course.figures", "images/ block diagrams"),
)


def run(module, check):
    """The exit status of ``python -m module [--check]``; its output goes to ours."""
    return subprocess.run([sys.executable, "-m", module, *(["--check"] if check else [])]).returncode


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; run every generator's check, exit 1 if any is stale")
    options = parser.parse_args(argv)
    failed = []
    for module, writes in GENERATORS:
        print(f"== {module} ({writes})", flush=True)
        if run(module, options.check) != 0:
            failed.append(module)
            if not options.check:  # later generators read what this one writes
                break
    if failed:
        verb = "stale" if options.check else "failed"
        print(f"{verb}: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
