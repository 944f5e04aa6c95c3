"""Property test of the checks (issue 27, item 4): each layer setting of the reference solutions,
changed on its own to another valid value, fails its exercise's check with a message that names the
layer and the setting when it changes what the function computes, and passes when it does not.

What "changes what it computes" means is measured, not assumed:
- a block: its outputs on the first public case, with the checks' fixed initializers, in training and
  inference mode (the four runs of the check), compared element by element with the reference's;
- ResNet50: its outputs with the checks' weights set in every layer (resnet_checks.set_check_weights),
  in both modes, and its parameter count; a change of an initializer changes the model's initial
  weights, so it changes what the model computes when built (ResNet50's check compares the
  initializers themselves, its outputs being computed with weights it sets).

The blocks are changed by calling the reference's own code with its layer classes wrapped (one layer of
one class, by the order the block creates them, gets the changed keyword argument); ResNet50 by
changing one layer of the reference model's config and rebuilding it. Every setting is tried on a
few layers of each kind (for the blocks: the first and middle CONV, the first and last
BatchNormalization, the shortcut's CONV and BatchNormalization; for ResNet50: one layer of the stem,
of each kind of block and of the head), not the full cross-product, to keep `make test` short.
The number of changes tried is printed in pytest's terminal summary (tests/conftest.py).
"""
import copy
import re
import types

import keras
import numpy as np
import pytest

import check_cases
import resnet_checks
from resnet_course.course import reference

OUTPUT_RUNS = (("ones", False), ("ones", True), ("wave", False), ("wave", True))
SAME = dict(rtol=1e-5, atol=1e-5)  # outputs this close are the same function (float round-off)


def _other_kernel(kwargs):
    size = kwargs["kernel_size"]
    return 3 if size == 1 else 1


def _other_seed(kwargs):
    init = kwargs["kernel_initializer"]
    return type(init)(init.kind, seed=1)


# (setting, new value or function of the layer's keyword arguments -> value, text the message must hold,
# which layers: "all" of the exercise's LAYERS of that class or its "first"). Whether the change must fail
# or pass is measured (see the module's docstring).
CONV_CHANGES = [
    ("kernel_size", _other_kernel, "kernel_size=", "all"),
    ("strides", lambda k: (1, 1) if tuple(np.broadcast_to(k["strides"], 2)) != (1, 1) else (2, 2), "strides=", "all"),
    ("padding", lambda k: "same" if k["padding"] == "valid" else "valid", "padding=", "all"),
    ("dilation_rate", 2, "dilation_rate=", "all"),
    ("activation", "relu", "activation=", "all"),
    ("groups", 2, "groups=", "middle"),  # the one CONV whose input and output channels 2 divides
    ("use_bias", False, "use_bias=", "first"),
    ("bias_initializer", "ones", "bias_initializer=", "first"),
    ("kernel_initializer", lambda k: keras.initializers.GlorotUniform(seed=0), "kernel_initializer", "first"),
    ("kernel_initializer seed", _other_seed, "seed=1", "first"),
    ("dtype", "bfloat16", "dtype=", "first"),
    ("kernel_regularizer", "l2", None, "first"),
    ("kernel_constraint", "non_neg", None, "first"),
    ("trainable", False, None, "first"),
    ("name", "renamed", None, "first"),
]
BN_CHANGES = [
    ("axis", 2, "axis=", "all"),
    ("axis", -1, "axis=", "first"),
    ("epsilon", 0.1, "epsilon=", "all"),
    ("momentum", 0.5, "momentum=", "first"),
    ("center", False, "center=", "first"),
    ("scale", False, "scale=", "first"),
    ("beta_initializer", "ones", "beta_initializer=", "first"),
    ("gamma_initializer", keras.initializers.Constant(2.0), "gamma_initializer=", "first"),
    ("moving_mean_initializer", "ones", "moving_mean_initializer=", "first"),
    ("moving_variance_initializer", keras.initializers.Constant(4.0), "moving_variance_initializer=", "first"),
    ("trainable", False, "trainable=", "first"),
    ("renorm", True, "renorm=", "first"),
    ("dtype", "bfloat16", "dtype=", "first"),
    ("gamma_regularizer", "l2", None, "first"),
]
ACTIVATION_CHANGES = [("activation", "elu", "Activation('elu')", "all"), ("activation", "relu", None, "first")]

