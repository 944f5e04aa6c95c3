"""Checks for the ResNet50 assignment: identity_block, convolutional_block and ResNet50.

In the notebook call ``identity_block_test(identity_block)``,
``convolutional_block_test(convolutional_block)`` and ``ResNet50_test(ResNet50)``.

Each check first builds your function on a symbolic ``keras.Input`` and reads the layers it
created: their types, settings and output shapes, and how the shortcut is wired into the
``Add``.  Then it calls your function on fixed inputs with fixed kernel initializers, in
training mode and in inference mode, and compares the outputs with values computed from a
correct implementation.  The first problem found is raised as a ``CheckFailed`` error that
says what is wrong and where; when everything is right it prints "All tests passed!".

The generic checks ``check_identity_block``, ``check_convolutional_block`` and
``check_resnet50`` take a *case* (a dict: input spec, arguments, expected values), so the
same code checks other inputs and arguments too.
"""
import difflib

import keras
import numpy as np

GREEN = "\033[92m"
RESET = "\033[0m"

# Outputs must match the expected values to within |got - expected| <= ATOL + RTOL * |expected|.
RTOL = 1e-5
ATOL = 1e-4


class CheckFailed(AssertionError):
    """One check of the assignment failed; the message says what is wrong and how to fix it."""


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


def _call(context, target, *args, hint="", **kwargs):
    """Calls the learner's function; turns an exception or a None result into a CheckFailed."""
    name = getattr(target, "__name__", "your function")
    call_text = f"{name}({'X, ' if args else ''}{_format_args(kwargs)})"
    try:
        result = target(*args, **kwargs)
    except CheckFailed as failure:  # raised by a fixed initializer misused inside the learner's code
        if failure.args[0].startswith(context):
            raise
        raise CheckFailed(f"{context}: {failure.args[0]}") from failure
    except Exception as error:  # the learner's code may raise anything: report it plainly
        text = str(error).strip()
        if len(text) > 600:
            text = text[:600] + " ..."
        advice = ""
        if "incompatible shapes" in text and hint:
            advice = f"\n  Hint: {hint}"
        elif "NoneType" in text:
            advice = "\n  Hint: is a `None` placeholder left in your code? Replace each one with your code."
        raise CheckFailed(
            f"{context}: calling {call_text} raised {type(error).__name__}: {text}{advice}") from error
    if result is None:
        _fail(context, f"{call_text} returned None: end the function with `return X`"
                       + (" (the keras.Model)" if not args else ""))
    return result


# --------------------------------------------------------------------------------------
# Reading the layer graph that the learner's function built
# --------------------------------------------------------------------------------------

class Step:
    """One operation call in the traced graph: a layer with one input, or a merge (e.g. Add)
    whose inputs come from ``branches`` (lists of Steps from the fork to the merge)."""

    def __init__(self, op, node, output, branches=None):
        self.op, self.node, self.output, self.branches = op, node, output, branches


def _producer(tensor):
    """(operation, node) that produced a symbolic tensor, or None for an input."""
    # Keras 3 records the producing call on every symbolic tensor (KerasHistory).
    history = getattr(tensor, "_keras_history", None)
    if history is None or history.operation is None:
        return None
    op = history.operation
    if isinstance(op, keras.layers.InputLayer):
        return None
    return op, op._inbound_nodes[history.node_index]


def _ancestors(tensor):
    """{id: tensor} of the tensor and every tensor it was computed from."""
    seen = {}
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        producer = _producer(t)
        if producer is not None:
            stack.extend(producer[1].input_tensors)
    return seen


def _trace(tensor, stop):
    """The Steps from ``stop`` (exclusive) to ``tensor``, merges holding their branches."""
    steps = []
    while tensor is not stop:
        producer = _producer(tensor)
        if producer is None:
            break
        op, node = producer
        inputs = node.input_tensors
        if len(inputs) <= 1:
            steps.append(Step(op, node, tensor))
            if not inputs:
                break
            tensor = inputs[0]
        else:
            ancestor_sets = [_ancestors(t) for t in inputs]
            common = set(ancestor_sets[0]).intersection(*ancestor_sets[1:])
            if not common:
                break
            # The fork is the common ancestor closest to the merge: it has the most ancestors.
            fork = max((ancestor_sets[0][i] for i in common), key=lambda t: len(_ancestors(t)))
            steps.append(Step(op, node, tensor, [_trace(t, fork) for t in inputs]))
            tensor = fork
    steps.reverse()
    return steps


