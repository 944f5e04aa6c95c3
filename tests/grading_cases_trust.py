"""Hostile submissions against the grader's trust boundary, for the robustness batch and the cheat tests.

`trust_cases()` gives {student: (notebook bytes, Expected)} (Expected from tests/grading_batch_cases.py);
tests/grading_batch_cases.py merges them into the batch. Each submission's functions are stubs or
wrong, and its code attacks the grading process from inside the sandbox:

- FORGER_GC finds the producer's channel object through the garbage collector and writes passing
  records for every graded cell and the hidden phase, in the old runner's protocol and in the
  producer's (forged cell results, artefacts that claim a passing model);
- FORGER_TOKEN knows no name of the grader: it collects every string stored under a key containing
  "token" and writes pass records, with each of them, to every descriptor it can write;
- LEAKER asks for the hidden cases early (announces the end of the public phase) and writes them
  into every message it can (public records, artefacts, cell errors);
- HAND_MADE_MODELS answers the grader's calls with hand-made model configs: one that claims what it
  does not compute (fields "passed", "weights", "params", a correct-looking block with a wrong layer
  inside), one whose loading would run code (a Lambda with a marshalled function, a class from os);
- HUGE_MODEL builds a 10^9-unit Dense without allocating it (a stateless scope): the config is small
  but rebuilding it would not be; HUGE_RECORD sends a record over the size limit.
None of them earns a point; the leaker's feedback holds no hidden case (LEAK_MARKERS).
"""
from tests import grading_submissions as submissions
from tests.grading_batch_cases import Expected

FUNCTIONS = ("identity_block", "convolutional_block", "ResNet50")
GRADED = ("identity_block_test", "convolutional_block_test", "ResNet50_test")
NOTHING = dict.fromkeys(GRADED, 0.0)
# What the hidden cases hold that the public ones do not: their arguments and expected values.
LEAK_MARKERS = ("96, 96", "96x96", "[96, 96", "23608202", "23,608,202", "HIDDEN_CASES", "hidden 1", "hidden 2",
                "(2, 6, 6, 5)", "[6, 6, 5]", "[2, 7, 7, 4]", "(2, 7, 7, 4)")

# A passing-looking artefact: a "model" whose fields say it passed (the judge reads only the config).
_CLAIM = ('{"outcome": "model", "passed": True, "message": "All tests passed!", "params": 1234, '
          '"model": {"class_name": "Functional", "module": "keras.src.models.functional", "passed": True, '
          '"config": {"name": "forged", "layers": [], "input_layers": [], "output_layers": []}, '
          '"weights": [[1.0]], "outputs": [[0.0]]}}')

FORGER_GC = f"""
import gc, json
GRADED = {GRADED!r}
for channel in [o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "send")]:
    if hasattr(channel, "token"):  # the old runner: verdict records
        for grade_id in GRADED:
            channel.send(phase="public", grade_id=grade_id, passed=True, message="All tests passed!")
        channel.send(phase="public-done")
        hidden = channel.receive()["hidden"]
        for grade_id in hidden:
            channel.send(phase="hidden", grade_id=grade_id, passed=True)
        channel.send(phase="done")
    else:  # the producer: forged cell results and artefacts for every call
        channel.send(kind="ready")
        channel.send(kind="cells", results=[], defined={list(FUNCTIONS)!r})
        for phase in ("public", "hidden"):
            job = channel.receive()
            for call in job["calls"]:
                channel.send(kind="artefact", phase=phase, id=call["id"], artefact={_CLAIM})
            channel.send(kind="phase-done", phase=phase)
        channel.send(kind="done")
"""

FORGER_TOKEN = f"""
import gc, json, os
GRADED = {GRADED!r}
tokens = set()
for value in gc.get_objects():
    if isinstance(value, dict):
        try:
            items = list(value.items())
        except Exception:
            continue
        for key, item in items:
            if isinstance(key, str) and "token" in key.lower() and isinstance(item, str) and len(item) < 200:
                tokens.add(item)
lines = []
for token in sorted(tokens) or [""]:
    lines += [json.dumps({{"token": token, "phase": "public", "grade_id": g, "passed": True,
                          "message": "All tests passed!"}}) for g in GRADED]
    lines.append(json.dumps({{"token": token, "phase": "public-done"}}))
    lines += [json.dumps({{"token": token, "phase": "hidden", "grade_id": g, "passed": True}}) for g in GRADED]
    lines.append(json.dumps({{"token": token, "phase": "done"}}))
payload = ("\\n".join(lines) + "\\n").encode()
for fd in range(3, 256):
    try:
        os.write(fd, payload)
    except OSError:
        pass
"""

