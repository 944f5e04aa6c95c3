"""Runs the judge's work in a forked child process under a wall-clock and a memory limit.

The judge runs no student code, but it runs Keras on the models student code described, and the
work a valid-looking model costs is not known before it is done. So each submission's judging runs
in a child process that can be killed: `run(function, items, seconds, memory_bytes)` calls
`function(item, mark)` on each item in order, in a child forked from the *judge host*, a Python
process of its own that has imported Keras and the checks (`judge.warm_up` starts it) but never runs
a TensorFlow operation itself, so that a fork of it starts TensorFlow's runtime afresh (a process
that has run TensorFlow operations cannot fork safely: the child would wait forever on the parent's
thread pools) and pays no import. One host per process that calls `run` (each Dask worker); it ends
with that process (its stdin closes; the kernel's parent-death signal too).

Each item has `seconds` of CPU time (all its threads, from the previous item's result): a limit that
the machine's load does not change, so a correct model is never cut short on a busy machine. The
child may allocate `memory_bytes` beyond what it shares with the host: a cgroup v1 memory limit
where this process may make cgroups (the sandbox's own machinery, `sandbox.Cgroups`), else the host
measures the child's private resident memory every 50 ms and kills it past the limit. An item that
overruns gets an `Outcome` with `overrun` "time" or "memory" and the last `phase` its function marked
(`mark(phase)`), and the items after it are run in a new child. Anything else that stops the child
(an exception of `function`, a crash, a host that does not answer, an item without a result for a
wall clock of ten times its CPU time that did not use that CPU time: a stuck or starved judge)
raises JudgeFault: not the student's doing.

The channel is frames: one kind byte, a 4-byte length, a pickle. The child writes them to a pipe of
its own; the host forwards only whole frames, so a child killed mid-write never garbles the channel.
"""
import ctypes
import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

READY, RESULT, MARK, ERROR, EXIT = b"S", b"R", b"M", b"E", b"X"
POLL_SECONDS = 0.05  # how often the host looks at the child's memory and clocks
WALL_FACTOR, WALL_MIN_SECONDS = 10.0, 120.0  # an item's wall clock: its CPU time's tenfold, at least 2 minutes
START_SECONDS = 300.0  # the host's imports (Keras, TensorFlow), on a loaded machine
HOST_MARGIN_SECONDS = 60.0  # beyond an item's limit, before the host itself is taken for hung
_HEADER = struct.Struct("!cI")
_PR_SET_PDEATHSIG = 1


class JudgeFault(RuntimeError):
    """The judge could not run for a reason the student did not cause (its host did not start or died,
    the judging function raised, the child crashed)."""


@dataclass(frozen=True)
class Outcome:
    """What `function` returned for one item, or the limit it ran into (`overrun`: "time" or
    "memory") in the `phase` it had marked last (None before any mark)."""
    value: object = None
    overrun: str | None = None
    phase: str | None = None


# ---------------------------------------------------------------------------------------------
# Frames
# ---------------------------------------------------------------------------------------------

