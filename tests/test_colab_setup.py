"""The notebook's setup cell, offline, as on Colab: the release notebook alone in an empty folder
gets its files from the course's download address (here a local HTTP server), from a zip beside
it, or from a zip the learner uploads (a stand-in for Colab's google.colab.files); a wrong zip, a
damaged download or a failed one stops with a clear message and unpacks nothing.

Only the setup cell behaves differently there: after it, the downloaded files are byte for byte the
bundle's (the setup cell checks their checksum), so the notebook's exercises and checks are run here
on them, and the whole notebook is run on the bundle's files once, in JupyterLab (tests/test_browser.py)."""
import functools
import http.server
import shutil
import threading

import nbformat
import pytest

import learner_notebooks
from resnet_course.course import bundle, release
from resnet_course.course.notebook_sync import EXERCISES
from resnet_course.paths import ASSIGNMENT, ROOT

# google.colab as a Colab kernel can import it; files.upload() as Colab's: it saves what the learner
# picked (here the file named by the environment) into the working folder and returns {name: bytes}.
COLAB_STAND_IN = {
    "__init__.py": "# a stand-in for Colab's google.colab package\n",
    "files.py": (
        "import os\n"
        "from pathlib import Path\n\n\n"
        "def upload():\n"
        "    picked = os.environ.get('COLAB_STAND_IN_UPLOAD')\n"
        "    if picked is None:\n"
        "        raise AssertionError('the setup cell asked for an upload')\n"
        "    data = Path(picked).read_bytes()\n"
        "    Path(Path(picked).name).write_bytes(data)\n"
        "    return {Path(picked).name: data}\n"),
}
SERVED = "course"  # the folder the local server publishes the release in


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the test output
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(base URL, the folder it serves)."""
    folder = tmp_path_factory.mktemp("served")
    handler = functools.partial(QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
        httpd.shutdown()


def _released(folder, addresses):
    """Releases the current learner files with addresses into folder (as make release does, without
    writing the repository); returns (release notebook text, files zip, bundle zip)."""
    notebook, _ = release.fresh_source(bundle.learner_files(), addresses)
    text = release.generate(notebook=notebook)
    files_zip, _, bundle_zip = learner_notebooks.build_bundle(folder, notebook_text=text)
    return text, files_zip, bundle_zip


@pytest.fixture(scope="module")
def with_address(server):
    """The release made with the local server's address (the course's web folder), published there."""
    base_url, folder = server
    addresses = bundle.addresses(bundle_url=f"{base_url}/{SERVED}/")
    return (addresses, *_released(folder / SERVED, addresses))


@pytest.fixture(scope="module")
def without_address(tmp_path_factory):
    """The release made with no address, as the project commits it."""
    return (bundle.Addresses(), *_released(tmp_path_factory.mktemp("plain"), bundle.Addresses()))


def _notebook(text, checks=False):
    """The release notebook's setup cell, then with checks its packages cell and the exercises solved
    with their checks, else the learner modules' imports."""
    notebook = nbformat.reads(text, as_version=4)
    if checks:
        notebook = learner_notebooks.solved(notebook)
        kept = {bundle.SETUP_CELL_ID, "packages", *EXERCISES, *(f"{name}_test" for name in EXERCISES)}
        notebook.cells = [cell for cell in notebook.cells if cell.get("id") in kept]
        assert len(notebook.cells) == len(kept), "the release notebook's cells have other ids"
    else:
        notebook.cells = [cell for cell in notebook.cells if cell.get("id") == bundle.SETUP_CELL_ID]
        notebook.cells.append(nbformat.v4.new_code_cell(  # as the packages cell starts TensorFlow
            "from tf_environment import apply_defaults, import_tensorflow_quietly\n"
            "apply_defaults()\nimport_tensorflow_quietly()\nimport resnets_utils, public_tests"))
    return learner_notebooks.with_origins_cell(notebook)


def _setup_source(text):
    return next(c for c in nbformat.reads(text, as_version=4).cells if c.get("id") == bundle.SETUP_CELL_ID).source


def _setup_cell_only(text):
    notebook = nbformat.reads(text, as_version=4)
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") == bundle.SETUP_CELL_ID]
    return notebook


def _env(tmp_path, colab=True, upload=None):
    """A learner's environment; on Colab (google.colab importable) uploading the file upload."""
    extra = {}
    if colab:
        stand_in = tmp_path / "colab-site" / "google" / "colab"
        stand_in.mkdir(parents=True)
        for name, text in COLAB_STAND_IN.items():
            (stand_in / name).write_text(text, encoding="utf8")
        extra["PYTHONPATH"] = str(stand_in.parent.parent)  # beside the installed google.protobuf
    if upload is not None:
        extra["COLAB_STAND_IN_UPLOAD"] = str(upload)
    return learner_notebooks.learner_env(**extra)


def _empty_folder(tmp_path, name="content"):
    folder = tmp_path / name  # Colab's working folder: the notebook only
    folder.mkdir()
    return folder


def _printed(executed):
    return "".join(text for _, text in learner_notebooks.outputs_of(executed, "stdout"))


def _assert_unpacked_and_used(executed, content):
    for name in bundle.learner_files():
        assert (content / name).is_file(), f"{name} was not unpacked"
    imported = {module: path for module, path in learner_notebooks.origins(executed)["modules"].items() if path}
    assert imported and all(path.startswith(str(content)) for path in imported.values()), imported
    noise = learner_notebooks.outputs_of(executed, "stderr")
    assert noise == [], f"stderr in the learner's notebook: {noise}"


