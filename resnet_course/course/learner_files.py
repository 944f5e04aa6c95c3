"""Writes the learner's helper modules from their sources in this package: one source per fact.

    python -m resnet_course.course.learner_files            # rewrite resnets_utils.py, training_utils.py
    python -m resnet_course.course.learner_files --check    # exit 1 naming any stale copy

The learner's modules sit beside the notebook and must stand alone (a learner has no
resnet_course), while the trainer, the evaluator and the benchmarks must not stand on the
learner's files. So the code lives here, in ``resnet_course.learner.signs_files`` and
``resnet_course.learner.training`` (which the package imports), and the learner's files are copies with
a header line and the package imports between the sources renamed to the learner modules.
"""
import argparse
import re
import sys

from resnet_course.paths import ROOT

PACKAGE_DIR = ROOT / "resnet_course" / "learner"
# learner file -> its source module in this package
COPIES = {"resnets_utils.py": "signs_files", "training_utils.py": "training",
          "hand_framing.py": "hand_framing", "stress.py": "stress", "tf_environment.py": "tf_environment",
          "display_utils.py": "display"}
# Names the source without the package: a learner has no package (docs/DESIGN.md, "One source, two
# audiences"; `python -m resnet_course.course.generated --list` gives the full path).
HEADER = "# Generated from the course's learner/{source}.py; edit that, not this copy.\n"


def render(learner_file):
    """The text the learner file must hold."""
    source = COPIES[learner_file]
    text = (PACKAGE_DIR / f"{source}.py").read_text(encoding="utf8")
    for name, module in COPIES.items():
        text = text.replace(f"resnet_course.learner.{module}", name.removesuffix(".py"))
    if re.search(r"^\s*(from|import)\s+resnet_course\b", text, re.MULTILINE):
        raise ValueError(f"resnet_course/learner/{source}.py imports a package module that has no "
                         f"learner copy; the learner's {learner_file} could not import it.")
    return HEADER.format(source=source) + text


def stale(root=ROOT):
    """The learner files whose content differs from their sources (or that are missing)."""
    return [name for name in COPIES
            if not (root / name).is_file() or (root / name).read_text(encoding="utf8") != render(name)]


def write(root=ROOT):
    """Rewrite the stale learner files; returns their names."""
    changed = stale(root)
    for name in changed:
        (root / name).write_text(render(name), encoding="utf8")
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a learner file is out of date")
    options = parser.parse_args(argv)
    if options.check:
        out_of_date = stale()
        for name in out_of_date:
            print(f"{name} is stale: run `python -m resnet_course.course.learner_files` "
                  f"(its source is resnet_course/learner/{COPIES[name]}.py)")
        if not out_of_date:
            print("learner files are up to date")
        return 1 if out_of_date else 0
    changed = write()
    print(f"wrote {', '.join(changed)}" if changed else "learner files up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
