"""CIFAR-10 as uint8 arrays, from either of its two common distributions.

- The official ``cifar-10-python.tar.gz`` (pickled ``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``, ``batches.meta``), as the archive or its extracted folder.
- The image-folder layout ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``, as a folder
  or a zip, optionally inside one top folder: what
  ``../shared/data/CIFAR-10-images-<commit>.zip`` holds (JPEG, so pixel values differ
  slightly from the official batches).

``load_cifar10()`` returns ``X_train`` uint8 (m, 32, 32, 3), ``y_train`` int64 (m,),
``X_test``, ``y_test`` and the class names in the canonical CIFAR-10 order (label 0 is
airplane, ..., 9 is truck) whatever the layout.  A full decode is cached as an ``.npz``
under ``datasets/.cache/`` (gitignored), so only the first load of a source pays for it;
a subset (``train_size``/``test_size``: stratified and seeded) is taken from the cache
when there is one, otherwise only its own images are decoded.
"""
import hashlib
import io
import json
import pickle
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from resnet_course.atomic import atomic_output
from resnet_course.data.sampling import stratified_indices
from resnet_course.paths import CACHE_DIR, DATASETS_DIR, SHARED_DATA_DIR

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
SHARED_ZIP = SHARED_DATA_DIR / "CIFAR-10-images-d7d05618061fe37d830fb0419063d113c575ccbc.zip"
# Where a user who downloads the data by hand would put it, in the order they are tried.
USER_SOURCES = (DATASETS_DIR / "cifar-10-python.tar.gz",
                DATASETS_DIR / "cifar-10-batches-py",
                DATASETS_DIR / "CIFAR-10-images")
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DEFAULT_CACHE_DIR = CACHE_DIR
CACHE_VERSION = 1  # bump when the decoded arrays would change for the same source

SPLITS = ("train", "test")
BATCH_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META_FILE = "batches.meta"
# "<optional top folder>/<split>/<class>/<file>.<image extension>"
_IMAGE_ENTRY = re.compile(r"^(?:([^/]+)/)?(train|test)/([^/]+)/([^/]+\.(?:jpe?g|png))$",
                          re.IGNORECASE)


class CifarError(ValueError):
    """The CIFAR-10 source is missing or not in a known layout; the message says how to fix it."""


# ---- where the data is -------------------------------------------------------------------

def default_source():
    """The shared zip when present, else the first of USER_SOURCES that exists."""
    for candidate in (SHARED_ZIP, *USER_SOURCES):
        if candidate.exists():
            return candidate
    raise CifarError(
        f"no CIFAR-10 data found (looked for {SHARED_ZIP} and "
        f"{', '.join(str(p) for p in USER_SOURCES)}); download {OFFICIAL_URL} into "
        f"{USER_SOURCES[0].parent}/ or give the path of a CIFAR-10 archive or folder."
    )


# ---- reading files from a zip, a tar or a folder alike ------------------------------------

# What reading a damaged zip, tar or gzip stream raises.
_READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error)


class _Files:
    """The regular files of a zip, a tar archive or a folder: ``names`` and ``read(name)``."""

    def __init__(self, path):
        self.path = Path(path)
        self._archive = None
        try:
            self._list()
        except _READ_ERRORS as err:
            self.close()
            raise CifarError(f"{self.path}: cannot list its files ({err}); the archive is "
                             f"probably truncated or corrupt, download it again.") from None

    def _list(self):
        if self.path.is_dir():
            self.names = sorted(p.relative_to(self.path).as_posix()
                                for p in self.path.rglob("*") if p.is_file())
            self._read = lambda name: (self.path / name).read_bytes()
        elif zipfile.is_zipfile(self.path):
            archive = self._archive = zipfile.ZipFile(self.path)
            self.names = [n for n in archive.namelist() if not n.endswith("/")]
            self._read = archive.read
        elif _is_tarfile(self.path):
            archive = self._archive = tarfile.open(self.path, "r:*")
            members = {m.name: m for m in archive.getmembers() if m.isfile()}
            self.names = sorted(members)
            self._read = lambda name: archive.extractfile(members[name]).read()
        else:
            raise CifarError(
                f"{self.path}: not a zip, a tar archive or a folder; give "
                f"cifar-10-python.tar.gz, a zip of train/<class>/ and test/<class>/ images, "
                f"or a folder of either."
            )

    def close(self):
        if self._archive is not None:
            self._archive.close()

    def read(self, name):
        try:
            return self._read(name)
        except _READ_ERRORS as err:
            raise CifarError(f"{self.path}: cannot read {name} ({err}); the archive is "
                             f"probably truncated or corrupt, download it again.") from None