# The layers of each class (by the order the reference block creates them) that get the changes: the
# first and middle CONV (and the shortcut's), the first and last BatchNormalization of the main path
# (and the shortcut's), the first ReLU and the one after the Add.
LAYERS = {
    "identity_block": {"Conv2D": (0, 1), "BatchNormalization": (0, 2), "Activation": (0, 2)},
    "convolutional_block": {"Conv2D": (0, 1, 3), "BatchNormalization": (0, 2, 3), "Activation": (2,)},
}
MIDDLE_CONV = 1
CHANGES = {"Conv2D": CONV_CHANGES, "BatchNormalization": BN_CHANGES, "Activation": ACTIVATION_CHANGES}
_KEYWORD = {"Activation": "activation"}  # the positional argument of a class, as a keyword


def _positions(exercise, kind, which):
    layers = LAYERS[exercise][kind]
    return {"all": layers, "first": layers[:1], "middle": (MIDDLE_CONV,)}[which]


def _changed_block(exercise, kind, position, setting, value):
    """The reference block with layer `position` of class `kind` created with `setting` changed."""
    function = getattr(reference, exercise)
    made = {}

    def wrap(cls):
        def create(*args, **kwargs):
            if args and cls.__name__ in _KEYWORD:
                kwargs[_KEYWORD[cls.__name__]], args = args[0], args[1:]
            index = made[cls.__name__] = made.get(cls.__name__, -1) + 1
            if cls.__name__ == kind and index == position:
                name = setting.split(" ")[0]
                kwargs[name] = value(kwargs) if callable(value) and not isinstance(
                    value, keras.initializers.Initializer) else value
            return cls(*args, **kwargs)
        return create

    namespace = {**vars(reference), **{name: wrap(getattr(reference, name)) for name in CHANGES}}
    code = types.FunctionType(function.__code__, namespace, exercise, function.__defaults__)

    def block(*args, **kwargs):
        made.clear()
        return code(*args, **kwargs)

    block.__name__ = exercise
    return block


def _block_outputs(exercise, target, case):
    """The outputs of the check's four runs, then of the block with its own default initializer (the
    course's random_uniform or glorot_uniform, with its seed) in inference mode; None when the block
    cannot be run with the change (e.g. shapes that no longer add up: it changes the block)."""
    try:
        outputs = [resnet_checks.run_block(exercise, target, case, kind, training) for kind, training in OUTPUT_RUNS]
        X = keras.ops.convert_to_tensor(resnet_checks.make_input(case["input"]))
        own = getattr(reference, exercise).__defaults__[-1]  # the `initializer` argument's default
        outputs.append(np.asarray(target(X, **case["args"], training=False, initializer=own)))
    except Exception:  # noqa: BLE001
        return None
    return outputs


def _same(outputs, reference_outputs):
    return outputs is not None and all(
        a.shape == b.shape and np.allclose(a.astype(np.float64), b, **SAME) for a, b in zip(outputs, reference_outputs))


def _checked(check, target, case):
    """None when the check passes, else its message."""
    try:
        check(target, case)
    except AssertionError as failure:
        return str(failure)
    return None


NAMES_A_LAYER = re.compile(r"layer \d+ \((Conv2D|BatchNormalization|Activation|Dense|MaxPooling2D|AveragePooling2D|"
                           r"ZeroPadding2D|Flatten)|layer \d+ is |the output layer is "
                           r"|stage \d+, block \d+ \((identity|convolutional) block\): \w+=")  # a block's argument