def _activation_name(function):
    return getattr(function, "__name__", str(function))


def describe(step):
    """A short tuple (type, output shape without the batch axis, settings...) for one Step."""
    op = step.op
    kind = type(op).__name__
    shape = tuple(step.output.shape[1:])
    is_layer = isinstance(op, keras.layers.Layer)
    if kind == "Conv2D":
        return ("Conv2D", shape, op.filters, tuple(op.kernel_size), tuple(op.strides), op.padding,
                _activation_name(op.activation))
    if kind == "BatchNormalization":
        return ("BatchNormalization", shape, op.axis % len(step.output.shape))
    if kind == "Activation":
        return ("Activation", shape, _activation_name(op.activation))
    if kind in ("ReLU", "Relu"):
        plain = not is_layer or (op.max_value is None and not op.negative_slope and not op.threshold)
        return ("Activation", shape, "relu") if plain else ("ReLU", shape)
    if kind == "ZeroPadding2D":
        return ("ZeroPadding2D", shape, tuple(tuple(p) for p in op.padding))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return (kind, shape, tuple(op.pool_size), tuple(op.strides), op.padding)
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


def _compare_items(context, where, expected, got, names=None, hints=None, unit="layer"):
    """Fails with the first difference between two lists of described layers."""
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
    ("Conv2D", "padding"): "the f x f CONV uses padding='same' (it keeps height and width); "
                           "the 1x1 CONVs use padding='valid'.",
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


def _consumers(tensor):
    """The nodes (layer calls) that take this symbolic tensor as an input."""
    history = getattr(tensor, "_keras_history", None)
    if history is None or history.operation is None:
        return []
    return [node for node in history.operation._outbound_nodes
            if any(t is tensor for t in node.input_tensors)]


def _forward_paths(tensor):
    """The chains of single-input layers that start at the tensor, one per layer that consumes it."""
    paths = []
    for node in _consumers(tensor):
        path = []
        while node is not None and len(node.input_tensors) == 1:
            output = node.outputs[0]
            path.append(Step(node.operation, node, output))
            following = _consumers(output)
            node = following[0] if len(following) == 1 else None
        paths.append(path)
    return paths


def _diagnose_failed_add(exercise, context, X, expected, failure):
    """Add failed because its inputs have different shapes: the layers built before it are still
    recorded on the Input, so find the one that made the shapes differ (raises CheckFailed)."""
    paths = sorted(_forward_paths(X), key=len)
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
        if "incompatible shapes" in failure.args[0] and case.get("expected"):
            _diagnose_failed_add(exercise, context, X, case["expected"], failure)
        raise
    if not isinstance(Y, keras.KerasTensor):
        _fail(context, f"on a symbolic keras.Input the block returned a {type(Y).__name__}, expected the "
                       "output tensor of the last layer (keep using Keras layers, not numpy).")
    if id(X) not in _ancestors(Y):
        _fail(context, "the output is not computed from the input X: start the block from its argument X.")
    return _trace(Y, X), Y


def _split_block(context, steps, projection):
    """(main path, shortcut path, layers after the Add) of a traced block; fails on wrong wiring."""
    merges = [i for i, step in enumerate(steps) if step.branches is not None]
    layers = " -> ".join(_label(describe(step)) for step in steps)
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
    if not after:
        _fail(context, "missing ReLU after the Add: the block returns the Add's output; "
                       "apply Activation('relu') to it.")
    return main, shortcut, after


