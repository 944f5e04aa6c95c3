"""What a student wrote never runs as script in the instructor's or the class's browser (issue 27, item 2).

One hostile submission is graded by the course's grader (the real sandbox and judge, one worker) into a
copy of the course folder; a second student's autograded notebook is written as plain `nbgrader
autograde` (formgrader's button) leaves it, with the outputs its cells made. Every payload kind is in
both: the student's error text (a cell that raises it: the grader's note), outputs saved in the
notebook (`text/html` with `<script>` and `<img onerror>`, `application/javascript`), Markdown with
`<script>`, `<img onerror>` and a remote image, a layer name holding HTML and an exception text from
a student's function (the judge's message: the cell's output and the "Comments" panel). Each payload
sets `window.__pwned`, logs to the console, requests a marked URL and writes a file through
Jupyter's contents API with the page's XSRF cookie, as an attacker's would.

Opened in headless Chromium (Debian's, driven by Playwright): nbgrader's formgrader submission page
(a Jupyter server on loopback with token login, started in the course folder as an instructor does)
and the HTML of `nbgrader generate_feedback`. Nothing may run: no global set, no console line, no
request to a marked URL or to the contents API, no file written.
"""
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from resnet_course import paths
from tests import grading_submissions as submissions

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TOKEN = "formgrader-browser-test"
HOSTILE, PLAIN = "mallory", "trudy"  # graded by the course's grader / as plain nbgrader autograde leaves it
START_TIMEOUT_S = 120
SETTLE_MS = 2000  # a payload's fetch is asynchronous: nothing signals that it did not happen

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium: run `make system-packages`")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def payload_js(port, kind):
    """Script that marks `kind` as run (a global, a console line) and writes a file in the Jupyter server's
    folder through the contents API with the page's XSRF cookie. Short: grading cuts long messages."""
    return ("window.__pwned=(window.__pwned||[]).concat(['" + kind + "']);console.log('pwned-" + kind + "');"
            "fetch('/api/contents/pwned-" + kind + ".txt',{method:'PUT',headers:{'X-XSRFToken':"
            "(document.cookie.split('_xsrf=')[1]||'').split(';')[0]},body:JSON.stringify({type:'file',"
            "format:'text',content:'x'})})")


def html_payload(port, kind):
    """An <img onerror> and a <script> that run payload_js, and an image that requests a marked URL."""
    script = payload_js(port, kind)
    return (f"<img src=x onerror=\"{script}\"><script>{script}</script>"
            f"<img src=\"http://127.0.0.1:{port}/xss-{kind}.png\">")


# A layer name cannot hold a slash (Keras refuses it): its payload only sets the global.
LAYER_NAME = "<img src=x onerror=window.__pwned=['layer-name']>"


def hostile_notebook(port):
    """The release (stubs: quick to grade) with every payload kind in it."""
    notebook = submissions.release_notebook()
    submissions.cell(notebook, "identity_block").source = (
        "def identity_block(X, f, filters, training=True, initializer=None):\n"
        f"    raise AssertionError({html_payload(port, 'exception-text')!r})\n")
    submissions.cell(notebook, "convolutional_block").source = (
        "def convolutional_block(X, f, filters, s=2, training=True, initializer=None):\n"
        f"    return Add(name={LAYER_NAME!r})([X, X])\n")
    index = next(i for i, cell in enumerate(notebook.cells)
                 if cell.metadata.get("nbgrader", {}).get("grade_id") == "identity_block")
    raising = nbformat.v4.new_code_cell(f"raise ValueError({html_payload(port, 'error-text')!r})")
    raising.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": html_payload(port, "saved-html-output"),
                                                     "text/plain": "x"}),
        nbformat.v4.new_output("display_data", data={"application/javascript": payload_js(port, "saved-js-output"),
                                                     "text/plain": "x"}),
        nbformat.v4.new_output("execute_result", execution_count=1,
                               data={"text/html": html_payload(port, "saved-result"), "text/plain": "x"})]
    raising.execution_count = 1
    markdown = nbformat.v4.new_markdown_cell(
        f"My notes {html_payload(port, 'markdown')}\n\n![figure](http://127.0.0.1:{port}/xss-markdown-image.png)\n\n"
        f"[click](javascript:{payload_js(port, 'markdown-link')})")
    notebook.cells[index + 1:index + 1] = [markdown, raising]
    return notebook


