"""Build ``datasets/heldout_signs.h5``: real photos from another source, which training never sees.

The photos are the Roboflow Universe export "Hand Gesture Recognition" v6 (workspace
``lebanese-university-grkoz``, CC BY 4.0): phone photos in homes, warm lamp light, hands turned
and tilted, one annotated box each (YOLO ``labels/*.txt``: class, centre x, centre y, width,
height, relative to the image). Its classes are named ``one`` .. ``five`` (no zero), the same
signs as SIGNS 1-5 ("three" is thumb + index + middle, "four" has the thumb folded).

Only the photos listed in the committed, reviewed manifest
(``manifests/roboflow_heldout.tsv``: file, sign, Roboflow class, sha256 of the image and of its
labels file) are used: every label was checked by eye, the 54 ``Screenshot-*`` files (web stock
photos, wrong labels) and photos of other gestures are left out. Each image and its labels file
must match the manifest byte for byte, or the build stops naming the files.

Each photo is cropped to a square around its box (the box's larger side plus the margin
``hand_framing`` uses, centred on the box, moved inside the photo where it can be, the photo's
edge pixels repeated where it cannot) and resized to 64x64 (Lanczos), without stretching.
Caveat: the export's 224x224 images were already stretched from the phones' aspect ratio
(about 3:4 or 9:16, not recorded per photo), so hands look wider than they were; that cannot be
undone exactly and is left as it is.

The file has the keys of ``test_signs.h5``: ``test_set_x`` uint8 (m, 64, 64, 3), ``test_set_y``
int64 (m,) in 1..5, ``list_classes`` int64 [0..5] (the label space of the models, so that a
six-class SIGNS model evaluates on it unchanged); its attributes say what it holds (source,
licence, attribution, changes, manifest). Images are in the manifest's order (by sign, then file).

Called by ``python -m resnet_course.data.signs_data`` (``make data``), after the SIGNS files; the
held-out file is optional (the notebook runs without it), so a missing archive skips it with a
message, while an archive that does not match the manifest is an error.
"""
import io
import os
import re
import zipfile
import zlib
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from resnet_course.atomic import temp_path_next_to
from resnet_course.data import signs_data
from resnet_course.data.signs_data import SignsDataError, _file_sha256, _sha256, _show
from resnet_course.learner.hand_framing import MARGIN
from resnet_course.paths import DATASETS_DIR, SHARED_DATA_DIR

BUILDER_VERSION = 1
HELDOUT_FILE = "heldout_signs.h5"
STAMP_FILE = ".heldout_build.json"

ARCHIVE_COMMIT = "fd632313b9d74d869f57b11a8b0bb249cbc537ae"
ARCHIVE_NAME = f"Hand-Gesture-Recognition-roboflow-{ARCHIVE_COMMIT}.zip"
# The repository that holds the export; its archive has the export's folders under a top folder.
ARCHIVE_URL = f"https://github.com/dwivedi1997/Hand-Gesture-YOLOv8/archive/{ARCHIVE_COMMIT}.zip"
SHARED_ZIP = SHARED_DATA_DIR / ARCHIVE_NAME
MANIFEST_PATH = Path(__file__).resolve().parent / "manifests" / "roboflow_heldout.tsv"
MANIFEST_COLUMNS = ("file", "sign", "roboflow_class", "image_sha256", "label_sha256")

# data.yaml of the export: the class index of a labels line names one of these.
ROBOFLOW_NAMES = ("five", "four", "one", "three", "two")
# The export's class names -> SIGNS classes (same signs; the export has no zero).
SIGN_OF = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
CLASSES = (0, 1, 2, 3, 4, 5)  # list_classes: the SIGNS label space, as in test_signs.h5
IMAGE_SIZE = signs_data.IMAGE_SIZE
RESAMPLE = signs_data.RESAMPLE
SCREENSHOT_PREFIX = "Screenshot-"  # web stock images with wrong labels: never used

ATTRIBUTES = {
    "source": ("Roboflow Universe, \"Hand Gesture Recognition\" v6 (YOLO export), "
               "https://universe.roboflow.com/lebanese-university-grkoz/hand-gesture-recognition-y5827; "
               f"copy used: github.com/dwivedi1997/Hand-Gesture-YOLOv8 at commit {ARCHIVE_COMMIT}"),
    "licence": "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)",
    "attribution": "Provided by a Roboflow user: the Roboflow workspace lebanese-university-grkoz",
    "changes": ("reviewed by eye: the Screenshot-* files and photos of other gestures left out, the "
                "rest listed in resnet_course/data/manifests/roboflow_heldout.tsv; classes one..five "
                "renamed 1..5; cropped to a square around the annotated hand box (edge pixels "
                "repeated where the square leaves the photo); resized from 224x224 to 64x64 "
                "(Lanczos). The export had stretched the phone photos to 224x224 (not undone)."),
    "use": "held-out evaluation only: never train on it",
}

