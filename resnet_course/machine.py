"""Machine and version facts printed next to every benchmark figure."""
import os
import platform
import sys


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name with its family and model numbers, e.g. "AMD EPYC, family 26 model 2":
    virtual machines often show only "AMD EPYC", and the numbers tell its generations apart
    (family 25: Zen 3 or Zen 4, family 26: Zen 5)."""
    fields = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    if fields.get("cpu family") and fields.get("model"):
        name += f", family {fields['cpu family']} model {fields['model']}"
    return name


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


# The vector units that set TensorFlow's CPU speed. The model name alone does not tell
# machines apart: this project has run on "AMD EPYC" guests 3x apart in float32 matmul rate,
# one with AVX-512 and bfloat16 units, one with AVX2 only (bench/train_speed.md), and on two
# AVX-512 ones of different generations about 2x apart (bench/test_suite.md).
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def simd_features():
    """The SIMD_FLAGS this CPU has, in that order, as one string ("unknown" if none is known)."""
    flags = cpu_flags()
    return " ".join(flag for flag in SIMD_FLAGS if flag in flags) or "unknown"


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
        "simd": simd_features(),
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
    return ("machine: {cpu} ({simd}), {cores} cores, {platform}; python {python}, TF {tensorflow}, "
            "Keras {keras}, numpy {numpy}").format(**info)
