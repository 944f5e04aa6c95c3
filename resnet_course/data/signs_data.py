"""Build the course's SIGNS data files from the public Sign Language Digits archive.

Produces, in exactly the course's format:

- ``datasets/train_signs.h5``: ``train_set_x`` uint8 (1080, 64, 64, 3),
  ``train_set_y`` int64 (1080,), ``list_classes`` int64 [0..5];
- ``datasets/test_signs.h5``: ``test_set_x`` uint8 (157, 64, 64, 3),
  ``test_set_y`` int64 (157,), ``list_classes``;
- ``images/my_image.jpg``: one test-split photo, the learner's sample "own photo";
- ``datasets/heldout_signs.h5`` (``resnet_course.data.heldout``): real phone photos from another
  source (Roboflow, CC BY 4.0), signs 1-5, for evaluation only; optional (skipped, with a
  message, when its archive cannot be found or downloaded).

Steps: find the archive (``--source``, else ``../shared/data/``, else download it into
``datasets/.cache/``), check every class 0-5 image against the committed manifest of
per-file sha256, split each class with a fixed seed (180 train, the rest test), resize
100x100 -> 64x64, write the files atomically and record them in a stamp
(``datasets/.signs_build.json``).

Files this builder did not produce (for example the course's own SIGNS files dropped
into ``datasets/``, or a learner's own ``my_image.jpg``) are never overwritten unless
``--force`` is given.  When everything is up to date the run only hashes the outputs.

CLI: ``python -m resnet_course.data.signs_data [--force] [--write-manifest] [--data-dir DIR]
[--images-dir DIR] [--source ZIP] [--manifest FILE] [--heldout-source ZIP] [--heldout-manifest FILE]
[--no-heldout]``.
"""
import argparse
import hashlib
import io
import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from resnet_course.atomic import atomic_output, temp_path_next_to
from resnet_course.paths import CACHE_DIR, DATASETS_DIR, DATA_FILES, IMAGES_DIR, SHARED_DATA_DIR

BUILDER_VERSION = 1

ARCHIVE_COMMIT = "4b09433ef9d5c60602e8805bb54b8aa2428527f8"
ARCHIVE_NAME = f"Sign-Language-Digits-Dataset-{ARCHIVE_COMMIT}.zip"
ARCHIVE_URL = f"https://github.com/ardamavi/Sign-Language-Digits-Dataset/archive/{ARCHIVE_COMMIT}.zip"
SHARED_ZIP = SHARED_DATA_DIR / ARCHIVE_NAME
MANIFEST_PATH = Path(__file__).resolve().parent / "manifests" / "sign_language_digits.sha256"
DEFAULT_DATA_DIR = DATASETS_DIR
DEFAULT_IMAGES_DIR = IMAGES_DIR
DOWNLOAD_TIMEOUT_S = 60

CLASSES = (0, 1, 2, 3, 4, 5)  # the six SIGNS classes; digits 6-9 of the archive are unused
TRAIN_PER_CLASS = 180  # 6 x 180 = 1080 training images, as in the course
SPLIT_SEED = 1
TRAIN_ORDER_STREAM = 100  # rng stream ids for the order of each split, distinct from class ids
TEST_ORDER_STREAM = 101
IMAGE_SIZE = 64
# LANCZOS, not BOX (area averaging): Pillow widens the Lanczos kernel by the reduction
# factor (1.5625 here), so it antialiases just as well, and it keeps the edges sharper;
# at 64x64 a finger is only a few pixels wide.
RESAMPLE = Image.LANCZOS
RESAMPLE_NAME = "LANCZOS"
MY_IMAGE_CLASS = 2  # my_image.jpg is the first test-split photo (by file name) of this class

TRAIN_FILE = DATA_FILES["train"]
TEST_FILE = DATA_FILES["test"]
MY_IMAGE_FILE = "my_image.jpg"
STAMP_FILE = ".signs_build.json"

# An image entry of the archive: "<top folder>/Dataset/<digit>/<file>" (top folder optional).
_IMAGE_ENTRY = re.compile(r"^(?:[^/]+/)?(Dataset/([0-9])/([^/]+))$")
_LIST_LIMIT = 10  # how many file names an error message lists before "and N more"


class SignsDataError(Exception):
    """The SIGNS files cannot be built; the message says why and what to do."""


