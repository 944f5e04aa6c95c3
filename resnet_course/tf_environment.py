"""TensorFlow settings that only work when they are in the environment before TensorFlow loads.

Every entry point calls ``apply_defaults()`` before it imports TensorFlow or Keras (train.py,
evaluate.py, bench/, the tests); the Makefile exports the same values for the notebook's kernel.

- ``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow 2.21 turns its oneDNN kernels on by itself only on CPUs
  with AVX-512 VNNI/BF16 or AMX. Elsewhere (AVX2-only CPUs: most laptops, many cloud machines) its
  convolutions fall back to Eigen, which trained ResNet50 at 64x64 3.7x slower (13.0 against 47.7
  images/s) and ResNet-20 on CIFAR-10 2.6x slower on this project's AVX2 machine
  (bench/train_speed.md, run 3).
- ``TF_CPP_MIN_LOG_LEVEL=2``: no C++ info lines (oneDNN's notice, CPU feature guards) in the output.

A value the user has set wins, so either can still be switched off.
"""
import os
import sys

DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def apply_defaults(environ=os.environ):
    """Put DEFAULTS into ``environ`` where unset; False when TensorFlow is already loaded in this
    process (then they take effect only in the processes it starts)."""
    for name, value in DEFAULTS.items():
        environ.setdefault(name, value)
    return "tensorflow" not in sys.modules
