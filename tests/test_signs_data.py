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


# ---- the held-out photos (resnet_course.data.heldout): issue 28 ----------------------

from resnet_course.data import heldout  # noqa: E402

HELDOUT_TOP = "Hand-Gesture-Recognition-roboflow"
# (split, file stem, Roboflow class index, box cx cy w h): class indices as data.yaml names them
HELDOUT_PHOTOS = [("train", "IMG-1_jpg.rf.aa", 2, (0.5, 0.5, 0.4, 0.6)),    # one
                  ("train", "IMG-2_jpg.rf.bb", 4, (0.2, 0.3, 0.3, 0.5)),    # two, near an edge
                  ("valid", "IMG-3_jpg.rf.cc", 3, (0.6, 0.5, 0.95, 0.9)),   # three, nearly all
                  ("test", "IMG-4_jpg.rf.dd", 1, (0.5, 0.6, 0.5, 0.3)),     # four
                  ("test", "IMG-5_jpg.rf.ee", 0, (0.4, 0.4, 0.6, 0.6))]     # five
DATA_YAML = "nc: 5\nnames: ['five','four','one','three','two']\n"


def _heldout_label(index, box):
    return (f"{index} " + " ".join(f"{v:.6f}" for v in box) + "\n").encode()


def heldout_sources():
    """({"<split>/images/<file>.jpg": bytes}, {"<split>/labels/<file>.txt": bytes})."""
    images, labels = {}, {}
    for k, (split, stem, index, box) in enumerate(HELDOUT_PHOTOS):
        images[f"{split}/images/{stem}.jpg"] = _jpeg(500 + k, size=56)
        labels[f"{split}/labels/{stem}.txt"] = _heldout_label(index, box)
    return images, labels


def write_heldout_zip(path, images, labels, data_yaml=DATA_YAML, screenshot=True):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{HELDOUT_TOP}/data.yaml", data_yaml)
        for name, data in {**images, **labels}.items():
            archive.writestr(f"{HELDOUT_TOP}/{name}", data)
        if screenshot:  # in the real export, never listed
            archive.writestr(f"{HELDOUT_TOP}/train/images/Screenshot-2023-03-15_png.rf.ff.jpg", _jpeg(9))
    return path


def heldout_manifest_rows(images, labels):
    rows = []
    for split, stem, index, _ in HELDOUT_PHOTOS:
        name = f"{split}/images/{stem}.jpg"
        roboflow_class = heldout.ROBOFLOW_NAMES[index]
        rows.append({"file": name, "sign": heldout.SIGN_OF[roboflow_class],
                     "roboflow_class": roboflow_class,
                     "image_sha256": hashlib.sha256(images[name]).hexdigest(),
                     "label_sha256": hashlib.sha256(labels[heldout.label_path(name)]).hexdigest()})
    return rows


@pytest.fixture
def fake_heldout(tmp_path):
    """A small synthetic export (five photos, one per sign, plus a screenshot), its manifest and
    ``fake_heldout.build(**kw)``."""
    class Fake:
        images, labels = heldout_sources()
        zip_path = write_heldout_zip(tmp_path / "roboflow.zip", images, labels)
        manifest = tmp_path / "heldout.tsv"
        data_dir = tmp_path / "data"
        log = []

        def build(self, **kwargs):
            options = dict(data_dir=self.data_dir, source_zip=self.zip_path,
                           manifest_path=self.manifest, shared_zip=None,
                           url="file:///nonexistent/roboflow.zip", log=self.log.append)
            options.update(kwargs)
            return heldout.build(**options)

    fake = Fake()
    fake.manifest.write_text("# a comment\n" + heldout.format_manifest(
        heldout_manifest_rows(fake.images, fake.labels)))
    return fake