def block_structure(exercise, target, case, context=None):
    """The described main path, shortcut path and after-Add layers of a block (for expected values)."""
    context = context or _block_context(exercise, case)
    steps, _ = _build_block(exercise, target, case, context)
    main, shortcut, after = _split_block(context, steps, projection=exercise == "convolutional_block")
    return {"main": [describe(s) for s in main], "shortcut": [describe(s) for s in shortcut],
            "after_add": [describe(s) for s in after]}, (main, shortcut, after)


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
                training = step.node.arguments.kwargs.get("training", _MISSING)
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
    context = _block_context(exercise, case)
    expected = case["expected"]
    _, (main, shortcut, after) = block_structure(exercise, target, case, context)
    _compare_items(context, "main path", expected["main"], [describe(s) for s in main],
                   [s.op.name for s in main], _BLOCK_HINTS)
    _compare_items(context, "shortcut path", expected["shortcut"], [describe(s) for s in shortcut],
                   [s.op.name for s in shortcut], _BLOCK_HINTS)
    _compare_items(context, "after the Add", expected["after_add"], [describe(s) for s in after],
                   [s.op.name for s in after], _BLOCK_HINTS)
    _check_kernels_and_training(context, [("main path", main), ("shortcut path", shortcut)])
    _check_outputs(exercise, target, case, context)


def check_identity_block(target, case):
    """Checks identity_block against one case; raises CheckFailed on the first problem."""
    _check_block("identity_block", target, case)


def check_convolutional_block(target, case):
    """Checks convolutional_block against one case; raises CheckFailed on the first problem."""
    _check_block("convolutional_block", target, case)


# --------------------------------------------------------------------------------------
# ResNet50
# --------------------------------------------------------------------------------------

_BLOCK_PATTERN = ["Conv2D", "BatchNormalization", "Activation('relu')"] * 2 + ["Conv2D", "BatchNormalization"]