def test_released_with_an_address_the_notebook_alone_downloads_verifies_and_passes_its_checks(with_address, tmp_path):
    addresses, text, _, _ = with_address
    assert f'FILES_URL = "{addresses.files_url}"' in _setup_source(text)
    content = _empty_folder(tmp_path)
    executed = learner_notebooks.execute(_notebook(text, checks=True), cwd=content, env=_env(tmp_path))

    printed = _printed(executed)
    assert f"Downloading the course files from {addresses.files_url}" in printed and "Unpacked" in printed
    assert printed.count(learner_notebooks.PASS_LINE) == 3
    _assert_unpacked_and_used(executed, content)


@pytest.mark.parametrize("which", ["files zip", "bundle zip"])
def test_without_an_address_the_learner_uploads_the_zip_on_colab(without_address, which, tmp_path):
    _, text, files_zip, bundle_zip = without_address
    assert 'FILES_URL = ""' in _setup_source(text)
    upload = files_zip if which == "files zip" else bundle_zip
    content = _empty_folder(tmp_path)
    (content / f"{ASSIGNMENT}.ipynb").write_text("the learner's own notebook", encoding="utf8")
    executed = learner_notebooks.execute(_notebook(text), cwd=content, env=_env(tmp_path, upload=upload))

    printed = _printed(executed)
    assert "Downloading" not in printed and f"Upload {bundle.FILES_ZIP.name} or {bundle.BUNDLE_ZIP.name}" in printed
    assert "Unpacked" in printed
    _assert_unpacked_and_used(executed, content)
    # ResNet50.zip's notebook, README and requirements stay in the zip: the learner's notebook is theirs
    assert (content / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf8") == "the learner's own notebook"
    assert not (content / "README.md").exists() and not (content / "requirements.txt").exists()


def test_when_the_download_fails_on_colab_the_learner_uploads_instead(with_address, tmp_path):
    addresses, text, files_zip, _ = with_address
    moved = shutil.move(files_zip, tmp_path / files_zip.name)  # the course took its file down
    try:
        content = _empty_folder(tmp_path)
        executed = learner_notebooks.execute(_setup_cell_only(text), cwd=content,
                                             env=_env(tmp_path, upload=moved))
    finally:
        shutil.move(moved, files_zip)
    printed = _printed(executed)
    assert "Could not download them (HTTP Error 404" in printed and "Unpacked" in printed
    assert all((content / name).is_file() for name in bundle.learner_files())


def test_a_wrong_upload_is_refused_and_nothing_is_unpacked(without_address, tmp_path):
    _, text, files_zip, _ = without_address
    files = bundle.learner_files()
    files["training_utils.py"] += b"\n# changed\n"  # a learner's edited copy, or another course's files
    wrong = tmp_path / "upload" / bundle.FILES_ZIP.name
    wrong.parent.mkdir()
    wrong.write_bytes(bundle.zip_bytes(files))
    content = _empty_folder(tmp_path)
    executed = learner_notebooks.execute(_setup_cell_only(text), cwd=content, allow_errors=True,
                                         env=_env(tmp_path, upload=wrong))

    assert f"{wrong.name} does not hold the files this notebook expects (wrong checksum)" in _printed(executed)
    errors = learner_notebooks.outputs_of(executed, "error")
    assert len(errors) == 1 and errors[0][1].startswith("RuntimeError: The course files are missing and "
                                                        "nothing was unpacked")
    assert [path.name for path in content.iterdir()] == [wrong.name]  # only what Colab saved on upload


def test_a_damaged_download_is_refused_and_nothing_is_unpacked(with_address, tmp_path):
    _, text, files_zip, _ = with_address
    original = files_zip.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    files_zip.write_bytes(bytes(damaged))
    try:
        content = _empty_folder(tmp_path)
        executed = learner_notebooks.execute(_setup_cell_only(text), cwd=content, allow_errors=True,
                                             env=_env(tmp_path, colab=False))
    finally:
        files_zip.write_bytes(original)
    assert "is not a readable zip" in _printed(executed)
    errors = learner_notebooks.outputs_of(executed, "error")
    assert len(errors) == 1 and "nothing was unpacked" in errors[0][1]
    assert list(content.iterdir()) == []


def test_elsewhere_without_an_address_it_says_which_zip_to_put_beside_the_notebook(without_address, tmp_path):
    _, text, files_zip, _ = without_address
    content = _empty_folder(tmp_path)
    executed = learner_notebooks.execute(_setup_cell_only(text), cwd=content, allow_errors=True,
                                         env=_env(tmp_path, colab=False))
    assert _printed(executed) == ""
    errors = learner_notebooks.outputs_of(executed, "error")
    assert len(errors) == 1 and "\n" not in errors[0][1]
    assert (f"put {bundle.FILES_ZIP.name} or {bundle.BUNDLE_ZIP.name} from your course beside this notebook "
            f"(in {content})") in errors[0][1]
    assert list(content.iterdir()) == []

    shutil.copy(files_zip, content)  # done as it says
    executed = learner_notebooks.execute(_setup_cell_only(text), cwd=content, env=_env(tmp_path / "again", colab=False))
    assert "Unpacked" in _printed(executed)
    assert all((content / name).is_file() for name in bundle.learner_files())


def test_the_setup_cell_never_installs_packages(without_address):
    source = _setup_source(without_address[1])
    assert "pip" not in source and "install" not in source


def test_the_setup_cell_does_nothing_where_the_required_files_are(with_address, tmp_path):
    """As in the instructor's folders and the grader's: the modules and data, no licence or figures."""
    folder = tmp_path / "course"
    for name in bundle.required_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(ROOT / name)
    before = sorted(folder.rglob("*"))
    executed = learner_notebooks.execute(_setup_cell_only(with_address[1]), cwd=folder, env=_env(tmp_path))
    assert learner_notebooks.outputs_of(executed, "stdout") == []
    assert sorted(folder.rglob("*")) == before
