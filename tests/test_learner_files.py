"""The learner's helper modules: generated copies of their package sources, stand-alone, with a
version guard that names the installed and the supported TensorFlow and Keras."""
import re
import subprocess
import sys

import pytest

import resnets_utils
from resnet_course.course import learner_files
from resnet_course.paths import ROOT

LEARNER_COPIES = list(learner_files.COPIES)


def test_learner_files_are_up_to_date_copies_of_their_sources():
    assert learner_files.main(["--check"]) == 0, "run `python -m resnet_course.course.learner_files`"


def test_check_names_a_stale_copy_and_write_repairs_it(tmp_path, capsys):
    for name in LEARNER_COPIES:
        (tmp_path / name).write_text(learner_files.render(name))
    (tmp_path / "training_utils.py").write_text(learner_files.render("training_utils.py") + "# edit\n")
    assert learner_files.stale(tmp_path) == ["training_utils.py"]
    assert learner_files.write(tmp_path) == ["training_utils.py"]
    assert learner_files.stale(tmp_path) == []


@pytest.mark.parametrize("name", LEARNER_COPIES)
def test_learner_files_stand_alone_and_say_where_they_come_from(name):
    text = (ROOT / name).read_text()
    assert text.splitlines()[0] == f"# Generated from the course's learner/{learner_files.COPIES[name]}.py; edit that, not this copy."
    assert not re.search(r"^\s*(from|import)\s+resnet_course", text, re.MULTILINE)
    assert len(text.splitlines()) < 200, "learner files stay at course size"


def test_render_refuses_a_package_import_without_a_learner_copy(monkeypatch, tmp_path):
    (tmp_path / "training.py").write_text("from resnet_course.models.resnet import build_model\n")
    monkeypatch.setattr(learner_files, "PACKAGE_DIR", tmp_path)
    with pytest.raises(ValueError, match="no learner copy"):
        learner_files.render("training_utils.py")


@pytest.mark.parametrize("tensorflow, keras, too_old", [
    ("2.18.0", "3.8.0", None), ("2.21.0", "3.15.0", None), ("2.22.0rc1", "3.16.0.dev1", None),
    ("2.17.1", "3.8.0", "TensorFlow 2.17.1"), ("2.18.1", "3.4.1", "Keras 3.4.1"),
])
def test_check_versions_lets_supported_and_newer_versions_through(tensorflow, keras, too_old):
    if too_old is None:
        resnets_utils.check_versions(tensorflow, keras)
        return
    with pytest.raises(resnets_utils.VersionError) as info:
        resnets_utils.check_versions(tensorflow, keras)
    message = str(info.value)
    assert too_old in message and "TensorFlow 2.18-2.21 with Keras 3.8-3.15" in message
    assert isinstance(info.value, ImportError) and "\n" not in message


def _import_with_versions(module, tensorflow, keras):
    """Import ``module`` in a fresh interpreter whose TensorFlow and Keras claim these versions
    (installed metadata for resnets_utils, the imported modules' __version__ otherwise)."""
    code = f"""
import importlib.metadata, sys
real = importlib.metadata.version
fake = {{"tensorflow": {tensorflow!r}, "keras": {keras!r}}}
importlib.metadata.version = lambda name: fake.get(name) or real(name)
if {module!r} != "resnets_utils":
    import keras, tensorflow
    keras.__version__, tensorflow.__version__ = fake["keras"], fake["tensorflow"]
import {module}
print("tensorflow imported:", "tensorflow" in sys.modules)
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_importing_resnets_utils_on_an_old_keras_raises_one_clear_error():
    result = _import_with_versions("resnets_utils", "2.18.1", "3.4.1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("resnets_utils.VersionError: this course needs TensorFlow 2.18-2.21")
    assert "installed: TensorFlow 2.18.1, Keras 3.4.1" in last
    supported = _import_with_versions("resnets_utils", "2.21.0", "3.15.0")
    assert supported.stdout.strip() == "tensorflow imported: False", supported.stderr


def test_importing_training_utils_checks_the_imported_versions():
    result = _import_with_versions("training_utils", "2.17.0", "3.15.0")
    assert result.returncode == 1
    assert "installed: TensorFlow 2.17.0, Keras 3.15.0" in result.stderr.strip().splitlines()[-1]


def test_generators_run_in_the_order_of_their_inputs():
    from importlib.util import find_spec

    from resnet_course.course import generated
    order = [module for module, *_ in generated.GENERATORS]
    assert all(find_spec(module) for module in order)
    assert order[0] == "resnet_course.course.learner_files"  # public_tests.py imports the learner files
    assert order.index("resnet_course.course.release") > max(
        order.index("resnet_course.course.expected_values"), order.index("resnet_course.course.notebook_sync"))


def test_check_generated_runs_every_check_and_names_the_stale_ones(monkeypatch, capsys):
    from resnet_course.course import generated
    calls = []
    monkeypatch.setattr(generated, "run", lambda module, check: calls.append((module, check))
                        or int(module == "resnet_course.course.notebook_sync"))
    assert generated.main(["--check"]) == 1
    assert calls == [(module, True) for module, *_ in generated.GENERATORS]
    assert "stale: resnet_course.course.notebook_sync" in capsys.readouterr().err
    calls.clear()
    assert generated.main([]) == 1  # generating stops where a generator fails
    assert calls[-1] == ("resnet_course.course.notebook_sync", False) and len(calls) == 3


def test_the_learner_side_names_the_data_files_as_the_package_does():
    import inspect

    from resnet_course.paths import DATASETS_DIR, DATA_FILES
    assert resnets_utils.DATA_FILES == DATA_FILES
    # the one learner-side default that names the data folder again (relative to the notebook)
    assert inspect.signature(resnets_utils.load_dataset).parameters["path"].default == DATASETS_DIR.name