def test_heldout_file_has_the_test_split_format_and_says_what_it_holds(fake_heldout):
    summary = fake_heldout.build()
    assert summary["state"] == "built" and summary["n"] == 5
    data, keys = _read(fake_heldout.data_dir / "heldout_signs.h5")
    assert keys == ["list_classes", "test_set_x", "test_set_y"]  # exactly test_signs.h5's keys
    assert data["test_set_x"].dtype == np.uint8 and data["test_set_x"].shape == (5, 64, 64, 3)
    assert data["test_set_y"].dtype == np.int64 and data["test_set_y"].tolist() == [1, 2, 3, 4, 5]
    assert data["list_classes"].dtype == np.int64 and data["list_classes"].tolist() == [0, 1, 2, 3, 4, 5]
    attrs = heldout.info(fake_heldout.data_dir / "heldout_signs.h5")
    assert attrs["licence"].startswith("CC BY 4.0")
    assert "lebanese-university-grkoz" in attrs["attribution"]
    assert "roboflow" in attrs["source"].lower()
    assert "cropped" in attrs["changes"] and "resized" in attrs["changes"]
    # the learner's loader reads it as a test split
    from resnet_course.learner import signs_files
    X, y, classes = signs_files.load_split(fake_heldout.data_dir / "heldout_signs.h5", "test")
    assert X.shape == (5, 64, 64, 3) and y.tolist() == [1, 2, 3, 4, 5]


def test_heldout_pixels_are_the_box_crop_resized(fake_heldout):
    fake_heldout.build()
    data, _ = _read(fake_heldout.data_dir / "heldout_signs.h5")
    name = "train/images/IMG-2_jpg.rf.bb.jpg"
    expected = heldout.to_array(fake_heldout.images[name], (0.2, 0.3, 0.3, 0.5), name)
    assert np.array_equal(data["test_set_x"][1], expected)


def test_square_crop_keeps_proportions_moves_inside_and_pads():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 70:130] = 255  # a 60x20 white box centred at (100, 50)
    crop = heldout.square_crop(image, (0.5, 0.5, 0.3, 0.2), margin=0.0)
    assert crop.shape == (60, 60, 3)  # the larger side, square: no stretching
    white_rows = np.flatnonzero(crop[..., 0].max(axis=1) == 255)
    assert (white_rows.min(), white_rows.max()) == (20, 39)  # 20 rows of 60, centred
    assert crop[..., 0].min(axis=0).max() == 0 and (crop[20:40, :, 0] == 255).all()
    # a box at the photo's left edge: the square is moved inside, not padded
    edge = heldout.square_crop(image, (0.05, 0.5, 0.1, 0.2), margin=0.0)
    assert edge.shape == (20, 20, 3)
    # a box as tall as the photo and a margin: the square is larger than the photo's height,
    # and the photo's edge rows are repeated
    tall = heldout.square_crop(image, (0.5, 0.5, 0.2, 1.0), margin=0.1)
    assert tall.shape == (120, 120, 3)


def test_heldout_changed_image_is_refused_with_its_name(fake_heldout, tmp_path):
    images = dict(fake_heldout.images)
    images["valid/images/IMG-3_jpg.rf.cc.jpg"] = _jpeg(999, size=56)
    bad = write_heldout_zip(tmp_path / "bad.zip", images, fake_heldout.labels)
    with pytest.raises(SignsDataError, match=r"wrong content: valid/images/IMG-3_jpg\.rf\.cc\.jpg"):
        fake_heldout.build(source_zip=bad)
    assert not (fake_heldout.data_dir / "heldout_signs.h5").exists()


def test_heldout_changed_box_and_missing_image_are_named(fake_heldout, tmp_path):
    images, labels = dict(fake_heldout.images), dict(fake_heldout.labels)
    labels["test/labels/IMG-4_jpg.rf.dd.txt"] = _heldout_label(1, (0.5, 0.5, 0.5, 0.3))
    del images["train/images/IMG-1_jpg.rf.aa.jpg"]
    bad = write_heldout_zip(tmp_path / "bad.zip", images, labels)
    with pytest.raises(SignsDataError) as info:
        fake_heldout.build(source_zip=bad)
    message = str(info.value)
    assert "wrong content: test/labels/IMG-4_jpg.rf.dd.txt" in message
    assert "missing: train/images/IMG-1_jpg.rf.aa.jpg" in message
    assert "--heldout-source" in message


