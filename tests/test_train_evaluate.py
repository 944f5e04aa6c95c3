"""train.py and evaluate.py end to end, with a few training steps per run.

The CLIs run in-process through main(argv) (one TensorFlow start for the whole file);
--help runs once as a subprocess.  SIGNS runs use the built datasets/ (skipped when
absent), CIFAR-10 runs a tiny generated image folder.
"""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import evaluate
import train
from resnet_course.data import cifar10, datasets
from resnet_course.data.cifar10 import CLASS_NAMES
from resnet_course.paths import DATASETS_DIR as SIGNS_DIR, DATA_FILES, ROOT, SAMPLE_PHOTO
from synthetic_photos import BACKGROUNDS, SKIN_TONES, photo

HAVE_SIGNS = all((SIGNS_DIR / name).is_file() for name in DATA_FILES.values())
needs_signs = pytest.mark.skipif(not HAVE_SIGNS, reason="datasets/*_signs.h5 not built (make data)")
MY_IMAGE = SAMPLE_PHOTO
QUICK = ["--steps-per-epoch", "2", "--batch-size", "16"]


@pytest.fixture(autouse=True)
def no_cache_in_the_repository(tmp_path_factory, monkeypatch):
    """CIFAR-10 decodes of generated folders are cached in a temporary folder."""
    monkeypatch.setattr(cifar10, "DEFAULT_CACHE_DIR", tmp_path_factory.getbasetemp() / "cache")


def run(module, argv, capsys):
    """(exit code, stdout, stderr) of module.main(argv); argparse exits are caught too."""
    try:
        code = module.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code, err):
    """The one error line of a failed command (TensorFlow may log lines before it)."""
    assert code not in (0, None)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def metrics_of(out_dir):
    return json.loads((Path(out_dir) / "metrics.json").read_text())


