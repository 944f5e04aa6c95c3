"""The checking machinery behind public_tests.py: it builds the learner's function, reads the
layers it created, runs it on fixed inputs and compares everything with the expected values.

A check builds the block on a symbolic ``keras.Input`` and reads the layer graph through Keras's
public API (a ``keras.Model`` around it, its ``get_config()`` and ``operations``): layer types,
settings, output shapes, how the shortcut is wired into the ``Add`` and how each BatchNormalization
is called, and every other setting that changes what a layer computes (``layer_settings``: dilation,
groups, initializers, epsilon, ...). Then it calls the block on fixed inputs with fixed kernel
initializers, in training and in inference mode, and compares summaries of the outputs. ResNet50's
check reads the stages, each block's layers and every layer's settings the same way, then sets every
weight of the model itself (``set_check_weights``) and compares its outputs on two fixed images in
inference and in training mode. The first problem found is raised as a
``CheckFailed`` that says what is wrong and where; in Jupyter it shows as a few short lines
(``_render_traceback_``), not as a traceback through this module.

The generic checks ``check_identity_block``, ``check_convolutional_block`` and ``check_resnet50``
take a *case* (a dict: input spec, arguments, expected values; see check_cases.py).
"""
import ast
import difflib
import inspect
import os
import textwrap
import traceback

import keras
import numpy as np

GREEN = "\033[92m"
RED = "\033[91m"
RESET = "\033[0m"

# Outputs must match the expected values to within |got - expected| <= ATOL + RTOL * |expected|.
RTOL = 1e-5
ATOL = 1e-4
# The most layer calls the checks read in one model: far above a residual block's (about 10) and
# ResNet50's (about 180), and it bounds the checks' work on whatever a function builds.
MAX_LAYER_CALLS = 2000
# ResNet50's class probabilities (of order 0.1) must match to within RESNET50_ATOL + RTOL * |expected| (its
# training-mode outputs differ by about 1e-5 between TensorFlow's oneDNN and Eigen kernels).
RESNET50_ATOL = 1e-4


class CheckFailed(AssertionError):
    """One check of the assignment failed; the message says what is wrong and how to fix it.

    Plain Python and pytest show it as an AssertionError with that message. IPython (Jupyter,
    nbgrader) calls ``_render_traceback_`` instead of printing a traceback, so the learner sees the
    message alone, plus the lines of their own code when their code raised the error.
    """

    def __init__(self, message, learner_frames=()):
        super().__init__(message)
        self.learner_frames = list(learner_frames)

    def _render_traceback_(self):
        first, *rest = str(self).splitlines() or [""]
        lines = [f"{RED}Check failed{RESET}: {first}", *rest]
        if self.learner_frames:
            lines.append("Where your code raised it:")
            lines.extend(line.rstrip("\n") for line in traceback.format_list(self.learner_frames))
        return lines


def _fail(context, problem):
    raise CheckFailed(f"{context}: {problem}")


# --------------------------------------------------------------------------------------
# Fixed inputs and kernel initializers
# --------------------------------------------------------------------------------------

def make_input(spec):
    """The float32 input array described by a small spec dict.

    {"shape": (m, ...), "kind": "levels", "levels": [l_0, ..., l_(m-1)]}: example i is l_i everywhere.
    {"shape": (...), "kind": "wave", "freq": a, "phase": b, "scale": c}: element k (in C order)
    is c * sin(a * k + b).
    """
    shape = tuple(spec["shape"])
    if spec["kind"] == "levels":
        levels = np.asarray(spec["levels"], dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1))
        values = np.broadcast_to(levels, shape)
    elif spec["kind"] == "wave":
        k = np.arange(int(np.prod(shape)), dtype=np.float64)
        values = (spec["scale"] * np.sin(spec["freq"] * k + spec["phase"])).reshape(shape)
    else:
        raise ValueError(f"unknown input kind {spec['kind']!r}: use 'levels' or 'wave'")
    return np.ascontiguousarray(values, dtype=np.float32)


class FixedInitializer(keras.initializers.Initializer):
    """A kernel initializer whose values depend only on the kernel's shape (not on the seed).

    kind "ones": every weight is 1 (the course's ``constant(value=1)``).
    kind "wave": weight k (in C order) is cos(0.9 k + 0.5) / sqrt(fan_in).
    ``seed`` records the seed it was created with, so the checks can see it.
    """

    def __init__(self, kind, seed=None):
        self.kind = kind
        self.seed = seed

    def __call__(self, shape, dtype=None):
        return keras.ops.convert_to_tensor(self.values(shape), dtype=dtype or "float32")

    def values(self, shape):
        shape = tuple(int(d) for d in shape)
        if self.kind == "ones":
            return np.ones(shape, dtype=np.float32)
        if self.kind == "wave":
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            k = np.arange(int(np.prod(shape)), dtype=np.float64)
            return (np.cos(0.9 * k + 0.5) / np.sqrt(fan_in)).reshape(shape).astype(np.float32)
        raise ValueError(f"unknown initializer kind {self.kind!r}: use 'ones' or 'wave'")

    def get_config(self):
        return {"kind": self.kind, "seed": self.seed}


def fixed_initializer(kind):
    """A stand-in for an initializer class such as ``random_uniform``: the block calls it as
    ``initializer(seed=0)`` and gets a FixedInitializer of this kind."""

    def initializer(*args, seed=None, **kwargs):
        if args and isinstance(args[0], (tuple, list)):
            # Keras is calling the class itself with a kernel shape.
            raise CheckFailed(
                "a Conv2D got kernel_initializer=initializer (the class itself): "
                "call it to get an initializer object: kernel_initializer=initializer(seed=0)")
        if args:
            seed = args[0]
        return FixedInitializer(kind, seed)

    initializer.__name__ = f"fixed_initializer_{kind}"
    return initializer


# --------------------------------------------------------------------------------------
# Calling the learner's function
# --------------------------------------------------------------------------------------

def _format_args(kwargs):
    """Keyword arguments as text; callables (initializers) by their name."""
    parts = []
    for name, value in kwargs.items():
        if callable(value):
            text = getattr(value, "__name__", "initializer")
        elif name == "filters":
            text = repr(list(value))
        else:
            text = repr(value)
        parts.append(f"{name}={text}")
    return ", ".join(parts)


# Frames from these files are the checks' own or the libraries' internals, never the learner's code.
_NOT_LEARNER_CODE = tuple(os.path.dirname(module.__file__) + os.sep for module in (keras, np)) + (
    os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), "public_tests.py"))
try:
    import tensorflow
    _NOT_LEARNER_CODE += (os.path.dirname(tensorflow.__file__) + os.sep,)
except ImportError:  # another Keras backend: nothing to hide
    pass


def learner_frames(error):
    """The traceback entries of an exception that lie in the learner's code (notebook cells, their
    own modules): the frames of these checks and of Keras, TensorFlow and NumPy are left out."""
    frames = traceback.extract_tb(error.__traceback__)
    return [frame for frame in frames if not os.path.abspath(frame.filename).startswith(_NOT_LEARNER_CODE)]


def placeholder_lines(target):
    """Line numbers (in the learner's cell or file) of the assignments of ``None`` left in the
    function's source, such as the course template's ``X = None`` placeholders; [] when there are
    none or the source cannot be read (a function rebuilt elsewhere, e.g. by a grader)."""
    try:
        lines, start = inspect.getsourcelines(target)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return []
    return [start + node.lineno - 1 for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is None
            and all(isinstance(name, ast.Name) for name in node.targets)]


def _placeholder_problem(target, name):
    """The sentence for placeholder lines left in the learner's function, or ""."""
    found = placeholder_lines(target)
    if not found:
        return ""
    file = inspect.getsourcefile(target) or ""
    where = "its cell" if file.startswith("<") or "ipykernel" in file else os.path.basename(file)
    plural = "s" if len(found) != 1 else ""
    return (f"{name} still holds {len(found)} placeholder line{plural} `... = None` (line{plural} "
            f"{', '.join(map(str, found))} of {where}): replace each `None` with the layer call that the "
            "comment above it describes.")


# The signatures of the course's template: a learner's function must keep these defaults (a check
# calls it with every argument, so a changed default passes unseen otherwise, and ResNet50 or a block
# called without that argument would then build something else).
TEMPLATE_DEFAULTS = {
    "identity_block": {"training": True, "initializer": keras.initializers.RandomUniform},
    "convolutional_block": {"s": 2, "training": True, "initializer": keras.initializers.GlorotUniform},
    "ResNet50": {"input_shape": (64, 64, 3), "classes": 6},
}
TEMPLATE_SIGNATURES = {
    "identity_block": "identity_block(X, f, filters, training=True, initializer=random_uniform)",
    "convolutional_block": "convolutional_block(X, f, filters, s=2, training=True, initializer=glorot_uniform)",
    "ResNet50": "ResNet50(input_shape=(64, 64, 3), classes=6)",
}


def _same_default(got, expected):
    if isinstance(expected, type):
        return got is expected
    try:
        return type(got) is type(expected) and got == expected
    except Exception:  # noqa: BLE001  (a default whose == raises is not the template's)
        return False