# ---- source archive ----------------------------------------------------------------


def resolve_source(source_zip=None, shared_zip=SHARED_ZIP, cache_dir=None, url=ARCHIVE_URL,
                   log=print):
    """Path of the archive to read: ``source_zip``, else ``shared_zip``, else a download."""
    if source_zip is not None:
        source_zip = Path(source_zip)
        if not source_zip.is_file():
            raise SignsDataError(f"--source {source_zip}: no such file")
        return source_zip
    if shared_zip is not None and Path(shared_zip).is_file():
        return Path(shared_zip)
    cache_dir = Path(cache_dir if cache_dir is not None else CACHE_DIR)
    cached = cache_dir / ARCHIVE_NAME
    if not cached.is_file():
        download(url, cached, log=log)
    return cached


def download(url, destination, timeout=DOWNLOAD_TIMEOUT_S, log=print):
    """Download ``url`` to ``destination`` (written atomically)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {url} -> {_show(destination)}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            with atomic_output(destination) as tmp:
                with open(tmp, "wb") as out:
                    shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as err:
        raise SignsDataError(
            f"could not download the Sign Language Digits archive from {url} ({err}). "
            f"Without internet access, download it on another machine and put it at "
            f"{destination} (or pass --source ZIP)."
        ) from err


def read_class_images(zip_path, classes=CLASSES):
    """{"Dataset/<c>/<file>": bytes} for every file in the archive's class folders ``classes``."""
    wanted = {str(c) for c in classes}
    images = {}
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                match = _IMAGE_ENTRY.match(name)
                if match and match.group(2) in wanted:
                    images[match.group(1)] = archive.read(name)
    except (zipfile.BadZipFile, zlib.error, OSError) as err:
        raise SignsDataError(
            f"{zip_path} is not a readable zip archive ({err}); replace it with a good copy "
            f"(a download in datasets/.cache/ can simply be deleted: it is fetched again), "
            f"or pass one with --source ZIP."
        ) from err
    if not images:
        raise SignsDataError(
            f"{zip_path} has no Dataset/<digit>/ image folders: it is not the Sign Language "
            f"Digits archive ({ARCHIVE_URL})."
        )
    return images


# ---- manifest ----------------------------------------------------------------------


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_sort_key(name):
    _, digit, file_name = name.split("/")
    return int(digit), file_name


def format_manifest(images):
    """sha256sum-format text for ``images`` ({relative name: bytes}), sorted by class and name."""
    return "".join(f"{_sha256(images[name])}  {name}\n"
                   for name in sorted(images, key=_entry_sort_key))


def read_manifest(manifest_path=MANIFEST_PATH):
    """{"Dataset/<c>/<file>": sha256 hex} from a sha256sum-format manifest."""
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise SignsDataError(
            f"manifest {manifest_path} is missing: restore it from git, or recreate it from "
            f"a trusted archive with `python -m resnet_course.data.signs_data --write-manifest`."
        )
    expected = {}
    for line_no, line in enumerate(manifest_path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](Dataset/[0-9]/[^/]+)", line.strip())
        if not match:
            raise SignsDataError(f"{manifest_path}:{line_no}: expected '<sha256>  "
                                 f"Dataset/<digit>/<file>', found {line!r}")
        expected[match.group(2)] = match.group(1)
    return expected


def write_manifest(source_zip, manifest_path=MANIFEST_PATH, log=print):
    """(Re)create the manifest from a trusted archive; returns the number of files listed."""
    images = read_class_images(source_zip)
    manifest_path = Path(manifest_path)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(manifest_path) as tmp:
        Path(tmp).write_text(format_manifest(images))
    log(f"wrote {_show(manifest_path)} ({len(images)} files from {_show(source_zip)})")
    return len(images)


def _name_list(names):
    names = sorted(names, key=_entry_sort_key)
    shown = ", ".join(names[:_LIST_LIMIT])
    more = len(names) - _LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")


def verify_images(images, expected, source="", manifest=MANIFEST_PATH):
    """Raise SignsDataError naming every file that differs from the manifest ``expected``."""
    wrong = [n for n in images if n in expected and _sha256(images[n]) != expected[n]]
    missing = [n for n in expected if n not in images]
    unexpected = [n for n in images if n not in expected]
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} file(s) with wrong content: {_name_list(wrong)}")
    if missing:
        problems.append(f"{len(missing)} missing file(s): {_name_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected file(s): {_name_list(unexpected)}")
    if problems:
        raise SignsDataError(
            f"the archive {source} does not match the manifest {_show(manifest)}: "
            + "; ".join(problems)
            + ". Use an unmodified copy of the archive (delete a damaged download and run "
              "again), or pass the right one with --source ZIP."
        )


