"""The grading cluster and the batch's bookkeeping (issue 27, items 1, 6 and 9a).

One grader run, as an instructor runs it, on a small batch of quick submissions (the release's stubs,
one correct submission, one correct and late submission whose first cell sleeps so that the batch
is still grading while it is attacked):

- item 1: while the batch grades, another local user (uid 65534) and a client of the grader's own
  uid without the run's certificate try every port the grader's processes listen on, plainly and
  with TLS under a certificate of their own, and, where a scheduler answers, run code on its
  workers that replaces the judge (every check passes) and lists the scattered grading material.
  None connects, none runs anything, the grades are unchanged; the run's certificate and key are
  private files that are gone when it ends;
- item 6: student folders named with a newline and ANSI escapes (a forged "alice 10/10" row) and
  with characters nbgrader cannot match are skipped with a one-line reason, printed escaped, and
  `nbgrader generate_feedback` (as docs/INSTRUCTORS.md runs it) gives the other students feedback;
- item 9a: with `c.LateSubmissionPlugin.penalty_method = "zero"` and a due date, the late student's
  gradebook penalty is what nbgrader's own plugin computes; an unreadable timestamp.txt is noted.
"""
import csv
import json
import os
import signal
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psutil
import pytest
from nbgrader.api import Gradebook
from nbgrader.plugins import LateSubmissionPlugin

from resnet_course import paths
from resnet_course.grading import cli, gradebook as nbgrader_records
from tests import grading_submissions as submissions
from tests.test_grading_batch import grader, journal_records, make_course, session_processes, submit

pytestmark = pytest.mark.timeout(1800)

OPTIONS = ("--workers", "2", "--timeout", "80", "--memory-gib", "2", "--max-processes", "64")
SLEEP_SECONDS = 50  # the late student's first cell: the batch is still grading while it is attacked
DUE = datetime(2026, 11, 1, 12, 0, 0, tzinfo=timezone.utc)
LATE = DUE + timedelta(days=2, seconds=7)
# a newline, ANSI colours and a forged summary row ("10∕10" with a division slash: a folder name has no "/")
FORGED = "bad\n\x1b[32malice          10\u221510\x1b[0m"
GLOB = "star*[x]"  # a folder nbgrader's glob of autograded/*/ResNet50 matches, but never as itself
GOOD = {"a-untouched": "0/10", "b-late": "10/10", "c-correct": "10/10", "d-untouched": "0/10",
        "e-bad-timestamp": "0/10"}

# What another local user runs (python -c, argv[1] the ports as JSON): a message exchange with every
# port, plainly and with TLS under a certificate of its own; where a scheduler answers, code on every
# worker that replaces the judge and lists the data the workers hold (the scattered grading material);
# and Dask's HTTP pages on every port.
ATTACKER = r'''
import asyncio, json, os, sys
from distributed import Client
from distributed.comm import connect
from distributed.security import Security

OWN = Security.temporary()  # a certificate of its own: not the grading run's


async def talk(address):
    args = OWN.get_connection_args("client") if address.startswith("tls") else {}
    try:
        comm = await asyncio.wait_for(connect(address, timeout=4, **args), 8)
    except BaseException as error:
        return f"refused ({type(error).__name__})"
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await asyncio.wait_for(comm.read(), 4)
        return "answered: " + (str(reply.get("type")) if isinstance(reply, dict) else repr(reply)[:100])
    except Exception as error:
        return f"dropped ({type(error).__name__})"
    finally:
        comm.abort()


def forge(dask_worker):
    import os
    from resnet_course.grading import judge
    judge.judge = lambda *args, **kwargs: None  # every check passes
    return {"uid": os.getuid(), "data": sorted(type(value).__name__ for value in dask_worker.data.values())}


async def talk_to_all(ports):
    addresses = [f"{kind}://127.0.0.1:{port}" for port in ports for kind in ("tcp", "tls")]
    return dict(zip(addresses, await asyncio.gather(*map(talk, addresses))))


def browse(port):
    """What Dask's HTTP pages (dashboard, worker list and logs, metrics, health) answer on `port`."""
    import urllib.error, urllib.request
    answers = {}
    for page in ("status", "info/main/workers.html", "metrics", "health"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=3) as response:
                answers[page] = response.status
        except urllib.error.HTTPError as error:
            answers[page] = error.code
        except Exception as error:
            answers[page] = type(error).__name__
    return answers


ports = json.loads(sys.argv[1])
report = {"uid": os.getuid(), "talked": asyncio.run(talk_to_all(ports)), "ran": {},
          "pages": {port: browse(port) for port in ports}}
for address, outcome in report["talked"].items():
    if outcome == "answered: Scheduler":  # then code on its workers
        try:
            with Client(address, timeout=4, security=OWN if address.startswith("tls") else None) as client:
                report["ran"][address] = client.run(forge)
        except Exception as error:
            report["ran"][address] = f"refused ({type(error).__name__})"
print(json.dumps(report))
'''


