"""The judge: turns what the producer sent (data) into verdicts, without running any student code.

It runs outside the sandbox: `bounded_verdicts` judges a submission in a child process of the worker's
judge host, under a CPU-time and a memory limit (bounded.py; `judge` itself is the same work in the
calling process). For each graded exercise it asks the producer (producer.py, in the
sandbox) for the calls the checks will make (`calls`), receives one artefact per call, validates
each model config (`validate`: size, depth, only Keras's own layer, initializer and op classes, the
checks' FixedInitializer; a Lambda, a custom class or a `module` outside Keras is refused and never
loaded), rebuilds it with Keras's safe mode without allocating its weights, bounds its size
(parameters and activations) and only then creates the weights, from the initializers the config
names (`load`): no number from the producer is trusted.

The verdict comes from the course's own checks (`resnet_checks.check_identity_block`,
`check_convolutional_block`, `check_resnet50`, as the learner's public_tests.py runs them) called
with a `Replay` target: called as the check calls the student's function, it returns the rebuilt
model applied to the check's input (or re-raises / returns the recorded outcome), so the messages
are those the learner sees in the notebook. Public cases come from check_cases.py, hidden cases from
the `HIDDEN_CASES = [...]` literal of the source notebook's hidden test cells (read with
ast.literal_eval, never executed); hidden results are pass/fail only.
"""
import ast
import json
import re
import traceback
from dataclasses import dataclass

from resnet_course.grading import bounded
from resnet_course.learner import tf_environment

# The checks' expected values were computed with these TensorFlow settings (make expected); they must be
# in the environment before TensorFlow loads in this process.
tf_environment.apply_defaults()

PASSED = "All tests passed!"
HIDDEN_FAILED = "Failed the hidden tests."
COULD_NOT_FINISH = "the checks could not finish on your model: "
MAX_DEPTH = 64  # nesting of a model config (ResNet50's is about 12)
MAX_OBJECTS = 20_000  # serialized objects (layers, initializers, tensors...) in one config
MAX_PARAMS = 100_000_000  # parameters of a rebuilt model (ResNet50: 23.6 M)
MAX_ACTIVATIONS = 2**25  # elements of all layer outputs per example (ResNet50 at 96x96: ~6 M)
# An Orthogonal initializer runs a QR decomposition: about rows * cols * min(rows, cols) operations for a
# kernel flattened to (rows, cols). The bound keeps the judge's weight initialization to seconds (ResNet50 with
# every kernel orthogonal stays well within it), where a few 10000 x 10000 kernels would hold a worker for minutes.
MAX_ORTHOGONAL_WORK = 2**36

# The learner's public test function -> (check function, public cases) in resnet_checks / check_cases.
PUBLIC_TESTS = {"identity_block_test": ("check_identity_block", "IDENTITY_BLOCK_CASES"),
                "convolutional_block_test": ("check_convolutional_block", "CONVOLUTIONAL_BLOCK_CASES"),
                "ResNet50_test": ("check_resnet50", "RESNET50_CASES")}
BLOCK_CHECKS = ("check_identity_block", "check_convolutional_block")

# What a model config may name: Keras's own classes that compute from their config alone (no file,
# no code, no function argument), by (module, class_name).
_LAYERS = {
    "InputLayer", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "Activation", "ReLU", "LeakyReLU",
    "PReLU", "ELU", "Softmax", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping2D", "UpSampling2D", "MaxPooling1D",
    "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "Flatten",
    "Reshape", "Permute", "Dense", "Dropout", "SpatialDropout2D", "GaussianNoise", "Identity"}
_OPS = {  # keras.ops functions applied to symbolic tensors become these operations in a config
    "keras.src.ops.numpy": {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "Maximum", "Minimum",
                            "Negative", "Abs", "Square", "Sqrt", "Exp", "Log", "Tanh", "Concatenate", "Reshape",
                            "Transpose", "Mean", "Sum", "Max", "Min", "Clip", "ExpandDims", "Squeeze"},
    "keras.src.ops.nn": {"Relu", "Relu6", "Sigmoid", "Softmax", "LeakyRelu", "Elu", "Selu", "Gelu", "Silu",
                         "Softplus", "HardSigmoid"},
}
_INITIALIZERS = {"Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LecunNormal",
                 "LecunUniform", "Ones", "Zeros", "RandomNormal", "RandomUniform", "TruncatedNormal",
                 "VarianceScaling", "Orthogonal", "OrthogonalInitializer", "Identity", "IdentityInitializer"}