# ---- split and conversion ----------------------------------------------------------


def split_names(names, classes=CLASSES, train_per_class=TRAIN_PER_CLASS, seed=SPLIT_SEED):
    """Seeded stratified split of "Dataset/<c>/<file>" names -> (train, test) lists.

    Per class: sort the names, shuffle them with a generator seeded by (seed, class), the
    first ``train_per_class`` go to train and the rest to test.  Each split's order is then
    shuffled with its own seeded generator, so the files are not sorted by class.
    """
    train, test = [], []
    for c in classes:
        in_class = sorted(n for n in names if _entry_sort_key(n)[0] == c)
        if len(in_class) <= train_per_class:
            raise SignsDataError(
                f"class {c} has {len(in_class)} images; need more than {train_per_class} "
                f"to split into train and test"
            )
        order = np.random.default_rng([seed, c]).permutation(len(in_class))
        shuffled = [in_class[i] for i in order]
        train += shuffled[:train_per_class]
        test += shuffled[train_per_class:]
    train = [train[i] for i in np.random.default_rng([seed, TRAIN_ORDER_STREAM]).permutation(len(train))]
    test = [test[i] for i in np.random.default_rng([seed, TEST_ORDER_STREAM]).permutation(len(test))]
    return train, test


def to_array(image_bytes, name, size=IMAGE_SIZE):
    """Decode one square photo and resize it to (size, size, 3) uint8."""
    with Image.open(io.BytesIO(image_bytes)) as img:
        if img.width != img.height:
            raise SignsDataError(f"{name} is {img.width}x{img.height}; expected a square photo")
        img = img.convert("RGB").resize((size, size), RESAMPLE)
        return np.asarray(img, dtype=np.uint8)


def _label(name):
    return _entry_sort_key(name)[0]


def pick_my_image(test_names, my_class=MY_IMAGE_CLASS):
    """The deterministic sample photo: first test-split file (by name) of ``my_class``."""
    candidates = sorted(n for n in test_names if _label(n) == my_class)
    if not candidates:
        raise SignsDataError(f"no test-split image of class {my_class} for {MY_IMAGE_FILE}")
    return candidates[0]


def write_split_h5(path, prefix, names, images, classes=CLASSES):
    """Write one split in the course's format: <prefix>_set_x, <prefix>_set_y, list_classes."""
    x = np.stack([to_array(images[n], n) for n in names]).astype(np.uint8)
    y = np.array([_label(n) for n in names], dtype=np.int64)
    with h5py.File(path, "w") as f:
        f.create_dataset(f"{prefix}_set_x", data=x)
        f.create_dataset(f"{prefix}_set_y", data=y)
        f.create_dataset("list_classes", data=np.array(classes, dtype=np.int64))


# ---- the stamp ----------------------------------------------------------------------

def build_params(manifest_path=MANIFEST_PATH, train_per_class=TRAIN_PER_CLASS):
    """Everything the outputs depend on; a change makes this builder's files stale."""
    return {
        "builder_version": BUILDER_VERSION,
        "manifest_sha256": _file_sha256(manifest_path) if Path(manifest_path).is_file() else None,
        "classes": list(CLASSES),
        "train_per_class": train_per_class,
        "split_seed": SPLIT_SEED,
        "image_size": IMAGE_SIZE,
        "resample": RESAMPLE_NAME,
        "my_image_class": MY_IMAGE_CLASS,
    }


def read_stamp(stamp_path):
    try:
        stamp = json.loads(Path(stamp_path).read_text())
    except (OSError, ValueError):
        return None
    outputs = stamp.get("outputs") if isinstance(stamp, dict) else None
    well_formed = isinstance(outputs, dict) and all(
        isinstance(hashes, list) and all(isinstance(h, str) for h in hashes)
        for hashes in outputs.values())
    return stamp if well_formed else None  # unreadable stamp: treat as no stamp


