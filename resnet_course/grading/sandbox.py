"""Runs one command in a bubblewrap sandbox with wall-clock, memory, process and disk limits.

The sandbox sees a read-only system (/usr and its /bin, /lib... links), the Python install and the
venv read-only, fresh /proc and /dev, and two size-bounded tmpfs: SANDBOX_DIR (its working folder,
into which the files of the host's `workdir` are bound read-only) and /tmp (and /dev/shm, the only
writable part of /dev). Whatever the command
writes lands in those tmpfs, in memory charged to the sandbox's memory cgroup, and is gone when the
sandbox ends: a submission that writes without end gets ENOSPC at `disk_bytes`, and the host's disk
grows only by `workdir` (the few files the command needs). The sandbox does not see the repository
(instructor files, the gradebook, other submissions), /etc, /root or the network; it runs as an
unprivileged uid in new user, pid, network, ipc and uts namespaces, in its own session, and dies
with its parent. It cannot make user namespaces of its own (bubblewrap's --disable-userns, 0.8 and
later): `unshare -Ur` and unshare(CLONE_NEWUSER) fail inside, so no process there is ever "root" of
a namespace, with the kernel's namespace-root interfaces that would open. A bubblewrap without the
option still runs (preflight says so in a note).

Memory and process limits come from cgroup v1 children (memory.limit_in_bytes, pids.max), which also
tell afterwards which limit was hit and let every process of the sandbox be killed. Where cgroups
cannot be created, rlimits stand in (RLIMIT_AS for memory, RLIMIT_NPROC for processes; the latter
does nothing for root), and the limit that was hit is not reported as such (the run just dies).

Host-side leftovers of a killed grader are swept: scratch folders (`new_scratch_folder`) live in one
folder per process, `resnet-grading-<pid>-<start time>-<random>` in the temporary folder (made by
`tempfile.mkdtemp`: another local user can watch for the grader's pid and start time, but cannot
create the folder before it, which would let them swap the files a sandbox is given), and cgroups
carry the same tag; `sweep_leftovers()` removes this user's folders whose process is gone (the grader
calls it at start, and each process calls it before its first scratch folder).
"""
import atexit
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

SANDBOX_DIR = "/sandbox"
SANDBOX_UID = 65534  # "nobody": root-owned private files are not its own
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "resnet-grading"
SCRATCH_PREFIX = "resnet-grading-"
DEFAULT_DISK_BYTES = 512 * 2**20
INSTALL_HINT = "install it with `apt-get install bubblewrap` (or run `make grade`, which installs it)"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start on this machine (no bubblewrap, or it fails); the message is one line
    that says what is missing and how to install it. Never the student's doing."""


# ---------------------------------------------------------------------------------------------
# Leftovers of killed runs: everything the host keeps is tagged with its owner's pid and start time
# ---------------------------------------------------------------------------------------------

def _start_time(pid):
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]  # after "pid (comm) ": field 3 is index 0


def owner_tag(pid=None):
    """`<pid>-<start time>` of a process (this one by default): unique even when pids are reused."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid)}"


def _owner_alive(tag):
    """Whether the process a `<pid>-<start time>[-...]` tag names still runs (unknown tags: alive)."""
    pid, _, rest = tag.partition("-")
    start = rest.split("-")[0]
    if not pid.isdigit() or not start.isdigit():
        return True  # not ours to judge
    return _start_time(int(pid)) == start


_scratch_lock = threading.Lock()
_scratch_parent = None
_scratch_tag = None  # the owner_tag of the process that made _scratch_parent


def _remove_scratch_parent(path):
    shutil.rmtree(path, ignore_errors=True)


def new_scratch_folder():
    """A new empty host folder (Path) for one sandbox's files; the caller removes it when done.

    It lives under this process's run folder, `<tmp>/resnet-grading-<pid>-<start time>-<random>/`,
    removed at a normal exit and swept by the next run after a kill. The first call also sweeps dead
    runs' folders. The run folder is made new (0700, never an existing one: a folder of that name made
    by another user would be theirs, and so would be the right to rename what is in it).
    """
    global _scratch_parent, _scratch_tag
    with _scratch_lock:
        tag = owner_tag()
        if _scratch_parent is None or _scratch_tag != tag:  # (a forked child: its own)
            sweep_leftovers()
            _scratch_parent = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{tag}-"))
            _scratch_tag = tag
            atexit.register(_remove_scratch_parent, _scratch_parent)
        return Path(tempfile.mkdtemp(dir=_scratch_parent))


def sweep_leftovers(temporary_dir=None):
    """Removes the scratch folders and cgroups of grading processes that are gone (killed runs).

    Returns the paths removed. Those of live processes (another grader running at the same time)
    are left alone.
    """
    removed = []
    for folder in Path(temporary_dir or tempfile.gettempdir()).glob(SCRATCH_PREFIX + "*"):
        tag = folder.name[len(SCRATCH_PREFIX):]
        if (folder.is_dir() and not folder.is_symlink() and folder.lstat().st_uid == os.geteuid()
                and tag[:1].isdigit() and not _owner_alive(tag)):  # (another user's folder is not ours to remove)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    for controller in ("memory", "pids"):
        parent = CGROUP_ROOT / controller / CGROUP_PARENT
        try:
            children = [child for child in parent.iterdir() if child.is_dir()]
        except OSError:
            continue
        for child in children:
            if _owner_alive(child.name):
                continue
            _kill_cgroup(child)
            try:
                child.rmdir()
                removed.append(child)
            except OSError:
                pass
    return removed


# ---------------------------------------------------------------------------------------------
# The bubblewrap command
# ---------------------------------------------------------------------------------------------

def _system_mounts():
    """/usr read-only; /bin, /lib, /lib64, /sbin as the host has them (merged-/usr links or folders)."""
    arguments = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32"):
        path = Path("/") / name
        if path.is_symlink():
            arguments += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            arguments += ["--ro-bind", str(path), str(path)]
    return arguments


def _python_mounts():
    """The interpreter's install and the venv, read-only, at their own paths (so sys.executable works)."""
    folders = {Path(sys.base_prefix).resolve(), Path(sys.prefix)}
    arguments = []
    for folder in sorted(folders):
        arguments += ["--ro-bind", str(folder), str(folder)]
    return arguments


