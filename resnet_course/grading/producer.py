"""Runs one submission's code inside the grading sandbox and sends what it builds, as data.

A stand-alone script in a fresh interpreter, copied into the sandbox beside the pristine learner
modules and `kernel.py`, run as `python -E -s -B producer.py` (its folder first on the import path);
it imports nothing from resnet_course. It never decides a grade: it runs the student's cells and,
for each call the grader asks for, sends the Keras model the student's function builds, serialized
as a plain JSON config (no weights, no outputs), or what happened instead. The judge (judge.py,
outside the sandbox) validates each model, rebuilds it itself with Keras's safe mode and runs the
checks on it; nothing this process writes is a verdict.

Protocol, JSON lines on private descriptors (the process keeps its stdin and stdout for itself and
points fd 0 at /dev/null and fd 1 at stderr before any student code runs, so that whatever the
student prints lands on stderr). Every line sent is at most MAX_RECORD bytes.

1. in:  {"packages", "cells": [[label, source]...], "functions": [name...], "cell_seconds"}
2. it runs the pristine packages cell; out: {"kind": "ready"} (or {"kind": "fault", "message"} if the
   packages cell failed: the grading machine's fault, not the student's)
3. it runs the student's cells in notebook order (kernel.run_cells: as a Jupyter kernel would, each
   cell with its own time limit); out: {"kind": "cell", "index": i} as each cell ends (the grader
   watches each cell's clock from these and kills a cell that outlives its limit and a grace), then
   {"kind": "cells", "results": [{label, status, error, line, note}...], "defined": [the functions of
   step 1 that exist and are callable]}
4. in: {"phase": "public", "calls": [call...]}; out: one {"kind": "artefact", "phase", "id",
   "artefact"} per call, then {"kind": "phase-done", "phase": "public"}
5. in (only after the grader has received all of step 4): {"phase": "hidden", "calls": [...]},
   the hidden cases' arguments (never their expected values); out: as in 4, then {"kind": "done"}.

A call is {"id", "function", "args"} plus, for a block, "input_shape" (without the batch axis),
"training" and "initializer" (the fixed initializer's kind). An artefact is {"outcome": "model",
"model": keras.saving.serialize_keras_object(model)} (a block is wrapped as keras.Model(X, Y) around
the symbolic keras.Input it was called on), or one of the outcomes "raised" (type, message, the
learner's frames, for a block the layers it had applied to X), "none", "not_tensor" / "not_model" (type), "disconnected", "undefined",
"interrupted" (the call ran past the per-cell limit), "too_large" (bytes), "unserializable" (type,
message). Each call is first run inside a keras.StatelessScope that makes no weights (the config does
not depend on them, and the judge makes its own); only a call that raised there runs again as in a
notebook, and that run's outcome is sent.

What student code in this process can do, honestly: anything Python can, within the sandbox (no
network, no instructor files, bounded memory, processes, disk and time). It can find these
descriptors and write any record it likes, replace this script's functions or Keras itself. All of
that changes only the data the judge receives: a forged record is a model config the judge
validates and rebuilds from Keras's own layers, or an outcome that earns nothing. The hidden cases'
expected values and the hidden test code never enter this process; the hidden arguments arrive only
after every message the feedback can show was produced.
"""
import builtins
import json
import os
import signal
import sys
import traceback

MAX_RECORD = 8 * 2**20  # bytes per JSON line; the grader drops longer ones
MAX_MESSAGE = 600  # characters of an exception's message kept
_HERE = os.path.dirname(os.path.abspath(__file__))


class Channel:
    """The producer's private job and result descriptors, taken before any student code runs."""

    def __init__(self):
        self.output = os.fdopen(os.dup(1), "w", buffering=1)
        self.input = os.fdopen(os.dup(0), "r")
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)

    def send(self, **record):
        line = json.dumps(record)
        if len(line) + 1 > MAX_RECORD:  # an honest producer never sends what the grader would drop
            record = {key: record[key] for key in ("kind", "phase", "id") if key in record}
            record["artefact"] = {"outcome": "too_large", "bytes": len(line)}
            line = json.dumps(record)
        self.output.write(line + "\n")
        self.output.flush()

    def receive(self):
        line = self.input.readline()
        return json.loads(line) if line else None