_ALLOWED = {
    ("keras.layers", name) for name in _LAYERS} | {
    ("keras.initializers", name) for name in _INITIALIZERS} | {
    ("keras.regularizers", name) for name in ("L1", "L2", "L1L2", "OrthogonalRegularizer")} | {
    ("keras.constraints", name) for name in ("MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm")} | {
    (module, name) for module, names in _OPS.items() for name in names} | {
    ("keras", "DTypePolicy"), ("keras", "FloatDTypePolicy"),
    ("keras.src.models.functional", "Functional"), ("keras", "Functional"), ("keras", "Sequential"),
    ("keras.src.models.sequential", "Sequential"),
    ("resnet_checks", "FixedInitializer"),  # the checks' own initializer: resolved to the judge's class
}
_DATA = {"__keras_tensor__", "__tuple__"}  # serialized values, not classes
_FUNCTION_MODULES = ("keras.activations", "keras.src.activations.activations")


class Refused(BaseException):
    """An artefact grading does not load or did not receive; the message is the check's failure text.

    A BaseException so that it passes through the checks' own handling of the learner's errors (which
    catches Exception) to the judge, which reports it as the failed case's message."""


@dataclass(frozen=True)
class Exercise:
    """One graded test cell: the function it checks, the check, its public and hidden cases."""
    grade_id: str
    function: str
    check: str  # a check function's name in resnet_checks
    public_cases: tuple
    hidden_cases: tuple


def _hidden_cases(hidden_source):
    """(check name, target name, cases) of a hidden test region: the HIDDEN_CASES literal, read not run."""
    tree = ast.parse(hidden_source)
    cases, check, target = (), None, None
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "HIDDEN_CASES"
                                                for t in node.targets):
            cases = tuple(ast.literal_eval(node.value))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_")
                and node.args and isinstance(node.args[0], ast.Name)):
            check, target = node.func.id, node.args[0].id
    return check, target, cases


