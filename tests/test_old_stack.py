"""The learner's files on the oldest supported stack (TensorFlow 2.18.1, Keras 3.8.0), as an older
Colab may ship it: with a correct solution the three public checks pass there, a wrong block gets
the short message, training_utils imports, and an even older Keras gets the one-line version error.

The old stack lives in its own venv, built once from tests/old_stack_requirements.txt under
~/.cache/resnet-course/ (keyed by that file's content and the Python version) and reused after: a
venv counts as built only when its stamp file exists, which is written last, so a build killed
half-way is thrown away and redone. Only the learner's files are copied next to it, so nothing of
resnet_course or the main venv can leak in.

Run alone: python -m pytest tests/test_old_stack.py  (first run downloads about 300 MB).
"""
import ast
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from resnet_course import paths
from resnet_course.course import reference

REQUIREMENTS = Path(__file__).with_name("old_stack_requirements.txt")
# A Keras older than the supported range, installed over the old stack to trigger the version guard.
TOO_OLD_KERAS = "keras==3.4.1"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "resnet-course"
STAMP = ".complete"
SOLVED = ("identity_block", "convolutional_block", "ResNet50")
PIP = ("-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input")


def _key(*texts):
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]


@contextlib.contextmanager
def _locked(path):
    """Holds an exclusive lock on path + '.lock' (two test processes must not build one venv together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_once(target, build):
    """Runs build(target) unless target holds a stamp from a finished build; a folder without one
    is what a killed build left behind, so it is removed first. Returns target."""
    with _locked(target):
        if (target / STAMP).is_file():
            return target
        shutil.rmtree(target, ignore_errors=True)
        build(target)
        (target / STAMP).write_text("built\n")  # last: only a finished build gets it
    return target


def _run(command, **kwargs):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result


def old_stack_venv():
    """The venv with the pinned oldest stack (built on first use, then reused)."""
    requirements = REQUIREMENTS.read_text()
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    target = CACHE_ROOT / f"venv-tf2.18-{python_tag}-{_key(requirements, sys.version)}"

    def build(folder):
        # sys._base_executable: a venv is made from the real interpreter, not from this venv's.
        _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", folder])
        _run([folder / "bin" / "python", *PIP, "-r", REQUIREMENTS])

    return _build_once(target, build)


def too_old_keras(venv):
    """A folder holding only TOO_OLD_KERAS (no dependencies), to put first on PYTHONPATH over the
    old venv: a cheap stand-in for a whole venv with that Keras."""
    target = venv.parent / f"{venv.name}-{TOO_OLD_KERAS.replace('==', '-')}"
    return _build_once(target, lambda folder: _run(
        [venv / "bin" / "python", *PIP, "--no-deps", "--target", folder, TOO_OLD_KERAS]))


def solution_source():
    """A module with the reference solution: reference.py's imports and its three functions."""
    source = Path(reference.__file__).read_text()
    tree = ast.parse(source)
    parts = [ast.get_source_segment(source, node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    parts += [ast.get_source_segment(source, node) for node in tree.body
              if isinstance(node, ast.FunctionDef) and node.name in SOLVED]
    return "\n\n\n".join(parts) + "\n"


# Run in the old venv, in a folder holding only the learner's files and solution.py.
CHECKS_SCRIPT = textwrap.dedent("""
    import resnets_utils, training_utils, public_tests  # the notebook's import line
    import keras, tensorflow
    from solution import (ResNet50, convolutional_block, identity_block, identity_block_ignoring_training,
                          identity_block_with_operator_and_shared_relu)
    print("versions", tensorflow.__version__, keras.__version__)
    public_tests.identity_block_test(identity_block)
    public_tests.convolutional_block_test(convolutional_block)
    public_tests.ResNet50_test(ResNet50)
    public_tests.identity_block_test(identity_block_with_operator_and_shared_relu)  # an equivalent block

    # Two wrong blocks whose messages rest on what the checks read from Keras: the BatchNorm call's
    # training argument (from the model's config) and the layers built before a failed Add.
    def convolutional_block_without_projection(X, f, filters, s=2, training=True, initializer=None):
        return identity_block(X, f, filters, training, initializer)  # the shortcut is X itself

    for name, test, block in (("training", public_tests.identity_block_test, identity_block_ignoring_training),
                              ("projection", public_tests.convolutional_block_test,
                               convolutional_block_without_projection)):
        try:
            test(block)
        except public_tests.CheckFailed as failure:
            print(f"---- {name}")
            print("\\n".join(failure._render_traceback_()))
        else:
            print(f"---- {name}: passed, expected a failure")
""")


# Reference identity blocks rewritten: {function name: {text: replacement}}.
VARIANTS = {
    # Wrong: BatchNormalization called without the block's training flag.
    "identity_block_ignoring_training": {"(X, training=training)": "(X)"},
    # Right, written otherwise: the + operator (a keras.ops call, not a layer) and one ReLU layer
    # used three times (one layer, three calls).
    "identity_block_with_operator_and_shared_relu": {"Add()([X_shortcut, X])": "X_shortcut + X",
                                                     'Activation("relu")': "relu",
                                                     "    X_shortcut = X\n": "    X_shortcut = X\n    relu = ReLU()\n"},
}


def _identity_block_variant(source, name, replacements):
    text = "def identity_block" + source.split("def identity_block", 1)[1].split("\ndef ", 1)[0].rstrip()
    text = text.replace("def identity_block", f"def {name}", 1)
    for old, new in replacements.items():
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text


def _checks_folder(tmp_path):
    """The learner's files only (as the release ships them) plus solution.py."""
    folder = tmp_path / "learner"
    folder.mkdir()
    modules = [name for name in paths.LEARNER_MODULES if (paths.ROOT / name).is_file()]
    for name in modules:
        shutil.copy(paths.ROOT / name, folder / name)
    for directory in (paths.DATASETS_DIR, paths.IMAGES_DIR):
        shutil.copytree(directory, folder / directory.name, ignore=shutil.ignore_patterns(".cache"))
    source = solution_source()
    variants = [_identity_block_variant(source, name, replacements) for name, replacements in VARIANTS.items()]
    (folder / "solution.py").write_text("\n\n".join([source, "from keras.layers import ReLU", *variants]) + "\n")
    (folder / "run_checks.py").write_text(CHECKS_SCRIPT)
    return folder, modules


def _python(venv, folder, *args, **env):
    """Runs the venv's Python in folder with only the learner's files importable (no editable
    install of this project, no PYTHONPATH from outside); returns the CompletedProcess."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"),
                   "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1", **env}
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=folder, env=environment,
                          capture_output=True, text=True, timeout=900)


def test_a_build_killed_half_way_is_redone(tmp_path):
    built = []

    def killed(folder):
        folder.mkdir()
        (folder / "half").write_text("")
        raise KeyboardInterrupt

    def build(folder):
        folder.mkdir()
        built.append(folder)

    target = tmp_path / "venv"
    with pytest.raises(KeyboardInterrupt):
        _build_once(target, killed)
    assert target.is_dir() and not (target / STAMP).exists()
    assert _build_once(target, build) == target and built == [target]
    assert not (target / "half").exists() and (target / STAMP).is_file()
    assert _build_once(target, build) == target and built == [target]  # reused, not rebuilt


@pytest.fixture(scope="module")
def venv():
    return old_stack_venv()


def test_the_checks_pass_with_a_correct_solution_and_speak_briefly_on_the_oldest_stack(venv, tmp_path):
    folder, modules = _checks_folder(tmp_path)
    assert {"public_tests.py", "resnet_checks.py", "check_cases.py"} <= set(modules)
    result = _python(venv, folder, "run_checks.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "versions 2.18.1 3.8.0" in out
    assert out.count("All tests passed!") == 4, out
    training = out.split("---- training", 1)[1].split("---- projection", 1)[0]
    assert "the `training` flag is ignored: main path layer 2 (BatchNormalization" in training, out
    projection = out.split("---- projection", 1)[1]
    assert "Add's inputs do not include the projection" in projection, out
    for message in (training, projection):
        lines = message.strip().splitlines()
        assert lines[0].startswith("\x1b[91mCheck failed"), lines
        assert len(lines) < 15 and "resnet_checks.py" not in message, lines


def test_too_old_keras_gets_a_one_line_message(venv, tmp_path):
    folder, _ = _checks_folder(tmp_path)
    result = _python(venv, folder, "-c", "import resnets_utils, training_utils, public_tests",
                     PYTHONPATH=str(too_old_keras(venv)))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "VersionError" in last and "Keras 3.8-" in last and "3.4.1" in last, result.stderr[-2000:]


if __name__ == "__main__":  # builds the cached venvs (e.g. ahead of a test run)
    print(too_old_keras(old_stack_venv()))