def _nbgrader(course, *arguments):
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}  # this tree's resnet_course for nbgrader_config.py
    done = subprocess.run([str(paths.ROOT / ".venv" / "bin" / "nbgrader"), *arguments], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"nbgrader {' '.join(arguments)}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """(course folder, Jupyter port): MALLORY graded by the course's grader, TRUDY's notebook as plain
    autograde leaves it (the payload outputs kept), both in the gradebook; feedback generated."""
    from resnet_course.grading import batch, gradebook
    from resnet_course.grading.journal import to_record
    from resnet_course.grading.submission import CellResult, SubmissionResult, load_material

    work = tmp_path_factory.mktemp("formgrader")
    course = work / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text((paths.INSTRUCTOR_DIR / "nbgrader_config.py").read_text())
    (course / "source").symlink_to(paths.INSTRUCTOR_DIR / "source")
    port = _free_port()
    notebook = hostile_notebook(port)
    folder = course / "submitted" / HOSTILE / paths.ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(notebook, str(folder / f"{paths.ASSIGNMENT}.ipynb"))
    records = batch.grade_folder(course / "submitted", course_dir=course, workers=1)
    assert [record["student"] for record in records] == [HOSTILE] and "error" not in records[0], records

    material = load_material()
    message = f"Failed: {html_payload(port, 'plain-comment')}"
    cells = tuple(CellResult(g.grade_id, 0.0, g.points, message) for g in material.graded)
    result = SubmissionResult(PLAIN, None, cells, 1.0, nbformat.writes(notebook))
    plain = course / "autograded" / PLAIN / paths.ASSIGNMENT
    plain.mkdir(parents=True)
    (plain / f"{paths.ASSIGNMENT}.ipynb").write_text(nbformat.writes(notebook))  # outputs kept, as plain autograde's
    with gradebook.open_gradebook(course) as book:
        gradebook.record_result(book, material, to_record("plain", result))
        for solution in material.solutions:  # nbgrader's own auto comment, unescaped
            book.find_comment(solution, material.assignment, material.assignment, PLAIN).auto_comment = message
        book.db.commit()
    _nbgrader(course, "generate_feedback", paths.ASSIGNMENT)
    return course, port


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """The base URL of nbgrader's formgrader in a Jupyter server started in the course folder."""
    course_dir, port = course
    work = tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
           "JUPYTER_CONFIG_DIR": str(work / "config"), "JUPYTER_DATA_DIR": str(work / "data")}
    command = [str(paths.ROOT / ".venv" / "bin" / "jupyter"), "server", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--allow-root", f"--IdentityProvider.token={TOKEN}",
               f"--ServerApp.root_dir={course_dir}"]
    log_path = work / "jupyter-server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, cwd=course_dir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the Jupyter server did not start; its log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)  # polling a server that is starting: nothing to wait on
        yield base, log_path
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


def _visit(browser, url, before=None):
    """What a page did: (globals the payloads set, console lines, requests to marked URLs or the contents
    API, the page's text). Requests that would leave the machine (the templates' CDN scripts) are aborted."""
    context = browser.new_context()  # a fresh profile: no cookie but the login's
    page = context.new_page()
    console, requests = [], []
    page.on("console", lambda message: console.append(message.text))
    page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
        ("http://127.0.0.1", "file:")) else route.abort())
    try:
        if before:
            page.goto(before)
        response = page.goto(url)
        assert response.ok, f"{url}: HTTP {response.status}"
        page.wait_for_load_state("load")
        page.wait_for_timeout(SETTLE_MS)
        pwned = page.evaluate("window.__pwned || []")
        text = page.inner_text("body")
    finally:
        context.close()
    marked = [line for line in requests if "pwned" in line or "xss" in line or "/api/contents" in line]
    return pwned, [line for line in console if "pwned" in line], marked, text


def _assert_nothing_ran(course_dir, visit):
    pwned, console, requests, _ = visit
    written = sorted(path.name for path in course_dir.rglob("pwned-*"))
    assert (pwned, console, requests, written) == ([], [], [], [])


def _submission_id(course_dir, student):
    from resnet_course.grading import gradebook

    with gradebook.open_gradebook(course_dir) as book:
        return book.find_submission_notebook(paths.ASSIGNMENT, paths.ASSIGNMENT, student).id


@pytest.mark.parametrize("student", [HOSTILE, PLAIN])
def test_formgraders_submission_page_runs_nothing_a_student_wrote(browser, course, formgrader, student):
    course_dir, _ = course
    base, _ = formgrader
    url = f"{base}/formgrader/submissions/{_submission_id(course_dir, student)}/"
    visit = _visit(browser, url, before=f"{base}/formgrader?token={TOKEN}")
    _assert_nothing_ran(course_dir, visit)
    assert "Submission " in visit[3] and " / 2" in visit[3]  # formgrader's page, with both students
    assert "My notes <script>window.__pwned" in visit[3].replace("\n", "")  # the Markdown's script: as text
    if student == HOSTILE:
        assert "raised ValueError: <img src=x onerror=" in visit[3]  # and the error text in the grader's note


@pytest.mark.parametrize("student", [HOSTILE, PLAIN])
def test_feedback_html_runs_nothing_a_student_wrote(browser, course, student):
    course_dir, _ = course
    html = course_dir / "feedback" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html"
    visit = _visit(browser, html.as_uri())
    _assert_nothing_ran(course_dir, visit)
    assert "My notes <script>window.__pwned" in visit[3].replace("\n", "")
    if student == HOSTILE:
        assert "raised AssertionError: <img src=x onerror=" in visit[3]  # the exception text is shown, as text
        assert "raised ValueError: <img src=x onerror=" in visit[3]  # and the error text of the grader's note


def test_the_autograded_notebook_keeps_no_saved_output(course):
    course_dir, _ = course
    notebook = nbformat.read(str(course_dir / "autograded" / HOSTILE / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"),
                             as_version=4)
    kept = [cell.outputs for cell in notebook.cells if cell.cell_type == "code"
            and "grade" not in cell.metadata.get("nbgrader", {}) and cell.get("outputs")]
    assert kept == []
    assert json.dumps([cell.source for cell in notebook.cells if cell.cell_type == "markdown"]).count("<script>") \
        == 1  # only the student's own Markdown (rendered sanitised); the grader's note is escaped text