def write_stamp(stamp_path, params, outputs, complete):
    """``outputs``: {file name: [sha256 of files this builder wrote under that name]}.

    While files are being replaced the stamp is marked incomplete and lists both the old
    and the new hash, so an interrupted build leaves files that are still recognised as
    this builder's (and stale), never as foreign files to be kept.
    """
    stamp = {"params": params, "complete": complete, "outputs": outputs}
    with atomic_output(stamp_path) as tmp:
        Path(tmp).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")


def classify(path, stamp, params):
    """State of one output: "missing", "current", "stale" (ours, outdated) or "foreign"."""
    path = Path(path)
    if not path.exists():
        return "missing"
    known = (stamp or {}).get("outputs", {}).get(path.name) or []
    if _file_sha256(path) not in known:
        return "foreign"
    if stamp.get("complete") and stamp.get("params") == params:
        return "current"
    return "stale"


# ---- build -------------------------------------------------------------------------


def _show(path):
    """A path relative to the current directory when it is below it (shorter messages)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def build(data_dir=DEFAULT_DATA_DIR, images_dir=DEFAULT_IMAGES_DIR, source_zip=None, force=False,
          manifest_path=MANIFEST_PATH, shared_zip=SHARED_ZIP, url=ARCHIVE_URL, cache_dir=None,
          train_per_class=TRAIN_PER_CLASS, log=print):
    """Build the SIGNS files when missing or stale; returns a summary dict.

    Summary keys: ``train``, ``test``, ``my_image`` (paths); ``built``, ``kept``,
    ``up_to_date`` (lists of paths); ``source`` (archive read, or None);
    ``n_train``, ``n_test``; ``my_image_source`` ("Dataset/<c>/<file>" or None).
    """
    data_dir, images_dir = Path(data_dir), Path(images_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else data_dir / ".cache"
    train_path, test_path = data_dir / TRAIN_FILE, data_dir / TEST_FILE
    my_image_path = images_dir / MY_IMAGE_FILE
    stamp_path = data_dir / STAMP_FILE
    params = build_params(manifest_path, train_per_class)
    stamp = read_stamp(stamp_path)
    summary = {"train": train_path, "test": test_path, "my_image": my_image_path, "built": [],
               "kept": [], "up_to_date": [], "source": None, "n_train": None, "n_test": None,
               "my_image_source": None}

    states = {p: ("missing" if force else classify(p, stamp, params))
              for p in (train_path, test_path, my_image_path)}
    todo = []
    h5_pair = (train_path, test_path)
    foreign_h5 = [p for p in h5_pair if states[p] == "foreign"]
    if foreign_h5:
        # The two h5 files are a pair: never mix a foreign file with one of ours.
        for p in h5_pair:
            if states[p] == "foreign":
                log(f"kept {_show(p)}: not built by this builder (e.g. the course's own file); "
                    f"`--force` rebuilds it")
                summary["kept"].append(p)
            elif states[p] == "missing":
                raise SignsDataError(
                    f"{_show(p)} is missing but {_show(foreign_h5[0])} was not built by this "
                    f"builder, so a matching file cannot be built; add the matching file, or "
                    f"rebuild both with `python -m resnet_course.data.signs_data --force`."
                )
            else:  # ours, but its partner is foreign: leave the pair as the user arranged it
                log(f"kept {_show(p)}: {_show(foreign_h5[0])} next to it was not built by this "
                    f"builder; `--force` rebuilds both")
                summary["kept"].append(p)
    elif any(states[p] != "current" for p in h5_pair):
        todo += h5_pair  # both together, so the pair always comes from one split
    if states[my_image_path] == "foreign":
        log(f"kept {_show(my_image_path)}: not built by this builder (your own photo?); "
            f"`--force` replaces it")
        summary["kept"].append(my_image_path)
    elif states[my_image_path] != "current":
        todo.append(my_image_path)
    for p in (train_path, test_path, my_image_path):
        if states[p] == "current" and p not in todo:
            log(f"{_show(p)} is up to date")
            summary["up_to_date"].append(p)
    if not todo:
        return summary

    try:
        source = resolve_source(source_zip, shared_zip=shared_zip, cache_dir=cache_dir, url=url,
                                log=log)
    except SignsDataError as err:
        if todo != [my_image_path]:
            raise
        # The data set is there (e.g. the course's own files): the sample photo alone is no
        # reason to stop a learner who is offline.
        log(f"skipped {_show(my_image_path)}: the archive it comes from is not available ({err}); "
            "put a photo of a hand sign there for the notebook's last section")
        return summary
    summary["source"] = source
    images = read_class_images(source)
    verify_images(images, read_manifest(manifest_path), source=_show(source), manifest=manifest_path)
    log(f"verified {len(images)} images of {_show(source)} against {_show(manifest_path)}")
    train_names, test_names = split_names(images, train_per_class=train_per_class)
    summary["n_train"], summary["n_test"] = len(train_names), len(test_names)
    my_name = pick_my_image(test_names)
    summary["my_image_source"] = my_name

    previous = (stamp or {}).get("outputs", {})
    descriptions = {train_path: f"{len(train_names)} images", test_path: f"{len(test_names)} images",
                    my_image_path: f"{my_name}, class {_label(my_name)}"}
    tmp_paths = {}
    try:
        for p in todo:
            tmp_paths[p] = temp_path_next_to(p)
            if p == train_path:
                write_split_h5(tmp_paths[p], "train", train_names, images)
            elif p == test_path:
                write_split_h5(tmp_paths[p], "test", test_names, images)
            else:
                tmp_paths[p].write_bytes(images[my_name])  # the original 100x100 JPEG as is
        new_hashes = {p.name: _file_sha256(tmp_paths[p]) for p in todo}
        transition = {name: list(hashes) for name, hashes in previous.items()}
        for name, sha in new_hashes.items():
            transition[name] = sorted(set(transition.get(name, [])) | {sha})
        write_stamp(stamp_path, params, transition, complete=False)
        for p in todo:
            os.replace(tmp_paths.pop(p), p)
            log(f"wrote {_show(p)} ({descriptions[p]})")
            summary["built"].append(p)
    finally:
        for tmp in tmp_paths.values():  # only left when interrupted
            tmp.unlink(missing_ok=True)
    final = {name: [sha] for name, sha in new_hashes.items()}
    for p in summary["up_to_date"]:
        final[p.name] = [_file_sha256(p)]
    write_stamp(stamp_path, params, final, complete=True)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m resnet_course.data.signs_data",
        description="Build datasets/train_signs.h5, datasets/test_signs.h5 and "
                    "images/my_image.jpg from the Sign Language Digits archive, and "
                    "datasets/heldout_signs.h5 (photos from another source, for evaluation "
                    "only) from the Roboflow export.")
    parser.add_argument("--force", action="store_true",
                        help="rebuild everything, replacing files this builder did not produce")
    parser.add_argument("--write-manifest", action="store_true",
                        help="(re)create the per-file sha256 manifest from a trusted archive and stop")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder of the h5 files (default: %(default)s)")
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES_DIR,
                        help="folder of my_image.jpg (default: %(default)s)")
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH,
                        help="per-file sha256 manifest of the class 0-5 images (default: %(default)s)")
    parser.add_argument("--source", type=Path, default=None,
                        help=f"the archive to use (default: ../shared/data/{ARCHIVE_NAME} "
                             f"when present, else download {ARCHIVE_URL})")
    parser.add_argument("--heldout-source", type=Path, default=None,
                        help="the Roboflow export's zip for heldout_signs.h5 (default: "
                             "../shared/data/Hand-Gesture-Recognition-roboflow-<commit>.zip when "
                             "present, else download it; skipped when neither works)")
    parser.add_argument("--heldout-manifest", type=Path, default=None,
                        help="the reviewed list of held-out photos (default: "
                             "resnet_course/data/manifests/roboflow_heldout.tsv)")
    parser.add_argument("--no-heldout", action="store_true",
                        help="do not build heldout_signs.h5")
    args = parser.parse_args(argv)
    from resnet_course.data import heldout  # it builds on this module

    try:
        if args.write_manifest:
            write_manifest(resolve_source(args.source, cache_dir=args.data_dir / ".cache"),
                           manifest_path=args.manifest)
        else:
            build(data_dir=args.data_dir, images_dir=args.images_dir, source_zip=args.source,
                  force=args.force, manifest_path=args.manifest)
            if not args.no_heldout:
                heldout.build(data_dir=args.data_dir, source_zip=args.heldout_source,
                              force=args.force,
                              manifest_path=args.heldout_manifest or heldout.MANIFEST_PATH)
    except SignsDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
