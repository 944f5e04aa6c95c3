"""The SIGNS builder: verification, split, exact format, staleness, foreign files, download.

Most tests use a tiny fake archive (a few generated JPEGs per class, with its own
manifest) built in tmp_path; one test checks the real archive when it is present.
"""
import hashlib
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from resnet_course.data import signs_data
from resnet_course.data.signs_data import SignsDataError, build
from resnet_course.paths import DATASETS_DIR

PER_CLASS = 5  # images per class in the fake archive
TRAIN_PER_CLASS = 3  # so 2 per class go to test
TOP = "Sign-Language-Digits-Dataset-fake"


def _jpeg(seed, size=20):
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def fake_images(per_class=PER_CLASS):
    """{"Dataset/<c>/<file>": JPEG bytes} for classes 0-5."""
    return {f"Dataset/{c}/IMG_{c}{i:03d}.JPG": _jpeg(10 * c + i)
            for c in range(6) for i in range(per_class)}


def write_zip(path, images, extras=True):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in images.items():
            archive.writestr(f"{TOP}/{name}", data)
        if extras:  # what the real archive also holds, and the builder must ignore
            archive.writestr(f"{TOP}/Dataset/7/IMG_7000.JPG", _jpeg(700))
            archive.writestr(f"{TOP}/README.md", "fake")
    return path


@pytest.fixture
def fake(tmp_path):
    """A fake archive, its manifest and output folders; ``fake.build(**kw)`` builds from it."""
    class Fake:
        images = fake_images()
        zip_path = write_zip(tmp_path / "signs.zip", images)
        manifest = tmp_path / "manifest.sha256"
        data_dir = tmp_path / DATASETS_DIR.name
        images_dir = tmp_path / "images"
        log = []

        def build(self, **kwargs):
            options = dict(data_dir=self.data_dir, images_dir=self.images_dir,
                           source_zip=self.zip_path, manifest_path=self.manifest,
                           shared_zip=None, url="file:///nonexistent/archive.zip",
                           train_per_class=TRAIN_PER_CLASS, log=self.log.append)
            options.update(kwargs)
            return build(**options)

    fake = Fake()
    signs_data.write_manifest(fake.zip_path, fake.manifest, log=fake.log.append)
    return fake


def _read(path):
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}, sorted(f.keys())


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_committed_manifest_lists_the_1237_images_of_classes_0_to_5():
    entries = signs_data.read_manifest()
    assert len(entries) == 1237
    per_class = np.bincount([int(name.split("/")[1]) for name in entries])
    assert per_class.tolist() == [205, 206, 206, 206, 207, 207]
    assert all(name.startswith("Dataset/") and name.upper().endswith(".JPG") for name in entries)


def test_manifest_is_sha256sum_format(fake):
    lines = fake.manifest.read_text().splitlines()
    assert len(lines) == 6 * PER_CLASS  # class 7 is not listed
    digest, name = lines[0].split("  ")
    assert name == "Dataset/0/IMG_0000.JPG"
    assert digest == hashlib.sha256(fake.images[name]).hexdigest()


def test_modified_image_is_named_and_nothing_is_written(fake, tmp_path):
    images = dict(fake.images)
    images["Dataset/4/IMG_4002.JPG"] = _jpeg(999)
    bad_zip = write_zip(tmp_path / "bad.zip", images)
    with pytest.raises(SignsDataError, match=r"wrong content: Dataset/4/IMG_4002\.JPG"):
        fake.build(source_zip=bad_zip)
    assert not fake.data_dir.exists() or not any(fake.data_dir.glob("*.h5"))
    assert not (fake.images_dir / "my_image.jpg").exists()


def test_missing_and_unexpected_images_are_named(fake, tmp_path):
    images = dict(fake.images)
    del images["Dataset/1/IMG_1001.JPG"]
    images["Dataset/5/extra.JPG"] = _jpeg(555)
    bad_zip = write_zip(tmp_path / "bad.zip", images)
    with pytest.raises(SignsDataError) as info:
        fake.build(source_zip=bad_zip)
    message = str(info.value)
    assert "missing file(s): Dataset/1/IMG_1001.JPG" in message
    assert "unexpected file(s): Dataset/5/extra.JPG" in message
    assert "--source" in message  # says how to fix it