# ---- a tiny CIFAR-10 image folder ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    """train/<class>/ 24 images and test/<class>/ 6 images per class; each class has its own
    colour, so a few steps already learn something."""
    root = tmp_path_factory.mktemp("cifar") / "CIFAR-10-images"
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("test", 6)):
        for label, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True)
            colour = np.array([label * 25, 255 - label * 25, (label * 80) % 256])
            for i in range(count):
                noise = rng.integers(-40, 40, (32, 32, 3))
                image = np.clip(colour + noise, 0, 255).astype(np.uint8)
                Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


# ---- --help ------------------------------------------------------------------------------

def test_help_documents_every_option_with_its_default(capsys):
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for action in train.build_parser()._actions:
        for option in action.option_strings:
            assert option in text
        if action.dest not in ("help", "list_models"):
            assert "default" in " ".join(action.help.split()), action.dest
    for name in ("resnet20", "plain20", "resnet50", "course_resnet50", "cosine", "onecycle"):
        assert name in text
    assert "signs: 22 / cifar10: 11" in text  # recipe defaults per data set

    code, out, _ = run(evaluate, ["--help"], capsys)
    assert code == 0
    for action in evaluate.build_parser()._actions:
        for option in action.option_strings:
            assert option in out
        if action.option_strings and action.dest not in ("help", "json"):
            assert "default" in action.help, action.dest


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_help_and_bad_options_answer_without_loading_tensorflow(script):
    """Loading TensorFlow takes seconds; --help and a usage error need none of it."""
    probe = (f"import sys, runpy; sys.argv = [{script!r}, *sys.argv[1:]]\n"
             "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('LOADED' if {'tensorflow', 'keras'} & set(sys.modules) else 'NOT LOADED')")
    for arguments in (["--help"], ["--no-such-option"]):
        result = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True,
                                text=True, cwd=ROOT, timeout=120)
        assert result.stdout.splitlines()[-1] == "NOT LOADED", (arguments, result.stderr)


# ---- SIGNS: train, resume, evaluate --------------------------------------------------------

@pytest.fixture(scope="module")
def signs_run(tmp_path_factory):
    """A 2-epoch run of the small CIFAR-style resnet20 on SIGNS, then resumed to 3 epochs.
    Returns (run folder, metrics after 2 epochs, metrics after 3)."""
    if not HAVE_SIGNS:
        pytest.skip("datasets/*_signs.h5 not built (make data)")
    out = tmp_path_factory.mktemp("runs") / "signs"
    argv = ["--dataset", "signs", "--model", "resnet20", "--epochs", "2", "--train-size", "120",
            "--test-size", "30", "--out", out, *QUICK]
    assert train.main([str(a) for a in argv]) == 0
    first = metrics_of(out)
    assert train.main(["--out", str(out), "--resume", "--epochs", "3"]) == 0
    return out, first, metrics_of(out)


@needs_signs
def test_signs_run_writes_model_metrics_plots_and_checkpoint(signs_run):
    out, metrics, _ = signs_run
    for name in ("model.keras", "metrics.json", "curves.png", "confusion_matrix.png",
                 "inference.png", "checkpoint.json"):
        assert (out / name).stat().st_size > 0, name
    assert len(metrics["history"]["loss"]) == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"):
        assert len(metrics["history"][key]) == 2, key
    test = metrics["test"]
    assert test["images"] == 30 and 0 <= test["accuracy"] <= 1 and test["loss"] > 0
    assert set(test["per_class"]) == {"0", "1", "2", "3", "4", "5"}
    assert "accuracy_before_bn_recalibration" in test
    assert metrics["config"]["model"] == "resnet20" and metrics["config"]["epochs"] == 2
    assert metrics["config"]["optimizer"] == "adam"  # the signs recipe filled it in
    assert metrics["command"].startswith("train.py --dataset signs")
    assert metrics["train_images_per_second"] > 0 and metrics["wall_seconds"] > 0
    for key in ("cpu", "simd", "cores", "python", "tensorflow", "keras", "numpy"):
        assert metrics["machine"][key]
    assert metrics["dataset"]["train_images"] == 120


@needs_signs
def test_resume_continues_from_the_checkpoint(signs_run):
    out, first, resumed = signs_run
    assert len(resumed["history"]["loss"]) == 3
    assert resumed["history"]["loss"][:2] == first["history"]["loss"]
    assert resumed["resumed_from_epoch"] == 2 and resumed["config"]["epochs"] == 3
    state = json.loads((out / "checkpoint.json").read_text())
    assert state["epoch"] == 3
    assert [p.name for p in out.glob("checkpoint-*.keras")] == [state["model_file"]]
    # the optimizer's step count carried over: the cosine schedule ended at 0 after 3 epochs
    assert resumed["history"]["lr"][-1] == pytest.approx(0.0, abs=1e-9)


@needs_signs
def test_saved_model_takes_raw_pixels_and_reproduces_the_test_accuracy(signs_run, capsys):
    out, _, metrics = signs_run
    model = keras.models.load_model(out / "model.keras")
    split = datasets.load("signs", test_size=30, seed=0)
    predicted = model.predict(split.X_test, verbose=0).argmax(axis=1)  # uint8 straight in
    assert np.mean(predicted == split.y_test) == pytest.approx(metrics["test"]["accuracy"])

    code, out_text, _ = run(evaluate, [out / "model.keras"], capsys)  # data from metrics.json
    assert code == 0
    assert f"accuracy {metrics['test']['accuracy']:.4f}" in out_text
    assert "precision" in out_text and "confusion matrix" in out_text


@needs_signs
def test_evaluate_json_on_an_h5_file(signs_run, capsys):
    out, _, _ = signs_run
    code, out_text, _ = run(evaluate, [out / "model.keras", "--data",
                                       SIGNS_DIR / "test_signs.h5", "--json"], capsys)
    assert code == 0
    summary = json.loads(out_text)
    data = summary["data"]
    assert data["images"] == 157 and "test_signs.h5" in data["name"]
    assert sum(map(sum, data["confusion_matrix"])) == 157
    assert sum(c["support"] for c in data["per_class"].values()) == 157
    assert summary["pixels"] == "raw 0-255"


@needs_signs
def test_evaluate_image_files(signs_run, capsys):
    out, _, _ = signs_run
    code, out_text, _ = run(evaluate, [out / "model.keras", MY_IMAGE, "--image", MY_IMAGE,
                                       "--json"], capsys)
    assert code == 0
    images = json.loads(out_text)["images"]
    # The same photo twice, in one batch: the same answer. Probabilities only to float32
    # rounding, since oneDNN's AVX2 kernels may sum the two rows of a batch in different orders.
    assert len(images) == 2
    first, second = images
    assert first["path"] == second["path"] and first["predicted"] == second["predicted"]
    assert first["probability"] == pytest.approx(second["probability"], abs=1e-6)
    assert first["probabilities"] == pytest.approx(second["probabilities"], abs=1e-6)
    assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert first["predicted"] in "012345"
    assert json.loads(out_text)["crop"] == "hand"  # a SIGNS model: as the notebook's load_my_image

    code, out_text, _ = run(evaluate, [out / "model.keras", "--pixels", "raw", MY_IMAGE], capsys)
    assert code == 0 and str(MY_IMAGE) in out_text  # images may also follow the options


# ---- CIFAR-10 -----------------------------------------------------------------------------

@pytest.mark.parametrize("model, val_split", [("resnet20", 0), ("plain20", 0.2)])
def test_cifar_residual_and_plain_nets(model, val_split, tiny_cifar, tmp_path, capsys):
    out = tmp_path / model
    code, _, err = run(train, ["--dataset", tiny_cifar, "--model", model, "--epochs", "1",
                               "--train-size", "200", "--test-size", "50", "--out", out,
                               "--val-split", val_split, *QUICK], capsys)
    assert code == 0, err
    metrics = metrics_of(out)
    # --val-split holds out a stratified part of the training images for the curves
    assert metrics["dataset"]["train_images"] == 200 - 40 * (val_split > 0)
    assert metrics["dataset"]["validation_images"] == (40 if val_split else 50)
    assert metrics["test"]["images"] == 50
    assert metrics["dataset"]["class_names"] == list(CLASS_NAMES)
    assert metrics["config"]["optimizer"] == "sgd"  # the cifar10 recipe
    saved = keras.models.load_model(out / "model.keras")
    layers = [layer for outer in saved.layers
              for layer in (outer.layers if isinstance(outer, keras.Model) else [outer])]
    has_adds = any(isinstance(layer, keras.layers.Add) for layer in layers)
    assert has_adds == (model == "resnet20")

    code, out_text, _ = run(evaluate, [out / "model.keras", "--data", tiny_cifar, "--json"],
                            capsys)
    assert code == 0
    summary = json.loads(out_text)
    assert summary["data"]["images"] == 60 and summary["mirror_average"] is False
    code, out_text, _ = run(evaluate, [out / "model.keras", "--data", tiny_cifar,
                                       "--mirror-average"], capsys)
    assert code == 0 and "averaged with mirror images" in out_text


def test_mirror_average_is_the_mean_over_each_image_and_its_mirror():
    from resnet_course.training import inference

    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    X = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3)).astype(np.uint8)
    plain = inference.predict_probabilities(model, X, 2, raw_pixels=False)
    mirrored = inference.predict_probabilities(model, X[:, :, ::-1], 2, raw_pixels=False)
    assert not np.allclose(plain, mirrored)  # the model is not mirror-symmetric
    np.testing.assert_allclose(
        inference.predict_probabilities(model, X, 2, raw_pixels=False, mirror_average=True),
        (plain + mirrored) / 2, rtol=1e-6)


def test_bfloat16_run_resumes_and_saves_a_plain_float32_model(tiny_cifar, tmp_path, capsys,
                                                              monkeypatch):
    from resnet_course.models.fused import FusedBatchNormalization
    from resnet_course.training import trainer
    monkeypatch.setattr(trainer, "has_native_bfloat16", lambda: False)
    out = tmp_path / "bf16"
    args = ["--dataset", tiny_cifar, "--model", "resnet20", "--train-size", "100",
            "--test-size", "30", "--out", out, "--precision", "bfloat16", *QUICK]
    code, out_text, err = run(train, [*args, "--epochs", "1"], capsys)
    assert code == 0, err
    assert "bfloat16 is emulated" in out_text  # a CPU without bf16 units is told so
    assert keras.config.dtype_policy().name == "float32"  # the run's policy did not leak
    code, _, err = run(train, ["--out", out, "--resume", "--epochs", "2"], capsys)
    assert code == 0, err
    metrics = metrics_of(out)
    assert metrics["config"]["precision"] == "bfloat16"
    assert metrics["epochs_completed"] == 2 and metrics["resumed_from_epoch"] == 1

    saved = keras.models.load_model(out / "model.keras")
    layers = [layer for outer in saved.layers
              for layer in (outer.layers if isinstance(outer, keras.Model) else [outer])]
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in layers)
    assert {layer.dtype_policy.name for layer in layers} == {"float32"}
    code, out_text, _ = run(evaluate, [out / "model.keras", "--data", tiny_cifar, "--json"],
                            capsys)
    assert code == 0


@pytest.mark.parametrize("model", ["resnet18", "resnet50"])
def test_imagenet_style_nets_train_a_step_at_32x32(model, tiny_cifar, tmp_path, capsys):
    out = tmp_path / model
    code, _, err = run(train, ["--dataset", tiny_cifar, "--model", model, "--epochs", "1",
                               "--steps-per-epoch", "1", "--batch-size", "8",
                               "--train-size", "40", "--test-size", "10", "--out", out], capsys)
    assert code == 0, err
    metrics = metrics_of(out)
    assert metrics["model"]["parameters"] > 10_000_000
    assert metrics["test"]["images"] == 10


@pytest.mark.skipif(not cifar10.SHARED_ZIP.is_file(), reason="shared CIFAR-10 zip absent")
def test_the_shared_zip_is_the_default_cifar10_source():
    data = datasets.load("cifar10", train_size=100, test_size=50, seed=0)
    assert data.X_train.shape == (100, 32, 32, 3) and data.X_test.shape == (50, 32, 32, 3)
    assert np.bincount(data.y_train).tolist() == [10] * 10
    assert data.class_names == CLASS_NAMES


# ---- a resume is the run it continues (issue 30) -------------------------------------------

def run_files(out):
    """{name: (mtime in ns, bytes)} of every file in a run folder."""
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(Path(out).iterdir())}


def test_a_resume_with_nothing_to_train_writes_nothing(tiny_cifar, tmp_path, capsys):
    """A finished run resumed without more epochs: said in one line, and no file changes
    (the old code said "raise --epochs" and still rewrote model.keras and metrics.json)."""
    out = tmp_path / "done"
    code, _, err = run(train, ["--dataset", tiny_cifar, "--model", "resnet20", "--epochs", "1",
                               "--train-size", "40", "--test-size", "20", "--out", out,
                               *QUICK], capsys)
    assert code == 0, err
    before = run_files(out)
    code, out_text, err = run(train, ["--out", out, "--resume"], capsys)
    assert code == 0, err
    assert "nothing to train" in out_text and "--epochs" in out_text
    assert run_files(out) == before


def test_an_interrupted_and_resumed_run_is_the_uninterrupted_run(tiny_cifar, tmp_path, capsys,
                                                                  monkeypatch):
    """Stopped after epoch 1 of 3 (as by Ctrl-C, after its checkpoint), then resumed: the same
    per-epoch losses, final weights and test results as the run that was never stopped, since
    the data order and the augmentation are functions of (seed, step), not of where the
    process started (the old code re-seeded with seed + epoch and drew other batches)."""
    from resnet_course.training.checkpoints import EpochRecorder

    common = ["--dataset", tiny_cifar, "--model", "resnet20", "--epochs", "3",
              "--steps-per-epoch", "4", "--batch-size", "16", "--train-size", "100",
              "--test-size", "30", "--seed", "3"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    code, _, err = run(train, [*common, "--out", whole], capsys)
    assert code == 0, err

    save = EpochRecorder.save
    def save_then_stop(self, epoch):
        save(self, epoch)
        if epoch == 1:
            raise KeyboardInterrupt
    monkeypatch.setattr(EpochRecorder, "save", save_then_stop)
    code, _, err = run(train, [*common, "--out", parts], capsys)
    assert code == 130 and "--resume" in err
    monkeypatch.setattr(EpochRecorder, "save", save)
    code, _, err = run(train, ["--out", parts, "--resume"], capsys)
    assert code == 0, err

    a, b = metrics_of(whole), metrics_of(parts)
    assert b["resumed_from_epoch"] == 1
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=1e-4, atol=1e-6,
                                   err_msg=key)
    assert b["test"]["accuracy"] == a["test"]["accuracy"]
    assert b["test"]["loss"] == pytest.approx(a["test"]["loss"], rel=1e-4)
    for x, y in zip(keras.models.load_model(whole / "model.keras").get_weights(),
                    keras.models.load_model(parts / "model.keras").get_weights()):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-5)


# ---- bad input: one line, non-zero exit, nothing lost -------------------------------------

def test_train_rejects_bad_datasets_and_models(tmp_path, capsys):
    out = tmp_path / "run"
    line = error_line(*run(train, ["--dataset", tmp_path / "missing", "--out", out], capsys)[::2])
    assert "unknown data set" in line

    text = tmp_path / "notes.txt"
    text.write_text("not data")
    line = error_line(*run(train, ["--dataset", text, "--out", out], capsys)[::2])
    assert "not a zip, a tar archive or a folder" in line

    line = error_line(*run(train, ["--model", "resnet19", "--out", out], capsys)[::2])
    assert "Unknown model name 'resnet19'" in line and "resnet20" in line

    code, _, err = run(train, ["--schedule", "sometimes"], capsys)
    assert code == 2 and "invalid choice" in error_line(code, err)
    assert not out.exists()


def test_train_rejects_a_model_too_deep_for_the_images(tiny_cifar, tmp_path, capsys):
    line = error_line(*run(train, ["--dataset", tiny_cifar, "--model", "course_resnet50",
                                   "--train-size", "20", "--out", tmp_path / "r"], capsys)[::2])
    assert "course_resnet50" in line and "37" in line


def test_train_never_overwrites_an_earlier_run(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"precious": true}')
    line = error_line(*run(train, ["--dataset", "cifar10", "--out", out], capsys)[::2])
    assert "already holds a run" in line and "--resume" in line
    assert (out / "metrics.json").read_text() == '{"precious": true}'


def test_resume_rejects_missing_and_damaged_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    line = error_line(*run(train, ["--out", out, "--resume"], capsys)[::2])
    assert "no checkpoint to resume from" in line

    out.mkdir()
    (out / "checkpoint.json").write_text("{ truncated")
    line = error_line(*run(train, ["--out", out, "--resume"], capsys)[::2])
    assert "damaged checkpoint state" in line
    assert (out / "checkpoint.json").read_text() == "{ truncated"


def test_resume_rejects_a_corrupt_model_file_and_changed_settings(tiny_cifar, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    config = {"dataset": str(tiny_cifar), "model": "resnet20", "epochs": 2, "batch_size": 16,
              "lr": 0.1, "optimizer": "sgd", "schedule": "cosine", "warmup_epochs": 1,
              "weight_decay": None, "augment": True, "train_size": 20, "test_size": 10,
              "val_split": 0.0, "seed": 0, "steps_per_epoch": 1, "out": str(out)}
    state = {"epoch": 1, "model_file": "checkpoint-epoch0001.keras", "history": {},
             "config": config}
    (out / "checkpoint.json").write_text(json.dumps(state))
    (out / "checkpoint-epoch0001.keras").write_bytes(b"half a zip")

    line = error_line(*run(train, ["--out", out, "--resume", "--model", "resnet32"], capsys)[::2])
    assert "--model resnet32 differs from the checkpoint's resnet20" in line

    line = error_line(*run(train, ["--out", out, "--resume"], capsys)[::2])
    assert "damaged checkpoint" in line and "checkpoint-epoch0001.keras" in line
    assert (out / "checkpoint-epoch0001.keras").read_bytes() == b"half a zip"


def test_evaluate_rejects_bad_models_images_and_data(tmp_path, capsys):
    fake_model = tmp_path / "model.keras"
    fake_model.write_bytes(b"not a zip")
    line = error_line(*run(evaluate, [fake_model, "--data", "signs"], capsys)[::2])
    assert "not a Keras model file" in line

    archive = tmp_path / "other.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.txt", "a zip, but no model")
    line = error_line(*run(evaluate, [archive, "--data", "signs"], capsys)[::2])
    assert "not a loadable Keras model" in line

    line = error_line(*run(evaluate, [tmp_path / "absent.keras"], capsys)[::2])
    assert "model file not found" in line

    # a real (tiny) model for the image and data errors
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model_path = tmp_path / "tiny.keras"
    keras.Model(inputs, outputs).save(model_path)

    not_an_image = tmp_path / "photo.jpg"
    not_an_image.write_text("text, not pixels")
    line = error_line(*run(evaluate, [model_path, not_an_image], capsys)[::2])
    assert "photo.jpg: not an image file" in line

    line = error_line(*run(evaluate, [model_path], capsys)[::2])
    assert "nothing to evaluate" in line

    line = error_line(*run(evaluate, [model_path, "--data", tmp_path / "nothing"], capsys)[::2])
    assert "unknown data set" in line

    if HAVE_SIGNS:
        line = error_line(*run(evaluate, [model_path, "--data", "signs"], capsys)[::2])
        assert "predicts 10 classes but signs test has 6" in line

    bad_h5 = tmp_path / "test_signs.h5"
    bad_h5.write_bytes(b"not hdf5")
    line = error_line(*run(evaluate, [model_path, "--data", bad_h5], capsys)[::2])
    assert "test_signs.h5" in line and "HDF5" in line


def test_evaluate_classifies_an_image_with_a_model_without_class_names(tmp_path, capsys):
    """A model from elsewhere (no metrics.json): 10 outputs get the CIFAR-10 names; an
    image of another size is resized to the model's input."""
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    model_path = tmp_path / "unit_pixels.keras"
    keras.Model(inputs, outputs).save(model_path)
    photo = tmp_path / "big.png"
    Image.fromarray(np.full((100, 80, 3), 200, np.uint8)).save(photo)
    code, out_text, _ = run(evaluate, [model_path, photo, "--json"], capsys)
    assert code == 0
    summary = json.loads(out_text)
    assert summary["pixels"] == "0-1"  # no Rescaling layer: the images are divided by 255
    assert set(summary["images"][0]["probabilities"]) == set(CLASS_NAMES)
    assert summary["crop"] == "centre"  # a CIFAR-10 model: photos of anything, no hand to find


