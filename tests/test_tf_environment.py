"""TensorFlow starts with the project's settings in every entry point, and the user's win."""
import os
import subprocess
import sys

from resnet_course.learner import tf_environment
from resnet_course.paths import ROOT



def test_defaults_fill_only_what_is_unset():
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    tf_environment.apply_defaults(environ)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _import_in_a_fresh_process(module, environ):
    """(whether each apply_defaults call came before TensorFlow loaded, TF_ENABLE_ONEDNN_OPTS
    once the module's imports are done) for ``import module`` in a new Python."""
    code = ("import os, sys; from resnet_course.learner import tf_environment as t; calls = []; "
            "apply = t.apply_defaults; t.apply_defaults = lambda *a: calls.append(apply(*a)); "
            f"sys.argv = ['{module}.py']; import {module}; "
            "print(calls, os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **environ},
                            capture_output=True, text=True, check=True, timeout=120)
    return result.stdout.split("\n")[-2]


def test_entry_points_turn_onednn_on_before_tensorflow_loads():
    # [True]: one call, before TensorFlow loaded (train.py's and expected_values' imports load
    # it; evaluate.py's only when it runs). The Makefile sets neither variable.
    for module in ("train", "evaluate", "resnet_course.course.expected_values"):
        assert _import_in_a_fresh_process(module, {}) == "[True] 1", module


def test_a_users_own_setting_wins():
    assert _import_in_a_fresh_process("train", {"TF_ENABLE_ONEDNN_OPTS": "0"}) == "[True] 0"


def test_the_startup_notice_pattern_drops_only_tensorflows_notice():
    notice = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
              "STDERR\n",
              "I0000 00:00:1795395040.233151    3017 port.cc:153] oneDNN custom operations are "
              "on. You may see slightly different numerical results ...\n")
    assert all(tf_environment.STARTUP_NOTICE.match(line) for line in notice)
    others = ("W0000 00:00:1795395040.2 3017 cpu_feature_guard.cc:1] something else\n",
              "Traceback (most recent call last):\n", "ImportError: libfoo.so\n")
    assert not any(tf_environment.STARTUP_NOTICE.match(line) for line in others)


def test_train_and_evaluate_start_without_tensorflows_notice(tmp_path):
    # Nothing but their own output on stderr: the notice is gone, a real error still shows.
    listed = subprocess.run([sys.executable, "train.py", "--list-models"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "resnet20" in listed.stdout
    assert listed.stderr == ""
    missing = tmp_path / "missing.keras"
    failed = subprocess.run([sys.executable, "evaluate.py", str(missing)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        f"evaluate.py: error: {missing}: model file not found; give the .keras file written by "
        f"train.py (DIR/model.keras) or by the notebook."]