def listening(session_id):
    """{port: address} of every TCP socket the grader's session listens on."""
    found = {}
    for process in session_processes(session_id):
        try:
            for connection in process.net_connections("inet"):
                if connection.status == psutil.CONN_LISTEN:
                    found[connection.laddr.port] = connection.laddr.ip
        except psutil.Error:
            pass
    return found


def attack(ports, *uids):
    """The attackers' reports (see ATTACKER), one per uid, run at the same time: as that uid (setpriv),
    or None: as this process's uid."""
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
    attackers = []
    for uid in uids:
        command = [sys.executable, "-c", ATTACKER, json.dumps(sorted(ports))]
        if uid is not None:
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
        attackers.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env, cwd="/"))
    reports = []
    for attacker in attackers:
        out, err = attacker.communicate(timeout=180)
        assert attacker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.splitlines()[-1]))
    return reports


def key_files(temporary):
    """The run's certificate and key files under the grader's temporary folder, with the folders that
    hold them ({path: mode})."""
    found = {}
    for key in temporary.glob("resnet-grading-*/**/*.pem"):
        for path in [key, *key.parents]:
            if path == temporary:
                break
            found[path] = stat.S_IMODE(path.stat().st_mode)
    return found


def rows(out):
    """{student column: (score, reason)} of the summary table's rows (as printed, escapes included)."""
    table = {}
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) >= 2 and ("/" in parts[1] or parts[1] == "-"):
            table[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return table


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    course = make_course(root / "course")
    with open(course / "nbgrader_config.py", "a") as config:
        config.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    with nbgrader_records.open_gradebook(course) as gradebook:  # as `nbgrader db assignment add --duedate` does
        gradebook.update_or_create_assignment(paths.ASSIGNMENT, duedate=DUE.replace(tzinfo=None))
    sleepy = submissions.with_cell_source(
        "identity_block", f"import time\ntime.sleep({SLEEP_SECONDS})\n\n" + submissions.reference_source("identity_block"))
    for student, notebook in {"a-untouched": submissions.untouched(), "b-late": sleepy, "c-correct": submissions.correct(),
                              "d-untouched": submissions.untouched(), "e-bad-timestamp": submissions.untouched(),
                              FORGED: submissions.correct(), GLOB: submissions.correct()}.items():
        folder = submit(course, student, notebook).parent
        (folder / "timestamp.txt").write_text(f"{DUE - timedelta(hours=1):%Y-%m-%d %H:%M:%S.%f %Z}\n")
    (course / "submitted" / "b-late" / paths.ASSIGNMENT / "timestamp.txt").write_text(f"{LATE:%Y-%m-%d %H:%M:%S.%f %Z}\n")
    (course / "submitted" / "e-bad-timestamp" / paths.ASSIGNMENT / "timestamp.txt").write_text("the day after tomorrow\n")
    temporary = root / "tmp"
    temporary.mkdir()
    process = grader(course, OPTIONS, env={**os.environ, "TMPDIR": str(temporary)})
    try:
        journal = course / "grading_journal.jsonl"
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and process.poll() is None and not journal.exists():
            time.sleep(0.2)  # the first result: the material is scattered, the cluster is grading
        assert process.poll() is None, "the grader ended before it could be attacked: " + process.stderr.read()[-3000:]
        ports = listening(process.pid)
        keys = key_files(temporary)
        attacks = dict(zip(("other user", "no certificate"), attack(ports, 65534, None)))
        print(json.dumps(attacks, indent=1))
        # the sleeping late student not graded yet: the batch was grading all along
        still_grading = process.poll() is None and "b-late" not in {r["student"] for r in journal_records(course)}
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    try:
        out, err = process.communicate(timeout=1200)
    finally:  # a failed or timed-out test must not leave the grader running
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    yield {"course": course, "out": out, "err": err, "returncode": process.returncode, "ports": ports, "keys": keys,
           "attacks": attacks,
           "still_grading": still_grading, "keys_after": key_files(temporary)}


def test_nobody_but_the_grader_talks_to_its_cluster(graded):
    assert graded["still_grading"], "the attacks ended after the batch: make SLEEP_SECONDS longer"
    assert graded["ports"] and set(graded["ports"].values()) == {"127.0.0.1"}, graded["ports"]  # loopback only
    assert 8787 not in graded["ports"]  # no dashboard unless asked for
    for who, report in graded["attacks"].items():
        assert report["uid"] == (65534 if who == "other user" else os.getuid())
        assert len(report["talked"]) == 2 * len(graded["ports"]), report
        answered = {address: outcome for address, outcome in report["talked"].items()
                    if not outcome.startswith(("refused", "dropped"))}
        assert answered == {} and report["ran"] == {}, (who, report)
        served = {port: pages for port, pages in report["pages"].items() if 200 in pages.values()}
        assert served == {}, (who, served)  # Dask's HTTP servers serve nothing without --dashboard


def test_the_grades_are_those_of_an_unattacked_run(graded):
    assert graded["returncode"] == 1, graded["err"][-3000:]  # 1: the skipped folders are not graded
    table = rows(graded["out"])
    assert {student: table[student][0] for student in GOOD} == GOOD, graded["out"]
    records = {record["student"]: record for record in journal_records(graded["course"])}
    assert sorted(records) == sorted(GOOD)


def test_the_runs_certificate_and_key_are_private_and_removed(graded):
    keys = graded["keys"]
    assert sorted(path.name for path in keys if path.suffix == ".pem") == ["cluster-cert.pem", "cluster-key.pem"]
    for path, mode in keys.items():
        assert mode == (0o600 if path.suffix == ".pem" else 0o700), (path, oct(mode))
    assert graded["keys_after"] == {}


def test_a_hostile_folder_name_is_skipped_printed_escaped_and_breaks_no_feedback(graded):
    out, course = graded["out"], graded["course"]
    assert "\x1b" not in out + graded["err"] and not any(line.startswith("alice") for line in out.splitlines())
    hostile = [line for line in out.splitlines() if line.startswith(repr(FORGED))]  # one row, quoted and escaped
    assert len(hostile) == 1 and hostile[0][len(repr(FORGED)):].split()[0] == "-", out
    assert "skipped: its name holds control" in hostile[0]
    table = rows(out)
    assert table[GLOB][0] == "-" and "skipped" in table[GLOB][1], out
    assert "rename" in graded["err"]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=paths.COURSE_ID) as gradebook:
        assert sorted(student.id for student in gradebook.students) == sorted(GOOD)
    assert sorted(path.name for path in (course / "autograded").iterdir()) == sorted(GOOD)
    venv_bin = Path(sys.executable).parent
    feedback = subprocess.run([str(venv_bin / "nbgrader"), "generate_feedback", paths.ASSIGNMENT], cwd=course,
                              capture_output=True, text=True, timeout=600)
    assert feedback.returncode == 0, feedback.stdout[-2000:] + feedback.stderr[-3000:]
    for student in GOOD:
        assert (course / "feedback" / student / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.html").is_file(), student


def test_the_late_penalty_is_nbgraders_own(graded):
    with Gradebook(f"sqlite:///{graded['course'] / 'gradebook.db'}", course_id=paths.COURSE_ID) as gradebook:
        late = gradebook.find_submission(paths.ASSIGNMENT, "b-late")
        on_time = gradebook.find_submission(paths.ASSIGNMENT, "c-correct")
        seconds, notebook = late.total_seconds_late, late.notebooks[0]
        expected = LateSubmissionPlugin(penalty_method="zero").late_submission_penalty("b-late", 10.0, seconds)
        assert seconds == (LATE - DUE).total_seconds()
        assert notebook.late_submission_penalty == expected == 10.0 and late.score == 10.0  # (the raw score)
        assert on_time.total_seconds_late == 0 and not on_time.notebooks[0].late_submission_penalty
        assert on_time.score == 10.0
        assert gradebook.find_submission(paths.ASSIGNMENT, "e-bad-timestamp").timestamp is None
    assert "late by 2 d 0 h 00 min: penalty 10 points" in rows(graded["out"])["b-late"][1]
    exported = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export"], cwd=graded["course"],
                              capture_output=True, text=True, timeout=300)  # as docs/INSTRUCTORS.md runs it
    assert exported.returncode == 0, exported.stderr[-3000:]
    grades = {row["student_id"]: row for row in csv.DictReader((graded["course"] / "grades.csv").open())}
    assert (float(grades["b-late"]["raw_score"]), float(grades["b-late"]["score"])) == (10.0, 0.0)
    assert float(grades["c-correct"]["score"]) == 10.0