def _short(text, limit=MAX_MESSAGE):
    text = str(text).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _error_text(error):
    """'Type: message' of an exception (the message truncated)."""
    text = _short(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _plain_run_cells(cells, namespace, cell_seconds, on_result=None):
    """The stand-in for kernel.run_cells when kernel.py is not beside this script: plain exec."""
    results = []
    for index, (label, source) in enumerate(cells):
        if results and on_result is not None:
            on_result(index - 1, results[-1])
        try:
            exec(compile(source, f"<cell {label}>", "exec"), namespace)
            results.append({"label": label, "status": "ok", "error": None, "line": None, "note": None})
        except BaseException as error:  # noqa: BLE001 - SystemExit and KeyboardInterrupt end only this cell
            frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == f"<cell {label}>"]
            line = f"line {frames[-1].lineno}" if frames else None
            results.append({"label": label, "status": "error", "error": _error_text(error), "line": line,
                            "note": None})
    if results and on_result is not None:
        on_result(len(results) - 1, results[-1])
    return results


def _run_cells(cells, namespace, cell_seconds, on_result=None):
    try:
        import kernel
    except ImportError:
        return _plain_run_cells(cells, namespace, cell_seconds, on_result)
    return kernel.run_cells(cells, namespace, cell_seconds, on_result)


def _learner_frames(error):
    """(file, line, name, text) of the traceback entries in the learner's code: not Keras, TensorFlow,
    NumPy, the checks or this script."""
    library = tuple(os.path.dirname(getattr(sys.modules.get(name), "__file__", None) or "/nonexistent") + os.sep
                    for name in ("keras", "numpy", "tensorflow"))
    own = {os.path.join(_HERE, name) for name in ("producer.py", "resnet_checks.py", "public_tests.py")}
    frames = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = os.path.abspath(frame.filename) if not frame.filename.startswith("<") else frame.filename
        if path.startswith(library) or path in own:
            continue
        frames.append([frame.filename, frame.lineno, frame.name, _short(frame.line or "", 300)])
    return frames[-20:]


def _raised(error):
    return {"outcome": "raised", "type": type(error).__name__, "message": _short(error),
            "frames": _learner_frames(error)}


def _partial(keras, X):
    """The layers already applied to the symbolic input X when the block raised (e.g. an Add of two
    shapes), serialized as keras.Model(X, [the tensors nothing consumed]), or None. The checks explain
    such an Add from these layers. Reads what Keras records on tensors (private attributes, as the
    checks do); any surprise gives None."""
    try:
        leaves, stack, seen = [], [X], set()
        while stack:
            tensor = stack.pop()
            operation = tensor._keras_history.operation
            nodes = [node for node in operation._outbound_nodes if any(t is tensor for t in node.input_tensors)]
            if not nodes and tensor is not X:
                leaves.append(tensor)
            for node in nodes:
                if id(node) not in seen:
                    seen.add(id(node))
                    stack.extend(node.outputs)
        return keras.saving.serialize_keras_object(keras.Model(X, leaves)) if leaves else None
    except Exception:  # noqa: BLE001 - only a better message is lost
        return None


def _serialized(keras, model):
    try:
        return {"outcome": "model", "model": keras.saving.serialize_keras_object(model)}
    except Exception as error:  # noqa: BLE001 - a layer of the learner's own class without get_config
        return {"outcome": "unserializable", "type": type(error).__name__, "message": _short(error)}


class CallTimeout(BaseException):
    """Raised in a student's function that runs past its time limit (as a cell's interrupt)."""


def _interrupt(signum, frame):
    raise CallTimeout()