def _is_tarfile(path):
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


# ---- the two layouts ---------------------------------------------------------------------

class _ImageFolderLayout:
    """train/<class>/<image> and test/<class>/<image>; images sorted by (class, file name)."""

    kind = "image folders"

    def __init__(self, files, entries):
        self.files = files
        self.entries = {split: sorted(entries[split]) for split in SPLITS}

    @classmethod
    def detect(cls, files):
        matches = [m for m in map(_IMAGE_ENTRY.match, files.names) if m]
        if not matches:
            return None
        tops = {m.group(1) for m in matches}
        if len(tops) > 1:
            raise CifarError(f"{files.path}: image folders under several top folders "
                             f"({', '.join(sorted(map(str, tops)))}); keep only one.")
        entries = {split: [] for split in SPLITS}
        for m in matches:
            split, class_name = m.group(2).lower(), m.group(3)
            if class_name not in CLASS_NAMES:
                raise CifarError(
                    f"{files.path}: unknown class folder {split}/{class_name}; CIFAR-10's "
                    f"classes are {', '.join(CLASS_NAMES)}."
                )
            entries[split].append((CLASS_NAMES.index(class_name), m.group(0)))
        for split in SPLITS:
            missing = set(range(len(CLASS_NAMES))) - {label for label, _ in entries[split]}
            if missing:
                names = ", ".join(f"{split}/{CLASS_NAMES[i]}/" for i in sorted(missing))
                raise CifarError(f"{files.path}: no images in {names}; the image-folder "
                                 f"layout needs all 10 classes in train/ and test/.")
        return cls(files, entries)

    def labels(self, split):
        return np.array([label for label, _ in self.entries[split]], dtype=np.int64)

    def images(self, split, indices):
        names = [self.entries[split][i][1] for i in indices]
        out = np.empty((len(names), *IMAGE_SHAPE), dtype=np.uint8)
        for row, name in enumerate(names):
            out[row] = _decode(self.files.read(name), f"{self.files.path}: {name}")
        return out


def _decode(data, where):
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.size != IMAGE_SHAPE[:2]:
                raise CifarError(f"{where}: image is {img.size[0]}x{img.size[1]}, CIFAR-10 "
                                 f"images are 32x32.")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise CifarError(f"{where}: not a readable image ({err}).") from None


