"""python -m resnet_course.training.depth at a tiny size: a few steps on a tiny generated CIFAR-10 folder,
the JSON and figures it writes, --resume, and its one-line errors."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from resnet_course.data import cifar10
from resnet_course.data.cifar10 import CLASS_NAMES
from resnet_course.paths import ROOT
from resnet_course.training import depth
from resnet_course.training.checkpoints import CHECKPOINT_STATE
from tests.test_train_evaluate import error_line
from tests.test_train_evaluate import run as run_command


@pytest.fixture(autouse=True)
def no_cache_in_the_repository(tmp_path_factory, monkeypatch):
    """Decodes of the generated folder are cached in a temporary folder."""
    monkeypatch.setattr(cifar10, "DEFAULT_CACHE_DIR", tmp_path_factory.getbasetemp() / "cache")


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    """train/<class>/ 8 images and test/<class>/ 2 images per class, one colour per class."""
    root = tmp_path_factory.mktemp("cifar") / "CIFAR-10-images"
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 2)):
        for label, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = np.array([label * 25, 255 - label * 25, (label * 80) % 256])
            for i in range(count):
                image = np.clip(colour + rng.integers(-40, 40, (32, 32, 3)), 0, 255)
                Image.fromarray(image.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def run(argv, capsys):
    """(exit code, stdout, stderr) of depth.main(argv), as the train.py tests run their commands."""
    return run_command(depth, argv, capsys)


def tiny_args(tiny_cifar, tmp_path, iterations):
    return ["--dataset", tiny_cifar, "--models", "plain20", "resnet20",
            "--iterations", iterations, "--eval-every", 2, "--batch-size", 8,
            "--test-size", 10, "--lr", 0.01,  # a gentle rate: no tiny net diverges to NaN
            "--out", tmp_path / "run", "--figures", tmp_path / "figures"]


def test_tiny_run_writes_the_json_and_figures_and_resumes(tiny_cifar, tmp_path, capsys):
    code, out, err = run(tiny_args(tiny_cifar, tmp_path, 2), capsys)
    assert code == 0, err
    assert "iteration 2/2" in out and "left in all" in out  # progress with the time left

    # an existing run is not overwritten by accident
    line = error_line(*run(tiny_args(tiny_cifar, tmp_path, 2), capsys)[::2])
    assert "--resume" in line

    # --resume continues every net from its checkpoint, here for one more window
    code, out, err = run([*tiny_args(tiny_cifar, tmp_path, 4), "--resume"], capsys)
    assert code == 0, err
    assert "iterations 3-4" in out

    figures = tmp_path / "figures"
    results = json.loads((figures / depth.RESULTS_JSON).read_text())
    assert results["settings"]["iterations"] == 4
    assert results["settings"]["models"] == ["plain20", "resnet20"]
    assert results["machine"]["simd"] and results["machine"]["tensorflow"]
    assert results["wall_seconds"] > 0 and results["train_seconds"] > 0
    assert results["paper"]["test_error_percent"] == {"resnet20": 8.75, "resnet56": 6.97}
    assert set(results["nets"]) == {"plain20", "resnet20"}
    for name, net in results["nets"].items():
        assert net["plain"] == (name == "plain20")
        assert net["iterations"] == 4
        assert len(net["conv_layers"]) == 19  # ResNet-20: 19 convs + the dense layer
        assert net["train_curve"]["iteration"] == [2, 4]
        assert all(0 <= e <= 1 for e in net["train_curve"]["error"])
        assert net["test_curve"]["iteration"] == [0, 2, 4]  # initialisation, then each window
        assert all(0 <= e <= 1 for e in net["test_curve"]["error"])
        assert net["final_test_error"] == net["test_curve"]["error"][-1]
        # at initialisation and at the end of each window that was due (both runs' plans)
        assert set(net["gradient_norms"]) == {"0", "2", "4"}
        for iteration, norms in net["gradient_norms"].items():
            assert len(norms) == 19 and all(n >= 0 and math.isfinite(n) for n in norms)
            if iteration == "0":  # a trained net may fit the tiny set to an exact zero gradient
                assert all(n > 0 for n in norms)
        assert net["seconds_per_iteration"] > 0
    for name in (depth.CURVES_FIGURE, depth.GRADIENTS_FIGURE):
        with Image.open(figures / name) as image:
            assert image.format == "PNG" and image.width > 800 and image.height > 300

    # --report-only redraws from the checkpoints without training, with the run's own settings
    # (none retyped: the run's 4 iterations, not the default 500)
    code, out, err = run(["--report-only", "--out", tmp_path / "run", "--figures", tmp_path / "again"], capsys)
    assert code == 0, err
    again = json.loads((tmp_path / "again" / depth.RESULTS_JSON).read_text())
    assert again["wall_seconds"] is None
    assert {k: v for k, v in again["settings"].items() if k != "figures"} == \
        {k: v for k, v in results["settings"].items() if k != "figures"}
    for name, net in again["nets"].items():
        assert net["test_curve"] == results["nets"][name]["test_curve"]
        assert net["gradient_norms"] == results["nets"][name]["gradient_norms"]
    assert (tmp_path / "again" / depth.CURVES_FIGURE).is_file()

    # a continued run keeps its settings, and says which option differs in this command's terms
    for option, value in (("--warmup", 1), ("--eval-every", 1), ("--lr", 0.1)):
        line = error_line(*run(["--resume", "--out", tmp_path / "run", "--iterations", 8, option, value,
                                "--figures", tmp_path / "refused"], capsys)[::2])  # never the repository's images/
        assert f"{option} {value} differs from the run's" in line and "--steps-per-epoch" not in line, line
    # --resume on a folder that holds no run stops at once instead of starting afresh
    line = error_line(*run(["--resume", "--out", tmp_path / "typo", "--figures", tmp_path / "refused"], capsys)[::2])
    assert "holds no run to continue" in line
    # a run made before its settings were saved is redrawn from its checkpoints (all but the warm-up)
    (tmp_path / "run" / depth.RUN_SETTINGS).unlink()
    code, out, err = run(["--report-only", "--out", tmp_path / "run", "--figures", tmp_path / "older"], capsys)
    assert code == 0, err
    older = json.loads((tmp_path / "older" / depth.RESULTS_JSON).read_text())["settings"]
    assert {k: v for k, v in older.items() if k not in ("figures", "warmup", "schedule")} == \
        {k: v for k, v in results["settings"].items() if k not in ("figures", "warmup", "schedule")}


def test_what_would_stop_a_run_stops_it_before_any_net_trains(tiny_cifar, tmp_path, capsys):
    (tmp_path / "run" / "resnet20").mkdir(parents=True)
    (tmp_path / "run" / "resnet20" / CHECKPOINT_STATE).write_text("{}")  # another run's net
    line, out = (lambda code, out, err: (error_line(code, err), out))(
        *run(tiny_args(tiny_cifar, tmp_path, 2), capsys))
    assert "already holds a run" in line and "iteration" not in out  # plain20 did not train first
    (tmp_path / "afile").write_text("x")
    args = tiny_args(tiny_cifar, tmp_path, 2)
    args[args.index("--out") + 1], args[args.index("--figures") + 1] = tmp_path / "other", tmp_path / "afile"
    line = error_line(*run(args, capsys)[::2])
    assert "--figures" in line and "not a folder" in line


def test_a_data_set_that_is_not_cifar10_is_refused(tmp_path, capsys):
    signs = ROOT / "datasets"
    if not (signs / "train_signs.h5").is_file():
        pytest.skip("needs the SIGNS files: make data")
    line = error_line(*run(["--dataset", signs, "--models", "resnet20", "--iterations", 2, "--eval-every", 2,
                            "--out", tmp_path / "run", "--figures", tmp_path / "figures"], capsys)[::2])
    assert "this experiment is for CIFAR-10" in line and "signs" in line


def test_gradient_points_and_defaults():
    s = depth.Settings()
    assert (s.iterations, s.batch_size, s.eval_every, s.precision) == (500, 128, 50, "float32")
    assert s.models == ("plain20", "plain56", "resnet20", "resnet56")
    assert s.gradient_iterations() == [0, 50, 250, 500]
    assert depth.Settings(iterations=4, eval_every=2).gradient_iterations() == [0, 2, 4]


def test_findings_compare_each_deeper_net_with_the_shallower_one():
    def net(label, plain, convs, train, test, iterations=500):
        return {"label": label, "plain": plain, "conv_layers": ["c"] * convs,
                "final_train_error": train, "final_test_error": test, "iterations": iterations}
    nets = {"plain20": net("plain-20", True, 19, 0.30, 0.32),
            "plain56": net("plain-56", True, 55, 0.40, 0.41),
            "resnet20": net("ResNet-20", False, 19, 0.25, 0.28),
            "resnet56": net("ResNet-56", False, 55, 0.20, 0.24)}
    assert depth.findings(nets) == [
        "plain-56 ends with higher train error than plain-20: 40.0% against 30.0%",
        "plain-56 ends with higher test error than plain-20: 41.0% against 32.0%",
        "ResNet-56 ends with lower train error than ResNet-20: 20.0% against 25.0%",
        "ResNet-56 ends with lower test error than ResNet-20: 24.0% against 28.0%"]
    # a net drawn from its checkpoint before it finished is not compared with a finished one
    nets["plain56"] = net("plain-56", True, 55, 0.60, 0.61, iterations=250)
    assert depth.findings(nets)[0] == ("plain-56 (250 iterations) and plain-20 (500) are not "
                                       "compared: they have not trained as long")


@pytest.mark.parametrize("argv, words", [
    (["--iterations", "10", "--eval-every", "3"], "must divide"),
    (["--models", "plain20", "resnet21"], "not a CIFAR-10 net"),
    (["--models", "resnet20", "course_resnet50"], "not a CIFAR-10 net"),
    (["--lr", "0"], "--lr must be above 0"),
    (["--lr", "-0.1"], "--lr must be above 0"),
    (["--seed", "-1"], "--seed must be 0 or more"),
    (["--weight-decay", "-1"], "--weight-decay must be 0 or more"),
    (["--warmup", "-1"], "--warmup must be 0 or more"),
    (["--test-size", "0"], "--test-size must be at least 1"),
    (["--iterations", "0"], "at least 1"),
    (["--iterations", "100", "--warmup", "50"], "--warmup"),
])
def test_bad_settings_are_one_line_errors(argv, words, capsys, tmp_path):
    line = error_line(*run([*argv, "--out", tmp_path / "run"], capsys)[::2])
    assert words in line


def test_help_lists_every_option_with_its_default_without_tensorflow():
    code = ("import sys, runpy; sys.argv = ['depth', '--help']\n"
            "try:\n    runpy.run_module('resnet_course.training.depth', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow loaded for --help'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for action in depth.build_parser()._actions:
        for option in action.option_strings:
            assert option in text
        if action.dest != "help":
            assert "default" in " ".join(action.help.split()), action.dest
    assert "He et al. (2015)" in text


def test_learning_rate_is_a_linear_warm_up_then_the_papers_steps():
    def rates(steps=(0, 1, 49, 98, 99, 100, 250, 251, 375, 376, 499), **settings):
        schedule = depth.learning_rate(depth.Settings(**settings))
        return [round(float(schedule(step)), 6) for step in steps]
    # the default: lr (t + 1) / 100 at step t < 100, then lr, lr/10 from 50 %, lr/100 from 75 %
    assert depth.Settings().warmup == depth.DEFAULT_WARMUP == 100
    assert rates() == [0.001, 0.002, 0.05, 0.099, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert rates(warmup=0) == [0.1] * 7 + [0.01, 0.01, 0.001, 0.001]
    assert rates(warmup=1) == rates(warmup=0)
    # a short run warms up for a fifth of its iterations; the drops stay at 50 % and 75 %
    assert depth.Settings(iterations=100).warmup == 20
    assert rates((0, 19, 50, 51, 75, 76), iterations=100) == [0.005, 0.1, 0.1, 0.01, 0.01, 0.001]