def _frame(kind, payload):
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(kind, len(data)) + data


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _read_exactly(fd, size, deadline=None):
    """`size` bytes from fd, or None at its end (or, with a deadline, when it passes)."""
    chunks, left = [], size
    while left:
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                return None
        chunk = os.read(fd, min(left, 2**20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_frame(fd, deadline=None):
    """(kind, payload) of the next frame on fd, or None at its end or deadline."""
    header = _read_exactly(fd, _HEADER.size, deadline)
    if header is None:
        return None
    kind, size = _HEADER.unpack(header)
    data = _read_exactly(fd, size, deadline)
    return None if data is None else (kind, pickle.loads(data))


def _die_with_parent():
    """Asks the kernel to kill this process when its parent ends (Linux prctl; a no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------------------------
# The host (its own process) and the child it forks per job
# ---------------------------------------------------------------------------------------------

def _private_bytes(pid):
    """Resident memory of a process that is not file-backed (statm: resident - shared pages)."""
    try:
        fields = open(f"/proc/{pid}/statm").read().split()
        return (int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _child(write_fd, function, items, cgroups):
    """In the forked child: joins the cgroups, runs `function` on each item, one frame per result."""
    try:
        _die_with_parent()
        if cgroups is not None:
            for folder in (cgroups.memory, cgroups.pids):
                (folder / "cgroup.procs").write_text(str(os.getpid()))
        for index, item in enumerate(items):
            def mark(phase, index=index):
                _write_all(write_fd, _frame(MARK, (index, phase)))
            value = function(item, mark)
            _write_all(write_fd, _frame(RESULT, (index, value)))
    except MemoryError:
        _write_all(write_fd, _frame(ERROR, ("memory", None)))
    except BaseException as error:  # noqa: BLE001 - reported to the caller as a JudgeFault
        import traceback

        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        _write_all(write_fd, _frame(ERROR, ("error", text[:2000])))
    finally:
        os._exit(0)


def _cpu_seconds(pid):
    """CPU time (user and system, all threads) a process has used, in seconds (0 if it is gone)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": field 3 is index 0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _relay(read_fd, pid, seconds, wall_seconds, memory_bytes, cgroups, out_fd):
    """In the host: forwards the child's whole frames to `out_fd`; kills the child when an item has used
    `seconds` of CPU ("time"), made no result for `wall_seconds` ("stalled"), or (without cgroups) gone
    past the memory limit, or when the host's own parent is gone; returns the EXIT frame's payload."""
    parent = os.getppid()
    deadline, item_cpu = time.monotonic() + wall_seconds, 0.0
    buffer, killed, baseline = b"", None, _private_bytes(pid)
    while True:
        ready = select.select([read_fd], [], [], POLL_SECONDS)[0]
        if ready:
            data = os.read(read_fd, 2**20)
            if not data:
                break
            buffer += data
            while len(buffer) >= _HEADER.size:
                kind, size = _HEADER.unpack_from(buffer)
                if len(buffer) < _HEADER.size + size:
                    break
                _write_all(out_fd, buffer[:_HEADER.size + size])
                buffer = buffer[_HEADER.size + size:]
                if kind == RESULT:
                    deadline, item_cpu = time.monotonic() + wall_seconds, _cpu_seconds(pid)
        if killed is None and _cpu_seconds(pid) - item_cpu > seconds:
            killed = "time"
        elif killed is None and time.monotonic() > deadline:
            killed = "stalled"
        elif killed is None and cgroups is None and _private_bytes(pid) - baseline > memory_bytes:
            killed = "memory"
        elif killed is None and os.getppid() != parent:  # the caller died: nobody waits for the result
            killed = "orphaned"
        if killed is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            while os.read(read_fd, 2**20):  # the rest of what it wrote (a partial frame is dropped)
                pass
            break
    _, status = os.waitpid(pid, 0)
    if killed is None and cgroups is not None and cgroups.memory_exceeded():
        killed = "memory"
    return {"overrun": killed, "exit": os.waitstatus_to_exitcode(status)}


def _resolve(name):
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


def host_main():
    """The judge host: imports what judging needs, then forks one child per job read on stdin."""
    from resnet_course.grading import judge, sandbox

    channel_in, channel_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # a print anywhere in the host or its children never reaches the channel
    judge.warm_up(start_host=False)
    _write_all(channel_out, _frame(READY, os.getpid()))
    while True:
        job = _read_frame(channel_in)
        if job is None:
            return
        name, items, seconds, wall_seconds, memory_bytes = job[1]
        function = _resolve(name)
        cgroups = sandbox.Cgroups.create(memory_bytes, 2**15)  # threads count as pids: TensorFlow starts many
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            os.close(channel_in)
            os.close(channel_out)
            _child(write_fd, function, items, cgroups)
        os.close(write_fd)
        try:
            status = _relay(read_fd, pid, seconds, wall_seconds, memory_bytes, cgroups, channel_out)
        finally:
            os.close(read_fd)
            if cgroups is not None:
                cgroups.remove()
        if status["overrun"] == "orphaned":
            return
        _write_all(channel_out, _frame(EXIT, status))


# ---------------------------------------------------------------------------------------------
# The caller's side
# ---------------------------------------------------------------------------------------------

_HOST_CODE = ("import sys; sys.path[:0] = __import__('json').loads(sys.argv[1]); "
              "from resnet_course.grading import bounded; bounded.host_main()")


class Host:
    """A running judge host: its process and the two ends of its channel."""

    def __init__(self):
        import json

        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOST_CODE, json.dumps(sys.path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready = _read_frame(self.process.stdout.fileno(), time.monotonic() + START_SECONDS)
        if ready is None or ready[0] != READY:
            self.close()
            raise JudgeFault(f"the judge host did not start (exit code {self.process.poll()})")

    def alive(self):
        return self.process.poll() is None

    def send(self, payload):
        data = _frame(b"J", payload)
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (OSError, ValueError) as error:
            raise JudgeFault(f"the judge host is gone ({error})") from error

    def receive(self, deadline):
        frame = _read_frame(self.process.stdout.fileno(), deadline)
        if frame is None:
            self.close()
            raise JudgeFault("the judge host stopped answering" if self.alive() else
                             f"the judge host died (exit code {self.process.poll()})")
        return frame

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


_lock = threading.Lock()
_job_lock = threading.Lock()
_host = None


def start_host():
    """The judge host of this process, started (and waited for) if it is not running."""
    global _host
    with _lock:
        if _host is None or not _host.alive() or _host.pid != os.getpid():
            host = Host()
            host.pid = os.getpid()  # (a forked copy of this process must start its own)
            _host = host
        return _host


def wall_limit(seconds):
    """The wall clock an item with `seconds` of CPU time has before it is taken for stalled."""
    return max(WALL_MIN_SECONDS, WALL_FACTOR * seconds)


def run(function, items, seconds, memory_bytes, wall_seconds=None):
    """[Outcome per item] of `function(item, mark)` ("module:name", importable in the host) run in a
    child of the judge host, each item with `seconds` of CPU time and the child with `memory_bytes`
    of memory of its own; the items after an overrun run in a new child. JudgeFault for anything
    that is not an overrun (see the module doc), also for an item that makes no result within
    `wall_seconds` (default `wall_limit(seconds)`) without using its CPU time: a stuck or starved judge."""
    outcomes, items = [], list(items)
    wall_seconds = wall_limit(seconds) if wall_seconds is None else wall_seconds
    with _job_lock:  # one job at a time on the host's channel
        while len(outcomes) < len(items):
            outcomes += _run_part(function, items, len(outcomes), seconds, wall_seconds, memory_bytes)
    return outcomes


def _run_part(function, items, start, seconds, wall_seconds, memory_bytes):
    """The Outcomes of items[start:] up to and including the first overrun, from one child."""
    host = start_host()
    host.send((function, items[start:], float(seconds), float(wall_seconds), int(memory_bytes)))
    phases, results, failure = {}, {}, None
    while True:
        kind, payload = host.receive(time.monotonic() + wall_seconds + HOST_MARGIN_SECONDS)
        if kind == MARK:
            phases[payload[0]] = payload[1]
        elif kind == RESULT:
            results[payload[0]] = payload[1]
        elif kind == ERROR:
            failure = payload
        elif kind == EXIT:
            status = payload
            break
    outcomes = [Outcome(results[i]) for i in range(len(results))]
    if status["overrun"] == "stalled":
        raise JudgeFault(f"the judge made no result for {wall_seconds:g} s without using its {seconds:g} s of CPU "
                         "time: the machine is overloaded or the judge is stuck")
    overrun = status["overrun"] or (failure[0] if failure and failure[0] == "memory" else None)
    if overrun is not None:
        return outcomes + [Outcome(None, overrun, phases.get(len(results)))]
    if failure is not None:
        raise JudgeFault(f"the judge raised {failure[1]}")
    if start + len(outcomes) < len(items):
        raise JudgeFault(f"the judge's process ended before its work was done (exit code {status['exit']})")
    return outcomes