def photo_folder(root):
    """photos/ with three images (one in a subfolder), two hidden ones and a notes.txt."""
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / ".thumbnails").mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.jpg", "sub/c.png", ".thumbnails/d.png", ".e.png"):
        Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(photos / name)
    (photos / "notes.txt").write_text("where I took them")
    return photos


def test_evaluate_classifies_every_image_of_a_folder_or_a_glob(tmp_path, capsys):
    """A folder (its subfolders too, hidden ones skipped) or a glob, quoted or expanded by the
    shell: every image classified, each other file named in one line, and on it goes (the old
    code took a folder for a missing file and stopped at notes.txt)."""
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs))
    model_path = tmp_path / "m.keras"
    keras.Model(inputs, outputs).save(model_path)
    photos = photo_folder(tmp_path)
    images = {str(photos / name) for name in ("a.png", "b.jpg", "sub/c.png")}

    # photos/* as bash expands it (no dot files)
    shell_expanded = sorted(str(p) for p in photos.glob("*") if not p.name.startswith("."))
    for given in ([photos], shell_expanded, [str(photos / "*")], [str(photos / "**" / "*.png")]):
        code, out_text, err = run(evaluate, [model_path, *given, "--json"], capsys)
        assert code == 0, (given, err)
        summary = json.loads(out_text)
        expected = images if "*.png" not in str(given[-1]) else images - {str(photos / "b.jpg")}
        assert {r["path"] for r in summary["images"]} == expected, given
        skipped = [line for line in err.splitlines() if "notes.txt" in line]
        if "*.png" not in str(given[-1]):
            assert len(skipped) == 1 and "not an image" in skipped[0], err
            assert [s["path"] for s in summary["skipped"]] == [str(photos / "notes.txt")]
        assert ".thumbnails" not in out_text + err and ".e.png" not in out_text + err

    code, out_text, err = run(evaluate, [model_path, photos], capsys)  # the text report
    assert code == 0
    assert sum(path in out_text for path in images) == 3
    assert len([line for line in err.splitlines() if "notes.txt: not an image" in line]) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(*run(evaluate, [model_path, empty], capsys)[::2])
    assert "no image files" in line and "empty" in line
    line = error_line(*run(evaluate, [model_path, str(tmp_path / "nope" / "*.jpg")], capsys)[::2])
    assert "matches no file" in line


