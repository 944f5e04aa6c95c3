"""Shared test set-up: the repository root is importable and TensorFlow starts as the project's
entry points start it (oneDNN kernels on, quiet)."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from resnet_course import tf_environment  # noqa: E402

tf_environment.apply_defaults()