def _describe_residual(merge, after):
    """Describes an Add (plus the ReLU after it) as an identity or convolutional block."""
    branches = sorted(merge.branches, key=len)
    shortcut, main = branches[0], branches[-1]
    main_items = [describe(s) for s in main]
    shortcut_labels = [_label(describe(s)) for s in shortcut]
    relu_after = after is not None and _label(describe(after)) == "Activation('relu')"
    shape = tuple(after.output.shape[1:]) if relu_after else tuple(merge.output.shape[1:])
    if ([_label(i) for i in main_items] == _BLOCK_PATTERN and relu_after and len(merge.branches) == 2
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


def resnet50_items(model):
    """The model as described items: stem layers, one item per residual block, head layers.
    Returns (items, steps) where steps[i] lists the Steps that item i covers."""
    steps = _trace(model.outputs[0], model.inputs[0])
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
        if after is not None and _label(describe(after)) == "Activation('relu')":
            inner.append(after)
            index += 1
        items.append(item)
        covered.append(inner)
        index += 1
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
    """Location, layer name and value of the first BatchNormalization called with a fixed training flag."""
    for location, steps in zip(_locations(items), covered):
        for step in steps:
            if type(step.op).__name__ != "BatchNormalization":
                continue
            training = step.node.arguments.kwargs.get("training", None)
            if training is not None:
                return _where(location), step.op.name, training
    return None


def check_resnet50(target, case):
    """Checks ResNet50 against one case; raises CheckFailed on the first problem."""
    args = case["args"]
    expected = case["expected"]
    context = f"ResNet50({_format_args(args)})"
    model = _call(context, target, hint="check identity_block and convolutional_block with their tests first.",
                  **args)
    if not isinstance(model, keras.Model):
        _fail(context, f"returned a {type(model).__name__}, expected a keras.Model: "
                       "end with model = Model(inputs=X_input, outputs=X) and return model.")
    input_shape = tuple(model.inputs[0].shape)
    if input_shape != (None,) + tuple(args["input_shape"]):
        _fail(context, f"the model's input shape is {input_shape}, expected {(None,) + tuple(args['input_shape'])}: "
                       "build the input with Input(input_shape).")
    items, covered = resnet50_items(model)
    last = items[-1] if items else ("nothing", ())
    activation = last[3] if last[0] == "Dense" else last[2] if last[0] == "Activation" else None
    if activation != "softmax":
        what = _format_item(last) + (f" with activation='{activation}'" if last[0] == "Dense" else "")
        _fail(context, f"the output layer is {what}: the output must be class probabilities, "
                       "use Dense(classes, activation='softmax').")
    stem, stages, head, extras = _split_stages(items)
    want_stem, want_stages, want_head, _ = _split_stages([tuple(i) for i in expected["layers"]])
    _compare_items(context, "stage 1", want_stem, stem,
                   hints={("MaxPooling2D", "pool_size"): "MaxPooling2D((3, 3), strides=(2, 2))."})
    if extras:
        location, item = extras[0]
        _fail(context, f"unexpected {_format_item(item)} after {_where(location)}: "
                       "the residual blocks of stages 2 to 5 follow each other directly.")
    _compare_stages(context, want_stages, stages)
    _compare_items(context, "head (after stage 5)", want_head, head,
                   hints={("AveragePooling2D", "pool_size"): "AveragePooling2D((2, 2)).",
                          ("Dense", "units"): "the output has one unit per class: Dense(classes, ...)."})
    output_shape = tuple(model.outputs[0].shape)
    if output_shape != (None, args["classes"]):
        _fail(context, f"the output shape is {output_shape}, expected {(None, args['classes'])}.")
    params = model.count_params()
    if params != expected["params"]:
        _fail(context, f"the model has {params:,} parameters, expected {expected['params']:,}.")
    problem = _bn_training_problem(items, covered)
    if problem is not None:
        where, name, training = problem
        effect = (" As it is, model(X) normalizes each image with the statistics of its batch."
                  if training is True else "")
        _fail(context, f"BatchNormalization is hard-wired to training={training} ({where}, layer '{name}'): "
                       f"call the blocks with training=None (do not hard-code training=True) so that "
                       f"BatchNormalization follows the model's mode: batch statistics in fit(), "
                       f"moving statistics in predict() and model(X).{effect}")
    _check_inference_mode(context, model, tuple(args["input_shape"]))


def _check_inference_mode(context, model, input_shape):
    """Called without a training argument (model(X): inference, as after training), a prediction
    must not depend on the other images of the batch."""
    images = make_input({"shape": (3,) + input_shape, "kind": "wave", "freq": 0.013, "phase": 0.4, "scale": 1.0})
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


# --------------------------------------------------------------------------------------
# The course's checks (the public cases)
# --------------------------------------------------------------------------------------

def _passed():
    print(f"{GREEN}All tests passed!{RESET}")


def identity_block_test(target):
    for case in IDENTITY_BLOCK_CASES:
        check_identity_block(target, case)
    _passed()


def convolutional_block_test(target):
    for case in CONVOLUTIONAL_BLOCK_CASES:
        check_convolutional_block(target, case)
    _passed()


def ResNet50_test(target):
    for case in RESNET50_CASES:
        check_resnet50(target, case)
    _passed()


# ---- BEGIN GENERATED EXPECTED VALUES (make expected) ----
# Computed from the reference solution by `make expected`; do not edit by hand.
IDENTITY_BLOCK_CASES = [{'name': 'public 1',
  'input': {'shape': (3, 4, 4, 3), 'kind': 'levels', 'levels': [-1.0, 1.0, 3.0]},
  'args': {'f': 2, 'filters': [4, 4, 3]},
  'expected': {'main': [('Conv2D', (4, 4, 4), 4, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (4, 4, 4), 3), ('Activation', (4, 4, 4), 'relu'),
                        ('Conv2D', (4, 4, 4), 4, (2, 2), (1, 1), 'same', 'linear'),
                        ('BatchNormalization', (4, 4, 4), 3), ('Activation', (4, 4, 4), 'relu'),
                        ('Conv2D', (4, 4, 3), 3, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (4, 4, 3), 3)],
               'shortcut': [],
               'after_add': [('Activation', (4, 4, 3), 'relu')],
               'output_shape': (3, 4, 4, 3),
               'outputs': [{'initializer': 'ones',
                            'training': False,
                            'mean': [[0.0, 0.0, 0.0], [147.7798, 147.7798, 147.7798],
                                     [443.3394, 443.3394, 443.3394]],
                            'std': [[0.0, 0.0, 0.0], [52.14246, 52.14246, 52.14246],
                                    [156.4274, 156.4274, 156.4274]],
                            'probe': 0.772078},
                           {'initializer': 'ones',
                            'training': True,
                            'mean': [[0.0, 0.0, 0.0], [0.407364, 0.407364, 0.407364],
                                     [4.185272, 4.185272, 4.185272]],
                            'std': [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.944639, 0.944639, 0.944639]],
                            'probe': -0.0165},
                           {'initializer': 'wave',
                            'training': False,
                            'mean': [[0.0, 0.0, 0.0], [1.006606, 0.998762, 0.991855],
                                     [3.019817, 2.996286, 2.975565]],
                            'std': [[0.0, 0.0, 0.0], [0.003884, 0.001858, 0.004493],
                                    [0.011652, 0.005575, 0.013479]],
                            'probe': -0.021056},
                           {'initializer': 'wave',
                            'training': True,
                            'mean': [[0.0, 0.0, 0.0], [0.441003, 1.021892, 1.77974],
                                     [4.029256, 3.837808, 2.507829]],
                            'std': [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.986413, 0.362309, 1.248535]],
                            'probe': -0.064275}]}},
 {'name': 'public 2',
  'input': {'shape': (2, 5, 5, 4), 'kind': 'wave', 'freq': 0.7, 'phase': 0.3, 'scale': 2.0},
  'args': {'f': 3, 'filters': [2, 3, 4]},
  'expected': {'main': [('Conv2D', (5, 5, 2), 2, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (5, 5, 2), 3), ('Activation', (5, 5, 2), 'relu'),
                        ('Conv2D', (5, 5, 3), 3, (3, 3), (1, 1), 'same', 'linear'),
                        ('BatchNormalization', (5, 5, 3), 3), ('Activation', (5, 5, 3), 'relu'),
                        ('Conv2D', (5, 5, 4), 4, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (5, 5, 4), 3)],
               'shortcut': [],
               'after_add': [('Activation', (5, 5, 4), 'relu')],
               'output_shape': (2, 5, 5, 4),
               'outputs': [{'initializer': 'ones',
                            'training': False,
                            'mean': [[72.89704, 72.91975, 72.94178, 72.95275],
                                     [75.53131, 75.55128, 75.55818, 75.54875]],
                            'std': [[23.98226, 23.7133, 23.65824, 23.8401],
                                    [24.77819, 24.54316, 24.5214, 24.72046]],
                            'probe': -0.561975},
                           {'initializer': 'ones',
                            'training': True,
                            'mean': [[0.540524, 0.542534, 0.603458, 0.669578],
                                     [0.619417, 0.739709, 0.818012, 0.713795]],
                            'std': [[0.82421, 0.629355, 0.763516, 0.972299],
                                    [1.011833, 0.824623, 0.768476, 1.139228]],
                            'probe': -0.0368},
                           {'initializer': 'wave',
                            'training': False,
                            'mean': [[0.618065, 0.600234, 0.6339, 0.684571],
                                     [0.614602, 0.655001, 0.693357, 0.636774]],
                            'std': [[0.76958, 0.740834, 0.781085, 0.780539],
                                    [0.761642, 0.79318, 0.780343, 0.778965]],
                            'probe': 0.014165},
                           {'initializer': 'wave',
                            'training': True,
                            'mean': [[0.674357, 0.785176, 0.822861, 0.928513],
                                     [0.610225, 0.805765, 0.777462, 0.696298]],
                            'std': [[1.25691, 0.872934, 0.946703, 0.907186],
                                    [1.173945, 0.957052, 1.01465, 0.874015]],
                            'probe': 0.039334}]}}]