def declared_default_problem(exercise, target):
    """The sentence for a default of the learner's function that differs from the template's, or "".
    Reads the signature of a plain Python function only: a stand-in (a grader replaying recorded
    results) declares nothing, and is not checked here."""
    if not inspect.isfunction(target):
        return ""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return ""
    for name, expected in TEMPLATE_DEFAULTS[exercise].items():
        parameter = parameters.get(name)
        if parameter is None:
            continue  # a renamed or missing argument fails the calls, with Python's own message
        shown = getattr(expected, "__name__", None) and {"RandomUniform": "random_uniform",
                                                         "GlorotUniform": "glorot_uniform"}[expected.__name__]
        want = f"{name}={shown or repr(expected)}"
        if parameter.default is inspect.Parameter.empty:
            got = f"{name} without a default"
        elif not _same_default(parameter.default, expected):
            value = parameter.default
            got = f"{name}={getattr(value, '__name__', None) or repr(value)}"
        else:
            continue
        return (f"{exercise} declares {got}; the template's is {want}: keep the signature "
                f"def {TEMPLATE_SIGNATURES[exercise]}:")
    return ""


def _check_target(exercise, target):
    """Fails with one line for a function that is missing (its cell not run: the check cells pass
    globals().get(name))."""
    if target is None:
        raise CheckFailed(f"{exercise} is not defined: run the cell that defines it (def {exercise}(...)) "
                          "first, then this one.")


def _check_declared_defaults(exercise, target):
    """Fails with one line when the declared defaults are not the template's. Run last, once the
    function builds the right thing: a stub or a wrong layer is the message a learner needs first."""
    problem = declared_default_problem(exercise, target)
    if problem:
        raise CheckFailed(problem)


def _call(context, target, *args, hint="", **kwargs):
    """Calls the learner's function; turns an exception or a None result into a CheckFailed."""
    name = getattr(target, "__name__", "your function")
    call_text = f"{name}({'X, ' if args else ''}{_format_args(kwargs)})"
    try:
        result = target(*args, **kwargs)
    except CheckFailed as failure:  # raised by a fixed initializer misused inside the learner's code
        if failure.args[0].startswith(context):
            raise
        raise CheckFailed(f"{context}: {failure.args[0]}") from None
    except NotImplementedError:  # the stub: the learner has not written the function yet
        raise CheckFailed(f"{name} is not implemented yet: write your code where it says "
                          "# YOUR CODE HERE (and delete the `raise NotImplementedError()` line).") from None
    except Exception as error:  # the learner's code may raise anything: report it plainly
        text = str(error).strip()
        if len(text) > 600:
            text = text[:600] + " ..."
        advice, placeholders = "", _placeholder_problem(target, name)
        if placeholders:
            advice = f"\n  Hint: {placeholders}"
        elif ("incompatible shapes" in text or "Cannot broadcast" in text) and hint:
            advice = f"\n  Hint: {hint}"
        elif "NoneType" in text:
            advice = "\n  Hint: is a `None` placeholder left in your code? Replace each one with your code."
        raise CheckFailed(f"{context}: calling {call_text} raised {type(error).__name__}: {text}{advice}",
                          learner_frames(error)) from error
    if result is None and _placeholder_problem(target, name):
        _fail(context, f"{call_text} returned None: {_placeholder_problem(target, name)}")
    if result is None:
        _fail(context, f"{call_text} returned None: end the function with `return X`"
                       + (" (the keras.Model)" if not args else ""))
    return result


# --------------------------------------------------------------------------------------
# Reading the layer graph that the learner's function built
# --------------------------------------------------------------------------------------

class Step:
    """One layer call in the traced graph: its operation (a layer or a keras.ops function), the
    call's keyword arguments, the output shape without the batch axis and, for a merge (e.g. Add),
    the ``branches`` (lists of Steps from the fork to the merge)."""

    def __init__(self, op, kwargs, shape, branches=None):
        self.op, self.kwargs, self.shape, self.branches = op, kwargs, shape, branches


def _keras_tensors(value):
    """The serialized symbolic tensors inside a call's serialized arguments, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]]
        return [t for v in value.values() for t in _keras_tensors(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _keras_tensors(v)]
    return []


def _tensor_keys(layers):
    """The (layer, call, output) keys of a config's "input_layers" / "output_layers" (Keras writes
    a single one unnested)."""
    return [tuple(layers)] if layers and isinstance(layers[0], str) else [tuple(key) for key in layers]


def _layer_graph(context, model):
    """The model's LayerGraph; a CheckFailed if Keras cannot describe the model (e.g. a layer of the
    learner's own class without get_config) or it has more than MAX_LAYER_CALLS layer calls."""
    try:
        graph = LayerGraph(model)
    except Exception as error:  # noqa: BLE001  (whatever get_config of the learner's layers raises)
        _fail(context, f"the checks cannot read the layers you built: keras.Model.get_config() raised "
                       f"{type(error).__name__}: {str(error).strip()[:300]}. Build it from the Keras layers "
                       "the notebook imports.")
    if len(graph.calls) > MAX_LAYER_CALLS:
        _fail(context, f"it is made of {len(graph.calls):,} layer calls, more than the {MAX_LAYER_CALLS:,} layer "
                       "calls the checks read (a residual block has about 10, ResNet50 about 180): build it "
                       "from the layers the exercise describes.")
    return graph


class LayerGraph:
    """Every layer call of a functional model, read from ``model.get_config()``: Keras's public,
    saved description of the graph, which names each call's input tensors as (layer, call, output)
    and keeps its keyword arguments (e.g. ``training``). Unlike ``layer.input`` / ``layer.output``
    it also sees the second call of a layer used twice (e.g. one ReLU() applied after each BN).

    Walking it costs time linear in the number of layer calls (times a bit set of that many bits per
    merge): each tensor's ancestors are computed once, as a bit set, and a trace visits each tensor once."""

    def __init__(self, model):
        config = model.get_config()
        ops = {op.name: op for op in model.operations}
        self.calls = {}   # tensor key (layer name, call index, output index) -> (op, input keys, kwargs)
        self.shapes = {}  # tensor key -> shape without the batch axis
        for layer in config["layers"]:
            for index, node in enumerate(layer["inbound_nodes"]):
                inputs = []
                for tensor in _keras_tensors(node.get("args", [])):
                    key = tuple(tensor["keras_history"])
                    inputs.append(key)
                    self.shapes[key] = tuple(tensor["shape"][1:])
                if inputs:
                    self.calls[(layer["name"], index, 0)] = (ops[layer["name"]], inputs, node.get("kwargs", {}))
        (self.input,) = _tensor_keys(config["input_layers"])
        (self.output,) = _tensor_keys(config["output_layers"])
        self.shapes[self.output] = tuple(model.outputs[0].shape[1:])
        self._bits = None

    def _topological(self):
        """Every tensor key the output is computed from, each after its inputs (no recursion: a deep
        chain of layers must not reach Python's recursion limit)."""
        order, done = [], set()
        for root in [self.output, *self.calls]:
            self._visit_inputs_first(root, order, done)
        return order

    def _visit_inputs_first(self, root, order, done):
        stack = [(root, False)]
        while stack:
            key, expanded = stack.pop()
            if key in done:
                continue
            if expanded:
                done.add(key)
                order.append(key)
                continue
            stack.append((key, True))
            stack.extend((k, False) for k in reversed(self.calls[key][1] if key in self.calls else ()) if k not in done)

    def _ancestor_bits(self):
        """{key: int} bit sets of each key's ancestors (itself included) and the key of each bit. Bits
        are numbered by ancestor count, so a set's highest bit is its key with the most ancestors (a
        proper ancestor always has fewer): the fork of a merge is one bit operation away."""
        if self._bits is None:
            order = self._topological()

            def bit_sets(position):
                sets = {}
                for key in order:
                    value = 1 << position[key]
                    for k in (self.calls[key][1] if key in self.calls else ()):
                        value |= sets[k]
                    sets[key] = value
                return sets

            first = bit_sets({key: i for i, key in enumerate(order)})
            ranked = sorted(range(len(order)), key=lambda i: (bin(first[order[i]]).count("1"), i))
            keys = [order[i] for i in ranked]
            self._bits = (bit_sets({key: i for i, key in enumerate(keys)}), keys)
        return self._bits

    def ancestors(self, key):
        """The tensor and every tensor it was computed from."""
        bits, keys = self._ancestor_bits()
        value = bits.get(key, 0)
        return {keys[i] for i in range(value.bit_length()) if value >> i & 1} or {key}

    def _fork(self, inputs):
        """The common ancestor of a merge's inputs closest to the merge (the one with most ancestors), or None."""
        bits, keys = self._ancestor_bits()
        common = bits.get(inputs[0], 0)
        for key in inputs[1:]:
            common &= bits.get(key, 0)
        return keys[common.bit_length() - 1] if common else None

    def trace(self, key=None, stop=None):
        """The Steps from ``stop`` (exclusive; default the input) to ``key`` (default the output),
        merges holding their branches (the Steps from the merge's fork to each of its inputs).

        Each tensor is visited at most once: the outer path is walked first, then each merge's branches
        (breadth first); a branch that reaches a tensor already walked ends there. In a block or a
        ResNet50, whose branches never share a layer, that changes nothing; in a graph whose merges
        share their branches (a lattice of Adds) it keeps the walk linear instead of exponential."""
        visited = set()
        top = []
        pending = [(key or self.output, stop or self.input, top)]
        while pending:
            key, stop, steps = pending.pop(0)
            while key != stop and key in self.calls and key not in visited:
                visited.add(key)
                op, inputs, kwargs = self.calls[key]
                if len(inputs) == 1:
                    steps.append(Step(op, kwargs, self.shapes[key]))
                    key = inputs[0]
                    continue
                fork = self._fork(inputs)
                if fork is None:
                    visited.discard(key)
                    break
                branches = [[] for _ in inputs]
                steps.append(Step(op, kwargs, self.shapes[key], branches))
                pending.extend((k, fork, branch) for k, branch in zip(inputs, branches))
                key = fork
        self._reverse(top)
        return top

    @staticmethod
    def _reverse(steps):
        """Puts the walked Steps (output first) in the model's order, branches too (no recursion)."""
        stack = [steps]
        while stack:
            current = stack.pop()
            current.reverse()
            stack.extend(branch for step in current if step.branches is not None for branch in step.branches)