def test_image_files_are_cut_around_the_hand_for_signs_models_and_to_the_centre_otherwise(tmp_path):
    # A small hand at the right edge of a wide photo: "hand" makes it fill the model's input
    # (as the notebook's load_my_image does), "centre" keeps the middle of the photo.
    from resnet_course.training import inference

    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(keras.layers.Flatten()(inputs)))
    path = tmp_path / "phone.png"
    Image.fromarray(photo(480, 640, BACKGROUNDS["white"], SKIN_TONES["medium"], centre=(330, 595),
                          radii=(40, 30))).save(path)

    def skin_share(image):  # pixels darker than the white wall
        return float(np.mean(image[0].mean(axis=-1) < 215))

    hand, centre = (inference.load_image_for(model, path, crop) for crop in ("hand", "centre"))
    assert hand.shape == centre.shape == (1, 64, 64, 3) and hand.dtype == centre.dtype == np.uint8
    assert skin_share(hand) > 0.15 and skin_share(centre) < 0.01
    assert evaluate.crop_for("auto", [str(i) for i in range(6)]) == "hand"
    assert evaluate.crop_for("auto", CLASS_NAMES) == "centre"
    assert evaluate.crop_for("centre", [str(i) for i in range(6)]) == "centre"
    with pytest.raises(ValueError, match="crop must be one of"):
        inference.load_image_for(model, path, "middle")


