"""The learner bundle: what a learner downloads, and the notebook's setup cell that fetches it.

Two zips, both written by ``make release`` (resnet_course.course.release) into release/:

- ``ResNet50-files.zip`` (FILES_ZIP): the learner modules, datasets/ (the SIGNS files and the
  held-out photos from another source, heldout_signs.h5), images/ and the data's licence and
  attribution; no notebook. Where the files are missing (Colab opens a notebook alone), the
  notebook's setup cell unpacks them from this zip or from ResNet50.zip: one beside the notebook,
  else downloaded from the course's address (``Addresses.files_url``, when it has one), else
  uploaded on Colab.
- ``ResNet50.zip`` (paths.BUNDLE_ZIP), unpacked as release/ResNet50/ (paths.BUNDLE_DIR): the same
  files plus the release notebook, a learner README and a learner requirements list.

The setup cell pins the files, not a zip: ``files_sha256`` is the sha256 of their ``sha256sum``
listing, so either zip (or the same files zipped again) passes, and the notebook, whose setup
cell holds the checksum, can travel in ResNet50.zip. Zips are deterministic (sorted entries, fixed
timestamps and permissions): the same inputs give the same bytes.
"""
import hashlib
import io
import pprint
import re
import shutil
import string
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

from resnet_course.data import heldout, signs_data
from resnet_course.learner.signs_files import SUPPORTED_KERAS, SUPPORTED_TENSORFLOW
from resnet_course.paths import (ASSIGNMENT, BUNDLE_DIR, BUNDLE_ZIP, DATA_FILES, DATASETS_DIR,
                                 IMAGES_DIR, LEARNER_MODULES, RELEASE_DIR, ROOT)

FILES_ZIP = RELEASE_DIR / f"{ASSIGNMENT}-files.zip"
# The setup cell never unpacks these: they are the bundle's own (the learner's notebook stays theirs).
NOTEBOOK_ONLY = (f"{ASSIGNMENT}.ipynb", "README.md", "requirements.txt")
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"

TEMPLATES = Path(__file__).resolve().parent / "learner_bundle"
LEARNER_LAB_CONFIG = TEMPLATES / "lab_config"  # JupyterLab without nbgrader's authoring tools
SETUP_CELL_ID = "setup"
LICENSE_NAME = "LICENSE-Sign-Language-Digits-Dataset.txt"
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store: fixed, so bytes repeat
# How a learner opens the notebook in Colab, with and without the course's "Open in Colab" address.
COLAB_WITH_BADGE = "click the badge above"
COLAB_WITHOUT_BADGE = ("open colab.research.google.com, choose *File > Upload notebook* and pick "
                       "`ResNet50.ipynb` from this folder")


class BundleError(RuntimeError):
    """A file the bundle needs is missing, or an address is unusable; the message says which and
    what to do."""


@dataclass(frozen=True)
class Addresses:
    """Where a course publishes what learners open; "" for what it does not publish.

    files_url: the address the setup cell downloads ResNet50-files.zip from.
    colab_url: the notebook's "Open in Colab" address (the badge in the notebook and README).
    """
    files_url: str = ""
    colab_url: str = ""


def _web_address(url, what):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BundleError(f"{what} must be an http:// or https:// address, got {url!r}")
    return url


def addresses(bundle_url=None, colab_repository=None, colab_url=None):
    """The course's Addresses from what the instructor gives (each None or "" for none).

    bundle_url: the folder the instructor uploads ResNet50-files.zip to (the file's address is
    bundle_url/ResNet50-files.zip), or the file's own address when it ends in .zip or has a query.
    colab_repository: "owner/name" of the GitHub repository whose main branch holds ResNet50.ipynb
    at its root; colab_url: any other address that opens the notebook in Colab (e.g. a Drive link).
    BundleError for an address that is not http(s), a malformed repository, or both Colab options.
    """
    files_url = ""
    if bundle_url:
        parts = urllib.parse.urlsplit(_web_address(bundle_url, "the bundle address"))
        own = parts.path.endswith(".zip") or parts.query
        files_url = bundle_url if own else f"{bundle_url.rstrip('/')}/{FILES_ZIP.name}"
    if colab_repository and colab_url:
        raise BundleError("give the Colab repository or the Colab address, not both")
    if colab_repository:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", colab_repository):
            raise BundleError(f"the Colab repository must be GitHub's owner/name, got {colab_repository!r}")
        colab_url = f"https://colab.research.google.com/github/{colab_repository}/blob/main/{ASSIGNMENT}.ipynb"
    return Addresses(files_url, _web_address(colab_url, "the Colab address") if colab_url else "")


