"""The notebook's setup cell, offline: as on Colab, the release notebook alone in an empty folder
fetches the learner files zip (here from a local HTTP server) and runs top to bottom; a wrong
checksum or a failed download stops with a clear message and unpacks nothing."""
import functools
import http.server
import threading

import nbformat
import pytest

import learner_notebooks
from resnet_course import bundle
from resnet_course.paths import ROOT

COLAB_STAND_IN = "# a stand-in for Colab's google.colab package: Colab's kernels can import it\n"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base URL, folder it serves): the folder holds the files zip of the current learner files."""
    folder = tmp_path_factory.mktemp("served")
    learner_notebooks.build_bundle(folder)
    handler = functools.partial(QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log in the test output
        pass


def _colab_env(tmp_path, url):
    """A learner's environment with google.colab importable (a namespace package beside the
    installed google.protobuf) and the setup cell pointed at url."""
    stand_in = tmp_path / "colab-site" / "google" / "colab"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(COLAB_STAND_IN, encoding="utf8")
    return learner_notebooks.learner_env(PYTHONPATH=str(stand_in.parent.parent),
                                         **{bundle.URL_OVERRIDE_VARIABLE: url})


def _setup_cell_only():
    notebook = learner_notebooks.solved_release(parameters=None)
    notebook.cells = [cell for cell in notebook.cells if cell.get("id") == bundle.SETUP_CELL_ID]
    return notebook


def test_the_notebook_alone_downloads_its_files_and_runs_top_to_bottom(served, tmp_path):
    base_url, _ = served
    content = tmp_path / "content"  # Colab's working folder: the notebook only
    content.mkdir()
    notebook = learner_notebooks.with_origins_cell(learner_notebooks.solved_release())
    notebook.cells.insert(0, nbformat.v4.new_code_cell("import google.colab"))  # the stand-in is there
    env = _colab_env(tmp_path, f"{base_url}/{bundle.FILES_ZIP.name}")
    executed = learner_notebooks.execute(notebook, cwd=content, env=env)

    printed = "".join(text for _, text in learner_notebooks.outputs_of(executed, "stdout"))
    assert "Downloading the course files from" in printed and "Unpacked" in printed
    assert printed.count(learner_notebooks.PASS_LINE) == 3
    for name in bundle.learner_files():
        assert (content / name).is_file(), f"{name} was not unpacked"
    imported = {module: path for module, path in learner_notebooks.origins(executed)["modules"].items() if path}
    assert all(path.startswith(str(content)) for path in imported.values()), imported
    noise = learner_notebooks.outputs_of(executed, "stderr")
    assert noise == [], f"stderr in the learner's notebook: {noise}"


def test_a_wrong_checksum_stops_with_a_clear_message_and_unpacks_nothing(served, tmp_path):
    base_url, folder = served
    tampered = folder / "tampered.zip"
    data = bytearray((folder / bundle.FILES_ZIP.name).read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    content = tmp_path / "content"
    content.mkdir()
    executed = learner_notebooks.execute(_setup_cell_only(), cwd=content, allow_errors=True,
                                         env=_colab_env(tmp_path, f"{base_url}/{tampered.name}"))
    errors = learner_notebooks.outputs_of(executed, "error")
    assert len(errors) == 1 and "wrong checksum" in errors[0][1] and "nothing was unpacked" in errors[0][1]
    assert list(content.iterdir()) == []


def test_a_failed_download_says_so(served, tmp_path):
    base_url, _ = served
    content = tmp_path / "content"
    content.mkdir()
    executed = learner_notebooks.execute(_setup_cell_only(), cwd=content, allow_errors=True,
                                         env=_colab_env(tmp_path, f"{base_url}/no-such-file.zip"))
    errors = learner_notebooks.outputs_of(executed, "error")
    assert len(errors) == 1 and errors[0][1].startswith("RuntimeError: Could not download the course files")
    assert list(content.iterdir()) == []


def test_the_setup_cell_never_installs_packages():
    source = next(c for c in learner_notebooks.solved_release(parameters=None).cells
                  if c.get("id") == bundle.SETUP_CELL_ID).source
    assert "pip" not in source and "install" not in source


def test_the_setup_cell_does_nothing_where_the_required_files_are(served, tmp_path):
    """As in the instructor's folders and the grader's: the modules and data, no licence or figures."""
    base_url, _ = served
    folder = tmp_path / "course"
    for name in bundle.required_files():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(ROOT / name)
    before = sorted(folder.rglob("*"))
    executed = learner_notebooks.execute(_setup_cell_only(), cwd=folder,
                                         env=_colab_env(tmp_path, f"{base_url}/no-such-file.zip"))
    assert learner_notebooks.outputs_of(executed, "stdout") == []
    assert sorted(folder.rglob("*")) == before