# ---- the pieces: schedules, augmentation, JSON layout ------------------------------------

def schedule_values(schedule, steps):
    return [float(schedule(step)) if callable(schedule) else schedule for step in steps]


def test_learning_rate_schedules():
    from resnet_course.training.schedules import make_schedule
    from resnet_course.training.train_config import resolve_config

    def config(schedule):
        return resolve_config({"dataset": "cifar10", "schedule": schedule, "epochs": 10,
                               "lr": 0.1, "out": "unused"})

    onecycle = schedule_values(make_schedule(config("onecycle"), 10), [0, 30, 100])
    assert onecycle[0] == pytest.approx(0.1 / 25) and onecycle[1] == pytest.approx(0.1)
    assert onecycle[2] < 1e-5
    step = schedule_values(make_schedule(config("step"), 10), [0, 49, 51, 74, 76, 100])
    assert step == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    cosine = schedule_values(make_schedule(config("cosine"), 10), [0, 10, 55, 100])
    assert cosine[0] == 0 and cosine[1] == pytest.approx(0.1) and cosine[3] == pytest.approx(0)
    assert make_schedule(config("constant"), 10) == 0.1


def test_batchnorm_recalibration_sees_the_training_augmentation(monkeypatch):
    from resnet_course.training import pipelines
    from resnet_course.training.train_config import resolve_config
    rng = np.random.default_rng(0)
    X = rng.integers(1, 256, size=(60, 32, 32, 3), dtype=np.uint8)  # no black pixel
    y = np.arange(60) % 10
    splits = pipelines.Splits(X, y, X[:10], y[:10], "test")

    def config(augment):
        return resolve_config({"dataset": "cifar10", "augment": augment,
                               "batch_size": 16, "out": "unused"})

    monkeypatch.setattr(pipelines, "RECALIBRATION_IMAGES", 40)
    augmented = pipelines.recalibration_images(splits, 10, config(True), "cifar10")
    assert augmented.shape == (40, 32, 32, 3)
    assert 0 <= augmented.min() and augmented.max() <= 255  # 0-255, as the saved model takes
    assert (augmented == 0).any()  # pad-and-crop brought in the black border
    plain = pipelines.recalibration_images(splits, 10, config(False), "cifar10")
    assert plain.shape == (40, 32, 32, 3) and plain.dtype == np.uint8