def test_an_unreadable_timestamp_is_noted(graded):
    reason = rows(graded["out"])["e-bad-timestamp"][1]
    assert "timestamp.txt" in reason, graded["out"]
    autograded = graded["course"] / "autograded" / "e-bad-timestamp" / paths.ASSIGNMENT / f"{paths.ASSIGNMENT}.ipynb"
    assert "timestamp.txt could not be read" in "".join(json.loads(autograded.read_text())["cells"][0]["source"])
    assert not (autograded.parent / "timestamp.txt").exists()  # nbgrader's generate_feedback fails on an invalid one


# ---------------------------------------------------------------------------------------------
# A cluster of several machines, as docs/INSTRUCTORS.md makes it, and --scheduler's refusals
# ---------------------------------------------------------------------------------------------

def instructors_block(marker):
    """The lines of the bash block of docs/INSTRUCTORS.md that holds `marker` (without the fences)."""
    text = (paths.ROOT / "docs" / "INSTRUCTORS.md").read_text()
    for block in text.split("```bash\n")[1:]:
        block = block.split("```")[0]
        if marker in block:
            return [line.strip() for line in block.splitlines() if line.strip()]
    raise AssertionError(f"docs/INSTRUCTORS.md has no bash block with {marker!r}")


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_plain_tcp_is_one_clear_error_line_unless_the_insecure_option_is_given(tmp_path, capsys, monkeypatch):
    course = make_course(tmp_path / "course")
    submit(course, "a", submissions.untouched())
    monkeypatch.setenv("DASK_CONFIG", str(tmp_path / "no-dask-config"))  # no distributed.comm.tls.* from elsewhere
    base = [str(course / "submitted"), "--course-dir", str(course)]
    missing = str(tmp_path / "none.pem")
    for options, needle in ((["--scheduler", "tcp://127.0.0.1:1"], "--insecure-plain-tcp"),
                            (["--scheduler", "127.0.0.1:1"], "--insecure-plain-tcp"),
                            (["--scheduler", "tls://127.0.0.1:1"], "--tls-ca-file"),
                            (["--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", missing, "--tls-cert", missing],
                             "no such certificate"),
                            (["--scheduler", "tcp://127.0.0.1:1", "--tls-cert", missing], "need a tls:// address"),
                            (["--tls-cert", missing], "are for --scheduler")):
        assert cli.main(base + options) == 2, options
        out, err = capsys.readouterr()
        lines = [line for line in err.splitlines() if line.strip()]
        assert out == "" and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (options, err)
    assert not (course / "gradebook.db").exists()
    for name in ("grade_folder", "sweep_leftovers"):  # the options only: nothing is graded or swept
        monkeypatch.setattr(cli, name, lambda *args, **kwargs: [])
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # (main's SIGTERM handler: not in pytest's process)
    assert cli.main(base + ["--scheduler", "tcp://127.0.0.1:1", "--insecure-plain-tcp"]) == 0
    assert capsys.readouterr().err.startswith("warning: --insecure-plain-tcp: the connections to tcp://127.0.0.1:1 "
                                              "are neither encrypted nor authenticated")