def _verdict(label, changes, message, mentions):
    """'' when the check's verdict is right for the change, else what is wrong."""
    if not changes:
        return "" if message is None else f"{label}: leaves the outputs identical but fails: {message}"
    if message is None:
        return f"{label}: changes the outputs but passes"
    if mentions is not None and mentions not in message:
        return f"{label}: the message does not name the setting ({mentions!r}): {message}"
    if not NAMES_A_LAYER.search(message):
        return f"{label}: the message does not name the layer: {message}"
    return ""


def _record(request, exercise, tried, failing):
    request.node.user_properties.append(
        ("setting changes", f"{exercise}: {tried} tried, {failing} change the outputs and fail, "
                            f"{tried - failing} leave them identical and pass"))


@pytest.mark.parametrize("exercise", ["identity_block", "convolutional_block"])
def test_every_setting_of_a_block_that_changes_its_outputs_fails_naming_it(exercise, request):
    case = getattr(check_cases, f"{exercise.upper()}_CASES")[0]
    check = getattr(resnet_checks, f"check_{exercise}")
    want = [np.asarray(o, dtype=np.float64) for o in _block_outputs(exercise, getattr(reference, exercise), case)]
    problems, tried, failing = [], 0, 0
    for kind, changes in CHANGES.items():
        for setting, value, mentions, which in changes:
            for position in _positions(exercise, kind, which):
                target = _changed_block(exercise, kind, position, setting, value)
                changes = not _same(_block_outputs(exercise, target, case), want)
                tried, failing = tried + 1, failing + changes
                label = f"{kind} #{position + 1} {setting}={getattr(value, '__name__', value)!r}"
                problems.append(_verdict(label, changes, _checked(check, target, case), mentions))
    _record(request, exercise, tried, failing)
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} of {tried} changes:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# ResNet50: one layer of its config changed, the model rebuilt
# ---------------------------------------------------------------------------------------------

def _serialized(initializer):
    return keras.initializers.serialize(initializer)


# (which layer: (group path, layer class, index among that class's layers in the path), setting, value,
# text the message must hold). Inside the blocks only changes that keep the shapes are tried (a block
# whose Add gets other shapes cannot be rebuilt from a config; the block checks try those).
STEM, STAGE2_CONV, STAGE3_ID, STAGE5_ID, HEAD = ("stage 1", "stage 2, block 1 (convolutional block)",
                                                  "stage 3, block 2 (identity block)",
                                                  "stage 5, block 3 (identity block)", "head (after stage 5)")