def _activation_name(function):
    return getattr(function, "__name__", str(function))


def _padding(op, shape, window, strides, dilation=(1, 1)):
    """The layer's padding as the checks describe it: 'same' reads 'valid' where it pads nothing, so
    that both compute the same thing: always for a 1x1 window, which never reaches past its own pixel;
    otherwise when (out - 1) * stride + (window - 1) * dilation + 1 <= in along both axes (e.g. a 2x2
    pool with stride 2 on a 2x2 map), read from the layer's input (its first call)."""
    if op.padding != "same" or all(size == 1 for size in window):
        return "valid" if op.padding == "same" else op.padding
    try:
        sizes = tuple(op.input.shape[1:3])
    except Exception:  # noqa: BLE001  (no recorded call: described as written)
        return op.padding
    if len(shape) < 2 or None in sizes:
        return op.padding
    for size, out, k, s, d in zip(sizes, shape[:2], window, strides, dilation):
        if (out - 1) * s + (k - 1) * d + 1 > size:
            return op.padding
    return "valid"


def describe(step):
    """A short tuple (type, output shape without the batch axis, settings...) for one Step."""
    op = step.op
    kind = type(op).__name__
    shape = step.shape
    is_layer = isinstance(op, keras.layers.Layer)
    if kind == "Conv2D":
        kernel_size = tuple(op.kernel_size)
        padding = _padding(op, shape, kernel_size, tuple(op.strides), tuple(op.dilation_rate))
        return ("Conv2D", shape, op.filters, kernel_size, tuple(op.strides), padding,
                _activation_name(op.activation))
    if kind == "BatchNormalization":
        return ("BatchNormalization", shape, op.axis % (len(shape) + 1))
    if kind == "Activation":
        return ("Activation", shape, _activation_name(op.activation))
    if kind in ("ReLU", "Relu"):
        plain = not is_layer or (op.max_value is None and not op.negative_slope and not op.threshold)
        return ("Activation", shape, "relu") if plain else ("ReLU", shape)
    if kind == "Softmax" and is_layer and op.axis in (-1, len(shape)):
        return ("Activation", shape, "softmax")
    if kind == "ZeroPadding2D":
        return ("ZeroPadding2D", shape, tuple(tuple(p) for p in op.padding))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return (kind, shape, tuple(op.pool_size), tuple(op.strides),
                _padding(op, shape, tuple(op.pool_size), tuple(op.strides)))
    if kind == "Dense":
        return ("Dense", shape, op.units, _activation_name(op.activation))
    return (kind, shape)


_FIELDS = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation"),
    "BatchNormalization": ("axis",),
    "Activation": ("activation",),
    "ZeroPadding2D": ("padding",),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "AveragePooling2D": ("pool_size", "strides", "padding"),
    "Dense": ("units", "activation"),
    "IdentityBlock": ("filters", "f"),
    "ConvolutionalBlock": ("filters", "f", "s"),
}

# --------------------------------------------------------------------------------------
# Settings that change what a layer computes (beyond the structure that describe() gives)
# --------------------------------------------------------------------------------------

# The keyword arguments (Keras config keys) of each layer class that change its outputs, in the order
# they are reported. Not listed, because one forward pass does not depend on them: momentum (how the
# moving statistics are updated), regularizers, constraints, names; nor Flatten's data_format, which
# changes nothing on the 1x1 maps the course flattens. `dtype` (the precision) is read for every layer.
_SETTINGS = {
    "Conv2D": ("data_format", "dilation_rate", "groups", "use_bias", "kernel_initializer", "bias_initializer"),
    "BatchNormalization": ("epsilon", "center", "scale", "trainable", "gamma_initializer", "beta_initializer",
                           "moving_mean_initializer", "moving_variance_initializer", "renorm", "renorm_clipping"),
    "Dense": ("use_bias", "kernel_initializer", "bias_initializer"),
    "MaxPooling2D": ("data_format",), "AveragePooling2D": ("data_format",),
    "ZeroPadding2D": ("data_format",),
}


def _setting_text(value):
    """A config value as a short, comparable literal: an initializer as Keras-like text
    (e.g. "GlorotUniform(seed=0)"), a dtype policy as its name, lists as tuples."""
    if isinstance(value, dict) and "class_name" in value:
        config = value.get("config")
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy") and isinstance(config, dict):
            return str(config.get("name"))
        if isinstance(config, dict):  # arguments left at None are left out: newer Keras versions add some
            args = ", ".join(f"{key}={_setting_text(config[key])!r}" for key in sorted(config)
                             if config[key] is not None)
            return f"{value['class_name']}({args})"
        return str(value["class_name"])
    if isinstance(value, (list, tuple)):
        return tuple(_setting_text(v) for v in value)
    return value


def layer_settings(op, own_weights):
    """{setting: value} of one layer: the settings of _SETTINGS that the Keras version in use knows
    (and "dtype"), as comparable literals.

    ``own_weights``: True when the layer computes from the weights its initializers make (the block
    checks): a bias (or BatchNormalization's beta) that starts at zero is then the same as none, and a
    gamma that starts at one the same as none (``use_bias``, ``center`` and ``scale`` are left out; the
    initializer of a weight left out reads Zeros() or Ones()); the kernel initializer is checked on
    its own (the block's ``initializer`` argument). False when the checks set every weight themselves
    (ResNet50's): ``use_bias`` and every initializer are described as written.
    A 1x1 kernel reaches no further when dilated: its ``dilation_rate`` reads (1, 1)."""
    if not isinstance(op, keras.layers.Layer):
        return {}
    try:
        config = op.get_config()
    except Exception:  # noqa: BLE001  (a layer of the learner's own class: described by its type only)
        return {}
    kind = type(op).__name__
    names = tuple(name for name in _SETTINGS.get(kind, ()) + ("dtype",) if name in config)
    found = {name: _setting_text(config[name]) for name in names}
    if "dilation_rate" in found and tuple(config.get("kernel_size", ())) == (1, 1):
        found["dilation_rate"] = (1, 1)
    if own_weights:
        found.pop("kernel_initializer", None)
        # A weight left out computes what a weight that starts at zero (bias, beta) or one (gamma) does.
        for switch, name, value in (("use_bias", "bias_initializer", "Zeros()"),
                                    ("center", "beta_initializer", "Zeros()"),
                                    ("scale", "gamma_initializer", "Ones()")):
            if found.pop(switch, True) is False and name in found:
                found[name] = value
    return found


def settings_table(layers, own_weights):
    """{layer class: {setting: value}} of Steps whose layers of one class share their settings (the
    reference's, for the expected values); ValueError when two of them differ."""
    table = {}
    for step in layers:
        kind = type(step.op).__name__
        found = layer_settings(step.op, own_weights)
        if table.setdefault(kind, found) != found:
            raise ValueError(f"the {kind} layers differ in their settings: {table[kind]} and {found}")
    return table


def _compare_settings(context, parts, expected, own_weights):
    """Fails at the first layer of ``parts`` ([(where, Steps)], e.g. ("main path", [...])) whose
    settings differ from ``expected`` ({layer class: {setting: value}}). A setting that the Keras
    version in use does not know (absent from a config) is taken to be at its default, as written."""
    for where, steps in parts:
        for position, step in enumerate(steps, start=1):
            kind = type(step.op).__name__
            want = expected.get(kind)
            if not want:
                continue
            have = layer_settings(step.op, own_weights)
            diffs = [(name, value, have[name]) for name, value in want.items()
                     if name in have and _setting_literal(have[name]) != _setting_literal(value)]
            if diffs:
                name, value, got = diffs[0]
                _fail(context, f"{where} layer {position} ({kind}, named '{step.op.name}'): "
                               f"{name}={_shown(got)}, expected {name}={_shown(value)}")


