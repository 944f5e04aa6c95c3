# Generated from the course's learner/tf_environment.py; edit that, not this copy.
"""TensorFlow settings that only work when they are in the environment before TensorFlow loads.

Whatever starts TensorFlow calls ``apply_defaults()`` before it imports TensorFlow or Keras: the
notebook's packages cell calls both functions of this module.

- ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow 2.21 turns its oneDNN kernels on by itself only on CPUs
  with AVX-512 VNNI/BF16 or AMX. Elsewhere (AVX2-only CPUs: most laptops, many cloud machines) its
  convolutions fall back to Eigen: on this project's AVX2 machine ResNet50 at 64x64 trained 2.9x
  slower in the course's recipe (13.5 against 38.6 images/s) and 3.4x slower in train.py's (15.8
  against 53.8), ResNet-20 on CIFAR-10 2-2.6x slower (bench/train_speed.md, run 3).
- ``TF_CPP_MIN_LOG_LEVEL=2``: no C++ info and warning lines (CPU feature guards, ...) once
  TensorFlow's logging has started.

A value the user has set wins, so either can still be switched off.

TensorFlow 2.21 still prints a start-up notice that TF_CPP_MIN_LOG_LEVEL cannot silence (it logs
before absl's logging is initialised: "All log messages before absl::InitializeLog() ..." and
"oneDNN custom operations are on ...", each twice). ``import_tensorflow_quietly()`` imports
TensorFlow and Keras with those lines dropped and everything else it wrote passed on, so that
train.py and evaluate.py start with their own output, and the notebook's packages cell shows no
red stderr box (Jupyter's kernel shows what C++ code writes to stderr, too).
"""
import os
import re
import sys
import tempfile

DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def apply_defaults(environ=os.environ):
    """Put DEFAULTS into ``environ`` where unset; False when TensorFlow is already loaded in this
    process (then they take effect only in the processes it starts)."""
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
    return "tensorflow" not in sys.modules


# The start-up lines TF_CPP_MIN_LOG_LEVEL does not reach (see the module docstring).
STARTUP_NOTICE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"
    r"|^I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are (on|off)\.")


def import_tensorflow_quietly():
    """Import tensorflow and keras (after apply_defaults) with STARTUP_NOTICE lines removed
    from what the import writes to file descriptor 2; the rest is written to stderr, also when
    the import fails. A no-op once TensorFlow is loaded."""
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(True)
                    if not STARTUP_NOTICE.match(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
