"""resnet_course.data.cifar10 on tiny fake copies of both CIFAR-10 layouts, built in tmp_path."""
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from resnet_course.data import cifar10
from resnet_course.data.cifar10 import CLASS_NAMES, CifarError, load_cifar10
from resnet_course.data.sampling import stratified_indices

TRAIN_PER_CLASS, TEST_PER_CLASS = 2, 1


def fake_image(label, index, split):
    """A 32x32 RGB image whose pixels say which one it is (PNG keeps them exact)."""
    rng = np.random.default_rng(1000 * label + 10 * index + (split == "test"))
    return rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)


def expected_arrays():
    """What loading either fake layout must give: images sorted by class."""
    out = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        labels = np.repeat(np.arange(10), per_class)
        images = np.stack([fake_image(c, i, split) for c in range(10) for i in range(per_class)])
        out[split] = (images, labels)
    return out


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def image_folder_files(top=""):
    """{relative path: bytes} of the image-folder layout."""
    files = {}
    for split, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for label, name in enumerate(CLASS_NAMES):
            for i in range(per_class):
                files[f"{top}{split}/{name}/{i:04d}.png"] = png_bytes(fake_image(label, i, split))
    files[f"{top}README.md"] = b"not an image, ignored"
    return files


def pickle_files(folder="cifar-10-batches-py/"):
    """{relative path: bytes} of the official layout, the batches split as the real ones."""
    expected = expected_arrays()
    files = {}

    def batch(images, labels):
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # R plane, G, B
        return pickle.dumps({b"data": rows, b"labels": labels.tolist(), b"batch_label": b"x"})

    train_images, train_labels = expected["train"]
    for i, part in enumerate(np.array_split(np.arange(len(train_labels)), 5), start=1):
        files[f"{folder}data_batch_{i}"] = batch(train_images[part], train_labels[part])
    files[f"{folder}test_batch"] = batch(*expected["test"])
    files[f"{folder}batches.meta"] = pickle.dumps(
        {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072})
    return files


def write_folder(root, files):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def write_tar_gz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def sources(tmp_path):
    return {
        "image zip": write_zip(tmp_path / "CIFAR-10-images.zip",
                               image_folder_files("CIFAR-10-images-abc/")),
        "image folder": write_folder(tmp_path / "images", image_folder_files()),
        "tar.gz": write_tar_gz(tmp_path / "cifar-10-python.tar.gz", pickle_files()),
        "pickle folder": write_folder(tmp_path / "extracted", pickle_files()),
    }


@pytest.mark.parametrize("kind", ["image zip", "image folder", "tar.gz", "pickle folder"])
def test_every_layout_gives_the_same_arrays_in_canonical_class_order(sources, kind, tmp_path):
    X_train, y_train, X_test, y_test, names = load_cifar10(sources[kind], cache_dir=None)
    expected = expected_arrays()
    assert names == CLASS_NAMES and names[0] == "airplane" and names[9] == "truck"
    for (X, y), split in (((X_train, y_train), "train"), ((X_test, y_test), "test")):
        assert X.dtype == np.uint8 and X.shape[1:] == (32, 32, 3)
        assert y.dtype == np.int64
        # the pickle layout keeps the batches' order, the image folders sort by class
        order = np.argsort(y, kind="stable")
        np.testing.assert_array_equal(y[order], expected[split][1])
        np.testing.assert_array_equal(X[order], expected[split][0])


def test_the_pickled_rows_are_read_as_red_green_blue_planes(tmp_path):
    source = write_folder(tmp_path / "p", pickle_files(folder=""))
    X_train, *_ = load_cifar10(source, cache_dir=None)
    first = fake_image(0, 0, "train")
    np.testing.assert_array_equal(X_train[0, :, :, 0], first[:, :, 0])
    np.testing.assert_array_equal(X_train[0, 0, 1], first[0, 1])


def test_jpeg_images_are_read_too(tmp_path):
    files = {}
    for name, data in image_folder_files().items():
        if name.endswith(".png"):
            buffer = io.BytesIO()
            Image.open(io.BytesIO(data)).save(buffer, format="JPEG", quality=75)
            files[name[:-4] + ".jpg"] = buffer.getvalue()
    X_train, y_train, *_ = load_cifar10(write_zip(tmp_path / "j.zip", files), cache_dir=None)
    assert X_train.shape == (20, 32, 32, 3)
    assert np.abs(X_train[0].astype(int) - fake_image(0, 0, "train")).mean() < 60  # lossy