def _checked_name(node):
    """The function a public check is called on: `identity_block_test(identity_block)` or, as the course's
    cells write it so that a cell run before the exercise's says so in one line,
    `identity_block_test(globals().get("identity_block"))`; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and isinstance(node.func.value, ast.Call) and getattr(node.func.value.func, "id", None) == "globals"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def exercises(material):
    """The Exercise of each graded cell of the material (ValueError naming a cell the judge cannot read)."""
    import check_cases

    found = []
    for graded in material.graded:
        call = ast.parse(graded.public).body
        if not (call and isinstance(call[0], ast.Expr) and isinstance(call[0].value, ast.Call)
                and getattr(call[0].value.func, "id", None) in PUBLIC_TESTS and call[0].value.args):
            raise ValueError(f"graded cell {graded.grade_id!r}: its public part is not a call of "
                             f"one of {', '.join(PUBLIC_TESTS)}")
        check, cases_name = PUBLIC_TESTS[call[0].value.func.id]
        function = _checked_name(call[0].value.args[0])
        if function is None:
            raise ValueError(f"graded cell {graded.grade_id!r}: its public check takes neither a name nor "
                             "globals().get(\"name\")")
        hidden_check, hidden_target, hidden = _hidden_cases(graded.hidden) if graded.hidden else (check, function, ())
        if (hidden_check, hidden_target) != (check, function):
            raise ValueError(f"graded cell {graded.grade_id!r}: its hidden part checks "
                             f"{hidden_target} with {hidden_check}, its public part {function} with {check}")
        found.append(Exercise(graded.grade_id, function, check, tuple(getattr(check_cases, cases_name)), hidden))
    return tuple(found)


# ---------------------------------------------------------------------------------------------
# Calls: what the producer must build for the checks
# ---------------------------------------------------------------------------------------------

def _key(function, input_shape, args, training=None, initializer=None):
    shape = tuple(input_shape) if input_shape is not None else None
    return json.dumps([function, shape, args, training, initializer], sort_keys=True, default=list)


def calls(exercise, cases):
    """The producer calls (dicts without "id") the check of `exercise` makes on `cases`, deduplicated.

    A block's check calls it on a symbolic input (training=False, the first output record's
    initializer) and eagerly once per (initializer, training) of the case's output records; the
    producer builds each of them on a symbolic keras.Input, the judge applies it to the eager input."""
    found = {}
    for case in cases:
        args = dict(case["args"])
        if exercise.check in BLOCK_CHECKS:
            records = case.get("expected", {}).get("outputs", [])
            runs = [(records[0]["initializer"] if records else "wave", False)]
            runs += [(record["initializer"], record["training"]) for record in records]
            for initializer, training in runs:
                shape = list(case["input"]["shape"][1:])
                call = {"function": exercise.function, "input_shape": shape, "args": args,
                        "training": training, "initializer": initializer}
                found.setdefault(_key(exercise.function, shape, args, training, initializer), call)
        else:
            found.setdefault(_key(exercise.function, None, args), {"function": exercise.function, "args": args})
    return found


# ---------------------------------------------------------------------------------------------
# Validating and rebuilding a model config
# ---------------------------------------------------------------------------------------------

def validate(config):
    """None when the config names only what grading loads, else why not (one sentence)."""
    if not isinstance(config, dict) or config.get("class_name") not in ("Functional", "Sequential"):
        return "it is not a Keras functional model"
    stack, objects = [(config, 1)], 0
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"its description is nested more than {MAX_DEPTH} levels deep"
        if isinstance(value, dict):
            objects += 1
            if objects > MAX_OBJECTS:
                return f"it has more than {MAX_OBJECTS} parts"
            if "class_name" in value:
                problem = _class_problem(value)
                if problem:
                    return problem
            # compile settings are dropped unread before rebuilding (_without_compile_config)
            stack.extend((v, depth + 1) for k, v in value.items() if k != "compile_config")
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
        elif not isinstance(value, (str, int, float, bool, type(None))):
            return "it holds a value of an unknown type"
    return None


def _class_problem(value):
    name, module = value.get("class_name"), value.get("module")
    if name in _DATA and module is None:
        return None
    if value.get("registered_name") not in (None, name):
        # Keras looks a registered name up among the custom objects registered in this process first
        return f"it names the class {str(value.get('registered_name'))[:100]!r}, which grading does not load"
    if name == "function" and module in _FUNCTION_MODULES:
        import keras

        if isinstance(value.get("config"), str) and re.fullmatch(r"[a-z_0-9]+", value["config"]) \
                and callable(getattr(keras.activations, value["config"], None)):
            return None
    if name in ("Lambda", "__lambda__") or "lambda" in str(name).lower():
        return ("it uses a Lambda layer, whose code grading does not run: build it from Keras layers "
                "(Conv2D, BatchNormalization, Activation, Add, ...)")
    if (module, name) in _ALLOWED:
        return _initializer_problem(value) if module == "keras.initializers" else None
    return (f"it uses {module}.{name}, a class grading does not load: build it from the Keras layers the "
            "notebook imports")


def _initializer_problem(value):
    """None when an initializer's settings are single numbers (or names), else why not: a Constant of an
    array, or any initializer setting that is a list, would carry the producer's numbers into the
    weights the judge makes."""
    config = value.get("config")
    settings = config.values() if isinstance(config, dict) else [config]
    if value.get("class_name") == "Constant":
        number = config.get("value") if isinstance(config, dict) else None
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            return ("its Constant initializer holds more than one number: grading loads a Constant initializer "
                    "of one number only (e.g. Constant(1.0))")
    if not all(isinstance(setting, (int, float, str, bool, type(None))) for setting in settings):
        return (f"its {value.get('class_name')} initializer has a setting that is not one number or name: "
                "grading loads initializers of single-number settings only")
    return None


def _without_compile_config(value):
    """A copy of the config (new dicts and lists all the way down) without the compile settings Keras
    would apply when deserializing (optimizer, loss, metrics: classes the checks never use); a
    student's function may compile its model."""
    if isinstance(value, dict):
        return {k: _without_compile_config(v) for k, v in value.items() if k != "compile_config"}
    if isinstance(value, (list, tuple)):
        return [_without_compile_config(v) for v in value]
    return value