def test_pad_crop_flip_shifts_each_image_on_its_own_and_repeats_with_the_seed():
    import tensorflow as tf

    from resnet_course.training.augmentation import pad_crop_flip, with_pad_crop_flip

    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32") + 1  # no zeros
    out = pad_crop_flip(tf.constant(images), tf.constant([3, 4]), padding=2).numpy()
    assert out.shape == images.shape
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)])
    offsets = set()
    for original, (i, result) in zip(padded, enumerate(out)):
        found = [(dy, dx, flip) for dy in range(5) for dx in range(5) for flip in (False, True)
                 if np.array_equal(result, (lambda w: w[:, ::-1] if flip else w)(
                     original[dy:dy + 8, dx:dx + 8]))]
        assert found, f"image {i} is not a crop of its padded self"
        offsets.add(found[0])
    assert len(offsets) > 1  # not one crop for the whole batch

    dataset = tf.data.Dataset.from_tensors((tf.constant(images), tf.zeros(16))).repeat(2)
    first = [x.numpy() for x, _ in with_pad_crop_flip(dataset, seed=1)]
    again = [x.numpy() for x, _ in with_pad_crop_flip(dataset, seed=1)]
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], first[1])  # each batch gets new crops


def test_cutout_zeroes_one_square_per_image_and_repeats_with_the_seed():
    import tensorflow as tf

    from resnet_course.training.augmentation import cut_out, pad_crop_flip

    images = tf.ones((64, 32, 32, 3))
    out = cut_out(images, tf.constant([5, 6]), 8).numpy()
    zeroed = out[..., 0] == 0
    assert (out[zeroed] == 0).all() and (out[~zeroed] == 1).all()  # all channels alike
    assert (out == 0).all(axis=-1).sum() == zeroed.sum()
    for mask in zeroed:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask.sum() == len(rows) * len(cols)              # one rectangle...
        assert 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8     # ...an 8x8 square, maybe clipped
        assert rows[-1] - rows[0] + 1 == len(rows)
    assert (zeroed.sum(axis=(1, 2)) == 64).sum() > 10            # most squares lie inside
    assert len({tuple(np.argwhere(mask)[0]) for mask in zeroed}) > 10  # each image its own
    np.testing.assert_array_equal(out, cut_out(images, tf.constant([5, 6]), 8).numpy())
    # pad_crop_flip's cutout=0 (the default) adds nothing
    plain = pad_crop_flip(images, tf.constant([1, 2]), padding=0).numpy()
    assert (plain == 1).all()


