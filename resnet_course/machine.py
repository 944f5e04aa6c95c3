"""Machine and version facts printed next to every benchmark figure."""
import os
import platform
import sys


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (an empty set where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_native_bfloat16():
    """True when the CPU computes in bfloat16 itself (AVX512_BF16 or AMX); None: unknown."""
    flags = cpu_flags()
    if not flags:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def machine_info():
    """A dict of the facts that make a measured number comparable."""
    import keras
    import numpy
    import tensorflow as tf

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "native_bfloat16": has_native_bfloat16(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
    }


def machine_line():
    info = machine_info()
    return ("machine: {cpu}, {cores} cores, {platform}; python {python}, TF {tensorflow}, "
            "Keras {keras}, numpy {numpy}").format(**info)