def test_split_is_stratified_deterministic_and_per_class_independent():
    names = list(fake_images(per_class=8))
    train, test = signs_data.split_names(names, train_per_class=5)
    assert sorted(train + test) == sorted(names) and not set(train) & set(test)
    labels = [int(n.split("/")[1]) for n in train]
    assert np.bincount(labels).tolist() == [5] * 6
    assert labels != sorted(labels)  # the order is shuffled, not grouped by class
    assert signs_data.split_names(list(reversed(names)), train_per_class=5) == (train, test)
    # another class gaining an image does not change which class-0 images are in train
    train2, _ = signs_data.split_names(names + ["Dataset/3/IMG_new.JPG"], train_per_class=5)
    assert {n for n in train2 if "/0/" in n} == {n for n in train if "/0/" in n}


def test_build_writes_exactly_the_course_format(fake):
    summary = fake.build()
    train, train_keys = _read(fake.data_dir / "train_signs.h5")
    test, test_keys = _read(fake.data_dir / "test_signs.h5")
    assert train_keys == ["list_classes", "train_set_x", "train_set_y"]
    assert test_keys == ["list_classes", "test_set_x", "test_set_y"]
    n_train, n_test = 6 * TRAIN_PER_CLASS, 6 * (PER_CLASS - TRAIN_PER_CLASS)
    assert train["train_set_x"].dtype == np.uint8 and train["train_set_x"].shape == (n_train, 64, 64, 3)
    assert train["train_set_y"].dtype == np.int64 and train["train_set_y"].shape == (n_train,)
    assert test["test_set_x"].dtype == np.uint8 and test["test_set_x"].shape == (n_test, 64, 64, 3)
    assert test["test_set_y"].dtype == np.int64 and test["test_set_y"].shape == (n_test,)
    for split in (train, test):
        assert split["list_classes"].dtype == np.int64
        assert split["list_classes"].tolist() == [0, 1, 2, 3, 4, 5]
    assert np.bincount(train["train_set_y"]).tolist() == [TRAIN_PER_CLASS] * 6
    # pixels and labels are the resized source images, in the split's order
    train_names, _ = signs_data.split_names(fake.images, train_per_class=TRAIN_PER_CLASS)
    first = train_names[0]
    assert np.array_equal(train["train_set_x"][0], signs_data.to_array(fake.images[first], first))
    assert train["train_set_y"][0] == int(first.split("/")[1])
    # my_image.jpg: the original bytes of a class-2 test-split photo
    my_name = summary["my_image_source"]
    assert my_name.startswith("Dataset/2/")
    assert (fake.images_dir / "my_image.jpg").read_bytes() == fake.images[my_name]
    assert summary["n_train"] == n_train and summary["n_test"] == n_test
    assert not list(fake.data_dir.glob(".*.tmp*")) and not list(fake.images_dir.glob(".*.tmp*"))


def test_build_is_deterministic(fake, tmp_path):
    fake.build()
    fake.build(data_dir=tmp_path / "again", images_dir=tmp_path / "again_images")
    for name in ("train_signs.h5", "test_signs.h5"):
        assert _sha(fake.data_dir / name) == _sha(tmp_path / "again" / name)


def test_up_to_date_build_is_a_no_op_without_the_archive(fake):
    fake.build()
    hashes = {p: _sha(p) for p in fake.data_dir.glob("*") if p.is_file()}
    fake.zip_path.unlink()  # a no-op must not need the source
    summary = fake.build()
    assert summary["built"] == [] and summary["kept"] == [] and len(summary["up_to_date"]) == 3
    assert {p: _sha(p) for p in fake.data_dir.glob("*") if p.is_file()} == hashes
    assert any(line.endswith("train_signs.h5 is up to date") for line in fake.log)


def test_changed_build_parameters_rebuild_our_files(fake):
    fake.build()
    summary = fake.build(train_per_class=TRAIN_PER_CLASS + 1)
    assert len(summary["built"]) == 3
    train, _ = _read(fake.data_dir / "train_signs.h5")
    assert len(train["train_set_y"]) == 6 * (TRAIN_PER_CLASS + 1)