def produce(call, namespace, seconds=None):
    """The artefact of one call of a student's function (never raises); `seconds` limits the call
    (SIGALRM, main thread only), as a cell's time limit does."""
    import keras

    function = namespace.get(call["function"])
    if not callable(function):
        return {"outcome": "undefined"}
    args = dict(call["args"])
    if seconds:
        signal.signal(signal.SIGALRM, _interrupt)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return _produce(keras, function, call, args)
    except CallTimeout:
        return {"outcome": "interrupted", "seconds": seconds}
    finally:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _produce(keras, function, call, args):
    """The artefact of one call: first built without weights (below), and built again as a notebook
    would build it only when that raised, so that an error and its partial layers are the ones the
    learner gets in Jupyter."""
    artefact = _build_without_weights(keras, function, call, args)
    if artefact.get("outcome") == "raised":
        artefact = _build(keras, function, call, dict(args))
    return artefact


def _build_without_weights(keras, function, call, args):
    """_build inside a keras.StatelessScope that does not initialize variables: the layers get their
    shapes, the config is the same, but no weight is made (the judge makes its own from the config;
    creating ResNet50's 23.6 M parameters twice per submission was a third of this process's work).
    The variables it registered are dropped from Keras's global list afterwards, so nothing ever
    initializes them."""
    from keras.src.backend.common import global_state

    pending = list(global_state.get_global_attribute("uninitialized_variables", []) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            return _build(keras, function, call, dict(args))
    finally:
        global_state.set_global_attribute("uninitialized_variables", pending)


def _build(keras, function, call, args):
    X = None
    try:
        if "input_shape" in call:  # a block: called on a symbolic Input, as the checks call it
            import resnet_checks

            X = keras.Input(tuple(call["input_shape"]))
            Y = function(X, **args, training=call["training"],
                         initializer=resnet_checks.fixed_initializer(call["initializer"]))
        else:
            if "input_shape" in args:
                args["input_shape"] = tuple(args["input_shape"])
            Y = function(**args)
    except CallTimeout:
        raise
    except BaseException as error:  # noqa: BLE001 - a SystemExit in the learner's function is its outcome
        artefact = _raised(error)
        if "input_shape" in call:
            artefact["partial"] = _partial(keras, X)
        return artefact
    if Y is None:
        return {"outcome": "none"}
    if "input_shape" not in call:
        if not isinstance(Y, keras.Model):
            return {"outcome": "not_model", "type": type(Y).__name__}
        return _serialized(keras, Y)
    if not isinstance(Y, keras.KerasTensor):
        return {"outcome": "not_tensor", "type": type(Y).__name__}
    try:
        model = keras.Model(X, Y)
    except Exception:  # noqa: BLE001 - Keras found no path from X to Y
        return {"outcome": "disconnected"}
    return _serialized(keras, model)


def _phase(channel, namespace, expected, seconds):
    message = channel.receive()
    if not message or message.get("phase") != expected:
        return False
    for call in message["calls"]:
        channel.send(kind="artefact", phase=expected, id=call["id"], artefact=produce(call, namespace, seconds))
    return True


def main():
    channel = Channel()
    job = channel.receive()
    os.chdir(_HERE)
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    failure = _plain_run_cells([("packages", job["packages"])], namespace, None)[0]
    if failure["status"] != "ok":
        channel.send(kind="fault", message=f"the packages cell failed: {failure['error']}")
        return
    channel.send(kind="ready")
    results = _run_cells([tuple(cell) for cell in job["cells"]], namespace, job["cell_seconds"],
                         lambda index, result: channel.send(kind="cell", index=index))
    defined = [name for name in job["functions"] if callable(namespace.get(name))]
    channel.send(kind="cells", results=results, defined=defined)
    if _phase(channel, namespace, "public", job["cell_seconds"]):
        channel.send(kind="phase-done", phase="public")
        if _phase(channel, namespace, "hidden", job["cell_seconds"]):
            channel.send(kind="done")


if __name__ == "__main__":
    main()