def test_cutout_and_label_smoothing_train_resnet9(tiny_cifar, tmp_path, capsys):
    out = tmp_path / "r9"
    code, _, err = run(train, ["--dataset", tiny_cifar, "--model", "resnet9", "--epochs", "1",
                               "--cutout", "8", "--label-smoothing", "0.2", "--train-size", "100",
                               "--test-size", "30", "--out", out, *QUICK], capsys)
    assert code == 0, err
    config = metrics_of(out)["config"]
    assert config["cutout"] == 8 and config["label_smoothing"] == 0.2
    code, _, err = run(train, ["--out", out, "--resume", "--epochs", "2"], capsys)
    assert code == 0, err
    assert metrics_of(out)["epochs_completed"] == 2
    # the checkpoint a resumed run continues from still trains with the smoothed loss
    from resnet_course.training import checkpoints, inference
    _, checkpoint = checkpoints.read_checkpoint(out)
    loss = inference.load_model_file(checkpoint, compile=True).loss
    assert loss.get_config()["label_smoothing"] == pytest.approx(0.2)


@pytest.mark.parametrize("family, shape", [("cifar10", (32, 32, 3)), ("signs", (64, 64, 3))])
def test_the_training_pipeline_started_at_step_t_yields_the_batches_of_step_t_on(family, shape):
    """What --resume relies on, for both augmentations: order and augmentation are functions of
    (seed, step), whatever step the pipeline starts at; batches run on across passes."""
    from resnet_course.training.pipelines import train_pipeline
    from resnet_course.training.train_config import resolve_config
    X = np.random.default_rng(0).integers(0, 256, (21, *shape), dtype=np.uint8)
    y = np.arange(21) % 6
    config = resolve_config({"dataset": family, "batch_size": 4, "out": "unused"})

    def batches(start, count, seed=5):
        return [(a.numpy(), b.numpy()) for a, b in
                train_pipeline(X, y, 6, config, family, seed, start_step=start).take(count)]

    whole, late = batches(0, 9), batches(6, 3)  # pass 1 begins inside batch 5
    for (images, labels), (images_late, labels_late) in zip(whole[6:], late):
        np.testing.assert_array_equal(images_late, images)
        np.testing.assert_array_equal(labels_late, labels)
    assert not np.array_equal(whole[0][0], batches(0, 1, seed=6)[0][0])  # the seed matters
    assert not np.allclose(whole[0][0], X[:4] / 255) and whole[0][0].shape == (4, *shape)