def _rebuild(config):
    """Deserializes `config`, which Keras consumes: pass a copy of your own (load passes the fresh one
    _without_compile_config made, so the artefact itself is never changed)."""
    import keras
    import resnet_checks

    return keras.saving.deserialize_keras_object(
        config, custom_objects={"FixedInitializer": resnet_checks.FixedInitializer}, safe_mode=True)


def _activation_elements(model):
    """Elements per example of every output of every operation in the model (symbolic shapes),
    counting the operations of nested models recursively (a nested model's layers are counted once
    per call Keras recorded: an overestimate, never an underestimate). None when an output has an
    unknown (None) dimension: its size cannot be bounded before it is computed."""
    total = 0
    for operation in model.operations:
        if hasattr(operation, "operations"):  # a nested model: its own layers
            inner = _activation_elements(operation)
            if inner is None:
                return None
            total += inner
        for node in getattr(operation, "_inbound_nodes", []):
            for tensor in getattr(node, "output_tensors", []):
                elements = 1
                for size in tensor.shape[1:]:
                    if size is None:
                        return None
                    elements *= int(size)
                total += elements
    return total


def _size_problem(model, input_shape=None):
    """None when a (stateless) model takes one input of exactly `input_shape` (without the batch axis;
    None: any known shape) and stays within MAX_PARAMS and MAX_ACTIVATIONS, else why not."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        return f"it takes {len(inputs)} inputs, the checks give it one"
    shape = tuple(inputs[0].shape[1:])
    if input_shape is not None and shape != tuple(input_shape):
        return (f"its Input has the shape {shape}, but it was called on an input of shape {tuple(input_shape)}: "
                "build it on the input it is given")
    params = sum(_product(variable.shape) for variable in model.weights)
    if params > MAX_PARAMS:
        return f"it is too large: {params:,} parameters, grading loads at most {MAX_PARAMS:,}"
    if _orthogonal_work(model) > MAX_ORTHOGONAL_WORK:
        return ("its Orthogonal initializers would take too long to run on kernels this large: use another "
                "initializer (the course's blocks take theirs as an argument)")
    activations = _activation_elements(model)
    if activations is None:
        return ("a layer's output has an unknown (None) dimension, so grading cannot tell whether it is too "
                "large before computing it: give the Input the shape it is called with")
    if activations > MAX_ACTIVATIONS:
        return (f"it is too large: its layers output {activations:,} values per example, grading computes "
                f"at most {MAX_ACTIVATIONS:,}")
    return None


def _orthogonal_work(model):
    """The QR work (see MAX_ORTHOGONAL_WORK) of the model's variables that an Orthogonal initializer fills."""
    work = 0
    for variable in model.weights:
        initializer = getattr(variable, "_initializer", None)
        if type(initializer).__name__ in ("Orthogonal", "OrthogonalInitializer") and len(variable.shape) >= 2:
            rows, cols = _product(variable.shape[:-1]), int(variable.shape[-1])
            work += rows * cols * min(rows, cols)
    return work


def _product(shape):
    result = 1
    for size in shape:
        result *= int(size)
    return result


