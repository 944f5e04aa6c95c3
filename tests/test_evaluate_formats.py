"""evaluate.py reads what Keras reads: .keras files and legacy HDF5 (.h5, .hdf5) ones, told apart by
their content, not their names; a file is called truncated only when it is."""
import json
import shutil
import zipfile

import keras
import numpy as np
import pytest

import evaluate
from resnet_course.learner import training
from resnet_course.paths import DATASETS_DIR, DATA_FILES
from resnet_course.training import inference
from resnets_utils import load_split

TEST_FILE = DATASETS_DIR / DATA_FILES["test"]
needs_signs = pytest.mark.skipif(not all((DATASETS_DIR / name).is_file() for name in DATA_FILES.values()),
                                 reason="datasets/*_signs.h5 not built (make data)")


def run(argv, capsys):
    """(exit code, stdout, stderr) of evaluate.main(argv)."""
    try:
        code = evaluate.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code, err):
    assert code not in (0, None) and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{name: path} of one small SIGNS classifier trained a little (better than chance), saved as
    .keras, .h5 and .hdf5, with input scaling and mirror averaging as the notebook saves its model."""
    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    network = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(keras.layers.Flatten()(x)))
    X, y, _ = load_split(DATASETS_DIR / DATA_FILES["train"], "train")
    network.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    network.fit(X / 255.0, y, epochs=8, batch_size=32, verbose=0)  # about 0.9 on the test split
    model = training.with_input_scaling(network, mirror_average=True)
    paths = {suffix: folder / f"model{suffix}" for suffix in (".keras", ".h5", ".hdf5")}
    for path in paths.values():
        model.save(path)
    return paths


def scored(path, capsys):
    """(the data summary of evaluate.py --json on the SIGNS test file, the note lines it logged)."""
    code, out, err = run([path, "--data", TEST_FILE, "--json"], capsys)
    assert code == 0, err
    return json.loads(out)["data"], [line for line in err.splitlines() if line.startswith("note:")]


@needs_signs
def test_a_legacy_h5_model_scores_as_its_keras_file_with_a_note(saved, tmp_path, capsys):
    reference, notes = scored(saved[".keras"], capsys)
    assert notes == [] and reference["accuracy"] > 0.6, reference["accuracy"]  # it learned something
    renamed_h5 = shutil.copy(saved[".h5"], tmp_path / "renamed.keras")    # the kind is in the content
    renamed_keras = shutil.copy(saved[".keras"], tmp_path / "renamed.h5")
    for path, legacy in ((saved[".h5"], True), (saved[".hdf5"], True), (renamed_h5, True), (renamed_keras, False)):
        summary, notes = scored(path, capsys)
        # the same predictions: accuracy, confusion matrix, per-class figures; loss to float rounding
        assert summary.pop("loss") == pytest.approx(reference["loss"], rel=1e-5)
        assert summary == {key: value for key, value in reference.items() if key != "loss"}, path
        assert notes == ([f"note: {path} is in the legacy HDF5 format; Keras 3 saves .keras files "
                          f"(model.save('name.keras'))."] if legacy else []), path

    code, out, _ = run([saved[".h5"], "--data", TEST_FILE], capsys)  # the text report: the note first
    assert code == 0 and out.startswith("note: ") and f"accuracy {reference['accuracy']:.4f}" in out


@needs_signs
def test_a_cut_file_is_called_truncated(saved, tmp_path, capsys):
    for suffix in (".keras", ".h5"):
        data = saved[suffix].read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[:len(data) // 2])
        line = error_line(*run([cut, "--data", TEST_FILE], capsys)[::2])
        assert f"{cut}: truncated" in line, line


def test_other_files_are_not_called_truncated(tmp_path, capsys):
    text = tmp_path / "model.keras"
    text.write_text("a text file, not a model\n")
    renamed = tmp_path / "model.h5"
    renamed.write_text("a text file, not a model\n")
    no_model = tmp_path / "other.keras"
    with zipfile.ZipFile(no_model, "w") as archive:
        archive.writestr("hello.txt", "a zip, but no model")
    cases = {text: "not a Keras model file: neither a .keras file (a zip archive) nor a legacy HDF5 .h5 file",
             renamed: "not a Keras model file",
             no_model: "not a loadable Keras model"}
    if TEST_FILE.is_file():
        cases[TEST_FILE] = "an HDF5 file without a Keras model in it (no model_config); if it is a data set"
    for path, expected in cases.items():
        line = error_line(*run([path, "--data", "signs"], capsys)[::2])
        assert expected in line and "truncated" not in line, line


def test_the_kind_is_told_by_the_first_bytes(tmp_path):
    zip_named_h5 = tmp_path / "a.h5"
    with zipfile.ZipFile(zip_named_h5, "w") as archive:
        archive.writestr("config.json", "{}")
    hdf5_named_keras = tmp_path / "b.keras"
    import h5py
    with h5py.File(hdf5_named_keras, "w") as file:
        file["x"] = np.zeros(1000)
    assert inference.model_file_kind(zip_named_h5) == "keras"
    assert inference.model_file_kind(hdf5_named_keras) == "h5"
    data = hdf5_named_keras.read_bytes()
    assert inference._hdf5_stored_size(hdf5_named_keras) == len(data)  # the superblock's own count
    hdf5_named_keras.write_bytes(data[:-1])
    with pytest.raises(inference.ModelFileError, match="truncated: an HDF5 file"):
        inference.model_file_kind(hdf5_named_keras)
