"""train.py --distribute (issue 30): two worker processes on 127.0.0.1 train one ResNet-20,
a lost worker stops the other with one line and a resumable checkpoint, a wrong cluster
description is one line, and MirroredStrategy runs on this machine (on its GPUs where it
has some).

Multi-worker runs are subprocesses (MultiWorkerMirroredStrategy must be set up before
TensorFlow runs anything in a process). They train on a small subset of the shared CIFAR-10
JPEG archive, a few steps of a few images each: the point is the plumbing, not accuracy.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train
from resnet_course.data import cifar10
from resnet_course.paths import ROOT
from resnet_course.training.checkpoints import read_checkpoint
from resnet_course.training.distribute import free_ports

needs_cifar_zip = pytest.mark.skipif(not cifar10.SHARED_ZIP.is_file(),
                                     reason=f"the shared CIFAR-10 archive {cifar10.SHARED_ZIP} is absent")
# A worker as train.py runs, with the CIFAR-10 decode cache in the test's folder.
WORKER = ("import sys, runpy; from pathlib import Path; import resnet_course.data.cifar10 as c; "
          "c.DEFAULT_CACHE_DIR = Path(sys.argv.pop(1)); sys.argv[0] = 'train.py'; "
          "runpy.run_path(sys.argv[0], run_name='__main__')")
FINGERPRINT = re.compile(r"worker (\d): weights fingerprint ([0-9a-f]{16})")
QUICK = ["--model", "resnet20", "--steps-per-epoch", "2", "--batch-size", "16",
         "--train-size", "100", "--test-size", "20"]
# Settings under which the loss falls within a few steps (the fused Adam on 40 images, no
# augmentation): 3.41, 2.68, 2.14 over three epochs of two steps on one process.
LEARNING = ["--model", "resnet20", "--steps-per-epoch", "2", "--batch-size", "16",
            "--train-size", "40", "--test-size", "20", "--optimizer", "adam", "--lr", "0.001",
            "--schedule", "constant", "--no-augment"]


@pytest.fixture(scope="module")
def cifar_subset(tmp_path_factory):
    """train/<class>/ 12 and test/<class>/ 3 real CIFAR-10 images per class, from the shared
    JPEG archive."""
    if not cifar10.SHARED_ZIP.is_file():
        pytest.skip(f"the shared CIFAR-10 archive {cifar10.SHARED_ZIP} is absent")
    return cifar10.extract_subset(cifar10.SHARED_ZIP, tmp_path_factory.mktemp("cifar-subset") / "CIFAR-10-images",
                                  train_per_class=12, test_per_class=3)


def start_workers(arguments, ports, scratch, indices=None):
    """One train.py process per port (--task-index i), TMPDIR in ``scratch``."""
    cluster = ",".join(f"127.0.0.1:{port}" for port in ports)
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    Path(scratch).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(
        [sys.executable, "-c", WORKER, str(Path(scratch).parent / "cache"),
         *map(str, arguments), "--distribute", "multi-worker", "--cluster", cluster,
         "--task-index", str(index)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for index in (indices if indices is not None else range(len(ports)))]


def results(processes, timeout=600):
    """[(exit code, stdout, stderr)] of every process (each killed if still running after
    ``timeout`` seconds)."""
    finished = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        finished.append((process.returncode, out, err))
    return finished


def fingerprints(finished):
    return {int(i): fp for _, out, _ in finished for i, fp in FINGERPRINT.findall(out)}


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("train.py: error:")]


@pytest.fixture(scope="module")
def two_worker_run(cifar_subset, tmp_path_factory):
    """Two workers train 2 epochs, then both resume the run to 3 epochs. Returns (run folder,
    scratch folder, first results, metrics after 2 epochs, resumed results, final metrics)."""
    base = tmp_path_factory.mktemp("two-workers")
    out, scratch = base / "run", base / "tmp"
    arguments = ["--dataset", cifar_subset, *LEARNING, "--out", out]
    first = results(start_workers([*arguments, "--epochs", 2], free_ports(2), scratch))
    first_metrics = json.loads((out / "metrics.json").read_text()) if first[0][0] == 0 else None
    resumed = results(start_workers(["--out", out, "--resume", "--epochs", 3], free_ports(2),
                                    scratch))
    return out, scratch, first, first_metrics, resumed, json.loads((out / "metrics.json").read_text())


@needs_cifar_zip
def test_two_workers_train_one_model_and_only_the_chief_writes(two_worker_run):
    out, scratch, first, metrics, _, _ = two_worker_run
    for code, _, err in first:
        assert code == 0, err[-3000:]
    prints = fingerprints(first)
    assert set(prints) == {0, 1} and prints[0] == prints[1]  # the same weights on both
    assert metrics["distribution"]["workers"] == 2 and metrics["distribution"]["replicas"] == 2
    assert "global batch 16 = 8 per replica" in first[0][1]
    loss = metrics["history"]["loss"]
    assert len(loss) == 2 and loss[-1] < loss[0]
    # one checkpoint set (the chief's), and nothing left by worker 1 in its temporary folder
    assert len(list(out.glob("checkpoint-*.keras"))) == 1
    assert {"model.keras", "metrics.json", "checkpoint.json"} <= {p.name for p in out.iterdir()}
    assert not any(scratch.iterdir()), list(scratch.iterdir())
    assert "the chief writes the results" in first[1][1]


@needs_cifar_zip
def test_a_two_worker_run_resumes_from_the_chiefs_checkpoint(two_worker_run):
    out, _, _, before, resumed, after = two_worker_run
    for code, _, err in resumed:
        assert code == 0, err[-3000:]
    prints = fingerprints(resumed)
    assert set(prints) == {0, 1} and prints[0] == prints[1]
    assert after["resumed_from_epoch"] == 2 and len(after["history"]["loss"]) == 3
    assert after["history"]["loss"][:2] == before["history"]["loss"]
    assert after["history"]["loss"][2] < after["history"]["loss"][1]  # it goes on learning
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 3
    assert len(list(out.glob("checkpoint-*.keras"))) == 1


@needs_cifar_zip
def test_a_lost_worker_stops_the_other_with_one_line_and_a_resumable_checkpoint(cifar_subset,
                                                                                tmp_path):
    """Worker 1 killed (SIGKILL) after the chief's first checkpoint: the chief ends, without
    hanging, with one line naming worker 1 and --resume; its checkpoint reads back. The
    heartbeats notice the dead worker (20-30 s here), long before --worker-timeout (which,
    shorter, could take a slow step of a loaded machine for a lost worker)."""
    out = tmp_path / "run"
    ports = free_ports(2)
    workers = start_workers(["--dataset", cifar_subset, *QUICK, "--epochs", 200, "--out", out,
                             "--worker-timeout", 300], ports, tmp_path / "tmp")
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint.json").is_file():
            assert time.monotonic() < deadline and workers[0].poll() is None, "no checkpoint"
            time.sleep(0.5)
        workers[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        (code, _, err), _ = results(workers, timeout=180)
        waited = time.monotonic() - killed
    finally:
        for worker in workers:
            worker.kill()
    assert code == 1, err[-3000:]
    lines = error_lines(err)
    assert len(lines) == 1, err[-3000:]
    assert f"worker 1 (127.0.0.1:{ports[1]}) stopped answering" in lines[0]
    assert "--resume" in lines[0] and str(out) in lines[0]
    assert waited < 150
    state, model_file = read_checkpoint(out)
    assert state["epoch"] >= 1 and model_file.is_file()
    assert not (out / "metrics.json").exists()


@needs_cifar_zip
def test_an_unreachable_peer_is_one_line(cifar_subset, tmp_path):
    ports = free_ports(2)
    (code, _, err), = results(start_workers(["--dataset", cifar_subset, *QUICK, "--out",
                                             tmp_path / "run", "--worker-timeout", 3],
                                            ports, tmp_path / "tmp", indices=[0]), timeout=120)
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1, err[-3000:]
    assert f"worker 1 at 127.0.0.1:{ports[1]} did not answer within 3 s" in lines[0]
    assert not (tmp_path / "run").exists()


def run(argv, capsys):
    try:
        code = train.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code, err):
    assert code not in (0, None)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_a_wrong_cluster_description_is_one_line(tmp_path, capsys, monkeypatch):
    """Checked before TensorFlow starts a worker: these run in this process."""
    out = tmp_path / "run"
    base = ["--dataset", "cifar10", "--out", out, "--distribute", "multi-worker"]
    monkeypatch.delenv("TF_CONFIG", raising=False)
    cases = [
        (["--cluster", "127.0.0.1:2222,127.0.0.1:2223", "--task-index", "2"],
         "--task-index 2 is not a worker of --cluster, which has 2 (0 to 1)"),
        (["--cluster", "127.0.0.1:2222,localhost"], "'localhost' is not host:port"),
        (["--cluster", "127.0.0.1:2222,127.0.0.1:2223"], "--cluster needs --task-index"),
        ([], "needs the cluster: set TF_CONFIG or give --cluster"),
    ]
    for extra, message in cases:
        assert message in one_error_line(*run([*base, *extra], capsys)[::2]), extra

    for tf_config, message in [
            ("{not json", "TF_CONFIG is not a cluster description"),
            (json.dumps({"cluster": {"worker": ["127.0.0.1:2222"]},
                         "task": {"type": "worker", "index": 1}}),
             "task worker 1 does not exist; the cluster has 1 worker task(s)"),
            (json.dumps({"cluster": {"worker": ["127.0.0.1:2222"]},
                         "task": {"type": "evaluator", "index": 0}}),
             "task type 'evaluator' is not a job of the cluster"),
            (json.dumps({"cluster": {"ps": ["127.0.0.1:2222"]}, "task": {"type": "ps", "index": 0}}),
             "train.py runs \"worker\" jobs")]:
        monkeypatch.setenv("TF_CONFIG", tf_config)
        assert message in one_error_line(*run(base, capsys)[::2]), tf_config
    monkeypatch.delenv("TF_CONFIG")

    with socket.socket() as taken:  # this worker's own port: something listens there already
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_error_line(*run([*base, "--cluster", f"127.0.0.1:{port},127.0.0.1:1",
                                    "--task-index", "0"], capsys)[::2])
    assert f"port {port} of this worker (127.0.0.1:{port}) is in use" in line

    line = one_error_line(*run(["--dataset", "cifar10", "--out", out, "--task-index", "1"],
                               capsys)[::2])
    assert "go with --distribute multi-worker" in line
    assert not out.exists()


def tiny_images(root):
    """train/<class>/ 8 and test/<class>/ 2 generated 32x32 images per class."""
    rng = np.random.default_rng(0)
    from PIL import Image
    for split, count in (("train", 8), ("test", 2)):
        for label, name in enumerate(cifar10.CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                colour = np.array([label * 25, 255 - label * 25, (label * 80) % 256])
                image = np.clip(colour + rng.integers(-40, 40, (32, 32, 3)), 0, 255)
                Image.fromarray(image.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def test_mirrored_with_the_fused_layers_and_bfloat16(tmp_path, capsys, monkeypatch):
    """MirroredStrategy on this machine (its CPU when it has no GPU: said so) trains the fused
    layers and optimizer in bfloat16; model.keras is the plain float32 model."""
    import keras
    monkeypatch.setattr(cifar10, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    data = tiny_images(tmp_path / "CIFAR-10-images")
    out = tmp_path / "run"
    code, out_text, err = run(["--dataset", data, "--model", "resnet20", "--epochs", "1",
                               "--steps-per-epoch", "2", "--batch-size", "8", "--out", out,
                               "--distribute", "mirrored", "--precision", "bfloat16"], capsys)
    assert code == 0, err
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    assert ("no GPU found" in out_text) == (not gpus)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distribution"]["kind"] == "mirrored"
    assert metrics["distribution"]["replicas"] == max(1, len(gpus))
    assert keras.config.dtype_policy().name == "float32"
    saved = keras.models.load_model(out / "model.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}


def gpus():
    import tensorflow as tf
    return tf.config.list_physical_devices("GPU")


@pytest.mark.skipif(not gpus(), reason="no GPU on this machine (tf.config.list_physical_devices)")
def test_mirrored_trains_on_every_gpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cifar10, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    data = tiny_images(tmp_path / "CIFAR-10-images")
    out = tmp_path / "run"
    batch = 8 * len(gpus())
    code, out_text, err = run(["--dataset", data, "--model", "resnet20", "--epochs", "2",
                               "--steps-per-epoch", "2", "--batch-size", batch, "--out", out,
                               "--distribute", "mirrored"], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["distribution"]["replicas"] == len(gpus())
    assert all("GPU" in device for device in metrics["distribution"]["devices"])
    assert f"global batch {batch} = 8 per replica" in out_text
