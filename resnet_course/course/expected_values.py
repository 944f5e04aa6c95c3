"""Computes the expected values of the assignment's checks from the reference solution.

Writes (a) check_cases.py, a fully generated learner module holding the public cases, and (b) the
hidden cases in the hidden test cells of the nbgrader source notebook, between the lines
``# BEGIN GENERATED HIDDEN CASES <name>`` and ``# END GENERATED HIDDEN CASES``.

    python -m resnet_course.course.expected_values           # = make expected
    python -m resnet_course.course.expected_values --check   # exit 1 and name what is stale

A case is a dict: "name", "input" (a spec for resnet_checks.make_input; blocks only), "args"
(the keyword arguments of the learner's function) and "expected" (what the checks compare).
The checking and summarising code is resnet_checks' own, so both sides read layers the same way.
"""
import argparse
import ast
import pprint
import sys

import numpy as np

from resnet_course import paths
from resnet_course.learner import tf_environment

tf_environment.apply_defaults()  # resnet_checks and reference load TensorFlow

import resnet_checks  # noqa: E402  (the learner-side checking machinery, at the repository root)
from resnet_course.course import reference  # noqa: E402

CHECK_CASES = paths.ROOT / "check_cases.py"
NOTEBOOK = paths.SOURCE_NOTEBOOK
CHECK_CASES_HEADER = '''# Generated from the course's reference solution; do not edit by hand.
"""The public cases of the assignment's checks: inputs, arguments and expected values.

A case is a dict: "name", "input" (how resnet_checks.make_input builds the input; blocks only),
"args" (the keyword arguments the function is called with) and "expected" (what the checks compare:
the layers, the output shape and summaries of the outputs, or ResNet50's layers and parameters).
"""
'''
HIDDEN_BEGIN = "# BEGIN GENERATED HIDDEN CASES "
HIDDEN_END = "# END GENERATED HIDDEN CASES"
EXERCISES = ("identity_block", "convolutional_block", "ResNet50")
PUBLIC_NAMES = {"identity_block": "IDENTITY_BLOCK_CASES",
                "convolutional_block": "CONVOLUTIONAL_BLOCK_CASES",
                "ResNet50": "RESNET50_CASES"}

# Every block case is run with both fixed initializers, in inference and in training mode.
OUTPUT_RUNS = (("ones", False), ("ones", True), ("wave", False), ("wave", True))
SIGNIFICANT_DIGITS = 7
DECIMALS = 6


def _levels(shape, levels):
    return {"shape": shape, "kind": "levels", "levels": levels}


def _wave(shape, freq, phase, scale):
    return {"shape": shape, "kind": "wave", "freq": freq, "phase": phase, "scale": scale}


# The course's own inputs (examples at -1, 1 and 3) plus a wave input with other sizes.
PUBLIC_SPECS = {
    "identity_block": [
        {"name": "public 1", "input": _levels((3, 4, 4, 3), [-1.0, 1.0, 3.0]),
         "args": {"f": 2, "filters": [4, 4, 3]}},
        {"name": "public 2", "input": _wave((2, 5, 5, 4), 0.7, 0.3, 2.0),
         "args": {"f": 3, "filters": [2, 3, 4]}},
    ],
    "convolutional_block": [
        {"name": "public 1", "input": _levels((3, 4, 4, 3), [-1.0, 1.0, 3.0]),
         "args": {"f": 2, "filters": [2, 4, 6], "s": 1}},
        {"name": "public 2", "input": _wave((2, 6, 6, 3), 0.45, 0.1, 1.5),
         "args": {"f": 3, "filters": [4, 3, 5], "s": 2}},
    ],
    "ResNet50": [
        {"name": "public", "args": {"input_shape": (64, 64, 3), "classes": 6}},
    ],
}

# Other shapes, filters, strides and window sizes than the public cases.
HIDDEN_SPECS = {
    "identity_block": [
        {"name": "hidden 1", "input": _wave((2, 6, 6, 5), 0.29, 1.1, 1.0),
         "args": {"f": 3, "filters": [3, 2, 5]}},
        {"name": "hidden 2", "input": _levels((4, 3, 3, 2), [2.0, -0.5, 0.25, -3.0]),
         "args": {"f": 2, "filters": [5, 3, 2]}},
    ],
    "convolutional_block": [
        {"name": "hidden 1", "input": _wave((2, 7, 7, 4), 0.83, 0.6, 1.2),
         "args": {"f": 3, "filters": [3, 5, 6], "s": 2}},
        {"name": "hidden 2", "input": _levels((3, 5, 5, 2), [0.5, -2.0, 1.5]),
         "args": {"f": 2, "filters": [2, 2, 4], "s": 3}},
    ],
    "ResNet50": [
        {"name": "hidden", "args": {"input_shape": (96, 96, 3), "classes": 10}},
    ],
}