def _workdir_mounts(workdir):
    """Each entry of the host's `workdir`, read-only, at the same name in SANDBOX_DIR."""
    arguments = []
    for entry in sorted(Path(workdir).iterdir()):
        arguments += ["--ro-bind", str(entry), f"{SANDBOX_DIR}/{entry.name}"]
    return arguments


def bwrap_path():
    """The bwrap executable on PATH; SandboxUnavailable (one line, how to install it) if there is none."""
    found = shutil.which("bwrap")
    if found is None:
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not on PATH: {INSTALL_HINT}")
    return found


@functools.lru_cache(maxsize=None)
def disables_userns(bwrap="bwrap"):
    """Whether this bwrap has --disable-userns (bubblewrap 0.8 and later): read from its --help."""
    try:
        shown = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return "--disable-userns" in shown.stdout + shown.stderr


def bwrap_command(workdir, command, env, disk_bytes=DEFAULT_DISK_BYTES, bwrap="bwrap"):
    """The bwrap argument list that runs `command` inside the sandbox: `workdir`'s files read-only in
    SANDBOX_DIR, which is a tmpfs of `disk_bytes` (as is /tmp), the working folder; no nested user
    namespace where bwrap can forbid them (`disables_userns`)."""
    size = str(int(disk_bytes))
    no_userns = ["--disable-userns"] if disables_userns(bwrap) else []
    arguments = [bwrap, "--unshare-all", "--unshare-user", *no_userns,
                 "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                 # /tmp first: a venv or checkout under /tmp (a clone there) is bound on top of it
                 # /dev read-only but for /dev/shm, bounded like the other tmpfs (else an unbounded tmpfs)
                 "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                 "--size", size, "--tmpfs", "/tmp",
                 *_system_mounts(), *_python_mounts(),
                 "--size", size, "--perms", "0700", "--tmpfs", SANDBOX_DIR, *_workdir_mounts(workdir),
                 "--chdir", SANDBOX_DIR, "--clearenv"]
    for name, value in env.items():
        arguments += ["--setenv", name, value]
    return arguments + ["--", *command]


# ---------------------------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------------------------