# "<top folders>/<split>/images/<file>.jpg" and ".../labels/<file>.txt" (top folders optional).
_IMAGE_ENTRY = re.compile(r"^(?:.*/)?((?:train|valid|test)/images/[^/]+)$")
_LABEL_ENTRY = re.compile(r"^(?:.*/)?((?:train|valid|test)/labels/[^/]+\.txt)$")
_DATA_YAML = re.compile(r"^(?:[^/]+/)?data\.yaml$")


def label_path(image_name):
    """"<split>/labels/<stem>.txt" of "<split>/images/<stem>.<ext>"."""
    split, _, file_name = image_name.split("/")
    return f"{split}/labels/{file_name.rsplit('.', 1)[0]}.txt"


# ---- manifest ----------------------------------------------------------------------


def read_manifest(manifest_path=MANIFEST_PATH):
    """The reviewed list: [{"file", "sign" (int), "roboflow_class", "image_sha256",
    "label_sha256"}] in file order. SignsDataError for a missing or malformed manifest, a
    Screenshot-* file, a sign that is not its Roboflow class's, or a file listed twice."""
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise SignsDataError(f"manifest {manifest_path} is missing: restore it from git.")
    rows, seen, header = [], set(), None
    for line_no, line in enumerate(manifest_path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{_show(manifest_path)}:{line_no}"
        if header is None:
            if tuple(fields) != MANIFEST_COLUMNS:
                raise SignsDataError(f"{where}: expected the header {chr(9).join(MANIFEST_COLUMNS)!r}, "
                                     f"found {line!r}")
            header = fields
            continue
        if len(fields) != len(MANIFEST_COLUMNS):
            raise SignsDataError(f"{where}: expected {len(MANIFEST_COLUMNS)} tab-separated fields, "
                                 f"found {line!r}")
        row = dict(zip(MANIFEST_COLUMNS, fields))
        if not re.fullmatch(r"(train|valid|test)/images/[^/]+", row["file"]):
            raise SignsDataError(f"{where}: {row['file']!r} is not '<split>/images/<file>'")
        if row["file"].split("/")[-1].startswith(SCREENSHOT_PREFIX):
            raise SignsDataError(f"{where}: {row['file']} is one of the export's screenshots of web "
                                 f"stock photos (wrong labels); they are never used")
        if row["roboflow_class"] not in SIGN_OF or row["sign"] != str(SIGN_OF[row["roboflow_class"]]):
            raise SignsDataError(f"{where}: sign {row['sign']!r} is not the SIGNS class of "
                                 f"{row['roboflow_class']!r} ({SIGN_OF})")
        if not all(re.fullmatch(r"[0-9a-f]{64}", row[k]) for k in ("image_sha256", "label_sha256")):
            raise SignsDataError(f"{where}: the sha256 fields must be 64 hex digits")
        if row["file"] in seen:
            raise SignsDataError(f"{where}: {row['file']} is listed twice")
        seen.add(row["file"])
        rows.append({**row, "sign": int(row["sign"])})
    if not rows:
        raise SignsDataError(f"{_show(manifest_path)} lists no photos")
    return rows


def format_manifest(rows):
    """The manifest's text (header, then a line per row, sorted by sign and file)."""
    lines = ["\t".join(MANIFEST_COLUMNS)]
    for row in sorted(rows, key=lambda r: (int(r["sign"]), r["file"])):
        lines.append("\t".join(str(row[k]) for k in MANIFEST_COLUMNS))
    return "\n".join(lines) + "\n"


# ---- source archive ----------------------------------------------------------------


def read_archive(zip_path):
    """({"<split>/images/<file>": bytes}, {"<split>/labels/<file>.txt": bytes}, data.yaml text or
    None) from the export's zip."""
    images, labels, data_yaml = {}, {}, None
    try:
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                if name.endswith("/"):
                    continue
                if match := _IMAGE_ENTRY.match(name):
                    images[match.group(1)] = archive.read(name)
                elif match := _LABEL_ENTRY.match(name):
                    labels[match.group(1)] = archive.read(name)
                elif _DATA_YAML.match(name):
                    data_yaml = archive.read(name).decode("utf8", "replace")
    except (zipfile.BadZipFile, zlib.error, OSError) as err:
        raise SignsDataError(f"{zip_path} is not a readable zip archive ({err}); replace it with a "
                             f"good copy (a download in datasets/.cache/ can simply be deleted).") from err
    if not images:
        raise SignsDataError(f"{zip_path} has no <split>/images/ folders: it is not the Roboflow "
                             f"\"Hand Gesture Recognition\" export ({ARCHIVE_URL}).")
    return images, labels, data_yaml


def check_class_names(data_yaml, source=""):
    """SignsDataError when the export's data.yaml names its classes otherwise than ROBOFLOW_NAMES
    (then the labels' class indices would mean other signs)."""
    if data_yaml is None:
        return
    match = re.search(r"^names:\s*\[(.*)\]\s*$", data_yaml, flags=re.M)
    names = tuple(re.findall(r"['\"]?([A-Za-z]+)['\"]?", match.group(1))) if match else None
    if names != ROBOFLOW_NAMES:
        raise SignsDataError(f"{source} data.yaml names the classes {names}, not {ROBOFLOW_NAMES}: "
                             f"the labels would map to the wrong signs; use the export the "
                             f"manifest was made from.")


def verify(rows, images, labels, source="", manifest=MANIFEST_PATH):
    """SignsDataError naming every listed photo or labels file that is missing or differs."""
    wrong, missing = [], []
    for row in rows:
        for name, table, key in ((row["file"], images, "image_sha256"),
                                 (label_path(row["file"]), labels, "label_sha256")):
            if name not in table:
                missing.append(name)
            elif _sha256(table[name]) != row[key]:
                wrong.append(name)
    problems = []
    limit = signs_data._LIST_LIMIT
    for what, names in (("with wrong content", wrong), ("missing", missing)):
        if names:
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            problems.append(f"{len(names)} file(s) {what}: {', '.join(sorted(names)[:limit])}{more}")
    if problems:
        raise SignsDataError(f"the archive {source} does not match the manifest {_show(manifest)}: "
                             + "; ".join(problems) + ". Use an unmodified copy of the archive, or "
                             "pass the right one with --heldout-source ZIP.")


def read_box(label_bytes, name):
    """(class index, cx, cy, w, h) of the one box of a YOLO labels file."""
    lines = [line.split() for line in label_bytes.decode("ascii", "replace").splitlines() if line.strip()]
    if len(lines) != 1 or len(lines[0]) != 5:
        raise SignsDataError(f"{name}: expected one box 'class cx cy w h', found {len(lines)} line(s)")
    index, *box = lines[0]
    return int(index), *(float(v) for v in box)


# ---- crop ----------------------------------------------------------------------------


def square_crop(image, box, margin=MARGIN):
    """The square of an (h, w, 3) uint8 image around a relative (cx, cy, bw, bh) box: side the
    box's larger side (in pixels) times 1 + 2 * margin, centred on the box, moved inside the image
    where it fits, with the image's edge pixels repeated where it does not. (side, side, 3) uint8."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    cx, cy, bw, bh = box
    side = max(1, int(round(max(bw * w, bh * h) * (1 + 2 * margin))))
    origin = []
    for centre, size in ((cy * h, h), (cx * w, w)):
        start = centre - side / 2
        start = min(max(start, 0), size - side) if side <= size else (size - side) / 2
        origin.append(int(round(start)))
    top, left = origin
    pad = max(0, -top, -left, top + side - h, left + side - w)
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else image
    return padded[top + pad:top + pad + side, left + pad:left + pad + side].copy()


def to_array(image_bytes, box, name, size=IMAGE_SIZE):
    """One photo cropped around its box and resized to (size, size, 3) uint8."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as img:
            pixels = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise SignsDataError(f"{name}: not a readable image ({err})") from err
    square = square_crop(pixels, box)
    return np.asarray(Image.fromarray(square).resize((size, size), RESAMPLE), dtype=np.uint8)


def write_h5(path, rows, images, labels, manifest_path=MANIFEST_PATH):
    """Write the held-out file (test_signs.h5's keys, plus attributes saying what it holds)."""
    x, y = [], []
    for row in rows:
        index, *box = read_box(labels[label_path(row["file"])], label_path(row["file"]))
        if ROBOFLOW_NAMES[index] != row["roboflow_class"]:
            raise SignsDataError(f"{label_path(row['file'])}: class {ROBOFLOW_NAMES[index]!r}, "
                                 f"but the manifest says {row['roboflow_class']!r}")
        x.append(to_array(images[row["file"]], box, row["file"]))
        y.append(row["sign"])
    with h5py.File(path, "w") as f:
        f.create_dataset("test_set_x", data=np.stack(x).astype(np.uint8))
        f.create_dataset("test_set_y", data=np.array(y, dtype=np.int64))
        f.create_dataset("list_classes", data=np.array(CLASSES, dtype=np.int64))
        for key, value in ATTRIBUTES.items():
            f.attrs[key] = value
        f.attrs["manifest"] = f"resnet_course/data/manifests/{Path(manifest_path).name}"
        f.attrs["manifest_sha256"] = _file_sha256(manifest_path)


def info(path):
    """The held-out file's attributes ({} when it has none), e.g. for a report's source line."""
    with h5py.File(path, "r") as f:
        return {key: str(value) for key, value in f.attrs.items()}


# ---- build -----------------------------------------------------------------------------


def build_params(manifest_path=MANIFEST_PATH):
    return {"builder_version": BUILDER_VERSION,
            "manifest_sha256": _file_sha256(manifest_path) if Path(manifest_path).is_file() else None,
            "image_size": IMAGE_SIZE, "resample": signs_data.RESAMPLE_NAME, "margin": MARGIN}


def resolve_source(source_zip=None, shared_zip=SHARED_ZIP, cache_dir=None, url=ARCHIVE_URL, log=print):
    """Path of the export's zip: ``source_zip``, else ``shared_zip``, else a download."""
    if source_zip is not None:
        if not Path(source_zip).is_file():
            raise SignsDataError(f"--heldout-source {source_zip}: no such file")
        return Path(source_zip)
    if shared_zip is not None and Path(shared_zip).is_file():
        return Path(shared_zip)
    cached = Path(cache_dir if cache_dir is not None else DATASETS_DIR / ".cache") / ARCHIVE_NAME
    if not cached.is_file():
        signs_data.download(url, cached, log=log)
    return cached


def build(data_dir=DATASETS_DIR, source_zip=None, force=False, manifest_path=MANIFEST_PATH,
          shared_zip=SHARED_ZIP, url=ARCHIVE_URL, cache_dir=None, log=print):
    """Build ``data_dir/heldout_signs.h5`` when missing or stale; returns a summary dict.

    Summary keys: ``path``; ``state``: "built", "up to date", "kept" (a file this builder did not
    write: kept unless ``force``) or "skipped" (no archive: a download failed; the file is
    optional); ``n`` (images written, or None); ``source`` (archive read, or None).
    SignsDataError when the archive does not match the manifest (naming the files).
    """
    data_dir = Path(data_dir)
    path, stamp_path = data_dir / HELDOUT_FILE, data_dir / STAMP_FILE
    params = build_params(manifest_path)
    stamp = signs_data.read_stamp(stamp_path)
    summary = {"path": path, "state": None, "n": None, "source": None}
    state = "missing" if force else signs_data.classify(path, stamp, params)
    if state == "current":
        log(f"{_show(path)} is up to date")
        return {**summary, "state": "up to date"}
    if state == "foreign":
        log(f"kept {_show(path)}: not built by this builder; `--force` rebuilds it")
        return {**summary, "state": "kept"}
    rows = read_manifest(manifest_path)  # a bad manifest is an error even when offline
    try:
        source = resolve_source(source_zip, shared_zip=shared_zip,
                                cache_dir=cache_dir if cache_dir is not None else data_dir / ".cache",
                                url=url, log=log)
    except SignsDataError as err:
        if source_zip is not None:
            raise
        log(f"skipped {_show(path)} (the held-out photos, optional): {err}")
        return {**summary, "state": "skipped"}
    images, labels, data_yaml = read_archive(source)
    check_class_names(data_yaml, _show(source))
    verify(rows, images, labels, source=_show(source), manifest=manifest_path)
    log(f"verified {len(rows)} held-out photos of {_show(source)} against {_show(manifest_path)}")
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_next_to(path)
    try:
        write_h5(tmp, rows, images, labels, manifest_path)
        sha = _file_sha256(tmp)
        known = ((stamp or {}).get("outputs", {}).get(HELDOUT_FILE) or [])
        # marked incomplete with both hashes while the file is replaced (as signs_data does)
        signs_data.write_stamp(stamp_path, params, {HELDOUT_FILE: sorted(set(known) | {sha})}, False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    signs_data.write_stamp(stamp_path, params, {HELDOUT_FILE: [sha]}, complete=True)
    counts = np.bincount([row["sign"] for row in rows], minlength=len(CLASSES))
    log(f"wrote {_show(path)} ({len(rows)} held-out photos; per sign 1-5: "
        f"{', '.join(str(int(c)) for c in counts[1:])})")
    return {**summary, "state": "built", "n": len(rows), "source": source}