def _setting_literal(value):
    """A setting as compared: tuples and lists alike (the expected values are read from literals)."""
    return tuple(_setting_literal(v) for v in value) if isinstance(value, (list, tuple)) else value


def _shown(value):
    text = str(value) if isinstance(value, str) and "(" in value else repr(_setting_literal(value))
    return text if len(text) <= 100 else text[:100] + " ..."


_BLOCK_NAMES = {"IdentityBlock": "identity block", "ConvolutionalBlock": "convolutional block"}


def _label(item):
    """Short name of a described layer for the layer-sequence overview."""
    if item[0] == "Activation":
        return f"Activation('{item[2]}')"
    return _BLOCK_NAMES.get(item[0], item[0])


def _format_item(item):
    """A described layer in Keras-like notation, e.g. Conv2D(filters=4, kernel_size=(1, 1), ...)."""
    kind = item[0]
    if kind == "Activation":
        return _label(item)
    if kind in _BLOCK_NAMES:
        settings = dict(zip(_FIELDS[kind], item[2:]))
        settings["filters"] = list(settings["filters"])
        return f"{_BLOCK_NAMES[kind]}({_format_args(settings)})"
    fields = _FIELDS.get(kind, ())
    parts = [f"{name}={value!r}" for name, value in zip(fields, item[2:])
             if not (name == "activation" and value == "linear")]
    return f"{kind}({', '.join(parts)})"