def block_case(exercise, spec, implementation=reference):
    """A block case: the spec plus the expected layers and output summaries of the reference."""
    target = getattr(implementation, exercise)
    case = dict(spec)
    layers, _ = resnet_checks.block_structure(exercise, target, case)
    outputs, shapes = [], set()
    for kind, training in OUTPUT_RUNS:
        output = resnet_checks.run_block(exercise, target, case, kind, training)
        shapes.add(tuple(output.shape))
        outputs.append({"initializer": kind, "training": training, **resnet_checks.output_summary(output)})
    for kind in {kind for kind, _ in OUTPUT_RUNS}:
        runs = [r for r in outputs if r["initializer"] == kind]
        if resnet_checks.summary_difference(runs[0], runs[1]) is None:
            raise RuntimeError(f"{exercise} {spec['name']}: training and inference outputs coincide for "
                               f"initializer {kind!r}; choose another input so the training check means something")
    (output_shape,) = shapes
    case["expected"] = {**layers, "output_shape": output_shape, "outputs": outputs}
    return case


def resnet50_case(spec, implementation=reference):
    """A ResNet50 case: the spec plus the reference model's layer summary, the layers of each kind of
    block, the settings of each group of layers, the parameter count and, with every weight set by the
    checks (resnet_checks.set_check_weights), the outputs on two images in inference and training mode."""
    model = implementation.ResNet50(**spec["args"])
    items, covered = resnet_checks.resnet50_items(model)
    layers = resnet_checks.resnet50_layers(model)
    resnet_checks.set_check_weights(model, resnet_checks._resnet50_parts(items, covered))
    outputs = resnet_checks.resnet50_outputs(model, spec["args"]["input_shape"])
    return {**spec, "expected": {"params": int(model.count_params()), "layers": items, **layers,
                                 "outputs": [{"training": training, "output": outputs[training]}
                                             for training in (False, True)]}}


def compute_cases(specs, implementation=reference):
    """{exercise: [case, ...]} with rounded expected values, ready to print."""
    cases = {}
    for exercise in EXERCISES:
        if exercise == "ResNet50":
            cases[exercise] = [_rounded(resnet50_case(s, implementation)) for s in specs[exercise]]
        else:
            cases[exercise] = [_rounded(block_case(exercise, s, implementation)) for s in specs[exercise]]
    return cases


def _rounded(value):
    """Plain Python literals; floats to SIGNIFICANT_DIGITS, so the printed text is short and stable."""
    if isinstance(value, np.ndarray):
        return _rounded(value.tolist())
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_rounded(v) for v in value)
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        # Also to DECIMALS places: float noise around 0 (e.g. 6e-08) prints as 0.0; + 0.0 turns -0.0 into 0.0.
        return round(float(f"{float(value):.{SIGNIFICANT_DIGITS}g}"), DECIMALS) + 0.0
    raise TypeError(f"cannot print {type(value).__name__} as a literal")


def _literal(value):
    return pprint.pformat(value, width=110, compact=True, sort_dicts=False)


def render_check_cases(cases):
    """The whole text of check_cases.py."""
    assignments = [f"{PUBLIC_NAMES[exercise]} = {_literal(cases[exercise])}" for exercise in EXERCISES]
    return CHECK_CASES_HEADER + "\n" + "\n".join(assignments) + "\n"


def render_hidden(cases):
    return f"HIDDEN_CASES = {_literal(cases)}"


def _replace_between(text, begin, end, body, where):
    """text with the lines from the line starting with `begin` to the `end` line replaced by body
    (body includes the marker lines)."""
    start = text.find(begin)
    stop = text.find(end, start + 1)
    if start < 0 or stop < 0:
        raise ValueError(f"{where}: markers {begin.strip()!r} ... {end!r} not found")
    return text[:start] + body + text[stop + len(end):]


def _marked_region(text, begin, end):
    start = text.find(begin)
    stop = text.find(end, start + 1)
    if start < 0 or stop < 0:
        return None
    return text[start:stop + len(end)]


