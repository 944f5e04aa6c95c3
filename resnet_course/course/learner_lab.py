"""JupyterLab as a learner has it: the learner bundle's folder, without nbgrader's authoring tools.

    python -m resnet_course.course.learner_lab [FOLDER]      # = make lab (FOLDER: release/ResNet50)

The project's venv has nbgrader installed for the instructor, and with it a lab extension (menu,
Validate button, Create Assignment panel) and four server extensions. This server alone turns them
off: JUPYTER_CONFIG_PATH names resnet_course/course/learner_bundle/lab_config, whose page config disables
the lab extension and whose server config disables the server extensions (config on that path
takes precedence over the venv's own). Nothing installed is changed.
"""
import argparse
import os
import sys
from pathlib import Path

from resnet_course.course.bundle import LEARNER_LAB_CONFIG
from resnet_course.paths import BUNDLE_DIR, ROOT

NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"


def lab_env(environ=None):
    """environ (default: this process's) with the learner's lab config first on the config path."""
    env = dict(os.environ if environ is None else environ)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(LEARNER_LAB_CONFIG),
                                                               env.get("JUPYTER_CONFIG_PATH")]))
    return env


def lab_command(folder, *options):
    """The command that starts JupyterLab on folder with this Python's jupyter."""
    return [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={folder}", *options]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=BUNDLE_DIR,
                        help="the folder to open (default: the learner bundle, release/ResNet50)")
    options = parser.parse_args(argv)
    if not options.folder.is_dir():
        print(f"error: {options.folder} does not exist; run `make release` to write the learner bundle",
              file=sys.stderr)
        return 1
    folder = options.folder.resolve()
    shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
    print(f"JupyterLab on {shown}, without nbgrader's tools. Note: `make release` rewrites "
          f"{BUNDLE_DIR.relative_to(ROOT)}; keep your work in a copy.", flush=True)
    command = lab_command(folder)
    os.execve(sys.executable, command, lab_env())


if __name__ == "__main__":
    sys.exit(main())