class _PickleLayout:
    """The official python version: pickled batches of 10,000 rows of 3,072 bytes."""

    kind = "pickled batches"

    def __init__(self, files, folder):
        self.files, self.folder = files, folder
        self._arrays = {}

    @classmethod
    def detect(cls, files):
        firsts = [n for n in files.names if n.rsplit("/", 1)[-1] == "data_batch_1"]
        if not firsts:
            return None
        if len(firsts) > 1:
            raise CifarError(f"{files.path}: several data_batch_1 files ({', '.join(firsts)}); "
                             f"keep only one copy of the batches.")
        folder = firsts[0][: -len("data_batch_1")]
        expected = [folder + n for n in (*BATCH_FILES["train"], *BATCH_FILES["test"], META_FILE)]
        missing = [n for n in expected if n not in set(files.names)]
        if missing:
            raise CifarError(f"{files.path}: missing {', '.join(missing)}; the official "
                             f"layout has data_batch_1..5, test_batch and batches.meta.")
        layout = cls(files, folder)
        layout._check_meta()
        return layout

    def _unpickle(self, name):
        # The official batches are pickles; only open archives you trust.
        try:
            return pickle.loads(self.files.read(self.folder + name), encoding="bytes")
        except CifarError:
            raise
        except Exception as err:  # unpickling garbage raises almost anything
            raise CifarError(f"{self.files.path}: {self.folder + name} is not a CIFAR-10 "
                             f"batch ({type(err).__name__}: {err}).") from None

    def _check_meta(self):
        meta = self._unpickle(META_FILE)
        names = meta.get(b"label_names") if isinstance(meta, dict) else None
        names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names or ())
        if names != CLASS_NAMES:
            raise CifarError(f"{self.files.path}: batches.meta lists the classes {names}, not "
                             f"CIFAR-10's {CLASS_NAMES}.")

    def _split(self, split):
        if split not in self._arrays:
            images, labels = [], []
            for name in BATCH_FILES[split]:
                batch = self._unpickle(name)
                data = batch.get(b"data") if isinstance(batch, dict) else None
                y = batch.get(b"labels") if isinstance(batch, dict) else None
                data, y = np.asarray(data), np.asarray(y)
                if (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
                        or y.shape != (len(data),) or len(data) == 0
                        or not np.isin(y, np.arange(len(CLASS_NAMES))).all()):
                    raise CifarError(f"{self.files.path}: {self.folder + name} does not hold "
                                     f"uint8 rows of 3072 pixels with labels 0-9.")
                # each row: 1024 red, 1024 green, 1024 blue values, row-major 32x32
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(y.astype(np.int64))
            self._arrays[split] = (np.concatenate(images), np.concatenate(labels))
        return self._arrays[split]

    def labels(self, split):
        return self._split(split)[1]

    def images(self, split, indices):
        return self._split(split)[0][indices]


def open_layout(path):
    """The layout object of a CIFAR-10 source; CifarError if it is missing or unknown."""
    path = Path(path)
    if not path.exists():
        raise CifarError(f"{path}: not found; give the path of cifar-10-python.tar.gz, of a "
                         f"zip or folder of train/<class>/ and test/<class>/ images, or "
                         f"download {OFFICIAL_URL}.")
    files = _Files(path)
    try:
        for layout in (_PickleLayout, _ImageFolderLayout):
            found = layout.detect(files)
            if found is not None:
                return found
    except BaseException:
        files.close()
        raise
    files.close()
    raise CifarError(
        f"{path}: neither the official layout (data_batch_1..5, test_batch, batches.meta) "
        f"nor image folders train/<class>/*.jpg and test/<class>/*.jpg."
    )


# ---- the cache ---------------------------------------------------------------------------

def _source_signature(path):
    """Changes whenever the source's content could have changed (path, sizes, mtimes)."""
    path = Path(path).resolve()
    if path.is_dir():
        stats = [(p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(path.rglob("*")) if p.is_file()]
    else:
        stats = [(path.stat().st_size, path.stat().st_mtime_ns)]
    text = json.dumps([CACHE_VERSION, str(path), stats])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(source, cache_dir=DEFAULT_CACHE_DIR):
    return Path(cache_dir) / f"cifar10-{_source_signature(source)}.npz"


def _read_cache(path, splits):
    """{split: (X, y)} from the cache file, or None when it is absent or damaged."""
    try:
        with np.load(path) as data:  # an .npz reads only the arrays asked for
            return {split: (data[f"x_{split}"], data[f"y_{split}"]) for split in splits}
    except Exception:  # a damaged cache is simply rebuilt
        return None


def _write_cache(path, arrays):
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{f"{xy}_{split}": arrays[split][i]
                           for split in SPLITS for i, xy in enumerate("xy")})


# ---- public API --------------------------------------------------------------------------