def _compare_items(context, where, expected, got, names=None, hints=None, unit="layer", unapplied=()):
    """Fails with the first difference between two lists of described layers. ``unapplied``: the
    described layers the learner built but whose output no layer takes (see _unapplied_layers); a
    missing layer of the same kind is reported as not applied rather than missing."""
    hints = hints or {}
    expected_labels = [_label(item) for item in expected]
    got_labels = [_label(item) for item in got]
    overview = (f"\n  expected {where}: {' -> '.join(expected_labels) or '(nothing)'}"
                f"\n  got {where}:      {' -> '.join(got_labels) or '(nothing)'}")
    if expected_labels != got_labels:
        matcher = difflib.SequenceMatcher(a=expected_labels, b=got_labels, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            if tag == "delete":
                if j1 > 0:
                    place = f"after {where} {unit} {j1} ({got_labels[j1 - 1]})"
                else:
                    place = f"before {where} {unit} 1 ({got_labels[0]})" if got_labels else f"in {where}"
                problem = f"missing {_format_item(expected[i1])} {place}"
                loose = next((item for item in unapplied if _label(item) == expected_labels[i1]), None)
                if loose is not None:
                    following = (f"{where} {unit} {j1 + 1} ({got_labels[j1]}) takes the tensor before it"
                                 if j1 < len(got_labels) else "the output is the tensor before it")
                    problem = (f"{_format_item(loose)} in {where} is not applied: the next layer does not take "
                               f"its output; {following}. Write X = {loose[0]}(...)(X) and apply the next "
                               "layer to X.")
            elif tag == "insert":
                problem = f"extra {unit}: {where} {unit} {j1 + 1} is {_format_item(got[j1])}, which should not be there"
            else:
                problem = (f"{where} {unit} {j1 + 1} is {_format_item(got[j1])}, "
                           f"expected {_format_item(expected[i1])}")
            _fail(context, problem + overview)
    for index, (want, have) in enumerate(zip(expected, got)):
        if want == have:
            continue
        kind = want[0]
        name = f", named '{names[index]}'" if names else ""
        where_layer = f"{where} {unit} {index + 1} ({_BLOCK_NAMES.get(kind, kind)}{name})"
        diffs = [(field, w, h) for field, w, h in zip(_FIELDS.get(kind, ()), want[2:], have[2:]) if w != h]
        parts = [f"{field}={h!r}, expected {field}={w!r}" for field, w, h in diffs]
        if want[1] != have[1]:
            parts.append(f"output shape {have[1]}, expected {want[1]}")
        advice = [hints[(kind, field)] for field, _, _ in diffs if (kind, field) in hints]
        advice = f"\n  Hint: {advice[0]}" if advice else ""
        _fail(context, f"{where_layer}: {'; '.join(parts)}{advice}")

# --------------------------------------------------------------------------------------
# The residual blocks
# --------------------------------------------------------------------------------------

_BLOCK_HINTS = {
    ("Conv2D", "padding"): "the f x f CONV uses padding='same' (it keeps height and width).",
    ("Conv2D", "strides"): "in the convolutional block the stride s goes on the first 1x1 CONV of the "
                           "main path and on the shortcut CONV; the f x f CONV and the third CONV have stride 1.",
    ("Conv2D", "filters"): "F1, F2, F3 = filters: the three CONVs of the main path have F1, F2 and F3 "
                           "filters, in that order (the shortcut CONV has F3).",
    ("Conv2D", "kernel_size"): "the middle CONV of the main path is f x f, the other CONVs are 1x1.",
    ("Conv2D", "activation"): "the CONVs have no activation of their own: the ReLU is a separate "
                              "Activation('relu') after the BatchNormalization.",
    ("BatchNormalization", "axis"): "normalize over the channels: BatchNormalization(axis=3).",
}

_ADD_SHAPES_HINT = {
    "identity_block": "Add got tensors of different shapes: the main path must end with F3 = filters[2] "
                      "channels and keep height and width (stride 1, padding='same' on the f x f CONV); "
                      "the shortcut is X itself.",
    "convolutional_block": "Add got tensors of different shapes: the shortcut must be projected with "
                           "Conv2D(F3, (1, 1), strides=(s, s)) then BatchNormalization, and the stride s "
                           "goes on the first CONV of the main path only.",
}

_MISSING = object()


def _block_context(exercise, case):
    args = dict(case["args"])
    return f"{exercise}(X of shape {tuple(case['input']['shape'])}, {_format_args(args)})"


def _block_kwargs(case, training, initializer):
    return dict(case["args"], training=training, initializer=initializer)


_NO_PROJECTION = ("the shortcut is X itself: Add's inputs do not include the projection. Apply "
                  "Conv2D(F3, (1, 1), strides=(s, s)) then BatchNormalization to X_shortcut before the Add.")

def _layers_called_on(tensor):
    """The chains of single-input layers that start at a symbolic tensor, one per layer called on it.

    Used only to explain an Add that failed on tensors of different shapes: there is no output
    yet, so no Model and no config to read; the layers built so far are found only through what
    Keras records on the tensors (private attributes). If a Keras version lacks them, this returns
    [] and the learner gets the general hint. tests/test_old_stack.py pins it on the oldest Keras.
    """
    def consumers(t):
        history = getattr(t, "_keras_history", None)
        operation = getattr(history, "operation", None)
        return [node for node in getattr(operation, "_outbound_nodes", [])
                if any(x is t for x in getattr(node, "input_tensors", []))]

    paths = []
    for node in consumers(tensor):
        path = []
        while node is not None and len(node.input_tensors) == 1:
            output = node.outputs[0]
            path.append(Step(node.operation, {}, tuple(output.shape[1:])))
            following = consumers(output)
            node = following[0] if len(following) == 1 else None
        paths.append(path)
    return paths


def _unapplied_layers(operations):
    """Described layers built on an output of one of ``operations`` (a model's) whose own output
    no operation among them takes: a layer written but not applied, e.g. ``AveragePooling2D((2, 2))(X)``
    without ``X =``. Only what Keras records on the tensors (private attributes, as in
    _layers_called_on) shows them: [] where a Keras version lacks those, or for a model rebuilt from
    its config (which holds the model's own layers only); the checks then say "missing"."""
    inside = {id(op) for op in operations}
    found = []
    for op in operations:
        for node in getattr(op, "_outbound_nodes", None) or []:
            other, outputs = getattr(node, "operation", None), getattr(node, "outputs", None) or []
            if other is None or id(other) in inside or not outputs:
                continue
            try:
                found.append(describe(Step(other, {}, tuple(outputs[0].shape[1:]))))
            except Exception:  # noqa: BLE001  (a layer of the learner's own class: nothing to say about it)
                continue
    return found


def _diagnose_failed_add(exercise, context, X, expected, failure):
    """Add failed because its inputs have different shapes: the layers built before it are still
    recorded on the Input, so find the one that made the shapes differ (raises CheckFailed)."""
    paths = sorted(_layers_called_on(X), key=len)
    if not paths:
        return
    error = failure.args[0].split(" raised ", 1)[-1].splitlines()[0]
    try:
        main = paths[-1]
        _compare_items(context, "main path", expected["main"], [describe(s) for s in main],
                       [s.op.name for s in main], _BLOCK_HINTS)
        if exercise == "convolutional_block":
            if len(paths) == 1:
                _fail(context, _NO_PROJECTION)
            _compare_items(context, "shortcut path", expected["shortcut"], [describe(s) for s in paths[0]],
                           [s.op.name for s in paths[0]], _BLOCK_HINTS)
    except CheckFailed as specific:
        raise CheckFailed(f"{specific.args[0]}\n  (this is why Add raised {error})") from failure


def _build_block(exercise, target, case, context):
    """Builds the block on a symbolic Input; returns the traced Steps and the output."""
    X = keras.Input(tuple(case["input"]["shape"][1:]))
    kind = case["expected"]["outputs"][0]["initializer"] if case.get("expected") else "wave"
    try:
        Y = _call(context, target, X, hint=_ADD_SHAPES_HINT[exercise],
                  **_block_kwargs(case, False, fixed_initializer(kind)))
    except CheckFailed as failure:
        if ("incompatible shapes" in failure.args[0] or "Cannot broadcast" in failure.args[0]) and case.get("expected"):
            _diagnose_failed_add(exercise, context, X, case["expected"], failure)
        raise
    if not isinstance(Y, keras.KerasTensor):
        _fail(context, f"on a symbolic keras.Input the block returned a {type(Y).__name__}, expected the "
                       "output tensor of the last layer (keep using Keras layers, not numpy).")
    try:
        model = keras.Model(X, Y)
    except ValueError:  # Keras found no path from X to Y
        _fail(context, "the output is not computed from the input X: start the block from its argument X.")
    return _layer_graph(context, model).trace(), Y, _unapplied_layers(model.operations)


def _split_block(context, steps, projection, unapplied=()):
    """(main path, shortcut path, layers after the Add) of a traced block; fails on wrong wiring.
    ``unapplied``: described layers built but not applied (see _unapplied_layers)."""
    merges = [i for i, step in enumerate(steps) if step.branches is not None]
    layers = " -> ".join(_label(describe(step)) for step in steps)
    unapplied_labels = [_label(item) for item in unapplied]
    if not merges and "Add" in unapplied_labels:
        _fail(context, "Add is not applied: the next layer does not take its output (the ReLU is applied to "
                       "the main path). Assign it, X = Add()([X, X_shortcut]), then apply the ReLU to X."
                       f"\n  got: {layers}")
    if not merges:
        _fail(context, "there is no Add: the shortcut is missing. Add the shortcut to the main path "
                       f"with Add()([X, X_shortcut]) then apply the ReLU.\n  got: {layers}")
    if len(merges) > 1:
        _fail(context, f"found {len(merges)} merge layers (Add); a block has exactly one.")
    index = merges[0]
    merge = steps[index]
    if type(merge.op).__name__ != "Add":
        _fail(context, f"the two paths are merged with {type(merge.op).__name__}; use Add().")
    if len(merge.branches) != 2:
        _fail(context, f"Add has {len(merge.branches)} inputs; it adds exactly two: the main path and the shortcut.")
    if index > 0:
        first = describe(steps[0])
        _fail(context, "Add's inputs do not include the block input X: the shortcut starts after "
                       f"{_format_item(first)} instead of at the block input. Set X_shortcut = X "
                       "before the first layer and add X_shortcut"
                       + (" (through the projection CONV and BatchNormalization)" if projection else "") + ".")
    branches = sorted(merge.branches, key=len)
    shortcut, main = branches
    if not main:
        _fail(context, "both inputs of Add are the block input X: add the main path's output to the shortcut.")
    if main[-1:] and describe(main[-1])[0] == "Activation":
        _fail(context, "ReLU before the Add: the main path ends with "
                       f"{_format_item(describe(main[-1]))}. The third component ends with "
                       "BatchNormalization; the ReLU comes after the Add.")
    if not projection and shortcut:
        _fail(context, "Add's inputs do not include the block input X: the identity block adds X itself "
                       "(X_shortcut = X), but the shortcut goes through "
                       f"{' -> '.join(_label(describe(s)) for s in shortcut)}.")
    if projection and not shortcut:
        _fail(context, _NO_PROJECTION)
    after = steps[index + 1:]
    if not after and "Activation('relu')" in unapplied_labels:
        _fail(context, "Activation('relu') after the Add is not applied: the block returns the Add's output, "
                       "not the ReLU's. Assign it, X = Activation('relu')(X), before `return X`.")
    if not after:
        _fail(context, "missing ReLU after the Add: the block returns the Add's output; "
                       "apply Activation('relu') to it.")
    return main, shortcut, after


def block_structure(exercise, target, case, context=None):
    """The described main path, shortcut path and after-Add layers of a block (for expected values)."""
    context = context or _block_context(exercise, case)
    steps, _, unapplied = _build_block(exercise, target, case, context)
    main, shortcut, after = _split_block(context, steps, projection=exercise == "convolutional_block",
                                         unapplied=unapplied)
    return {"main": [describe(s) for s in main], "shortcut": [describe(s) for s in shortcut],
            "after_add": [describe(s) for s in after],
            "settings": settings_table(main + shortcut + after, own_weights=True)}, (main, shortcut, after)


def _check_kernels_and_training(context, paths):
    """Every CONV uses the block's initializer(seed=0); every BatchNormalization gets training."""
    for where, steps in paths:
        for position, step in enumerate(steps, start=1):
            kind = type(step.op).__name__
            at = f"{where} layer {position} ({kind}, named '{step.op.name}')"
            if kind == "Conv2D":
                init = step.op.kernel_initializer
                if not isinstance(init, FixedInitializer):
                    _fail(context, f"{at} was not created with the block's initializer (its kernel_initializer "
                                   f"is {type(init).__name__}): use kernel_initializer=initializer(seed=0).")
                if init.seed != 0:
                    _fail(context, f"{at} was created with initializer(seed={init.seed!r}): "
                                   "use kernel_initializer=initializer(seed=0).")
            if kind == "BatchNormalization":
                training = step.kwargs.get("training", _MISSING)
                if training is _MISSING:
                    _fail(context, f"the `training` flag is ignored: {at} is called without training=training "
                                   "(so with training=True the block gives the inference outputs). Write "
                                   "BatchNormalization(axis=3)(X, training=training).")
                if training is not False:
                    _fail(context, f"{at} is called with training={training!r} although the block was called "
                                   "with training=False: pass the block's flag on, (X, training=training).")


def output_summary(output):
    """Per-(example, channel) mean and standard deviation over the positions, and one weighted sum
    (the probe) that changes when values move between positions."""
    out = np.asarray(output, dtype=np.float64)
    weights = np.cos(0.61 * np.arange(out.size) + 0.2).reshape(out.shape)
    return {"mean": out.mean(axis=(1, 2)), "std": out.std(axis=(1, 2)),
            "probe": float((out * weights).mean())}


def summary_difference(got, expected):
    """None when the summaries agree, else a sentence naming the first difference."""
    for key, label in (("mean", "mean"), ("std", "standard deviation")):
        have, want = np.asarray(got[key], dtype=np.float64), np.asarray(expected[key], dtype=np.float64)
        bad = ~np.isclose(have, want, rtol=RTOL, atol=ATOL)
        if bad.any():
            example, channel = (int(i) for i in np.argwhere(bad)[0])
            return (f"the {label} over positions of example {example}, channel {channel} is "
                    f"{have[example, channel]:.6g}, expected {want[example, channel]:.6g}")
    if not np.isclose(got["probe"], expected["probe"], rtol=RTOL, atol=ATOL):
        return (f"the values are at the wrong positions (weighted sum {got['probe']:.6g}, "
                f"expected {expected['probe']:.6g})")
    return None


def run_block(exercise, target, case, initializer, training, context=None):
    """Calls the block eagerly on the case's input; returns the output as a numpy array."""
    context = context or _block_context(exercise, case)
    X = keras.ops.convert_to_tensor(make_input(case["input"]))
    Y = _call(context, target, X, hint=_ADD_SHAPES_HINT[exercise],
              **_block_kwargs(case, training, fixed_initializer(initializer)))
    return np.asarray(keras.ops.convert_to_numpy(Y))


def _check_outputs(exercise, target, case, context):
    expected = case["expected"]
    records = expected["outputs"]
    for record in records:
        kind, training = record["initializer"], record["training"]
        out = run_block(exercise, target, case, kind, training, context)
        where = f"with training={training} and initializer=<fixed '{kind}' kernels>"
        if tuple(out.shape) != tuple(expected["output_shape"]):
            _fail(context, f"{where} the output shape is {tuple(out.shape)}, expected {tuple(expected['output_shape'])}.")
        summary = output_summary(out)
        problem = summary_difference(summary, record)
        if problem is None:
            continue
        twin = next((r for r in records if r["initializer"] == kind and r["training"] != training), None)
        if twin is not None and summary_difference(summary, twin) is None:
            if training:
                _fail(context, "the `training` flag is ignored: with training=True the block returns the "
                               "inference outputs (training=False). Call every BatchNormalization as "
                               "BatchNormalization(axis=3)(X, training=training).")
            _fail(context, "with training=False the block returns the training-mode outputs: do not hard-code "
                           "training=True; call BatchNormalization(axis=3)(X, training=training).")
        _fail(context, f"wrong output values {where}: {problem}. The layers and their settings are right, "
                       "so check which tensor each layer is applied to and which tensors Add adds.")


def _check_block(exercise, target, case):
    _check_target(exercise, target)
    context = _block_context(exercise, case)
    expected = case["expected"]
    steps, _, unapplied = _build_block(exercise, target, case, context)
    main, shortcut, after = _split_block(context, steps, projection=exercise == "convolutional_block",
                                         unapplied=unapplied)
    _compare_items(context, "main path", expected["main"], [describe(s) for s in main],
                   [s.op.name for s in main], _BLOCK_HINTS, unapplied=unapplied)
    _compare_items(context, "shortcut path", expected["shortcut"], [describe(s) for s in shortcut],
                   [s.op.name for s in shortcut], _BLOCK_HINTS, unapplied=unapplied)
    _compare_items(context, "after the Add", expected["after_add"], [describe(s) for s in after],
                   [s.op.name for s in after], _BLOCK_HINTS, unapplied=unapplied)
    _check_kernels_and_training(context, [("main path", main), ("shortcut path", shortcut)])
    _compare_settings(context, [("main path", main), ("shortcut path", shortcut), ("after the Add", after)],
                      expected.get("settings", {}), own_weights=True)
    _check_outputs(exercise, target, case, context)
    _check_declared_defaults(exercise, target)


def check_identity_block(target, case):
    """Checks identity_block against one case; raises CheckFailed on the first problem."""
    _check_block("identity_block", target, case)


def check_convolutional_block(target, case):
    """Checks convolutional_block against one case; raises CheckFailed on the first problem."""
    _check_block("convolutional_block", target, case)


# --------------------------------------------------------------------------------------
# ResNet50
# --------------------------------------------------------------------------------------

# The layer types of a block's main path. Which activation each Activation computes is compared with
# the block's expected layers (_compare_resnet50_blocks), which name the layer.
_BLOCK_PATTERN = ["Conv2D", "BatchNormalization", "Activation"] * 2 + ["Conv2D", "BatchNormalization"]


def _describe_residual(merge, after):
    """Describes an Add (plus the ReLU after it) as an identity or convolutional block."""
    branches = sorted(merge.branches, key=len)
    shortcut, main = branches[0], branches[-1]
    main_items = [describe(s) for s in main]
    shortcut_labels = [_label(describe(s)) for s in shortcut]
    relu_after = after is not None and describe(after)[0] == "Activation"
    shape = after.shape if relu_after else merge.shape
    if ([i[0] for i in main_items] == _BLOCK_PATTERN and relu_after and len(merge.branches) == 2
            and type(merge.op).__name__ == "Add"
            and shortcut_labels in ([], ["Conv2D", "BatchNormalization"])):
        filters = tuple(main_items[i][2] for i in (0, 3, 6))
        f = main_items[3][3][0]
        if shortcut:
            return ("ConvolutionalBlock", shape, filters, f, main_items[0][4][0])
        return ("IdentityBlock", shape, filters, f)
    longest_first = sorted(merge.branches, key=len, reverse=True)
    paths = " | ".join(" -> ".join(_label(describe(s)) for s in b) or "X" for b in longest_first)
    return ("Block", shape, f"{type(merge.op).__name__} of [{paths}]"
            + ("" if relu_after else " without a ReLU after it"))


def resnet50_items(model, context="ResNet50"):
    """The model as described items: stem layers, one item per residual block, head layers.
    Returns (items, steps) where steps[i] lists the Steps that item i covers."""
    steps = _layer_graph(context, model).trace()
    items, covered = [], []
    index = 0
    while index < len(steps):
        step = steps[index]
        if step.branches is None:
            items.append(describe(step))
            covered.append([step])
            index += 1
            continue
        after = steps[index + 1] if index + 1 < len(steps) else None
        item = _describe_residual(step, after)
        inner = [s for branch in step.branches for s in branch] + [step]
        if after is not None and describe(after)[0] == "Activation":
            inner.append(after)
            index += 1
        items.append(item)
        covered.append(inner)
        index += 1
    return _with_softmax_in_dense(items, covered)


def _with_softmax_in_dense(items, covered):
    """A linear Dense followed by a softmax computes what Dense(..., activation='softmax') does:
    describe both as the latter."""
    if (len(items) >= 2 and items[-1][0] == "Activation" and items[-1][2] == "softmax"
            and items[-2][0] == "Dense" and items[-2][3] == "linear"):
        dense = items[-2]
        items = items[:-2] + [dense[:3] + ("softmax",) + dense[4:]]
        covered = covered[:-2] + [covered[-2] + covered[-1]]
    return items, covered


def _is_block(item):
    return item[0] in ("IdentityBlock", "ConvolutionalBlock", "Block")


def _locations(items):
    """(stage, block) of each item: stem layers are (1, 0), head layers (None, 0); the blocks number
    from stage 2, a new stage starting at each convolutional block or change of filters."""
    positions = [i for i, item in enumerate(items) if _is_block(item)]
    first, last = (positions[0], positions[-1]) if positions else (len(items), -1)
    locations, stage, block, previous = [], 1, 0, None
    for i, item in enumerate(items):
        if i < first or i > last or not _is_block(item):
            locations.append((1, 0) if i < first else (None, 0) if i > last else (stage, block))
            continue
        starts = (previous is None or item[0] == "ConvolutionalBlock"
                  or (item[0] == "IdentityBlock" and previous[0] != "Block" and previous[2] != item[2]))
        stage, block = (stage + 1, 1) if starts else (stage, block + 1)
        previous = item
        locations.append((stage, block))
    return locations


def _split_stages(items):
    """(stem, stages, head, extras): extras are non-block items found between blocks."""
    locations = _locations(items)
    stem = [item for item, (stage, block) in zip(items, locations) if (stage, block) == (1, 0)]
    head = [item for item, (stage, _) in zip(items, locations) if stage is None]
    stages, extras = {}, []
    for item, (stage, block) in zip(items, locations):
        if stage is not None and stage > 1:
            if _is_block(item):
                stages.setdefault(stage, []).append(item)
            else:
                extras.append(((stage, block), item))
    return stem, [stages[k] for k in sorted(stages)], head, extras


def _stage_text(stage):
    rest = len(stage) - 1
    return f"{_format_item(stage[0])} then {rest} identity block{'s' if rest != 1 else ''}"


def _compare_stages(context, expected, got):
    for k in range(max(len(expected), len(got))):
        number = k + 2
        if k >= len(got):
            _fail(context, f"stage {number} is missing: expected {_stage_text(expected[k])}.")
        if k >= len(expected):
            _fail(context, f"extra stage {number}: {_stage_text(got[k])}; ResNet50 has stages 2 to "
                           f"{len(expected) + 1} after the first one.")
        want, have = expected[k], got[k]
        for j, block in enumerate(have, start=1):
            if block[0] == "Block":
                _fail(context, f"stage {number}, block {j} is not a valid residual block ({block[2]}): "
                               "check your blocks with identity_block_test and convolutional_block_test first.")
        if want[0][0] != have[0][0]:
            _fail(context, f"stage {number} starts with an {_BLOCK_NAMES[have[0][0]]}, expected "
                           f"{_format_item(want[0])}.")
        if len(want) != len(have):
            _fail(context, f"stage {number} has {len(have) - 1} identity blocks after its convolutional "
                           f"block, expected {len(want) - 1} (stage {number} = {_stage_text(want)}).")
        _compare_items(context, f"stage {number},", want, have, unit="block",
                       hints={("ConvolutionalBlock", "s"): "stage 2's convolutional block has s=1, "
                                                           "the later stages s=2."})


def _where(location):
    stage, block = location
    if stage is None:
        return "the head"
    return f"stage {stage}, block {block}" if block else f"stage {stage}"


def _bn_training_problem(items, covered):
    """(stage, block), layer name, value and the item (block or layer) of the first
    BatchNormalization called with a fixed training flag."""
    for location, item, steps in zip(_locations(items), items, covered):
        for step in steps:
            if type(step.op).__name__ != "BatchNormalization":
                continue
            training = step.kwargs.get("training", None)
            if training is not None:
                return location, step.op.name, training, item
    return None


def _block_call(item):
    """The learner's call of a described block, as text: e.g.
    X = identity_block(X, f=3, filters=[64, 64, 256], training=None)."""
    settings = dict(zip(_FIELDS[item[0]], item[2:]))
    name = "convolutional_block" if item[0] == "ConvolutionalBlock" else "identity_block"
    stride = f", s={settings['s']}" if "s" in settings else ""
    return f"X = {name}(X, f={settings['f']}, filters={list(settings['filters'])}{stride}, training=None)"


# When ResNet50 raises in an Add and the layers built so far cannot be read (see _diagnose_failed_stage).
_STAGE_SHAPES_HINT = ("an Add got tensors of different shapes: an identity block must output the channels it "
                      "receives (its last filter count equals its input's channels); check the filters passed to "
                      "each block against its stage's.")


def _keras_tensors_in(frame):
    return [value for value in frame.f_locals.values() if isinstance(value, keras.KerasTensor)]


def _input_of(tensor):
    """The model input a symbolic tensor was computed from, followed back through the first input
    of each layer call (private attributes, as in _layers_called_on); None if they are missing."""
    for _ in range(100_000):
        history = getattr(tensor, "_keras_history", None)
        nodes = getattr(getattr(history, "operation", None), "_inbound_nodes", None)
        if not nodes:
            return None
        inputs = getattr(nodes[history.node_index], "input_tensors", None)
        if not inputs:
            return tensor
        tensor = inputs[0]
    return None


def _without_shapes(items):
    return [(item[0], None) + tuple(item[2:]) for item in items]


def _diagnose_failed_stage(context, failure, expected):
    """ResNet50 raised in a block's Add (tensors of different shapes): when the layers built so far
    can be read, raise a CheckFailed that names the block and its filters (see _failed_stage_problem),
    showing the learner's lines down to their call of the block. Returns quietly otherwise (e.g. an
    outcome replayed without the learner's frames): the caller then gives the general hint."""
    error = failure.__cause__
    try:
        problem = _failed_stage_problem(context, error, expected)
    except Exception:  # noqa: BLE001  (a graph or frames the checks cannot read: the general hint then)
        return
    if problem is not None:
        raise CheckFailed(problem, failure.learner_frames[:-1]) from error


def _failed_stage_problem(context, error, expected):
    """The message for an Add that failed inside a block called by ResNet50, or None. The learner's
    frames are still on the traceback: the block's caller holds its input X (the call has not
    returned, so X is not yet reassigned), on which Keras keeps the layers called; the block's frame
    holds its `filters`. Names an earlier block whose filters differ from the expected ones, else the
    identity block whose last filter count differs from the channels it receives."""
    frames, tb = [], getattr(error, "__traceback__", None)
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_NOT_LEARNER_CODE):
            frames.append(tb.tb_frame)
        tb = tb.tb_next
    if len(frames) < 2:
        return None
    caller, block_frame = frames[-2], frames[-1]
    # The block's input: a tensor of the caller on which one chain of layers was built, whose last
    # layer's output nothing takes (it was the failed Add's input); the latest such tensor has the
    # shortest chain.
    candidates = []
    for tensor in _keras_tensors_in(caller):
        chains = _layers_called_on(tensor)
        if len(chains) == 1 and chains[0] and not getattr(chains[0][-1].op, "_outbound_nodes", True):
            candidates.append((len(chains[0]), tensor, chains[0]))
    if not candidates:
        return None
    _, X, main = min(candidates, key=lambda c: c[0])
    received, output = X.shape[-1], main[-1].shape[-1]
    convolutions = [step.op.filters for step in main if type(step.op).__name__ == "Conv2D"]
    first_input = _input_of(X)
    if not convolutions or output == received or first_input is None:
        return None
    filters = block_frame.f_locals.get("filters")
    if not (isinstance(filters, (list, tuple)) and len(filters) == 3
            and all(isinstance(n, (int, np.integer)) for n in filters)):
        filters = convolutions
    items, _ = resnet50_items(keras.Model(first_input, X), context)
    _, stages, _, _ = _split_stages(items)
    _, want_stages, _, _ = _split_stages([tuple(i) for i in expected["layers"]])
    blocks = [location for location, item in zip(_locations(items), items) if _is_block(item)]
    stage, block = (blocks[-1][0], blocks[-1][1] + 1) if blocks else (2, 1)
    at = f"stage {stage}, block {block}"
    raised = f"raised {type(error).__name__}: {str(error).strip().splitlines()[0]})"
    try:  # an earlier block with other filters than expected made the channels differ
        for number, (want, have) in enumerate(zip(want_stages, stages), start=2):
            _compare_items(context, f"stage {number},", _without_shapes(want[:len(have)]), _without_shapes(have),
                           unit="block")
    except CheckFailed as earlier:
        return f"{earlier.args[0]}\n  (this is why {at} (identity block) {raised}"
    hint = ""
    want = want_stages[stage - 2] if 0 <= stage - 2 < len(want_stages) else None
    if want is not None and block <= len(want) and want[block - 1][0] == "IdentityBlock":
        hint = f"stage {stage}'s identity blocks take filters {list(want[block - 1][2])}."
    elif want is not None and block <= len(want):
        hint = f"{at} is a convolutional block: {_block_call(want[block - 1])}."
    elif want is not None and stage - 1 < len(want_stages):
        hint = (f"stage {stage} has {len(want)} blocks; stage {stage + 1} starts with a convolutional block: "
                f"{_block_call(want_stages[stage - 1][0])}.")
    return (f"{context}: {at} (identity block) is called with filters {list(filters)}: an identity block must "
            f"output the channels it receives ({received}): its last filter count must be {received}."
            + (f"\n  Hint: {hint}" if hint else "") + f"\n  (this is why its Add {raised}")