def _assigned_literals(code):
    """{name: value} of the `NAME = literal` statements in a piece of code."""
    values = {}
    for statement in ast.parse(code).body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values


def same_values(a, b, rtol=1e-5, atol=1e-6):
    """Equal literals, floats to within rounding and machine differences."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= atol + rtol * abs(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k], rtol, atol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_values(x, y, rtol, atol) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _hidden_cells(notebook):
    """{exercise: cell} of the code cells holding a hidden-cases region."""
    cells = {}
    for cell in notebook.cells:
        for line in cell.source.splitlines():
            if line.startswith(HIDDEN_BEGIN):
                cells[line[len(HIDDEN_BEGIN):].strip()] = cell
    return cells


def stale_parts(public_cases, hidden_cases, check_cases_text, notebook):
    """Names of the generated parts whose stored values differ from the computed ones."""
    stale = []
    try:
        stored = _assigned_literals(check_cases_text)
    except (SyntaxError, ValueError):  # hand-edited into something that is not literals
        stored = {}
    for exercise in EXERCISES:
        name = PUBLIC_NAMES[exercise]
        if name not in stored or not same_values(stored[name], public_cases[exercise]):
            stale.append(f"{CHECK_CASES.name}: {name}")
    if notebook is not None:
        cells = _hidden_cells(notebook)
        for exercise in EXERCISES:
            cell = cells.get(exercise)
            region = cell and _marked_region(cell.source, HIDDEN_BEGIN + exercise, HIDDEN_END)
            stored = _assigned_literals(region).get("HIDDEN_CASES") if region else None
            if stored is None or not same_values(stored, hidden_cases[exercise]):
                stale.append(f"{NOTEBOOK.relative_to(paths.ROOT)}: hidden cases {exercise}")
    return stale


def write_check_cases(cases, path=CHECK_CASES):
    """Writes check_cases.py whole; returns whether it changed."""
    new = render_check_cases(cases)
    if path.exists() and path.read_text() == new:
        return False
    path.write_text(new)
    return True


def write_notebook(hidden_cases, path=NOTEBOOK):
    """Rewrites the hidden-cases regions; returns (changed exercises, exercises without markers)."""
    import nbformat

    notebook = nbformat.read(str(path), as_version=4)
    cells = _hidden_cells(notebook)
    changed, missing = [], []
    for exercise in EXERCISES:
        cell = cells.get(exercise)
        if cell is None:
            missing.append(exercise)
            continue
        body = f"{HIDDEN_BEGIN}{exercise}\n{render_hidden(hidden_cases[exercise])}\n{HIDDEN_END}"
        new = _replace_between(cell.source, HIDDEN_BEGIN + exercise, HIDDEN_END, body, f"{path} ({exercise})")
        if new != cell.source:
            cell.source = new
            changed.append(exercise)
    if changed:
        nbformat.write(notebook, str(path))
    return changed, missing


def main(argv=None, implementation=reference):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated part is stale")
    options = parser.parse_args(argv)
    public_cases = compute_cases(PUBLIC_SPECS, implementation)
    hidden_cases = compute_cases(HIDDEN_SPECS, implementation)
    has_notebook = NOTEBOOK.exists()

    if options.check:
        notebook = None
        if has_notebook:
            import nbformat
            notebook = nbformat.read(str(NOTEBOOK), as_version=4)
        stored = CHECK_CASES.read_text() if CHECK_CASES.exists() else ""
        stale = stale_parts(public_cases, hidden_cases, stored, notebook)
        if not has_notebook:
            print(f"note: {NOTEBOOK.relative_to(paths.ROOT)} does not exist yet; checked {CHECK_CASES.name} only")
        if stale:
            print("stale (run `make expected`):\n  " + "\n  ".join(stale))
            return 1
        print("expected values are up to date")
        return 0

    print(("updated" if write_check_cases(public_cases) else "unchanged") + f" {CHECK_CASES.name}")
    if not has_notebook:
        print(f"{NOTEBOOK.relative_to(paths.ROOT)} does not exist yet: wrote {CHECK_CASES.name} only")
        return 0
    changed, missing = write_notebook(hidden_cases)
    print(f"hidden cases updated in {NOTEBOOK.relative_to(paths.ROOT)}: {', '.join(changed) or 'none'}")
    if missing:
        print(f"error: no '{HIDDEN_BEGIN}<name>' region for: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
