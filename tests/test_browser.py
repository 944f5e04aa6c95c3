"""The learner's notebook in a real browser: JupyterLab (the learner's, without nbgrader's tools) on
an unpacked bundle, in headless Chromium driven by Playwright.

The solved notebook (reference solution, two training steps) runs all its cells with no error on the
bundle's files alone (its modules come from the bundle's folder, never the repository or the
instructor package; this is the suite's one run of the whole learner notebook), its three checks
print their pass line, every figure renders as an image and the own-image section predicts a sign,
the sentences with numbers agree with the outputs, the summary cell and sections 6-8 run again with
the same results, and after Kernel -> Restart a check cell says in one line which cell to run first;
the unsolved release stops at the first check with the short "not implemented yet" message. Screenshots of each notebook go to the folder named in any failure message.
Needs Debian's chromium (`make system-packages`); Playwright cannot download a browser here.
"""
import contextlib
import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

import learner_notebooks
from resnet_course.course import learner_lab
from resnet_course.paths import ASSIGNMENT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SOLVED = "ResNet50-solved.ipynb"
TOKEN = "browser-test"
RUN_TIMEOUT_MS = 900_000  # the whole solved notebook on 2 shared cores
START_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium: run `make system-packages`")

# In the page: run every cell of the open notebook (resolves when done, or at the first error) and
# return each code cell's id and outputs as the notebook model holds them.
RUN_ALL = """async () => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    await panel.sessionContext.ready;
    await app.commands.execute('notebook:run-all-cells');
    return panel.content.widgets.filter(cell => cell.model.type === 'code').map(
        cell => ({id: cell.model.id, outputs: cell.model.outputs.toJSON()}));
}"""


# In the page: run the code cells of the open notebook with these ids again, in this order, as a
# learner does by clicking into each and pressing Shift+Enter; return every code cell's id and outputs.
RUN_CELLS = """async (ids) => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    for (const id of ids) {
        panel.content.deselectAll();
        panel.content.activeCellIndex = panel.content.widgets.findIndex(cell => cell.model.id === id);
        await app.commands.execute('notebook:run-cell');
    }
    return panel.content.widgets.filter(cell => cell.model.type === 'code').map(
        cell => ({id: cell.model.id, outputs: cell.model.outputs.toJSON()}));
}"""
# In the page: Kernel -> Restart (without its dialog); resolves when the new kernel is idle.
RESTART = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.sessionContext.restartKernel();
    await panel.sessionContext.ready;
}"""
# Run again after the whole notebook (issue 29): the summary cell (it once replaced the trained model,
# and sections 6-7 then failed), then sections 6 to 8.
RUN_AGAIN = ("summary", "evaluation", "perturbed", "confusion", "recall", "batchnorm_pitfall", "batchnorm_lag",
             "batchnorm_repair", "my_image", "saved_model")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, screenshot folder, server log): the learner's JupyterLab on an unpacked bundle
    holding also the solved notebook."""
    work = tmp_path_factory.mktemp("browser")
    built = learner_notebooks.build_bundle(work / "release")
    root = learner_notebooks.unpack(built[2], work / "root") / ASSIGNMENT
    solved = learner_notebooks.with_origins_cell(learner_notebooks.solved_release(path=root / f"{ASSIGNMENT}.ipynb"))
    nbformat.write(solved, str(root / SOLVED))
    settings = work / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)  # every cell in the page, so every figure is in the DOM
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = _free_port()
    command = learner_lab.lab_command(
        root, "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
        f"--IdentityProvider.token={TOKEN}", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={work / 'settings'}", f"--LabApp.workspaces_dir={work / 'workspaces'}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
    env = learner_lab.lab_env(learner_notebooks.learner_env(JUPYTER_RUNTIME_DIR=str(work / "runtime")))
    log_path = work / "jupyter-lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; its log: {log_path}\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)  # polling a server that is starting: nothing to wait on
        screenshots = work / "screenshots"
        screenshots.mkdir()
        yield base, screenshots, log_path, root
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, lab, notebook, workspace):
    """A new page with notebook alone open, in a fresh JupyterLab workspace of that name (each test
    its own: a shared one would reopen the notebooks of the tests before)."""
    base = lab[0]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")  # kernel started, idle
    return page