def test_a_deleted_output_is_rebuilt(fake):
    fake.build()
    (fake.images_dir / "my_image.jpg").unlink()
    summary = fake.build()
    assert summary["built"] == [fake.images_dir / "my_image.jpg"]
    assert fake.build()["built"] == []


def _write_course_file(path, prefix, m):
    with h5py.File(path, "w") as f:
        f["list_classes"] = np.arange(6, dtype=np.int64)
        f[f"{prefix}_set_x"] = np.zeros((m, 64, 64, 3), np.uint8)
        f[f"{prefix}_set_y"] = np.arange(m, dtype=np.int64) % 6


def test_foreign_h5_files_are_kept_until_force(fake):
    fake.data_dir.mkdir()
    _write_course_file(fake.data_dir / "train_signs.h5", "train", 12)
    _write_course_file(fake.data_dir / "test_signs.h5", "test", 6)
    before = {name: _sha(fake.data_dir / name) for name in ("train_signs.h5", "test_signs.h5")}
    summary = fake.build()
    assert {p.name for p in summary["kept"]} == {"train_signs.h5", "test_signs.h5"}
    assert {name: _sha(fake.data_dir / name) for name in before} == before
    assert any("kept" in line and "--force" in line for line in fake.log)
    assert (fake.images_dir / "my_image.jpg").exists()  # still built: it is missing
    assert fake.build()["kept"] == summary["kept"]  # and stays kept on the next run
    fake.build(force=True)
    assert _sha(fake.data_dir / "train_signs.h5") != before["train_signs.h5"]
    assert fake.build()["built"] == []


def test_course_files_offline_skip_only_the_sample_photo(fake, tmp_path):
    fake.data_dir.mkdir()
    _write_course_file(fake.data_dir / "train_signs.h5", "train", 12)
    _write_course_file(fake.data_dir / "test_signs.h5", "test", 6)
    summary = fake.build(source_zip=None, cache_dir=tmp_path / "cache")  # no archive anywhere
    assert {p.name for p in summary["kept"]} == {"train_signs.h5", "test_signs.h5"}
    assert not (fake.images_dir / "my_image.jpg").exists()
    assert any(line.startswith("skipped") and "my_image.jpg" in line for line in fake.log)


def test_our_file_edited_by_hand_counts_as_foreign(fake):
    fake.build()
    with h5py.File(fake.data_dir / "test_signs.h5", "a") as f:
        f["test_set_y"][0] = 5
    edited = _sha(fake.data_dir / "test_signs.h5")
    fake.build()
    assert _sha(fake.data_dir / "test_signs.h5") == edited


def test_missing_partner_of_a_foreign_h5_is_an_error(fake):
    fake.data_dir.mkdir()
    _write_course_file(fake.data_dir / "train_signs.h5", "train", 12)
    with pytest.raises(SignsDataError, match="test_signs.h5 is missing.*--force"):
        fake.build()
    assert not (fake.data_dir / "test_signs.h5").exists()


def test_own_photo_is_kept(fake):
    fake.images_dir.mkdir()
    (fake.images_dir / "my_image.jpg").write_bytes(_jpeg(42, size=50))
    summary = fake.build()
    assert summary["kept"] == [fake.images_dir / "my_image.jpg"]
    assert (fake.images_dir / "my_image.jpg").read_bytes() == _jpeg(42, size=50)


def test_interrupted_build_keeps_old_files_and_leaves_no_temporaries(fake, monkeypatch):
    fake.build()
    before = {p.name: _sha(p) for p in fake.data_dir.glob("*.h5")}
    real_write = signs_data.write_split_h5

    def write_then_fail(path, prefix, *args, **kwargs):
        real_write(path, prefix, *args, **kwargs)
        if prefix == "test":
            raise KeyboardInterrupt
    monkeypatch.setattr(signs_data, "write_split_h5", write_then_fail)
    with pytest.raises(KeyboardInterrupt):
        fake.build(train_per_class=TRAIN_PER_CLASS + 1)
    assert {p.name: _sha(p) for p in fake.data_dir.glob("*.h5")} == before
    assert not list(fake.data_dir.glob(".*.tmp*"))