CONVOLUTIONAL_BLOCK_CASES = [{'name': 'public 1',
  'input': {'shape': (3, 4, 4, 3), 'kind': 'levels', 'levels': [-1.0, 1.0, 3.0]},
  'args': {'f': 2, 'filters': [2, 4, 6], 's': 1},
  'expected': {'main': [('Conv2D', (4, 4, 2), 2, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (4, 4, 2), 3), ('Activation', (4, 4, 2), 'relu'),
                        ('Conv2D', (4, 4, 4), 4, (2, 2), (1, 1), 'same', 'linear'),
                        ('BatchNormalization', (4, 4, 4), 3), ('Activation', (4, 4, 4), 'relu'),
                        ('Conv2D', (4, 4, 6), 6, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (4, 4, 6), 3)],
               'shortcut': [('Conv2D', (4, 4, 6), 6, (1, 1), (1, 1), 'valid', 'linear'),
                            ('BatchNormalization', (4, 4, 6), 3)],
               'after_add': [('Activation', (4, 4, 6), 'relu')],
               'output_shape': (3, 4, 4, 6),
               'outputs': [{'initializer': 'ones',
                            'training': False,
                            'mean': [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                     [76.3884, 76.3884, 76.3884, 76.3884, 76.3884, 76.3884],
                                     [229.1652, 229.1652, 229.1652, 229.1652, 229.1652, 229.1652]],
                            'std': [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                    [26.07123, 26.07123, 26.07123, 26.07123, 26.07123, 26.07123],
                                    [78.21369, 78.21369, 78.21369, 78.21369, 78.21369, 78.21369]],
                            'probe': 0.417274},
                           {'initializer': 'ones',
                            'training': True,
                            'mean': [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                     [2.409991, 2.409991, 2.409991, 2.409991, 2.409991, 2.409991]],
                            'std': [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                    [0.944639, 0.944639, 0.944639, 0.944639, 0.944639, 0.944639]],
                            'probe': 0.008275},
                           {'initializer': 'wave',
                            'training': False,
                            'mean': [[0.0, 0.0, 0.0, 0.819668, 1.231697, 0.711602],
                                     [1.214603, 1.138542, 0.200855, 0.0, 0.0, 0.0],
                                     [3.64381, 3.415626, 0.602564, 0.0, 0.0, 0.0]],
                            'std': [[0.0, 0.0, 0.0, 0.026003, 0.013367, 0.019707],
                                    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
                            'probe': -0.020142},
                           {'initializer': 'wave',
                            'training': True,
                            'mean': [[0.317454, 0.504095, 0.011459, 0.100079, 0.60974, 1.937189],
                                     [0.0, 0.0, 0.594645, 0.671761, 0.523805, 0.0],
                                     [0.599176, 0.931985, 1.813743, 0.0, 0.0, 0.0]],
                            'std': [[0.660832, 0.896671, 0.044379, 0.18163, 0.375169, 1.186917],
                                    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]],
                            'probe': 0.002278}]}},
 {'name': 'public 2',
  'input': {'shape': (2, 6, 6, 3), 'kind': 'wave', 'freq': 0.45, 'phase': 0.1, 'scale': 1.5},
  'args': {'f': 3, 'filters': [4, 3, 5], 's': 2},
  'expected': {'main': [('Conv2D', (3, 3, 4), 4, (1, 1), (2, 2), 'valid', 'linear'),
                        ('BatchNormalization', (3, 3, 4), 3), ('Activation', (3, 3, 4), 'relu'),
                        ('Conv2D', (3, 3, 3), 3, (3, 3), (1, 1), 'same', 'linear'),
                        ('BatchNormalization', (3, 3, 3), 3), ('Activation', (3, 3, 3), 'relu'),
                        ('Conv2D', (3, 3, 5), 5, (1, 1), (1, 1), 'valid', 'linear'),
                        ('BatchNormalization', (3, 3, 5), 3)],
               'shortcut': [('Conv2D', (3, 3, 5), 5, (1, 1), (2, 2), 'valid', 'linear'),
                            ('BatchNormalization', (3, 3, 5), 3)],
               'after_add': [('Activation', (3, 3, 5), 'relu')],
               'output_shape': (2, 3, 3, 5),
               'outputs': [{'initializer': 'ones',
                            'training': False,
                            'mean': [[76.21426, 76.21426, 76.21426, 76.21426, 76.21426],
                                     [104.5857, 104.5857, 104.5857, 104.5857, 104.5857]],
                            'std': [[31.89385, 31.89385, 31.89385, 31.89385, 31.89385],
                                    [30.26123, 30.26123, 30.26123, 30.26123, 30.26123]],
                            'probe': 1.999838},
                           {'initializer': 'ones',
                            'training': True,
                            'mean': [[0.345229, 0.345229, 0.345229, 0.345229, 0.345229],
                                     [0.943467, 0.943467, 0.943467, 0.943467, 0.943467]],
                            'std': [[0.744689, 0.744689, 0.744689, 0.744689, 0.744689],
                                    [1.023868, 1.023868, 1.023868, 1.023868, 1.023868]],
                            'probe': 0.251482},
                           {'initializer': 'wave',
                            'training': False,
                            'mean': [[0.223211, 0.124834, 0.26277, 0.299589, 0.164073],
                                     [0.21213, 0.2316, 0.136295, 0.176086, 0.261753]],
                            'std': [[0.272518, 0.164467, 0.259392, 0.318951, 0.195368],
                                    [0.263718, 0.259088, 0.194407, 0.231188, 0.271888]],
                            'probe': 0.002367},
                           {'initializer': 'wave',
                            'training': True,
                            'mean': [[0.828379, 0.591956, 0.451994, 0.845317, 0.851424],
                                     [0.519838, 0.745463, 0.699589, 0.460996, 0.502987]],
                            'std': [[0.970436, 1.049928, 0.639268, 0.994249, 0.893205],
                                    [0.513439, 0.835162, 1.152685, 1.190074, 0.81971]],
                            'probe': -0.026326}]}}]
