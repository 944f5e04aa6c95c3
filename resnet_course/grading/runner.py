"""Grades one submission inside the sandbox: a stand-alone script in a fresh interpreter.

Copied into the sandbox beside the pristine learner modules and run as `python -E -s -B runner.py` (its folder first on the import path); it
imports nothing from resnet_course (the sandbox cannot see the package). The grader talks to it in
JSON lines:

1. stdin, first line: {"token", "packages", "solutions": [[name, source]...], "graded": [[grade_id,
   public_source]...], "learner_modules": [...]}. The runner keeps stdin and stdout for itself on
   private descriptors and points fd 0 at /dev/null and fd 1 at stderr before any student code runs,
   so whatever the student prints lands on stderr, never on the result channel.
2. It runs the pristine packages cell, snapshots what the checks rely on (Guard), runs the student's
   solution cells (each in `try/except BaseException`, so sys.exit() ends only that cell), then each
   graded cell's public part in a namespace where the packages cell's names are the pristine ones,
   checking the Guard before and after. One record per graded cell: {"token", "phase": "public",
   "grade_id", "passed", "message"}; then {"token", "phase": "public-done"}.
3. Only then does the grader send the hidden parts ({"hidden": {grade_id: source}}): the hidden
   cases are never in this process while a message the feedback shows can be produced. Records
   {"token", "phase": "hidden", "grade_id", "passed"} (the grader ignores any message), then "done".

What an attacker inside this process could still do, honestly: student code runs in the same
interpreter as the checks (it has to: the checks call the student's functions), so a deliberate
attacker can walk the stack or gc to find the token and the result descriptor and write forged
records, or patch what the Guard does not watch (Keras internals, the Guard itself). The Guard stops
the accidental and the ordinary cheats (monkeypatching the check modules, numpy.testing, builtins,
sys hooks, redefining the test functions); printing, exiting, crashing and tampering with test cells
earn nothing; the sandbox keeps any attacker from the network, the instructor's files and the other
submissions, and the hidden cases only ever reach it after its last visible message.
"""
import builtins
import json
import os
import sys
import types

_HERE = os.path.dirname(os.path.abspath(__file__))
# Modules whose namespace the checks rely on: any value replaced in them (or, for the learner
# modules, added to them: a new global can shadow a builtin) is tampering.
_WATCHED_LIBRARIES = ("builtins", "numpy", "numpy.testing", "keras", "keras.ops", "keras.layers", "keras.models",
                      "keras.initializers")
_SYS_HOOKS = ("excepthook", "displayhook", "breakpointhook", "unraisablehook", "settrace", "setprofile")


class Guard:
    """A snapshot of the check machinery's identity, taken before any student code runs."""

    def __init__(self, learner_modules):
        self.learner = [name for name in learner_modules if name in sys.modules]
        self.libraries = [name for name in _WATCHED_LIBRARIES if name in sys.modules]
        self.modules = {name: sys.modules[name] for name in self.learner + self.libraries}
        self.namespaces = {name: dict(vars(module)) for name, module in self.modules.items()}
        self.functions = {}
        self.classes = {}
        for name, namespace in self.namespaces.items():
            for key, value in namespace.items():
                if isinstance(value, types.FunctionType):
                    self.functions[f"{name}.{key}"] = (value, value.__code__, value.__defaults__,
                                                       value.__kwdefaults__)
                elif isinstance(value, type) and name in self.learner:
                    self.classes[f"{name}.{key}"] = (value, dict(vars(value)))
        self.hooks = {name: getattr(sys, name) for name in _SYS_HOOKS}

    def violation(self):
        """None when everything is as snapshotted, else what was replaced (one short phrase)."""
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                return f"module {name} was replaced"
            current = vars(module)
            for key, value in self.namespaces[name].items():
                if key.startswith("__") and key != "__import__":
                    continue
                if current.get(key, _MISSING) is not value:
                    return f"{name}.{key} was replaced"
            if name in self.learner:
                added = sorted(set(current) - set(self.namespaces[name]))
                if added:
                    return f"{name}.{added[0]} was added"
        for name, (function, code, defaults, kwdefaults) in self.functions.items():
            if (function.__code__ is not code or function.__defaults__ is not defaults
                    or function.__kwdefaults__ is not kwdefaults):
                return f"the code of {name} was replaced"
        for name, (cls, attributes) in self.classes.items():
            current = vars(cls)  # Keras adds its own dunder attributes to a class in use
            for key, value in attributes.items():
                if not key.startswith("__") and current.get(key, _MISSING) is not value:
                    return f"{name}.{key} was replaced"
        for name, hook in self.hooks.items():
            if getattr(sys, name) is not hook:
                return f"sys.{name} was replaced"
        return None


_MISSING = object()


def _message(error):
    """The check's short message: an assertion's own text, else the exception's type and text."""
    text = str(error).strip()
    if isinstance(error, AssertionError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _run(source, namespace, label):
    """Executes `source` in `namespace`; None on success, else the error's message. Never raises."""
    try:
        exec(compile(source, label, "exec"), namespace)
    except BaseException as error:  # noqa: BLE001 - SystemExit and KeyboardInterrupt end only this cell
        return _message(error)
    return None


class Channel:
    """The runner's private result and job descriptors, taken before any student code runs."""

    def __init__(self, token_line):
        self.output = os.fdopen(os.dup(1), "w", buffering=1)
        self.input = os.fdopen(os.dup(0), "r")
        job = json.loads(token_line(self.input))
        self.token = job["token"]
        self.job = job
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        os.dup2(2, 1)

    def send(self, **record):
        self.output.write(json.dumps({"token": self.token, **record}) + "\n")
        self.output.flush()

    def receive(self):
        return json.loads(self.input.readline())


def _check(guard, source, namespace, label):
    """(passed, message) of one check run with the Guard verified before and after."""
    violation = guard.violation()
    if violation is None:
        failure = _run(source, namespace, label)
        violation = guard.violation()
        if violation is None:
            return failure is None, failure or "All tests passed!"
    return False, f"tampering: {violation}"


def main():
    channel = Channel(lambda stream: stream.readline())
    job = channel.job
    os.chdir(_HERE)
    learner = [name[:-3] for name in job["learner_modules"]]

    packages = {"__name__": "__main__", "__builtins__": builtins}
    failure = _run(job["packages"], packages, "<cell packages>")
    if failure is not None:
        channel.send(phase="error", message=f"the packages cell failed: {failure}")
        return
    for name in learner:  # the learner modules the packages cell did not import are watched too
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a module the course does not ship is simply not watched
            pass
    guard = Guard(learner)
    pristine = dict(packages)

    student = dict(packages)
    for name, source in job["solutions"]:
        _run(source, student, f"<cell {name}>")

    def check_namespace():
        # The student's functions, under the packages cell's pristine names (a student's own
        # `identity_block_test = ...` does not replace the course's).
        return {**student, **pristine}

    passed = {}
    for grade_id, source in job["graded"]:
        passed[grade_id], message = _check(guard, source, check_namespace(), f"<cell {grade_id}>")
        channel.send(phase="public", grade_id=grade_id, passed=passed[grade_id], message=message)
    channel.send(phase="public-done")

    hidden = channel.receive()["hidden"]
    for grade_id, source in hidden.items():
        ok = passed.get(grade_id, False)
        if ok and source.strip():
            ok, _ = _check(guard, source, check_namespace(), f"<cell {grade_id}>")
        channel.send(phase="hidden", grade_id=grade_id, passed=ok)
    channel.send(phase="done")


if __name__ == "__main__":
    main()