def test_interruption_between_renames_is_recovered_not_kept(fake, monkeypatch):
    fake.build()
    real_replace = signs_data.os.replace

    def replace_then_fail(src, dst):
        if Path(dst).name == "test_signs.h5":
            raise KeyboardInterrupt
        real_replace(src, dst)
    monkeypatch.setattr(signs_data.os, "replace", replace_then_fail)
    with pytest.raises(KeyboardInterrupt):
        fake.build(train_per_class=TRAIN_PER_CLASS + 1)  # new train file, old test file
    monkeypatch.undo()
    summary = fake.build(train_per_class=TRAIN_PER_CLASS + 1)
    assert summary["kept"] == [] and len(summary["built"]) == 3
    test, _ = _read(fake.data_dir / "test_signs.h5")
    assert len(test["test_set_y"]) == 6 * (PER_CLASS - TRAIN_PER_CLASS - 1)


def test_download_from_injected_url(fake, tmp_path):
    cache = tmp_path / "cache"
    summary = fake.build(source_zip=None, url=fake.zip_path.as_uri(), cache_dir=cache)
    cached = cache / signs_data.ARCHIVE_NAME
    assert summary["source"] == cached and cached.read_bytes() == fake.zip_path.read_bytes()
    assert any(line.startswith("downloading file://") for line in fake.log)
    assert len(summary["built"]) == 3


def test_shared_copy_is_preferred_to_a_download(fake):
    summary = fake.build(source_zip=None, shared_zip=fake.zip_path)
    assert summary["source"] == fake.zip_path


def test_offline_error_says_where_to_put_the_archive(fake, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(SignsDataError) as info:
        fake.build(source_zip=None, cache_dir=cache)  # url points at a missing file
    assert str(cache / signs_data.ARCHIVE_NAME) in str(info.value)
    assert not (cache / signs_data.ARCHIVE_NAME).exists()  # no partial download left


def test_corrupt_archive_error(fake, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(fake.zip_path.read_bytes()[:100])
    with pytest.raises(SignsDataError, match="not a readable zip archive"):
        fake.build(source_zip=bad)


def test_cli_writes_manifest_then_builds(fake, tmp_path, capsys):
    manifest = tmp_path / "cli.sha256"
    common = ["--data-dir", str(tmp_path / "d"), "--images-dir", str(tmp_path / "i"),
              "--source", str(fake.zip_path), "--manifest", str(manifest)]
    assert signs_data.main(common + ["--write-manifest"]) == 0
    assert manifest.read_text() == fake.manifest.read_text()
    # the fake archive has only 5 images per class, fewer than the 180 the real split needs
    assert signs_data.main(common) == 1
    assert "class 0 has 5 images" in capsys.readouterr().err


REAL_ZIP = signs_data.SHARED_ZIP


@pytest.mark.skipif(not REAL_ZIP.is_file(), reason=f"{REAL_ZIP} is absent")
def test_real_archive_builds_the_course_sized_files(tmp_path):
    summary = build(data_dir=tmp_path / DATASETS_DIR.name, images_dir=tmp_path / "images",
                    source_zip=REAL_ZIP, log=lambda line: None)
    train, _ = _read(tmp_path / DATASETS_DIR.name / "train_signs.h5")
    test, _ = _read(tmp_path / DATASETS_DIR.name / "test_signs.h5")
    assert train["train_set_x"].shape == (1080, 64, 64, 3)
    assert test["test_set_x"].shape == (157, 64, 64, 3)
    assert np.bincount(train["train_set_y"]).tolist() == [180] * 6
    assert train["list_classes"].tolist() == test["list_classes"].tolist() == [0, 1, 2, 3, 4, 5]
    assert summary["my_image_source"].startswith("Dataset/2/")
    # the repository's own files, when this builder made them, are the same bytes
    stamp = signs_data.read_stamp(signs_data.DEFAULT_DATA_DIR / signs_data.STAMP_FILE)
    for name in ("train_signs.h5", "test_signs.h5"):
        repo_file = signs_data.DEFAULT_DATA_DIR / name
        if stamp and repo_file.exists() and _sha(repo_file) in stamp["outputs"].get(name, []):
            assert _sha(repo_file) == _sha(tmp_path / DATASETS_DIR.name / name)
