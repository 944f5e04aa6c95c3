"""The learner bundle: what a learner downloads, and the notebook's setup cell that fetches it.

Two zips, both written by ``make release`` (resnet_course.release) into release/:

- ``ResNet50-files.zip`` (FILES_ZIP): the learner modules, datasets/, images/ and the data's licence
  and attribution; no notebook. The notebook's setup cell downloads it where the files are missing
  (Colab opens a notebook alone) and pins its sha256, which is why it cannot hold the notebook.
- ``ResNet50.zip`` (paths.BUNDLE_ZIP), unpacked as release/ResNet50/ (paths.BUNDLE_DIR): the same
  files plus the release notebook, a learner README and a learner requirements list.

Zips are deterministic (sorted entries, fixed timestamps and permissions): the same inputs give the
same bytes, so the pinned checksum changes only when a learner file does.
"""
import hashlib
import io
import pprint
import shutil
import string
import zipfile
from pathlib import Path

from resnet_course import signs_data
from resnet_course.paths import (ASSIGNMENT, BUNDLE_DIR, BUNDLE_ZIP, DATA_FILES, DATASETS_DIR,
                                 IMAGES_DIR, LEARNER_MODULES, RELEASE_DIR, ROOT)
from resnet_course.signs_files import SUPPORTED_KERAS, SUPPORTED_TENSORFLOW

# Where the project publishes the learner files and notebook. NOT PUBLISHED YET: set both when the
# repository and its release exist (the setup cell and the Colab badges are generated from them).
PUBLISHED_REPOSITORY = "resnet-course/resnet-course-kit"
PUBLISHED_BASE_URL = f"https://github.com/{PUBLISHED_REPOSITORY}/releases/download/v1"
COLAB_URL = f"https://colab.research.google.com/github/{PUBLISHED_REPOSITORY}/blob/main/{ASSIGNMENT}.ipynb"
COLAB_BADGE = (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
               f"({COLAB_URL})")

FILES_ZIP = RELEASE_DIR / f"{ASSIGNMENT}-files.zip"
FILES_URL = f"{PUBLISHED_BASE_URL}/{FILES_ZIP.name}"
URL_OVERRIDE_VARIABLE = "RESNET50_BUNDLE_URL"  # the setup cell's testing hook (a local server)

TEMPLATES = Path(__file__).resolve().parent / "learner_bundle"
LEARNER_LAB_CONFIG = TEMPLATES / "lab_config"  # JupyterLab without nbgrader's authoring tools
SETUP_CELL_ID = "setup"
LICENSE_NAME = "LICENSE-Sign-Language-Digits-Dataset.txt"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store: fixed, so bytes repeat


class BundleError(RuntimeError):
    """A file the bundle needs is missing; the message says which and how to make it."""


def _read(path, hint):
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} is "
                          f"missing; {hint}")
    return path.read_bytes()


def data_licence(archive=None):
    """The text of the Sign Language Digits Dataset's LICENSE (Apache-2.0), read from its archive
    (../shared/data, else the cached or downloaded copy, as `make data` finds it)."""
    archive = signs_data.resolve_source(archive)
    with zipfile.ZipFile(archive) as source:
        names = [name for name in source.namelist() if name.rstrip("/").split("/")[-1] == "LICENSE"]
        if not names:
            raise BundleError(f"{archive} holds no LICENSE file: it is not the Sign Language Digits archive")
        return source.read(min(names, key=len))


def required_files(modules=LEARNER_MODULES):
    """The files without which the notebook cannot run: where they all are, the setup cell does
    nothing (the instructor's folders and the grader's hold these, not the licence or figures)."""
    return sorted([*modules, *(f"datasets/{name}" for name in DATA_FILES.values())])


def learner_files(modules=LEARNER_MODULES):
    """{path in the zip: bytes} of everything a learner needs beside the notebook."""
    files = {name: _read(ROOT / name, "it is a learner module (resnet_course.paths.LEARNER_MODULES)")
             for name in modules}
    for name in sorted(DATA_FILES.values()):
        files[f"datasets/{name}"] = _read(DATASETS_DIR / name, "run `make data`")
    for path in sorted(IMAGES_DIR.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            files[f"images/{path.name}"] = path.read_bytes()
    files[LICENSE_NAME] = data_licence()
    files["ATTRIBUTION.md"] = (TEMPLATES / "ATTRIBUTION.md").read_bytes()
    return files


def zip_bytes(files):
    """A zip of {name: bytes}: sorted entries, fixed timestamps and permissions (reproducible)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, files[name], compresslevel=9)
    return buffer.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def setup_cell_source(files_sha256, file_names=None, files_url=FILES_URL):
    """The notebook's setup cell: a no-op where file_names (default: required_files()) are all
    present, else downloads files_url, checks files_sha256 and unpacks it into the working folder."""
    file_names = required_files() if file_names is None else file_names
    template = string.Template((TEMPLATES / "setup_cell.py").read_text(encoding="utf8"))
    return template.substitute(files_url=files_url, files_sha256=files_sha256,
                               required_files=pprint.pformat(sorted(file_names), width=100,
                                                            compact=True).replace("'", '"')).rstrip("\n")


def readme():
    """The learner README (Markdown), with the Colab badge and the supported versions."""
    template = string.Template((TEMPLATES / "README.md").read_text(encoding="utf8"))
    return template.substitute(colab_url=COLAB_URL, modules=", ".join(f"`{name}`" for name in LEARNER_MODULES),
                               tensorflow_range="-".join(SUPPORTED_TENSORFLOW),
                               keras_range="-".join(SUPPORTED_KERAS))


def bundle_files(files, notebook_text):
    """{path inside the bundle folder: bytes}: the learner files, the notebook, README, requirements."""
    return {**files, f"{ASSIGNMENT}.ipynb": notebook_text.encode("utf8"),
            "README.md": readme().encode("utf8"),
            "requirements.txt": (TEMPLATES / "requirements.txt").read_bytes()}


def write(files, notebook_text, files_zip=FILES_ZIP, bundle_dir=BUNDLE_DIR, bundle_zip=BUNDLE_ZIP):
    """Writes the files zip, the bundle folder (replaced whole: nothing stale stays) and its zip."""
    contents = bundle_files(files, notebook_text)
    files_zip.parent.mkdir(parents=True, exist_ok=True)
    files_zip.write_bytes(zip_bytes(files))
    if bundle_dir.exists():
        shutil.rmtree(bundle_dir)
    for name, data in contents.items():
        path = bundle_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    bundle_zip.write_bytes(zip_bytes({f"{bundle_dir.name}/{name}": data for name, data in contents.items()}))
    return files_zip, bundle_dir, bundle_zip