def _kill_cgroup(folder):
    """SIGKILL every process in a cgroup folder until none is left (a fork bomb refills between passes)."""
    for _ in range(1000):
        try:
            pids = [int(line) for line in (folder / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Cgroups:
    """A memory and a pids cgroup (v1) for one sandbox: limits, what was hit, kill everything."""

    def __init__(self, memory_bytes, max_processes):
        name = f"{CGROUP_PARENT}/{owner_tag()}-{uuid.uuid4().hex[:12]}"
        self.memory = CGROUP_ROOT / "memory" / name
        self.pids = CGROUP_ROOT / "pids" / name
        self.memory.mkdir(parents=True)
        try:
            self.pids.mkdir(parents=True)
            (self.memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap_limit = self.memory / "memory.memsw.limit_in_bytes"
            if swap_limit.exists():  # memory + swap: no escape into swap
                swap_limit.write_text(str(memory_bytes))
            (self.pids / "pids.max").write_text(str(max_processes))
        except OSError:
            self.remove()
            raise

    @classmethod
    def create(cls, memory_bytes, max_processes):
        """The cgroups, or None where this machine does not let us make them (no v1 controllers, no rights)."""
        try:
            return cls(memory_bytes, max_processes)
        except OSError:
            return None

    def wrap(self, command):
        """`command` started by a shell that first moves itself into both cgroups (children inherit them)."""
        enter = 'echo $$ > "$1" && echo $$ > "$2" && shift 2 && exec "$@"'
        return ["/bin/sh", "-c", enter, "sh", str(self.memory / "cgroup.procs"), str(self.pids / "cgroup.procs"),
                *command]

    def _counter(self, path, key):
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def memory_exceeded(self):
        return self._counter(self.memory / "memory.oom_control", "oom_kill") > 0

    def processes_exceeded(self):
        return self._counter(self.pids / "pids.events", "max") > 0

    def kill_all(self):
        _kill_cgroup(self.pids)

    def remove(self):
        for folder in (self.pids, self.memory):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # still has (dying) processes
                    self.kill_all()
                    os.sched_yield()


def _rlimits(memory_bytes, max_processes):
    """preexec_fn of the fallback: limits that bwrap and everything it starts inherit."""
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    return apply


class Sandbox:
    """One sandboxed process with pipes on stdin, stdout and stderr; use as a context manager.

    `workdir`: host folder whose files appear read-only in SANDBOX_DIR; `memory_bytes` and
    `max_processes`: the cgroup limits (rlimits where cgroups cannot be made); `disk_bytes`: the size
    of each of the sandbox's writable tmpfs (SANDBOX_DIR, /tmp and /dev/shm), whose content also counts
    as the sandbox's memory. Either cgroup limit ends the sandbox: the kernel's OOM killer ends a
    process over the memory limit, and a watcher kills the whole sandbox as soon as it runs into the
    process limit (a fork bomb that catches its errors would otherwise fork on until the wall clock).
    `limit_hit()` names the limit the sandbox ran into ("memory", "processes") or None; leaving the
    context kills whatever is left of the sandbox and removes its cgroups. Raises SandboxUnavailable
    when bwrap is not on PATH.
    """

    WATCH_SECONDS = 0.25  # how often the watcher looks at the process limit

    def __init__(self, workdir, command, memory_bytes, max_processes, env=None, disk_bytes=DEFAULT_DISK_BYTES):
        argv = bwrap_command(workdir, command, env or {}, disk_bytes, bwrap=bwrap_path())
        self.cgroups = Cgroups.create(memory_bytes, max_processes)
        options = {}
        if self.cgroups is not None:
            argv = self.cgroups.wrap(argv)
        else:
            options["preexec_fn"] = _rlimits(memory_bytes, max_processes)
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, start_new_session=True, **options)
        except BaseException:
            if self.cgroups is not None:
                self.cgroups.remove()
            raise
        if self.cgroups is not None:
            threading.Thread(target=self._watch_processes, daemon=True).start()

    def _watch_processes(self):
        while self.process.poll() is None:
            if self.cgroups.processes_exceeded():
                self.kill()
                return
            time.sleep(self.WATCH_SECONDS)

    def limit_hit(self):
        if self.cgroups is None:
            return None
        if self.cgroups.memory_exceeded():
            return "memory"
        if self.cgroups.processes_exceeded():
            return "processes"
        return None

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.cgroups is not None:
            self.cgroups.kill_all()
        self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass
        if self.cgroups is not None:
            self.cgroups.remove()


# ---------------------------------------------------------------------------------------------
# Preflight: prove the sandbox starts here before grading anything
# ---------------------------------------------------------------------------------------------

PREFLIGHT_CODE = "import keras"


def preflight(memory_bytes, max_processes, disk_bytes=DEFAULT_DISK_BYTES, seconds=180):
    """Starts the grading sandbox once, as grading does, running `python -c "import keras"` with the
    interpreter and venv it will use; returns notes (e.g. the cgroup fallback), one line each.

    Raises SandboxUnavailable with one line that says what is missing and how to install it: no bwrap
    on PATH, bwrap that fails to start (e.g. user namespaces disabled), or an interpreter or venv that
    does not work inside.
    """
    bwrap_path()
    notes = []
    cgroups = Cgroups.create(memory_bytes, max_processes)
    if cgroups is None:
        notes.append("cgroup v1 memory and pids controllers are not writable here (needs root): memory and "
                     "process limits fall back to rlimits, and the limit a submission hits is not named")
    else:
        cgroups.remove()
    if not disables_userns(bwrap_path()):
        notes.append("this bubblewrap has no --disable-userns (it came with 0.8): code in the sandbox can make "
                     "nested user namespaces; install bubblewrap 0.8 or later")
    workdir = new_scratch_folder()
    try:
        (workdir / "preflight.txt").write_text("grading preflight\n")
        command = [sys.executable, "-E", "-s", "-B", "-c",
                   f"{PREFLIGHT_CODE}; open('preflight.txt').read(); open('written', 'w').write('ok')"]
        env = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"}
        with Sandbox(workdir, command, memory_bytes, max_processes, env, disk_bytes) as sandbox:
            try:
                _, stderr = sandbox.process.communicate(timeout=seconds)
            except subprocess.TimeoutExpired:
                raise SandboxUnavailable(f"the grading sandbox did not finish `python -c \"{PREFLIGHT_CODE}\"` "
                                         f"in {seconds} s")
            returncode = sandbox.process.returncode
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if returncode != 0:
        lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        said = lines[-1][:200] if lines else f"exit code {returncode}"
        if said.startswith("bwrap:"):
            raise SandboxUnavailable(f"bubblewrap does not start a sandbox here ({said}): it needs unprivileged "
                                     f"user namespaces or root; {INSTALL_HINT}")
        raise SandboxUnavailable(f"{sys.executable} with `{PREFLIGHT_CODE}` fails inside the grading sandbox "
                                 f"({said}): run `make setup` for a working venv")
    return notes