def test_subsets_are_stratified_seeded_and_the_same_from_cache_or_source(sources, tmp_path):
    source = sources["image zip"]
    a = load_cifar10(source, train_size=10, test_size=5, seed=1, cache_dir=None)
    assert np.bincount(a[1], minlength=10).tolist() == [1] * 10
    assert len(a[3]) == 5 and len(set(a[3].tolist())) == 5
    again = load_cifar10(source, train_size=10, test_size=5, seed=1, cache_dir=None)
    other = load_cifar10(source, train_size=10, test_size=5, seed=2, cache_dir=None)
    np.testing.assert_array_equal(a[0], again[0])
    assert not all(np.array_equal(x, y) for x, y in zip(a[:4], other[:4]))

    cache = tmp_path / "cache"
    load_cifar10(source, cache_dir=cache)  # the full decode fills the cache
    from_cache = load_cifar10(source, train_size=10, test_size=5, seed=1, cache_dir=cache)
    for x, y in zip(a[:4], from_cache[:4]):
        np.testing.assert_array_equal(x, y)


def test_second_load_comes_from_the_cache(sources, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_cifar10(sources["tar.gz"], cache_dir=cache)
    assert len(list(cache.glob("cifar10-*.npz"))) == 1

    def no_decoding(path):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(cifar10, "open_layout", no_decoding)
    second = load_cifar10(sources["tar.gz"], cache_dir=cache)
    for x, y in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(x, y)


def test_a_changed_source_is_decoded_again(tmp_path):
    cache = tmp_path / "cache"
    folder = write_folder(tmp_path / "images", image_folder_files())
    load_cifar10(folder, cache_dir=cache)
    replaced = fake_image(5, 5, "x")
    (folder / "train/airplane/0000.png").write_bytes(png_bytes(replaced))
    X_train, *_ = load_cifar10(folder, cache_dir=cache)
    np.testing.assert_array_equal(X_train[0], replaced)


def test_a_damaged_cache_is_rebuilt(sources, tmp_path):
    cache = tmp_path / "cache"
    load_cifar10(sources["image zip"], cache_dir=cache)
    (path,) = cache.glob("*.npz")
    path.write_bytes(b"garbage")
    X_train, *_ = load_cifar10(sources["image zip"], cache_dir=cache)
    assert X_train.shape == (20, 32, 32, 3)


def test_stratified_indices_keep_proportions_and_fill_the_size():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    picked = stratified_indices(labels, 11, seed=0)
    assert len(picked) == 11 and len(set(picked.tolist())) == 11
    assert np.all(np.diff(picked) > 0)
    counts = np.bincount(labels[picked])
    assert counts[0] in (5, 6) and counts[1] in (3, 4) and counts[2] in (2, 3)
    with pytest.raises(ValueError, match="cannot be taken from 100"):
        stratified_indices(labels, 101)


def error_of(source, **kwargs):
    with pytest.raises(CifarError) as err:
        load_cifar10(source, cache_dir=None, **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_source(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.zip")


def test_default_source_explains_where_to_get_the_data(monkeypatch, tmp_path):
    monkeypatch.setattr(cifar10, "SHARED_ZIP", tmp_path / "absent.zip")
    monkeypatch.setattr(cifar10, "USER_SOURCES", (tmp_path / "absent.tar.gz",))
    with pytest.raises(CifarError, match="no CIFAR-10 data found.*cifar-10-python.tar.gz"):
        cifar10.default_source()


def test_wrong_formats(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "not a zip, a tar archive or a folder" in error_of(text)

    other = write_zip(tmp_path / "other.zip", {"a/b.txt": b"x"})
    assert "neither the official layout" in error_of(other)

    files = image_folder_files()
    files["train/unicorn/0000.png"] = files["train/cat/0000.png"]
    assert "unknown class folder train/unicorn" in error_of(write_zip(tmp_path / "u.zip", files))

    files = {k: v for k, v in image_folder_files().items() if not k.startswith("test/dog/")}
    assert "no images in test/dog/" in error_of(write_zip(tmp_path / "m.zip", files))

    files = image_folder_files()
    files["train/cat/0000.png"] = b"this is not a png"
    assert "train/cat/0000.png: not a readable image" in error_of(write_zip(tmp_path / "c.zip", files))

    files = image_folder_files()
    files["train/cat/0000.png"] = png_bytes(np.zeros((64, 64, 3), np.uint8))
    assert "is 64x64" in error_of(write_zip(tmp_path / "s.zip", files))


def test_broken_official_layouts(tmp_path):
    files = pickle_files()
    del files["cifar-10-batches-py/data_batch_3"]
    assert "missing cifar-10-batches-py/data_batch_3" in error_of(write_tar_gz(tmp_path / "a.tar.gz", files))

    files = pickle_files()
    files["cifar-10-batches-py/test_batch"] = b"not a pickle"
    assert "test_batch is not a CIFAR-10 batch" in error_of(write_folder(tmp_path / "b", files))

    files = pickle_files()
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"x"] * 10})
    assert "batches.meta lists the classes" in error_of(write_folder(tmp_path / "c", files))

    truncated = tmp_path / "t.tar.gz"
    good = write_tar_gz(tmp_path / "good.tar.gz", pickle_files()).read_bytes()
    truncated.write_bytes(good[: len(good) // 2])
    message = error_of(truncated)
    assert "t.tar.gz" in message


def test_subset_larger_than_the_split(sources):
    assert "the train split has 20" in error_of(sources["image folder"], train_size=21)
