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
                           r"ZeroPadding2D|Flatten)|layer \d+ is ")


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