def test_a_tls_cluster_made_as_instructors_md_says_grades_and_lets_no_one_else_in(tmp_path):
    tls = tmp_path / "grading-tls"
    script = "\n".join(instructors_block("openssl req -x509"))
    made = subprocess.run(["bash", "-euc", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    for name in ("ca.pem", "scheduler.pem", "scheduler-key.pem", "worker.pem", "worker-key.pem", "grader.pem",
                 "grader-key.pem"):
        assert (tls / name).is_file(), name
    assert stat.S_IMODE((tls / "grader-key.pem").stat().st_mode) & 0o077 == 0  # umask 077: private keys
    commands = instructors_block("dask scheduler --tls-ca-file")
    port = free_port()
    address = f"tls://127.0.0.1:{port}"

    def documented(prefix, extra=()):
        line = next(line for line in commands if line.startswith(prefix))
        words = line.replace("tls://HEAD:8786", address).split()
        return [str(Path(sys.executable).parent / words[0].split("/")[-1]), *words[1:], *extra]

    env = {**os.environ, "DASK_CONFIG": str(tmp_path / "no-dask-config")}
    scheduler = subprocess.Popen(documented(".venv/bin/dask scheduler", ["--host", "127.0.0.1", "--port", str(port)]),
                                 cwd=tls, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 start_new_session=True)
    worker = subprocess.Popen(documented(".venv/bin/dask worker", ["--host", "127.0.0.1"]), cwd=tls, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        course = make_course(tmp_path / "course")
        submit(course, "a-untouched", submissions.untouched())
        grading = documented(".venv/bin/python -m resnet_course.grading")
        grading = [sys.executable, *grading[1:]]
        grading[grading.index("instructor/submitted")] = str(course / "submitted")
        deadline = time.monotonic() + 300
        report = None
        while time.monotonic() < deadline:  # the workers join: then every port of the cluster refuses others
            ports = {port, *listening(worker.pid)}
            if len(ports) >= 3:
                report, = attack(ports, 65534)
                break
            time.sleep(1)
        assert report is not None, "the documented worker did not start"
        assert all(outcome.startswith(("refused", "dropped")) for outcome in report["talked"].values()), report
        assert report["ran"] == {}, report
        result = subprocess.run([*grading, "--course-dir", str(course), "--timeout", "60"], cwd=tls, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        assert rows(result.stdout)["a-untouched"][0] == "0/10", result.stdout
    finally:
        for process in (worker, scheduler):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (worker, scheduler):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_the_dashboard_is_there_only_when_asked_for():
    """--dashboard ADDRESS: Dask's pages on that loopback address (the default cluster serves none, see above)."""
    import urllib.request
    from resnet_course.grading import batch
    from resnet_course.grading.submission import Limits
    address = f"127.0.0.1:{free_port()}"
    with batch.dask_client(None, 1, Limits(), check_sandbox=False, dashboard=address) as client:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        with urllib.request.urlopen(f"http://{address}/info/main/workers.html", timeout=30) as page:
            assert page.status == 200