RESNET50_CASES = [{'name': 'public',
  'args': {'input_shape': (64, 64, 3), 'classes': 6},
  'expected': {'params': 23600006,
               'layers': [('ZeroPadding2D', (70, 70, 3), ((3, 3), (3, 3))),
                          ('Conv2D', (32, 32, 64), 64, (7, 7), (2, 2), 'valid', 'linear'),
                          ('BatchNormalization', (32, 32, 64), 3), ('Activation', (32, 32, 64), 'relu'),
                          ('MaxPooling2D', (15, 15, 64), (3, 3), (2, 2), 'valid'),
                          ('ConvolutionalBlock', (15, 15, 256), (64, 64, 256), 3, 1),
                          ('IdentityBlock', (15, 15, 256), (64, 64, 256), 3),
                          ('IdentityBlock', (15, 15, 256), (64, 64, 256), 3),
                          ('ConvolutionalBlock', (8, 8, 512), (128, 128, 512), 3, 2),
                          ('IdentityBlock', (8, 8, 512), (128, 128, 512), 3),
                          ('IdentityBlock', (8, 8, 512), (128, 128, 512), 3),
                          ('IdentityBlock', (8, 8, 512), (128, 128, 512), 3),
                          ('ConvolutionalBlock', (4, 4, 1024), (256, 256, 1024), 3, 2),
                          ('IdentityBlock', (4, 4, 1024), (256, 256, 1024), 3),
                          ('IdentityBlock', (4, 4, 1024), (256, 256, 1024), 3),
                          ('IdentityBlock', (4, 4, 1024), (256, 256, 1024), 3),
                          ('IdentityBlock', (4, 4, 1024), (256, 256, 1024), 3),
                          ('IdentityBlock', (4, 4, 1024), (256, 256, 1024), 3),
                          ('ConvolutionalBlock', (2, 2, 2048), (512, 512, 2048), 3, 2),
                          ('IdentityBlock', (2, 2, 2048), (512, 512, 2048), 3),
                          ('IdentityBlock', (2, 2, 2048), (512, 512, 2048), 3),
                          ('AveragePooling2D', (1, 1, 2048), (2, 2), (2, 2), 'valid'), ('Flatten', (2048,)),
                          ('Dense', (6,), 6, 'softmax')]}}]
# ---- END GENERATED EXPECTED VALUES ----