def colab_badge(colab_url):
    """The "Open in Colab" badge (Markdown) linking to colab_url; "" for no address."""
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_url})" if colab_url else ""


# The notebook's own sentence on opening it in Colab (its intro), with and without the badge.
NOTEBOOK_COLAB_WITH_BADGE = "Click the badge above."
NOTEBOOK_COLAB_WITHOUT_BADGE = ("Open colab.research.google.com, choose *File > Upload notebook* and pick "
                                "this notebook.")


def with_colab_badge(markdown, colab_url):
    """markdown (a title line, a blank line, the rest) with colab_badge(colab_url) as its second
    paragraph, replacing any badge it had, and NOTEBOOK_COLAB_WITH_BADGE where the rest has either
    sentence on opening it in Colab; without an address, with no badge and
    NOTEBOOK_COLAB_WITHOUT_BADGE (a sentence about a badge that is not there misleads)."""
    unbadged = re.sub(r"^\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n(\n|$)", "", markdown, flags=re.M)
    title, _, rest = unbadged.partition("\n\n")
    badge = colab_badge(colab_url)
    way = NOTEBOOK_COLAB_WITH_BADGE if badge else NOTEBOOK_COLAB_WITHOUT_BADGE
    for sentence in (NOTEBOOK_COLAB_WITH_BADGE, NOTEBOOK_COLAB_WITHOUT_BADGE):
        rest = rest.replace(sentence, way)
    return "\n\n".join(part for part in (title, badge, rest) if part)


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
    # optional for the notebook (not in required_files), but every bundle ships it
    files[f"datasets/{heldout.HELDOUT_FILE}"] = _read(
        DATASETS_DIR / heldout.HELDOUT_FILE,
        f"run `make data` (it needs {heldout.ARCHIVE_NAME} in ../shared/data/ or internet access)")
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


def files_sha256(files):
    """The checksum the setup cell pins for {name: bytes}: the sha256 of their ``sha256sum``
    listing ("<sha256>  <name>" lines, sorted by name), whichever zip carries them."""
    listing = "".join(f"{sha256(files[name])}  {name}\n" for name in sorted(files))
    return sha256(listing.encode("utf8"))


# The setup cell is machinery a learner need not read: shown collapsed in JupyterLab (and Notebook 7)
# and as a titled form in Colab (its first line, "#@title ..."); it stays in the notebook because it
# must run where the course's modules are still missing.
SETUP_CELL_METADATA = {"jupyter": {"source_hidden": True}, "cellView": "form"}


def setup_cell_source(files_sha256, files_url="", file_names=None):
    """The notebook's setup cell: a no-op where file_names (default: required_files()) are all
    present, else it unpacks the files whose checksum is files_sha256 from a course zip beside the
    notebook, downloaded from files_url ("" for none) or, on Colab, uploaded."""
    file_names = required_files() if file_names is None else file_names
    template = string.Template((TEMPLATES / "setup_cell.py").read_text(encoding="utf8"))
    return template.substitute(files_url=files_url, files_sha256=files_sha256,
                               required_files=pprint.pformat(sorted(file_names), width=100,
                                                            compact=True).replace("'", '"')).rstrip("\n")


def readme(colab_url=""):
    """The learner README (Markdown), with the Colab badge (when there is an address) and the
    supported versions."""
    template = string.Template((TEMPLATES / "README.md").read_text(encoding="utf8"))
    return template.substitute(colab_badge=colab_badge(colab_url) + "\n\n" if colab_url else "",
                               colab_way=COLAB_WITH_BADGE if colab_url else COLAB_WITHOUT_BADGE,
                               modules=", ".join(f"`{name}`" for name in LEARNER_MODULES),
                               tensorflow_range="-".join(SUPPORTED_TENSORFLOW),
                               keras_range="-".join(SUPPORTED_KERAS))


def bundle_files(files, notebook_text, colab_url=""):
    """{path inside the bundle folder: bytes}: the learner files, the notebook, README, requirements."""
    return {**files, f"{ASSIGNMENT}.ipynb": notebook_text.encode("utf8"),
            "README.md": readme(colab_url).encode("utf8"),
            "requirements.txt": (TEMPLATES / "requirements.txt").read_bytes()}


def write(files, notebook_text, files_zip=FILES_ZIP, bundle_dir=BUNDLE_DIR, bundle_zip=BUNDLE_ZIP,
          colab_url=""):
    """Writes the files zip, the bundle folder (replaced whole: nothing stale stays) and its zip."""
    contents = bundle_files(files, notebook_text, colab_url)
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
