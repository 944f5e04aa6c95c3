"""The depth experiment's numbers quoted in prose are the committed JSON's (no training here).

images/depth_results.json is what `make depth` writes; the notebook's CIFAR-10 cell and the README's
results table quote it. bench/depth.md's run-5 table quotes bench/depth_run5_results.json, a frozen
record. Every error is formatted with one rule, f"{100*x:.1f}".
"""
import json
import re

import pytest

from resnet_course import paths
from resnet_course.training import depth

RESULTS = paths.IMAGES_DIR / depth.RESULTS_JSON
RUN5 = paths.ROOT / "bench" / "depth_run5_results.json"
NOTEBOOKS = (paths.SOURCE_NOTEBOOK, paths.RELEASE_NOTEBOOK)
LABELS = {name: depth.label(name) for name in depth.DEFAULT_MODELS}
REQUOTE = "images/depth_results.json changed: re-quote its numbers after `make depth`"


def percent(x):
    return f"{100 * x:.1f}"


@pytest.fixture(scope="module")
def results():
    return json.loads(RESULTS.read_text(encoding="utf8"))


def cell_source(notebook, cell_id):
    cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell.get("id") == cell_id]
    assert len(sources) == 1, f"{notebook.name}: expected one cell {cell_id!r}, found {len(sources)}"
    return sources[0]


def wall_time(seconds):
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: str(path.relative_to(paths.ROOT)))
def test_notebook_table_and_wall_time(results, notebook):
    source = cell_source(notebook, "deep_cifar_md")
    for key, label in LABELS.items():
        net = results["nets"][key]
        rows = [line for line in source.splitlines() if line.startswith(f"| {label} |")]
        assert len(rows) == 1, f"{notebook.name}, deep_cifar_md: one table row for {label} expected, got {rows}"
        cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
        quoted = cells[1:3]
        expected = [f"{percent(net['final_train_error'])} %", f"{percent(net['final_test_error'])} %"]
        assert quoted == expected, (
            f"{notebook.name}, deep_cifar_md, {label}: training / test error quoted {quoted}, "
            f"the JSON's are {expected}. {REQUOTE}")
    minutes = round(results["wall_seconds"] / 60)
    assert f"{minutes} minutes" in source, (
        f"{notebook.name}, deep_cifar_md: the wall time {results['wall_seconds']:.0f} s should be quoted as "
        f"'{minutes} minutes'. {REQUOTE}")


def test_readme_depth_row(results):
    lines = [line for line in (paths.ROOT / "README.md").read_text(encoding="utf8").splitlines()
             if line.startswith("| depth, CIFAR-10")]
    assert len(lines) == 1, f"README.md: one results-table row starting '| depth, CIFAR-10' expected, got {lines}"
    result = lines[0].strip("|").split("|")[1]
    numbers = re.findall(r"\d+\.\d", result.replace("*", "").split("%")[0])
    expected = [percent(results["nets"][key]["final_test_error"]) for key in LABELS]
    assert numbers == expected, f"README.md depth row: test errors {numbers}, the JSON's are {expected}. {REQUOTE}"
    assert wall_time(results["wall_seconds"]) in result, (
        f"README.md depth row: the wall time should read '{wall_time(results['wall_seconds'])}' "
        f"(wall_seconds {results['wall_seconds']:.1f}). {REQUOTE}")


def test_bench_run5_table_is_its_json():
    run5 = json.loads(RUN5.read_text(encoding="utf8"))["nets"]
    text = (paths.ROOT / "bench" / "depth.md").read_text(encoding="utf8")
    section = text[text.index("## Run 5"):text.index("## Run 4")]
    header = next(line for line in section.splitlines() if line.startswith("| iteration |"))
    iterations = [int(cell) for cell in header.strip("|").split("|")[1:]]
    for key, label in ((key, LABELS[key]) for key in ("resnet20", "resnet56")):
        for kind, curve in (("test", "test_curve"), ("training", "train_curve")):
            row = next(line for line in section.splitlines() if line.startswith(f"| {label}, {kind} error %"))
            quoted = [cell.strip().strip("*") for cell in row.strip("|").split("|")[1:]]
            errors = dict(zip(run5[key][curve]["iteration"], run5[key][curve]["error"]))
            expected = [percent(errors[i]) if i in errors else "" for i in iterations]
            assert quoted == expected, (
                f"bench/depth.md run 5, {label} {kind} error: quoted {quoted}, "
                f"bench/depth_run5_results.json has {expected}")