def load(config, input_shape=None):
    """The rebuilt keras.Model of a serialized model, or Refused(why not). The one loader of every
    artefact the judge rebuilds (symbolic and eager calls alike).

    `input_shape` (without the batch axis): the shape of the input the function was called on; the
    model's single Input must have exactly this shape (None: any shape without unknown dimensions).

    Validated first (`validate`); then deserialized with Keras's safe mode inside a
    keras.StatelessScope that does not initialize variables: the layers get their shapes but no
    weight is allocated, so the size is bounded (`_size_problem`) before anything is; only then are
    the variables initialized, from the initializers the config names. The scope's pending
    variables are taken out of Keras's global list, so nothing else ever initializes a refused model."""
    import keras
    from keras.src.backend.common import global_state

    problem = validate(config)
    if problem is None:
        config = _without_compile_config(config)
        pending = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
        try:
            with keras.StatelessScope(initialize_variables=False):
                model = _rebuild(config)
                problem = _size_problem(model, input_shape)
        except Exception as error:  # noqa: BLE001 - a config Keras cannot rebuild (forged or inconsistent)
            problem = f"Keras cannot rebuild it ({type(error).__name__}: {str(error).strip()[:200]})"
        finally:
            global_state.set_global_attribute("uninitialized_variables", pending)
    if problem is not None:
        raise Refused(f"grading does not load the model your function builds: {problem}")
    for variable in model.variables:
        if getattr(variable, "_value", True) is None:
            variable._deferred_initialize()
    return model


# ---------------------------------------------------------------------------------------------
# Replaying the recorded calls to the checks
# ---------------------------------------------------------------------------------------------

class ReplayedError(Exception):
    """An exception the learner's function raised in the producer, replayed (its type's name, message
    and the learner's frames as recorded)."""
    frames = ()