def _run_all(page):
    page.set_default_timeout(RUN_TIMEOUT_MS)
    cells = page.evaluate(RUN_ALL)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return cells


@contextlib.contextmanager
def _screenshot(lab, page, name):
    """Saves a full-page screenshot of page and closes it on the way out; a failure inside names
    the screenshot folder."""
    _, screenshots, log_path, _ = lab
    try:
        yield
    except Exception as err:
        raise AssertionError(f"{err}\n(screenshots: {screenshots}; JupyterLab's log: {log_path})") from err
    finally:
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        page.close()


def _texts(outputs):
    text = []
    for output in outputs:
        if output["output_type"] == "stream":
            text.append(output["text"] if isinstance(output["text"], str) else "".join(output["text"]))
        elif output["output_type"] == "error":
            text.append(f"{output['ename']}: {output['evalue']}")
    return "".join(text)


@pytest.mark.timeout(1800)  # the run (up to RUN_TIMEOUT_MS), then sections 6-8 again and a restart
def test_the_solved_notebook_runs_all_in_the_learners_jupyterlab(browser, lab):
    page = _open(browser, lab, SOLVED, "solved")
    with _screenshot(lab, page, "solved"):
        cells = _run_all(page)
        errors = {cell["id"]: _texts(cell["outputs"]) for cell in cells
                  if any(output["output_type"] == "error" for output in cell["outputs"])}
        assert not errors, f"cells with errors: {errors}"
        # the short run (the parameters cell filled in) says so, then its plan and each epoch with its time
        training = _texts(next(cell for cell in cells if cell["id"] == "training")["outputs"]).splitlines()
        assert training[0].startswith("A short run: 1 epoch(s) of 2 steps, where the recipe trains 22 of 33."), training
        assert training[1].startswith("Training 1 epoch of 2 steps. The first epoch also builds the graph"), training
        assert re.fullmatch(rf"  step 1/2: {learner_notebooks.DURATION}", training[2]), training
        assert len(training) == 4 and learner_notebooks.EPOCH_LINE.fullmatch(training[3]), training
        printed = "".join(_texts(cell["outputs"]) for cell in cells)
        assert printed.count(learner_notebooks.PASS_LINE) == 3, printed[-2000:]
        assert "Downloading" not in printed, "the setup cell must do nothing beside the learner files"
        assert page.get_by_text(learner_notebooks.PASS_LINE).count() == 3, "the pass lines are not shown"

        figures = sum(1 for cell in cells for output in cell["outputs"] if "image/png" in output.get("data", {}))
        assert figures >= 6, f"only {figures} figures"
        images = page.locator(".jp-OutputArea-output img")
        assert images.count() == figures, f"{images.count()} images shown for {figures} figures"
        rendered = images.evaluate_all("images => images.filter(i => i.complete && i.naturalWidth > 0).length")
        assert rendered == figures, f"{figures - rendered} figures did not render"

        own_image = next(cell for cell in cells if cell["id"] == "my_image")
        assert "Predicted sign:" in _texts(own_image["outputs"])
        stderr = [(cell["id"], output["text"]) for cell in cells for output in cell["outputs"]
                  if output["output_type"] == "stream" and output["name"] == "stderr"]
        assert stderr == [], f"stderr in the learner's notebook: {stderr}"

        # every sentence with a number agrees with the output it is about
        outputs = {cell["id"]: _texts(cell["outputs"]) for cell in cells}
        _assert_the_numbers_agree(outputs)

        # the summary cell and sections 6-8 run again: no error, the same numbers
        again = {cell["id"]: _texts(cell["outputs"]) for cell in page.evaluate(RUN_CELLS, list(RUN_AGAIN))}
        errors = {cell_id: text for cell_id, text in again.items() if cell_id in RUN_AGAIN and "Error" in text}
        assert not errors, f"cells run again raised: {errors}"
        for cell_id in ("evaluation", "perturbed", "batchnorm_lag", "batchnorm_repair", "my_image"):
            assert again[cell_id] == outputs[cell_id], (cell_id, again[cell_id], outputs[cell_id])

        # Kernel -> Restart, then the packages cell and a check: one line that says which cell to run
        page.evaluate(RESTART)
        restarted = {cell["id"]: cell["outputs"] for cell in page.evaluate(RUN_CELLS, ["packages", "identity_block_test"])}
        error = next(o for o in restarted["identity_block_test"] if o["output_type"] == "error")
        assert error["ename"] == "CheckFailed" and len(error["traceback"]) == 1, error
        assert "identity_block is not defined: run the cell that defines it" in error["traceback"][0], error

        # the bundle alone: the learner modules came from its folder, the instructor package was not imported
        origins = learner_notebooks.origins(cells)
        assert not origins["resnet_course"], "the learner's notebook imported the instructor package"
        imported = {module: path for module, path in origins["modules"].items() if path}
        assert {"resnets_utils", "training_utils", "public_tests"} <= set(imported)
        root = lab[3].resolve()
        for module, path in imported.items():
            assert Path(path).parent == root, f"{module} came from {path}, not the bundle"