def test_training_pipeline_cuts_out_squares_of_the_same_crops():
    from resnet_course.training.pipelines import train_pipeline
    from resnet_course.training.train_config import resolve_config
    X = np.full((32, 32, 32, 3), 200, dtype=np.uint8)  # no black pixel before augmenting
    y = np.arange(32) % 10

    def first_batch(cutout):
        config = resolve_config({"dataset": "cifar10", "cutout": cutout,
                                 "batch_size": 32, "out": "unused"})
        images, _ = next(iter(train_pipeline(X, y, 10, config, "cifar10", seed=0)))
        return images.numpy()

    plain, cut = first_batch(0), first_batch(8)
    assert (cut == 0).sum() > (plain == 0).sum()        # the squares come on top of the crops
    np.testing.assert_array_equal(cut[cut != 0], plain[cut != 0])


def test_train_rejects_bad_cutout_and_label_smoothing(tiny_cifar, tmp_path, capsys):
    out = tmp_path / "run"
    for args, message in ((["--cutout", "-1"], "--cutout must be >= 0"),
                          (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
                          (["--cutout", "8", "--no-augment"], "--cutout is part of the CIFAR-10")):
        line = error_line(*run(train, ["--dataset", tiny_cifar, *args, "--out", out],
                               capsys)[::2])
        assert message in line
    line = error_line(*run(train, ["--dataset", "signs", "--cutout", "8", "--out", out],
                           capsys)[::2])
    assert "needs a CIFAR-10 data set" in line
    assert not out.exists()


def test_list_models(capsys):
    code, out, _ = run(train, ["--list-models"], capsys)
    assert code == 0 and "resnet110" in out and "course_resnet50" in out


@needs_signs
def test_dataset_registry_reads_names_folders_and_single_h5_files():
    data = datasets.load("signs", train_size=60, test_size=12, seed=3)
    assert np.bincount(data.y_train).tolist() == [10] * 6 and len(data.y_test) == 12
    assert data.class_names == ("0", "1", "2", "3", "4", "5") and data.input_shape == (64, 64, 3)
    same = datasets.load(str(SIGNS_DIR), train_size=60, test_size=12, seed=3)
    np.testing.assert_array_equal(data.X_train, same.X_train)
    train_split = datasets.load_eval_split(SIGNS_DIR / "train_signs.h5")
    assert len(train_split.y) == 1080 and "train_set" in train_split.name
    with pytest.raises(ValueError, match="training needs a folder"):
        datasets.load(SIGNS_DIR / "train_signs.h5")
    assert datasets.family_of(SIGNS_DIR) == "signs"


def test_cifar_test_split_alone(tiny_cifar):
    X_train, y_train, X_test, y_test, _ = cifar10.load_cifar10(tiny_cifar, splits=("test",))
    assert X_train is None and y_train is None and X_test.shape == (60, 32, 32, 3)


@needs_signs
def test_evaluate_heldout_reports_it_per_sign_with_its_source_and_licence(signs_run, tmp_path, capsys):
    """evaluate.py --heldout FILE: the held-out photos (issue 28) beside the test split."""
    import h5py
    out, _, _ = signs_run
    heldout_file = tmp_path / "heldout_signs.h5"
    with h5py.File(heldout_file, "w") as f:
        f["test_set_x"] = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
        f["test_set_y"] = np.array([1, 2, 3, 4, 5] * 2, dtype=np.int64)
        f["list_classes"] = np.arange(6, dtype=np.int64)
        f.attrs["source"], f.attrs["licence"] = "a phone-photo set", "CC BY 4.0"
    code, out_text, _ = run(evaluate, [out / "model.keras", "--data", SIGNS_DIR / "test_signs.h5",
                                       "--heldout", heldout_file, "--json"], capsys)
    assert code == 0
    summary = json.loads(out_text)
    assert summary["data"]["images"] == 157
    held = summary["heldout"]
    assert held["images"] == 10 and held["source"] == "a phone-photo set" and held["licence"] == "CC BY 4.0"
    assert [held["per_class"][str(c)]["support"] for c in range(6)] == [0, 2, 2, 2, 2, 2]
    code, text, _ = run(evaluate, [out / "model.keras", "--heldout", heldout_file], capsys)
    assert code == 0 and "source: a phone-photo set" in text and "licence: CC BY 4.0" in text
    code, _, err = run(evaluate, [out / "model.keras", "--heldout", tmp_path / "none.h5"], capsys)
    assert "none.h5: file not found" in error_line(code, err)