RESNET50_CHANGES = [
    ((STEM, "ZeroPadding2D", 0), "padding", [[2, 2], [2, 2]], "padding="),
    ((STEM, "Conv2D", 0), "kernel_size", [5, 5], "kernel_size="),
    ((STEM, "Conv2D", 0), "use_bias", False, "use_bias="),
    ((STEM, "Conv2D", 0), "kernel_initializer", _serialized(keras.initializers.Zeros()), "kernel_initializer="),
    ((STEM, "Conv2D", 0), "kernel_initializer", _serialized(keras.initializers.GlorotUniform(seed=1)),
     "kernel_initializer="),
    ((STEM, "Conv2D", 0), "kernel_regularizer", keras.regularizers.serialize(keras.regularizers.L2()), None),
    ((STEM, "BatchNormalization", 0), "epsilon", 0.1, "epsilon="),
    ((STEM, "BatchNormalization", 0), "momentum", 0.5, None),
    ((STEM, "BatchNormalization", 0), "center", False, "center="),
    ((STEM, "BatchNormalization", 0), "moving_variance_initializer", _serialized(keras.initializers.Constant(2.0)),
     "moving_variance_initializer="),
    ((STEM, "MaxPooling2D", 0), "padding", "same", "padding="),
    ((STAGE2_CONV + ", main path", "Conv2D", 1), "dilation_rate", [2, 2], "dilation_rate="),
    ((STAGE2_CONV + ", main path", "Conv2D", 1), "kernel_size", [1, 1], "f=1, expected f=3"),  # the block's f
    ((STAGE2_CONV + ", main path", "Conv2D", 0), "padding", "same", None),  # a 1x1 CONV: the same
    ((STAGE2_CONV + ", shortcut path", "BatchNormalization", 0), "epsilon", 1000.0, "epsilon="),
    ((STAGE3_ID + ", main path", "Conv2D", 0), "dilation_rate", [2, 2], None),  # a 1x1 CONV: the same
    ((STAGE3_ID + ", main path", "Conv2D", 1), "groups", 2, "groups="),
    ((STAGE3_ID + ", main path", "Conv2D", 2), "kernel_initializer",
     _serialized(keras.initializers.GlorotUniform(seed=0)), "kernel_initializer="),
    ((STAGE3_ID + ", main path", "Activation", 0), "activation", "elu", "Activation('elu')"),
    ((STAGE3_ID + ", main path", "BatchNormalization", 2), "trainable", False, "trainable="),
    ((STAGE5_ID + ", main path", "Conv2D", 1), "dilation_rate", [2, 2], "dilation_rate="),
    ((HEAD, "AveragePooling2D", 0), "padding", "same", None),  # 2x2 map, 2x2 window: the same
    ((HEAD, "AveragePooling2D", 0), "pool_size", [1, 1], "pool_size="),
    ((HEAD, "Dense", 0), "use_bias", False, "use_bias="),
    ((HEAD, "Dense", 0), "bias_initializer", "ones", "bias_initializer="),
]


@pytest.fixture(scope="module")
def resnet50_reference():
    """(case, the reference model's config, {(path, class, index): layer name})."""
    case = check_cases.RESNET50_CASES[0]
    model = reference.ResNet50(**case["args"])
    items, covered = resnet_checks.resnet50_items(model)
    names = {}
    for _, _, paths in resnet_checks._resnet50_parts(items, covered):
        for path, steps in paths:
            counts = {}
            for step in steps:
                kind = type(step.op).__name__
                names[(path, kind, counts.get(kind, 0))] = step.op.name
                counts[kind] = counts.get(kind, 0) + 1
    return case, model.get_config(), names


def _resnet50_outputs(model, case):
    items, covered = resnet_checks.resnet50_items(model)
    resnet_checks.set_check_weights(model, resnet_checks._resnet50_parts(items, covered))
    return resnet_checks.resnet50_outputs(model, case["args"]["input_shape"])


def test_every_setting_of_resnet50_that_changes_what_it_computes_fails_naming_it(resnet50_reference, request):
    case, config, names = resnet50_reference
    want = {record["training"]: np.asarray(record["output"]) for record in case["expected"]["outputs"]}
    problems, failing = [], 0
    for layer, setting, value, mentions in RESNET50_CHANGES:
        changed = copy.deepcopy(config)
        (settings,) = [entry["config"] for entry in changed["layers"] if entry["config"]["name"] == names[layer]]
        settings[setting] = value
        model = keras.Model.from_config(changed)
        outputs = _resnet50_outputs(model, case)
        changes = (setting.endswith("_initializer") or model.count_params() != case["expected"]["params"]
                   or any(outputs[t].shape != want[t].shape or not np.allclose(outputs[t], want[t], **SAME)
                          for t in want))
        failing += changes

        def ResNet50(input_shape=(64, 64, 3), classes=6):  # the template's signature (checked too)
            return model

        label = f"{layer[0]} {layer[1]} #{layer[2] + 1} {setting}={value!r}"
        problems.append(_verdict(label, changes, _checked(resnet_checks.check_resnet50, ResNet50, case), mentions))
    _record(request, "ResNet50", len(RESNET50_CHANGES), failing)
    problems = [p for p in problems if p]
    assert not problems, f"{len(problems)} of {len(RESNET50_CHANGES)} changes:\n" + "\n".join(problems)