def _assert_the_numbers_agree(outputs):
    """The run's printed sentences agree with its printed numbers: the short-run note (this test's
    run trains 1 epoch of 2 steps) under section 6 and section 7's sentence on its last point."""
    evaluation = outputs["evaluation"]
    network = float(re.search(r"The network alone: test loss [0-9.]+, test accuracy ([0-9.]+)%", evaluation).group(1))
    assert "This model trained 1 epoch(s) of 2 steps; the full recipe trains 22 of 33." in evaluation, evaluation
    lag = outputs["batchnorm_lag"].strip().splitlines()
    last_epoch = float(re.search(r"statistics of epoch +1: test accuracy ([0-9.]+)%", lag[-2]).group(1))
    assert lag[-1] == f"The last point is the model of section 6, with its own moving statistics ({network:.1f}%).", lag
    assert last_epoch == network, lag
    repair = outputs["batchnorm_repair"]
    assert f"final weights, their own moving statistics:     test accuracy {network:.1f}%" in repair, repair
    pitfall = outputs["batchnorm_pitfall"]
    assert f"inference mode, any batch size:       test accuracy {network:.1f}%" in pitfall, pitfall
    photo = outputs["my_image"]
    wrong = int(re.search(r"Predicted sign: (\d)", photo).group(1)) != 2
    assert wrong == ("The sample photo shows a sign 2: this model gets it wrong." in photo), photo


def test_the_learners_jupyterlab_has_no_nbgrader_tools(browser, lab):
    page = _open(browser, lab, f"{ASSIGNMENT}.ipynb", "menus")
    with _screenshot(lab, page, "menus"):
        config = json.loads(page.locator("#jupyter-config-data").text_content())
        menus = page.locator(".lm-MenuBar-itemLabel").all_text_contents()
        assert learner_lab.NBGRADER_LAB_EXTENSION in config["disabledExtensions"]
        assert "File" in menus and not any("nbgrader" in menu.lower() for menu in menus), menus
        assert page.get_by_text("Create Assignment").count() == 0
        base = lab[0]
        with pytest.raises(urllib.error.HTTPError, match="404"):  # the formgrader server extension is off
            urllib.request.urlopen(f"{base}/formgrader?token={TOKEN}", timeout=30)


def test_the_unsolved_notebook_stops_at_the_first_check_with_a_short_message(browser, lab):
    page = _open(browser, lab, f"{ASSIGNMENT}.ipynb", "unsolved")
    with _screenshot(lab, page, "unsolved"):
        cells = _run_all(page)
        failing = [cell["id"] for cell in cells if any(o["output_type"] == "error" for o in cell["outputs"])]
        assert failing == ["identity_block_test"]
        shown = page.locator(".jp-OutputArea-output").all_text_contents()
        message = "\n".join(text for text in shown if "not implemented yet" in text)
        assert "identity_block is not implemented yet" in message, shown
        assert len(message.splitlines()) <= 10, f"the check's message is not short: {message}"
        assert "public_tests.py" not in message and "resnet_checks.py" not in message, message
