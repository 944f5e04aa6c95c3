"""bench/train_speed.py and bench/interleaved_speed.py: their tables are consistent and their
command lines answer."""
import importlib.util
import subprocess
import sys

from resnet_course.paths import ROOT

SCRIPT = ROOT / "bench" / "train_speed.py"
INTERLEAVED = ROOT / "bench" / "interleaved_speed.py"


def load_script(path):
    """The script as a module; interleaved_speed imports train_speed, its sibling, as Python
    would find it beside the script."""
    if path == INTERLEAVED and "train_speed" not in sys.modules:
        sys.modules["train_speed"] = load_script(SCRIPT)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_cli_answers(script, help_words, bad_arguments, error):
    """--help names help_words; bad_arguments exit 2 with error on stderr."""
    help_text = subprocess.run([sys.executable, script, "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert all(word in help_text for word in help_words), help_text
    refused = subprocess.run([sys.executable, script, *bad_arguments], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and error in refused.stderr, refused.stderr


def test_every_variant_has_a_description_and_a_way_to_run():
    bench = load_script(SCRIPT)
    assert set(bench.DEFAULT_VARIANTS) <= set(bench.VARIANTS)
    assert set(bench.BUILDER_STEPS) <= set(bench.VARIANTS)
    assert set(bench.TRAINER_STEPS) <= set(bench.VARIANTS)
    for name, (environment, description) in bench.VARIANTS.items():
        assert description and isinstance(environment, dict)
        runnable = (name.startswith("course") or name == "tfdata" or name in bench.BUILDER_STEPS
                    or name.startswith("project") or name in bench.TRAINER_STEPS)
        assert runnable, name
        assert all(value is None or isinstance(value, str) for value in environment.values())


def test_help_lists_the_variants_and_an_unknown_one_is_refused():
    assert_cli_answers(SCRIPT, ["project-bf16", "--epochs"], ["--variants", "warp-drive"],
                       "invalid choice: 'warp-drive'")


def test_interleaved_models_are_build_model_options_and_its_cli_answers():
    from resnet_course.models import resnet
    module = load_script(INTERLEAVED)
    options = set(resnet.build_model.__code__.co_varnames)
    for precision, speedups, description in module.MODELS.values():
        assert precision in ("float32", "bfloat16") and description
        assert set(speedups) <= options
    assert_cli_answers(INTERLEAVED, ["matmul-bf16", "--rounds"], ["--rounds", "1"],
                       "--rounds must be at least 2")
