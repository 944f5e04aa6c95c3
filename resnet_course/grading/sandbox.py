"""Runs one command in a bubblewrap sandbox with wall-clock, memory and process limits.

The sandbox sees a read-only system (/usr and its /bin, /lib... links), the Python install and the
venv read-only, fresh /proc, /dev and /tmp, and one private writable folder (`workdir`, mounted at
SANDBOX_DIR) that holds what the command needs. It does not see the repository (instructor files,
the gradebook, other submissions), /etc, /root or the network; it runs as an unprivileged uid in new
user, pid, network, ipc and uts namespaces, in its own session, and dies with its parent.

Memory and process limits come from cgroup v1 children (memory.limit_in_bytes, pids.max), which also
tell afterwards which limit was hit and let every process of the sandbox be killed. Where cgroups
cannot be created, rlimits stand in (RLIMIT_AS for memory, RLIMIT_NPROC for processes; the latter
does nothing for root), and the limit that was hit is not reported as such (the run just dies).
"""
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

SANDBOX_DIR = "/sandbox"
SANDBOX_UID = 65534  # "nobody": root-owned private files are not its own
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "resnet-grading"


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


def bwrap_command(workdir, command, env):
    """The bwrap argument list that runs `command` inside the sandbox with `workdir` as SANDBOX_DIR."""
    arguments = ["bwrap", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                 # /tmp first: a venv or checkout under /tmp (a clone there) is bound on top of it
                 "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                 *_system_mounts(), *_python_mounts(),
                 "--bind", str(workdir), SANDBOX_DIR, "--chdir", SANDBOX_DIR, "--clearenv"]
    for name, value in env.items():
        arguments += ["--setenv", name, value]
    return arguments + ["--", *command]


class Cgroups:
    """A memory and a pids cgroup (v1) for one sandbox: limits, what was hit, kill everything."""

    def __init__(self, memory_bytes, max_processes):
        name = f"{CGROUP_PARENT}/{uuid.uuid4().hex}"
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
        """SIGKILL every process in the sandbox until none is left (a fork bomb refills between passes)."""
        for _ in range(1000):
            try:
                pids = [int(line) for line in (self.pids / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

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

    `limit_hit()` names the limit the sandbox ran into ("memory", "processes") or None; leaving the
    context kills whatever is left of the sandbox and removes its cgroups.
    """

    def __init__(self, workdir, command, memory_bytes, max_processes, env=None):
        self.cgroups = Cgroups.create(memory_bytes, max_processes)
        argv = bwrap_command(workdir, command, env or {})
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