def _replayed_error(artefact):
    name = str(artefact.get("type", "Exception"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,59}", name):
        name = "Exception"
    message = str(artefact.get("message", ""))[:700]
    if name == "NotImplementedError":
        return NotImplementedError(message)
    if name == "CheckFailed":  # a fixed initializer misused in the learner's code (resnet_checks raised it)
        import resnet_checks

        return resnet_checks.CheckFailed(message)
    error = type(name, (ReplayedError,), {})(message)
    frames = artefact.get("frames") or []  # their schema was checked (artefact_problem)
    error.frames = tuple(traceback.FrameSummary(f[0][:200], f[1], f[2][:100], line=f[3][:300]) for f in frames[-20:])
    return error


_NUMBER = (int, float)
_ARTEFACT_FIELDS = {  # outcome -> {field: allowed types}; a field may be absent, never of another type
    "model": {"model": (dict,)},
    "raised": {"type": (str,), "message": (str,), "frames": (list,), "partial": (dict, type(None))},
    "none": {}, "disconnected": {}, "undefined": {},
    "not_tensor": {"type": (str,)}, "not_model": {"type": (str,)},
    "interrupted": {"seconds": _NUMBER + (type(None),)},
    "too_large": {"bytes": _NUMBER},
    "unserializable": {"type": (str,), "message": (str,)},
}


def artefact_problem(artefact):
    """None when an artefact has the producer's schema (docs/GRADING.md), else why not. Checked
    before anything reads it: a record written by student code may hold any JSON."""
    if not isinstance(artefact, dict):
        return "it is not an object"
    fields = _ARTEFACT_FIELDS.get(artefact.get("outcome")) if isinstance(artefact.get("outcome"), str) else None
    if fields is None:
        return "its outcome is unknown"
    for name, types in fields.items():
        if name in artefact and (not isinstance(artefact[name], types) or isinstance(artefact[name], bool)):
            return f"its field {name!r} has the wrong type"
        if isinstance(artefact.get(name), _NUMBER) and not 0 <= artefact[name] <= 2**53:
            return f"its field {name!r} is out of range"
    if artefact["outcome"] == "model" and "model" not in artefact:
        return "it holds no model"
    for frame in artefact.get("frames", []) if artefact["outcome"] == "raised" else []:
        if not (isinstance(frame, list) and len(frame) == 4 and isinstance(frame[1], int)
                and not isinstance(frame[1], bool) and all(isinstance(frame[i], str) for i in (0, 2, 3))):
            return "one of its frames is malformed"
    return None


class Replay:
    """Stands in for the student's function in the checks: answers each call from its artefact."""

    def __init__(self, function, artefacts):
        self.__name__ = function
        self.artefacts = artefacts  # call key -> artefact (dict) as received
        self.models = {}

    def _artefact(self, key):
        artefact = self.artefacts.get(key)
        if artefact is None:
            raise Refused("grading received no result for this call (a record over the size limit is dropped)")
        problem = artefact_problem(artefact)
        if problem is not None:
            raise Refused(f"grading received a malformed result for this call ({problem}): something in the "
                          "notebook wrote on grading's channel")
        return artefact

    def _model(self, key, artefact, input_shape):
        if key not in self.models:
            self.models[key] = load(artefact.get("model"), input_shape)
        return self.models[key]

    def _apply_partial(self, X, config):
        """Applies the layers the block had built before it raised to X, so that the check can explain
        the error from them as in the notebook (validated and bounded like any model; else skipped)."""
        import keras

        try:
            partial = load(config, tuple(X.shape[1:]))
        except Refused:
            return
        keras.models.clone_model(partial, input_tensors=X, clone_function=lambda layer: layer)

    def __call__(self, *args, **kwargs):
        import keras

        if args:  # a block: (X, f, filters, [s], training, initializer)
            X = args[0]
            initializer = kwargs.pop("initializer")
            kind = getattr(initializer, "__name__", "").replace("fixed_initializer_", "")
            training = kwargs.pop("training")
            key = _key(self.__name__, tuple(X.shape[1:]), kwargs, training, kind)
        else:
            X = None
            key = _key(self.__name__, None, kwargs)
        artefact = self._artefact(key)
        outcome = artefact.get("outcome")
        if outcome == "model":
            # The one bounded loader, for symbolic and eager calls alike: the model's Input must be the
            # call's input shape (a block: X's; ResNet50: its input_shape argument, when given).
            shape = tuple(X.shape[1:]) if X is not None else kwargs.get("input_shape")
            model = self._model(key, artefact, tuple(shape) if shape is not None else None)
            if X is None:
                return model
            if isinstance(X, keras.KerasTensor):
                # The layers themselves applied to X (not one nested Model), as the student's code would.
                return keras.models.clone_model(model, input_tensors=X, clone_function=lambda layer: layer).outputs[0]
            return model(X)
        if outcome == "raised":
            if isinstance(X, keras.KerasTensor) and artefact.get("partial"):
                self._apply_partial(X, artefact["partial"])
            raise _replayed_error(artefact)
        if outcome == "none":
            return None
        if outcome in ("not_tensor", "not_model"):
            name = str(artefact.get("type", "object"))
            return type(name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,59}", name) else "object", (), {})()
        if outcome == "disconnected" and X is not None:
            return keras.Input(tuple(X.shape[1:]))  # an output not computed from X
        if outcome == "undefined":
            raise NameError(f"name '{self.__name__}' is not defined")
        if outcome == "interrupted":
            raise Refused(f"calling it ran past the {float(artefact.get('seconds') or 0):g} s limit of a cell "
                          "and was interrupted")
        if outcome == "too_large":
            raise Refused(f"the model it builds is too large to send to grading "
                          f"({float(artefact.get('bytes', 0)) / 2**20:.1f} MiB of description)")
        if outcome == "unserializable":
            raise Refused(f"the checks cannot read the layers you built: keras.Model.get_config() raised "
                          f"{str(artefact.get('type'))[:60]}: {str(artefact.get('message'))[:300]}. Build it from "
                          "the Keras layers the notebook imports.")
        raise Refused("grading received no usable result for this call")


def _strip_colours(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def failure_message(error, context):
    """The text the learner would see for a failed check (CheckFailed's own rendering, without colours)."""
    import resnet_checks

    if isinstance(error, Refused):
        return f"{context}: {error.args[0] if error.args else 'refused'}"
    if isinstance(error, resnet_checks.CheckFailed):
        cause = error.__cause__
        if isinstance(cause, ReplayedError):
            error.learner_frames = list(cause.frames)
        lines = error._render_traceback_()
        text = _strip_colours("\n".join(lines))
        return text.removeprefix("Check failed: ")
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _context(exercise, case):
    """How the checks name a case in their messages, e.g. identity_block(X of shape (3, 4, 4, 3), f=2, ...)."""
    import resnet_checks

    args = getattr(resnet_checks, "_format_args", lambda kwargs: ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
    if exercise.check in BLOCK_CHECKS:
        return f"{exercise.function}(X of shape {tuple(case['input']['shape'])}, {args(dict(case['args']))})"
    return f"{exercise.function}({args(dict(case['args']))})"


def warm_up(start_host=True):
    """Makes judging ready in this process, so that a Dask worker does it once while the cluster
    starts rather than in its first submission's grading step: imports the cases and starts this
    process's judge host (bounded.start_host), which imports Keras with TensorFlow and the checks
    (`start_host=False`: the host itself, which imports them). Returns whether that worked (if not,
    the grading step reports why)."""
    try:
        # TensorFlow's C++ start-up lines (absl, oneDNN) would be printed once per worker on the grader's terminal
        tf_environment.import_tensorflow_quietly()
        import check_cases  # noqa: F401
        if start_host:
            bounded.start_host()
        else:
            import keras  # noqa: F401
            import resnet_checks  # noqa: F401
    except Exception:  # noqa: BLE001 - the first grading step meets the same error and makes it a GradingFault
        return False
    return True


def clear_session():
    """Frees the models of the previous submission (Keras's global state) in this worker process."""
    import keras

    keras.backend.clear_session()


def judge(exercise, cases, artefacts):
    """None when every case passes the exercise's check on the replayed artefacts, else the message
    of the first failure. Never runs student code; an error of the check machinery itself propagates."""
    import resnet_checks

    check = getattr(resnet_checks, exercise.check)
    target = Replay(exercise.function, artefacts)
    for case in cases:
        try:
            check(target, case)
        except (Refused, AssertionError) as failure:
            return failure_message(failure, _context(exercise, case))
        except Exception as error:  # noqa: BLE001 - Keras refused to run the rebuilt model on the check's input
            return failure_message(error, _context(exercise, case))
    return None


# ---------------------------------------------------------------------------------------------
# Judging under limits: each submission's verdicts come from a killable child process (bounded.py)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """An exercise's verdict: the public message (None: its public cases pass) and the hidden one
    (None: its hidden cases pass or were not judged; else HIDDEN_FAILED)."""
    public: str | None
    hidden: str | None


def verdict(item, mark):
    """The Verdict of (exercise, public artefacts, hidden artefacts): its public cases, then, if they
    pass, its hidden ones (after mark("hidden"), so that an overrun from then on says nothing more)."""
    exercise, public, hidden = item
    message = judge(exercise, exercise.public_cases, public)
    if message is not None or not exercise.hidden_cases:
        return Verdict(message, None)
    mark("hidden")
    return Verdict(None, None if judge(exercise, exercise.hidden_cases, hidden) is None else HIDDEN_FAILED)


def verdict_of(outcome, seconds, memory_bytes):
    """The Verdict an Outcome of `verdict` stands for: its value, or for an overrun the student's reason
    in the public phase and only HIDDEN_FAILED in the hidden phase."""
    if outcome.overrun is None:
        return outcome.value
    if outcome.phase == "hidden":
        return Verdict(None, HIDDEN_FAILED)
    what = (f"they used more than the judge's {seconds:g} s of CPU time" if outcome.overrun == "time"
            else f"they needed more than the judge's {memory_bytes / 2**30:g} GiB of memory")
    return Verdict(f"{COULD_NOT_FINISH}{what}. Build it from the layers the exercise describes.", None)


def bounded_verdicts(exercises, public, hidden, seconds, memory_bytes):
    """{grade_id: Verdict} of each exercise on the artefacts ({call key: artefact} of each phase), judged
    in a child of this process's judge host: `seconds` of CPU time per exercise, `memory_bytes` of
    memory of its own (see bounded.run). bounded.JudgeFault when the judge fails by itself."""
    items = []
    for exercise in exercises:
        mine = [{key: artefacts[key] for key in calls(exercise, cases) if key in artefacts}
                for artefacts, cases in ((public, exercise.public_cases), (hidden, exercise.hidden_cases))]
        items.append((exercise, *mine))
    outcomes = bounded.run(f"{__name__}:verdict", items, seconds, memory_bytes)
    return {exercise.grade_id: verdict_of(outcome, seconds, memory_bytes)
            for exercise, outcome in zip(exercises, outcomes)}