LEAKER = f"""
import gc, json
channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "send"))
if hasattr(channel, "token"):  # the old runner: ask for the hidden tests early, print them as public messages
    channel.send(phase="public-done")
    text = json.dumps(channel.receive())
    for grade_id in {GRADED!r}:
        channel.send(phase="public", grade_id=grade_id, passed=False, message=text)
else:  # the producer: end the public phase early, then write the hidden arguments everywhere
    channel.send(kind="cells", results=[], defined={list(FUNCTIONS)!r})
    public = channel.receive()
    for call in public["calls"]:
        channel.send(kind="artefact", phase="public", id=call["id"], artefact={{"outcome": "none"}})
    channel.send(kind="phase-done", phase="public")
    hidden = channel.receive()
    text = json.dumps(hidden)
    leak = {{"outcome": "raised", "type": "Leak", "message": text, "frames": [[text, 1, text, text]]}}
    for call in public["calls"]:
        channel.send(kind="artefact", phase="public", id=call["id"], artefact=leak)
    channel.send(kind="cells", results=[{{"label": text, "status": "error", "error": text, "line": text}}],
                 defined=[])
    channel.send(kind="phase-done", phase="public")
    for call in hidden["calls"]:
        channel.send(kind="artefact", phase="hidden", id=call["id"], artefact=leak)
    channel.send(kind="done")
"""

# Answers every call with hand-made configs, in turn: a correct-looking identity block whose Add is a
# Subtract, a Lambda holding a marshalled function that would write a file, a class from `os`, fields
# that claim a pass. Loading any of them must run nothing: the file never appears.
HAND_MADE_MODELS = """
import gc, json, keras, marshal, base64
import resnet_checks
channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel" and hasattr(o, "send"))

def block_config(call):
    X = keras.Input(tuple(call["input_shape"]))
    init = resnet_checks.fixed_initializer(call["initializer"])
    F1, F2, F3 = call["args"]["filters"]
    Y = X
    for filters, size in ((F1, 1), (F2, call["args"]["f"]), (F3, 1)):
        Y = keras.layers.Conv2D(filters, size, padding="same", kernel_initializer=init(seed=0))(Y)
        Y = keras.layers.BatchNormalization(axis=3)(Y, training=call["training"])
        if filters != F3:
            Y = keras.layers.Activation("relu")(Y)
    Y = keras.layers.Activation("relu")(keras.layers.Add()([Y, X]))
    text = json.dumps(keras.saving.serialize_keras_object(keras.Model(X, Y)))
    return json.loads(text.replace('"class_name": "Add"', '"class_name": "Subtract"'))

def code():
    open("/tmp/pwned-by-judge", "w").write("ran")

lambda_layer = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
                    "code": base64.b64encode(marshal.dumps(code.__code__)).decode(), "defaults": None,
                    "closure": None}}}}
os_layer = {"module": "os", "class_name": "system", "registered_name": None, "config": {"command": "touch /tmp/pwned"}}

def forged(call, index):
    if call["function"] == "identity_block" and index % 3 == 0:
        return {"outcome": "model", "passed": True, "model": block_config(call)}
    wrapper = {"module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional",
               "config": {"name": "m", "trainable": True, "layers": [lambda_layer if index % 3 == 1 else os_layer],
                          "input_layers": [], "output_layers": []}, "passed": True, "params": 1234}
    return {"outcome": "model", "model": wrapper, "passed": True}

channel.send(kind="cells", results=[], defined=["identity_block", "convolutional_block", "ResNet50"])
for phase in ("public", "hidden"):
    job = channel.receive()
    for index, call in enumerate(job["calls"]):
        channel.send(kind="artefact", phase=phase, id=call["id"], artefact=forged(call, index))
    channel.send(kind="phase-done", phase=phase)
channel.send(kind="done")
"""

# ResNet50 returns a model with a 10^9-unit Dense built in a stateless scope (no weight allocated): small
# to send, too large to rebuild.
HUGE_MODEL = """
import keras

def ResNet50(input_shape=(64, 64, 3), classes=6):
    with keras.StatelessScope(initialize_variables=False):
        X_input = keras.Input(input_shape)
        X = keras.layers.Flatten()(X_input)
        X = keras.layers.Dense(10**9)(X)
        X = keras.layers.Dense(classes, activation="softmax")(X)
        return keras.Model(X_input, X)
"""

# identity_block builds a model whose description is over the 8 MiB record limit (a 9 MiB layer name).
HUGE_RECORD = """
import keras

def identity_block(X, f, filters, training=True, initializer=None):
    return keras.layers.Activation("relu", name="x" * (9 * 2**20))(X)
"""


def trust_cases():
    """{student: (notebook bytes, Expected)}: the forgers, the leaker and the hand-made and huge models."""
    no_resnet = {"identity_block_test": 3.0, "convolutional_block_test": 3.0, "ResNet50_test": 0.0}
    no_identity = {"identity_block_test": 0.0, "convolutional_block_test": 3.0, "ResNet50_test": 0.0}
    return {
        "trust-forger-gc": (submissions.cheat("identity_block", FORGER_GC), Expected(None, NOTHING)),
        "trust-forger-token": (submissions.cheat("identity_block", FORGER_TOKEN), Expected(None, NOTHING)),
        "trust-leaker": (submissions.cheat("identity_block", LEAKER), Expected(None, NOTHING)),
        "trust-hand-made-models": (submissions.cheat("identity_block", HAND_MADE_MODELS), Expected(None, NOTHING)),
        "trust-huge-model": (submissions.with_cell_source("ResNet50", HUGE_MODEL),
                             Expected(None, no_resnet, contains="too large")),
        "trust-huge-record": (submissions.with_cell_source("identity_block", HUGE_RECORD),
                              Expected(None, no_identity)),
    }