def test_heldout_class_mapping():
    assert heldout.SIGN_OF == {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
    # data.yaml's order: the labels' class index i names ROBOFLOW_NAMES[i]
    assert [heldout.SIGN_OF[name] for name in heldout.ROBOFLOW_NAMES] == [5, 4, 1, 3, 2]


def test_heldout_export_with_other_class_names_is_refused(fake_heldout, tmp_path):
    swapped = write_heldout_zip(tmp_path / "swapped.zip", fake_heldout.images, fake_heldout.labels,
                                data_yaml="nc: 5\nnames: ['one','two','three','four','five']\n")
    with pytest.raises(SignsDataError, match="wrong signs"):
        fake_heldout.build(source_zip=swapped)


@pytest.mark.parametrize("edit, message", [
    (lambda row: {**row, "sign": 3}, "not the SIGNS class of 'one'"),
    (lambda row: {**row, "file": "train/images/Screenshot-2023-03-15_png.rf.ff.jpg"}, "screenshots"),
])
def test_heldout_manifest_rows_that_break_the_mapping_are_refused(fake_heldout, edit, message):
    rows = heldout_manifest_rows(fake_heldout.images, fake_heldout.labels)
    rows[0] = edit(rows[0])
    fake_heldout.manifest.write_text(heldout.format_manifest(rows))
    with pytest.raises(SignsDataError, match=message):
        fake_heldout.build()


def test_heldout_is_optional_offline_and_a_no_op_when_up_to_date(fake_heldout, tmp_path):
    summary = fake_heldout.build(source_zip=None, cache_dir=tmp_path / "cache")  # nowhere to get it
    assert summary["state"] == "skipped" and not (fake_heldout.data_dir / "heldout_signs.h5").exists()
    assert any(line.startswith("skipped") and "optional" in line for line in fake_heldout.log)
    fake_heldout.build()
    before = _sha(fake_heldout.data_dir / "heldout_signs.h5")
    fake_heldout.zip_path.unlink()
    assert fake_heldout.build()["state"] == "up to date"
    assert _sha(fake_heldout.data_dir / "heldout_signs.h5") == before


def test_a_foreign_heldout_file_is_kept(fake_heldout):
    fake_heldout.data_dir.mkdir()
    _write_course_file(fake_heldout.data_dir / "heldout_signs.h5", "test", 6)
    assert fake_heldout.build()["state"] == "kept"
    assert fake_heldout.build(force=True)["state"] == "built"


def test_committed_heldout_manifest_is_reviewed_and_consistent():
    rows = heldout.read_manifest()  # checks the mapping, screenshots, duplicates
    per_sign = np.bincount([row["sign"] for row in rows], minlength=6)
    assert per_sign[0] == 0 and per_sign[1:].min() >= 60
    dropped = heldout.MANIFEST_PATH.with_name("roboflow_heldout_dropped.tsv")
    dropped_files = {line.split("\t")[0] for line in dropped.read_text().splitlines()
                     if line and not line.startswith("#")} - {"file"}
    assert not dropped_files & {row["file"] for row in rows}
    # every photo of the export was looked at: used, dropped, or one of its 54 screenshots
    assert len(rows) + len(dropped_files) + 54 == 839


HELDOUT_ZIP = heldout.SHARED_ZIP


@pytest.mark.skipif(not HELDOUT_ZIP.is_file(), reason=f"{HELDOUT_ZIP} is absent")
def test_real_export_builds_the_heldout_file(tmp_path):
    summary = heldout.build(data_dir=tmp_path, source_zip=HELDOUT_ZIP, log=lambda line: None)
    data, _ = _read(tmp_path / "heldout_signs.h5")
    assert data["test_set_x"].shape == (summary["n"], 64, 64, 3) == (len(heldout.read_manifest()), 64, 64, 3)
    assert set(data["test_set_y"].tolist()) == {1, 2, 3, 4, 5}


def test_make_data_is_one_command_for_both(fake_heldout, monkeypatch, tmp_path):
    monkeypatch.setattr(signs_data, "build", lambda **kwargs: None)  # the SIGNS part is tested above
    common = ["--data-dir", str(fake_heldout.data_dir), "--heldout-manifest", str(fake_heldout.manifest)]
    assert signs_data.main(common + ["--heldout-source", str(fake_heldout.zip_path)]) == 0
    assert (fake_heldout.data_dir / "heldout_signs.h5").is_file()
    images = dict(fake_heldout.images)
    images["test/images/IMG-5_jpg.rf.ee.jpg"] = _jpeg(1, size=56)
    bad = write_heldout_zip(tmp_path / "bad.zip", images, fake_heldout.labels)
    assert signs_data.main(common + ["--force", "--heldout-source", str(bad)]) == 1


def test_the_learner_bundle_attributes_the_heldout_photos():
    from resnet_course.course import bundle
    text = (bundle.TEMPLATES / "ATTRIBUTION.md").read_text()
    held = text.split("## The held-out photos", 1)[1]
    assert "lebanese-university-grkoz" in held and "CC BY 4.0" in held and "heldout_signs.h5" in held
    assert "cropped" in held and "resized" in held and "stretched" in held