# Where the checks' weights come from (ResNet50's outputs are compared with every weight set by the
# checks, so that the same layers compute the same thing whatever their initializers): variable j of the
# i-th layer that has weights (in the order _resnet50_parts gives, which does not depend on the order
# the layers were created in) is drawn from PCG64 seeded with (i, j, _WEIGHT_SEED), whose raw stream
# NumPy keeps the same across versions. The scales keep a ResNet50's activations of order 1 in both modes
# and its softmax away from 0 and 1, so that a change of any layer shows in the output.
_WEIGHT_SEED = 27


def _check_weight(layer_index, variable_index, name, shape):
    """float64 array: the checks' value of one variable (by its name: kernel, bias, gamma, beta,
    moving_mean, moving_variance) of the shape given."""
    size = int(np.prod(shape)) if len(shape) else 1
    raw = np.random.PCG64([layer_index, variable_index, _WEIGHT_SEED]).random_raw(size)
    u = ((raw >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 * 2.0 - 1.0).reshape(shape)  # in [-1, 1)
    if name == "kernel":
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        return u * np.sqrt(6.0 / fan_in)  # He-uniform: variance 2 / fan_in
    if name == "gamma":
        return 0.5 + 0.25 * u
    if name == "moving_variance":
        return 1.0 + 0.5 * u
    return 0.2 * u  # bias, beta, moving_mean and anything else


def set_check_weights(model, parts):
    """Sets every weight of ``model`` to the checks' values (see _check_weight): the layers of
    ``parts`` (from _resnet50_parts) first, in that order, then any other layer with weights."""
    ordered = [step.op for _, _, paths in parts for _, steps in paths for step in steps]
    ordered += list(model.layers)
    seen, index = set(), 0
    for layer in ordered:
        if id(layer) in seen or not getattr(layer, "weights", None):
            continue
        seen.add(id(layer))
        for j, variable in enumerate(layer.weights):
            name = str(getattr(variable, "name", "")).split("/")[-1].split(":")[0]
            values = _check_weight(index, j, name, tuple(int(d) for d in variable.shape))
            variable.assign(values.astype(keras.backend.standardize_dtype(variable.dtype)))
        index += 1


def _resnet50_parts(items, covered):
    """[(group, where, [(path, Steps)])] of a described ResNet50: group "stage 1", "identity block",
    "convolutional block" or "head" (the layers of a group share their settings); where names the
    stage and block; a block's paths are its main path, shortcut path and the layers after the Add."""
    parts, stem, head = [], [], []
    for (stage, block), item, steps in zip(_locations(items), items, covered):
        if stage == 1 and not block:
            stem.extend(steps)
        elif stage is None:
            head.extend(steps)
        elif item[0] in _BLOCK_NAMES:
            merge = next(step for step in steps if step.branches is not None)
            shortcut, main = sorted(merge.branches, key=len)
            after = steps[steps.index(merge) + 1:]
            where = f"stage {stage}, block {block} ({_BLOCK_NAMES[item[0]]})"
            parts.append((_BLOCK_NAMES[item[0]], where, [(f"{where}, main path", main),
                                                         (f"{where}, shortcut path", shortcut),
                                                         (f"{where}, after the Add", after)]))
    return ([("stage 1", "stage 1", [("stage 1", stem)])] + parts
            + [("head", "head (after stage 5)", [("head (after stage 5)", head)])])


def resnet50_layers(model, context="ResNet50"):
    """What the expected values of a ResNet50 case hold besides its items: the layers of each kind of
    block ("blocks": [(block item, {"main", "shortcut", "after_add": described layers})], one per
    distinct item) and the settings of each group ("settings": {group: {layer class: {setting: value}}})."""
    items, covered = resnet50_items(model, context)
    parts = _resnet50_parts(items, covered)
    blocks, groups = [], {}
    for group, _, paths in parts:
        groups.setdefault(group, []).extend(step for _, steps in paths for step in steps)
    for (_, _, paths), item in zip(parts[1:-1], [i for i in items if i[0] in _BLOCK_NAMES]):
        if all(known != item for known, _ in blocks):
            main, shortcut, after = (steps for _, steps in paths)
            blocks.append((item, {"main": [describe(s) for s in main], "shortcut": [describe(s) for s in shortcut],
                                  "after_add": [describe(s) for s in after]}))
    return {"blocks": blocks,
            "settings": {group: settings_table(steps, own_weights=False) for group, steps in groups.items()}}


def _check_images(input_shape):
    return make_input({"shape": (3,) + tuple(input_shape), "kind": "wave", "freq": 0.013, "phase": 0.4, "scale": 1.0})


def resnet50_outputs(model, input_shape):
    """The outputs compared (after set_check_weights): {training: (2, classes) array} for the first two
    check images, in inference mode (called as model(X), as after training) and in training mode."""
    images = _check_images(input_shape)[[0, 1]]
    return {training: np.asarray(keras.ops.convert_to_numpy(model(images, **({"training": True} if training else {}))))
            for training in (False, True)}


def _compare_resnet50_blocks(context, parts, items, blocks):
    """Every block's layers (structure) against the expected layers of a block like it."""
    known = [(tuple(item), inner) for item, inner in blocks]
    block_items = [item for item in items if item[0] in _BLOCK_NAMES]
    for (_, where, paths), item in zip(parts[1:-1], block_items):
        inner = next((layers for known_item, layers in known if known_item == tuple(item)), None)
        if inner is None:
            continue
        for (path, steps), key in zip(paths, ("main", "shortcut", "after_add")):
            _compare_items(context, path, [tuple(i) for i in inner[key]], [describe(s) for s in steps],
                           [s.op.name for s in steps], _BLOCK_HINTS)


def _compare_resnet50_outputs(context, records, outputs):
    for record in records:
        training = record["training"]
        got, want = outputs[training], np.asarray(record["output"], dtype=np.float64)
        if got.shape != want.shape:
            _fail(context, f"the output of 2 images has the shape {got.shape}, expected {want.shape}.")
        bad = ~np.isclose(got, want, rtol=RTOL, atol=RESNET50_ATOL)
        if bad.any():
            image = int(np.argwhere(bad)[0][0])
            mode = "training mode (model(X, training=True))" if training else "inference mode (model(X))"
            shown = lambda row: "[" + ", ".join(f"{v:.4f}" for v in row) + "]"  # noqa: E731
            _fail(context, f"wrong output values in {mode}, with the checks' weights set in every layer: image "
                           f"{image} gets {shown(got[image])}, expected {shown(want[image])}. The layers and "
                           "their settings are right, so check which tensor each layer is applied to and which "
                           "tensors each Add adds.")


def check_resnet50(target, case):
    """Checks ResNet50 against one case; raises CheckFailed on the first problem."""
    _check_target("ResNet50", target)
    args = case["args"]
    expected = case["expected"]
    context = f"ResNet50({_format_args(args)})"
    try:
        model = _call(context, target, hint=_STAGE_SHAPES_HINT, **args)
    except CheckFailed as failure:
        if "incompatible shapes" in failure.args[0] or "Cannot broadcast" in failure.args[0]:
            _diagnose_failed_stage(context, failure, expected)
        raise
    if not isinstance(model, keras.Model):
        _fail(context, f"returned a {type(model).__name__}, expected a keras.Model: "
                       "end with model = Model(inputs=X_input, outputs=X) and return model.")
    input_shape = tuple(model.inputs[0].shape)
    if input_shape != (None,) + tuple(args["input_shape"]):
        _fail(context, f"the model's input shape is {input_shape}, expected {(None,) + tuple(args['input_shape'])}: "
                       "build the input with Input(input_shape).")
    items, covered = resnet50_items(model, context)
    unapplied = _unapplied_layers(model.operations)
    last = items[-1] if items else ("nothing", ())
    activation = last[3] if last[0] == "Dense" else last[2] if last[0] == "Activation" else None
    if activation != "softmax":
        what = _format_item(last) + (f" with activation='{activation}'" if last[0] == "Dense" else "")
        _fail(context, f"the output layer is {what}: the output must be class probabilities, "
                       "use Dense(classes, activation='softmax').")
    stem, stages, head, extras = _split_stages(items)
    want_stem, want_stages, want_head, _ = _split_stages([tuple(i) for i in expected["layers"]])
    _compare_items(context, "stage 1", want_stem, stem, unapplied=unapplied,
                   hints={("MaxPooling2D", "pool_size"): "MaxPooling2D((3, 3), strides=(2, 2))."})
    if extras:
        location, item = extras[0]
        _fail(context, f"unexpected {_format_item(item)} after {_where(location)}: "
                       "the residual blocks of stages 2 to 5 follow each other directly.")
    _fail_on_an_unapplied_block(context, model, items, covered)
    _compare_stages(context, want_stages, stages)
    _compare_items(context, "head (after stage 5)", want_head, head, unapplied=unapplied,
                   hints={("AveragePooling2D", "pool_size"): "AveragePooling2D((2, 2)).",
                          ("Dense", "units"): "the output has one unit per class: Dense(classes, ...)."})
    output_shape = tuple(model.outputs[0].shape)
    if output_shape != (None, args["classes"]):
        _fail(context, f"the output shape is {output_shape}, expected {(None, args['classes'])}.")
    parts = _resnet50_parts(items, covered)
    _compare_resnet50_blocks(context, parts, items, expected.get("blocks", []))
    for group, _, paths in parts:
        _compare_settings(context, paths, expected.get("settings", {}).get(group, {}), own_weights=False)
    params = model.count_params()
    if params != expected["params"]:
        _fail(context, f"the model has {params:,} parameters, expected {expected['params']:,}.")
    problem = _bn_training_problem(items, covered)
    if problem is not None:
        location, name, training, item = problem
        effect = (" As it is, model(X) normalizes each image with the statistics of its batch."
                  if training is True else "")
        if location[1]:  # inside a residual block: set by the block's `training` argument
            default = ("\n  Leaving `training` out of a block call means training=True (the block's default)."
                       if training is True else "")
            example = f", e.g. {_block_call(item)}" if item[0] in _BLOCK_NAMES else ""
            fix = f"\n  Pass training=None to every block{example},"
        else:
            default, fix = "", "\n  Call it without training, BatchNormalization(axis=3)(X),"
        _fail(context, f"BatchNormalization is hard-wired to training={training} ({_where(location)}, layer "
                       f"named '{name}').{effect}{default}{fix} so that BatchNormalization follows the model's mode: "
                       "batch statistics in fit(), moving statistics in predict() and model(X).")
    set_check_weights(model, parts)
    inference = _check_inference_mode(context, model, tuple(args["input_shape"]))
    if expected.get("outputs"):
        training = np.asarray(keras.ops.convert_to_numpy(model(_check_images(args["input_shape"])[[0, 1]],
                                                               training=True)))
        _compare_resnet50_outputs(context, expected["outputs"], {False: inference, True: training})
    _check_declared_defaults("ResNet50", target)


def _fail_on_an_unapplied_block(context, model, items, covered):
    """A block called without `X =` (its output dropped): its first layers take a tensor of the model
    but nothing of the model takes what they compute. The model then lacks that block, and the stage
    counts alone would contradict the learner's cell, which shows the call. Keras records those
    layers on the tensors only (private attributes, as in _layers_called_on): where they are missing,
    or for a model rebuilt from its config, the stage comparison speaks instead."""
    inside = {id(op) for op in model.operations}
    dropped = {}  # the model operation whose output a dropped block took -> the dropped layers
    for op in model.operations:
        for node in getattr(op, "_outbound_nodes", None) or []:
            other = getattr(node, "operation", None)
            if other is not None and id(other) not in inside:
                dropped.setdefault(id(op), []).append(other)
    for location, item, steps in zip(_locations(items), items, covered):
        layers = next((dropped[id(step.op)] for step in steps if id(step.op) in dropped), None)
        # a block: two layers take its input (main path and Add, or main path and shortcut conv)
        if layers is None or len(layers) < 2 or not any(type(layer).__name__ == "Conv2D" for layer in layers):
            continue
        kind = "a convolutional block" if sum(type(layer).__name__ == "Conv2D" for layer in layers) >= 2 \
            else "an identity block"
        call = "convolutional_block" if kind.startswith("a conv") else "identity_block"
        _fail(context, f"{kind} called after {_where(location)} is not applied: its layers were built on X, "
                       f"but nothing takes its output, so the model skips it. Write `X = {call}(X, ...)`, "
                       f"not `{call}(X, ...)` alone.")


def _check_inference_mode(context, model, input_shape):
    """Called without a training argument (model(X): inference, as after training), a prediction
    must not depend on the other images of the batch. Returns the predictions of the first two
    check images (resnet50_outputs' inference outputs)."""
    images = _check_images(input_shape)
    # Keras passes an explicit training flag of model(X, training=...) down to every layer, so
    # only the call without one shows a flag hard-coded inside the model.
    first = np.asarray(keras.ops.convert_to_numpy(model(images[[0, 1]])))
    second = np.asarray(keras.ops.convert_to_numpy(model(images[[0, 2]])))
    if not np.allclose(first[0], second[0], rtol=1e-5, atol=1e-6):
        _fail(context, "in inference mode (model(X)) the prediction for an image changes with the rest of the "
                       "batch: BatchNormalization is hard-wired into training mode. Call the blocks with "
                       "training=None (do not hard-code training=True).")
    if not np.allclose(first.sum(axis=1), 1.0, atol=1e-4):
        _fail(context, "the predictions of an image do not sum to 1: the output must be a softmax.")
    return first
