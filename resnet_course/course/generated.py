"""Every generated file of the project: the one table of what is made from what, and its checks.

    python -m resnet_course.course.generated            # = make generated: run every generator in order
    python -m resnet_course.course.generated --check    # = make check-generated (part of make test):
                                                        #   exit 1 naming what is stale or edited by hand
    python -m resnet_course.course.generated --list     # the table: generated files, sources, generator

Each generator is a module with its own ``--check``; the order is the order of their inputs:
the learner files first (the checks import them), then the expected values (they write
check_cases.py and the source notebook's hidden cases), the solution cells (source
notebook), the learner release (made from the source notebook) and the figures. Each runs in
its own interpreter, as ``make`` would run it, so that no generator sees another's state.
Every generated file says so in its first line or, for a notebook, is named here.
"""
import argparse
import subprocess
import sys

# (generator module, the files it writes, what it writes them from), in the order they must run
GENERATORS = (
    ("resnet_course.course.learner_files",
     "resnets_utils.py, training_utils.py, display_utils.py, hand_framing.py, stress.py, tf_environment.py",
     "resnet_course/learner/signs_files.py, training.py, display.py, hand_framing.py, stress.py, "
     "tf_environment.py"),
    ("resnet_course.course.expected_values",
     "check_cases.py, the hidden tests' cases in the source notebook",
     "resnet_course/course/reference.py, resnet_checks.py"),
    ("resnet_course.course.notebook_sync",
     "the solution regions of instructor/source/ResNet50/ResNet50.ipynb",
     "resnet_course/course/reference.py"),
    ("resnet_course.course.release",
     "ResNet50.ipynb (the learner release), the source notebook's setup cell (files checksum, download "
     "address) and Colab badge, release/ResNet50/, release/ResNet50.zip, release/ResNet50-files.zip",
     "the source notebook, the learner files, resnet_course/course/learner_bundle/, "
     "c.ResNetCourse.* in instructor/nbgrader_config.py"),
    ("resnet_course.course.figures",
     "images/identity_block.png, convolutional_block.png, resnet50.png, skip_connection.png",
     "resnet_course/course/figures.py"),
)
# Generated too, but not by `make generated`: they need the data archive or a long run.
# (generator module, the files it writes, what it writes them from, its make target)
OTHER_GENERATED = (
    ("resnet_course.data.signs_data",
     "datasets/train_signs.h5, datasets/test_signs.h5, images/my_image.jpg, datasets/heldout_signs.h5",
     "the Sign Language Digits archive and the Roboflow hand-gesture export, checked against "
     "resnet_course/data/manifests/", "data"),
    ("resnet_course.training.depth",
     "images/depth_curves.png, images/depth_gradients.png, images/depth_results.json",
     "a 4-network training run on CIFAR-10 (bench/depth.md)", "depth"),
)


def run(module, check):
    """The exit status of ``python -m module [--check]``; its output goes to ours."""
    return subprocess.run([sys.executable, "-m", module, *(["--check"] if check else [])]).returncode


def table():
    """The generated files as a Markdown table: generated | from | by."""
    rows = ["| generated | from | by |", "| --- | --- | --- |"]
    rows += [f"| {writes} | {sources} | `python -m {module}` |" for module, writes, sources in GENERATORS]
    rows += [f"| {writes} | {sources} | `python -m {module}` (make {target}) |"
             for module, writes, sources, target in OTHER_GENERATED]
    return "\n".join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; run every generator's check, exit 1 if any is stale")
    parser.add_argument("--list", action="store_true", help="print the table of generated files and stop")
    options = parser.parse_args(argv)
    if options.list:
        print(table())
        return 0
    failed = []
    for module, writes, _ in GENERATORS:
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