def load_cifar10(source=None, train_size=None, test_size=None, seed=0,
                 cache_dir="default", splits=SPLITS, log=print):
    """CIFAR-10 as ``(X_train, y_train, X_test, y_test, class_names)``.

    Arguments:
    source -- cifar-10-python.tar.gz, a zip or folder of either layout; None: default_source()
    train_size, test_size -- None for every image, or the size of a stratified subset
    seed -- picks the subset (the same seed, the same images)
    cache_dir -- where full decodes are kept; "default": DEFAULT_CACHE_DIR; None: no cache
    splits -- the splits to load; the others are returned as None
    log -- called with a progress line before a slow decode

    X are uint8 (m, 32, 32, 3), y int64 (m,), class_names the canonical 10 names.
    Raises CifarError with one message saying what is wrong and how to fix it.

    Cache policy: the pickled batches are always decoded whole, so they are always
    cached; JPEG folders are cached when every image is decoded (no subset, both
    splits), otherwise only the images asked for are decoded.
    """
    source = Path(source) if source is not None else default_source()
    if isinstance(cache_dir, str) and cache_dir == "default":
        cache_dir = DEFAULT_CACHE_DIR
    sizes = {"train": train_size, "test": test_size}
    cache = cache_path(source, cache_dir) if cache_dir is not None and source.exists() else None
    full = _read_cache(cache, splits) if cache is not None else None
    if full is None:
        full = _decode_source(source, sizes, splits, seed, cache, log)
    arrays = {split: (None, None) for split in SPLITS}
    for split in splits:
        X, y = full[split]
        keep = _subset(y, sizes[split], seed, split)
        arrays[split] = (X, y) if keep is None else (X[keep], y[keep])
    (X_train, y_train), (X_test, y_test) = arrays["train"], arrays["test"]
    return X_train, y_train, X_test, y_test, CLASS_NAMES


def _decode_source(source, sizes, splits, seed, cache, log):
    """{split: (X, y)}: everything when it gets cached, else only the subsets asked for
    (taking a subset of ``size`` items from ``size`` items, the caller keeps them all)."""
    layout = open_layout(source)
    try:
        everything = layout.kind == "pickled batches" or (
            set(splits) == set(SPLITS) and all(sizes[s] is None for s in SPLITS))
        decode = SPLITS if everything else splits
        arrays = {}
        for split in decode:
            y = layout.labels(split)
            keep = None if everything else _subset(y, sizes[split], seed, split)
            indices = np.arange(len(y)) if keep is None else keep
            if len(indices) > 2000 and layout.kind == "image folders":
                log(f"decoding {len(indices)} CIFAR-10 {split} images from {source}"
                    + (" (once: the result is cached)" if cache else "") + " ...")
            arrays[split] = (layout.images(split, indices), y[indices])
    finally:
        layout.files.close()
    if everything and cache is not None:
        _write_cache(cache, arrays)
    return arrays


def _subset(labels, size, seed, split):
    if size is None:
        return None
    if not 1 <= size <= len(labels):
        raise CifarError(f"a {split} subset of {size} images: the {split} split has {len(labels)}; "
                         f"choose 1 to {len(labels)} (or leave it out for all).")
    return stratified_indices(labels, size, seed)


def extract_subset(archive_path, root, train_per_class, test_per_class):
    """Writes the first ``train_per_class`` / ``test_per_class`` images of each class of a CIFAR-10
    image-folder zip (as the shared archive: ``.../train/<class>/NNNN.jpg``, ``.../test/...``) under
    ``root`` in the same layout (``root/train/<class>/NNNN.jpg``), for small runs of train.py and
    its tests and benchmarks. Returns ``root`` (a Path)."""
    root = Path(root)
    with zipfile.ZipFile(archive_path) as archive:
        for name in archive.namelist():
            found = re.search(r"/(train|test)/(\w+)/(\d+)\.jpg$", name)
            limit = train_per_class if found and found.group(1) == "train" else test_per_class
            if found and int(found.group(3)) < limit:
                target = root / found.group(1) / found.group(2) / f"{found.group(3)}.jpg"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(name))
    return root
