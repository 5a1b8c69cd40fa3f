"""The bubblewrap kernel manager: a grading kernel's command line, uid, cgroups and limits.

:mod:`course_utils.instructor.grading.sandbox` describes what the sandbox keeps a kernel from; this
module builds it. :class:`SandboxedKernelManager` starts the IPython kernel inside
bubblewrap (read-only system, private scratch, no network, its own pid namespace) under
the :class:`Limits` (``prlimit``, and a memory and pids cgroup where one can be made),
as an unprivileged uid of its own when the grader is root.

Examples
--------
>>> Limits().memory_bytes // GiB, Limits().processes
(6, 256)
>>> sandbox_problem(path="/nowhere").startswith("bubblewrap (bwrap) is not installed")
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import HBChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, CaselessStrEnum, Instance, Int, List, Type, Unicode, default

MiB: Final = 2**20
GiB: Final = 2**30
#: The kernel's home, working directory and scratch, inside the sandbox.
SANDBOX_HOME: Final = "/home/student"
#: Where the kernel finds its connection file and sockets, inside the sandbox.
SANDBOX_RUNTIME: Final = "/run/kernel"
#: Size of ``/dev/shm`` inside the sandbox (POSIX semaphores of ``multiprocessing``).
SHM_BYTES: Final = 64 * MiB
#: Address space a process may reserve beyond ``memory_bytes``: TensorFlow and glibc
#: reserve large ranges (thread stacks, malloc arenas) they never fill.
ADDRESS_SPACE_SLACK: Final = 8 * GiB
#: The uids a kernel runs as when the grader is root: the first one no other kernel holds.
UID_RANGE: Final = range(60000, 61000)
#: Environment variables the kernel gets from the grader (shell patterns); nothing else.
ENV_KEEP: Final = ("COURSE_*", "NBGRADER_*", "TF_*", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES",
                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "PYTHONHASHSEED", "LANG", "LC_*", "TZ")
#: Where the uid locks live (one file per uid in use).
_UID_LOCKS: Final = Path(tempfile.gettempdir()) / "course-sandbox-uids"
_INSTALL_HINT: Final = ("apt-get install bubblewrap (Debian, Ubuntu) "
                        "or dnf install bubblewrap (Fedora)")


class SandboxError(RuntimeError):
    """The grading sandbox cannot run here, or a kernel cannot be put in it."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one grading kernel may use.

    The defaults fit a 2-core, 24 GiB machine grading two notebooks at once: two kernels
    at their limits (memory plus scratch, 6.5 GiB each) leave room for the graders.

    Parameters
    ----------
    memory_bytes: heap and private mappings of each process (``RLIMIT_DATA``; its
        address space may be ``ADDRESS_SPACE_SLACK`` larger); the memory cgroup, where
        there is one, caps the kernel's processes together at this plus the scratch.
        A larger allocation raises ``MemoryError``. A smoke-profile lesson's kernel peaks
        at about 1 GiB (heap and mappings) and 0.9 GiB resident.
    processes: processes and threads of the kernel's uid together (``RLIMIT_NPROC``;
        the pids cgroup). A lesson's kernel peaks at about 40 threads on 2 cores;
        TensorFlow's thread pools grow by about 3 per core, so 256 holds to ~64 cores.
    cpu_seconds: CPU time of each process; past it the kernel is killed. A lesson's
        kernel uses under 30 s.
    disk_bytes: size of the private scratch (home, working and temporary folder),
        also the largest file; it lives in memory (``tmpfs``).
    output_bytes: bytes of output a notebook keeps (:class:`LimitOutputBytes`).

    Examples
    --------
    >>> Limits(processes=64).processes
    64
    >>> Limits(memory_bytes=0)
    Traceback (most recent call last):
    ValueError: Limits.memory_bytes: expected a positive whole number, got 0
    """

    memory_bytes: int = 6 * GiB
    processes: int = 256
    cpu_seconds: int = 1800
    disk_bytes: int = 512 * MiB
    output_bytes: int = 8 * MiB

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"Limits.{field.name}: expected a positive whole number, got {value!r}")


def sandbox_problem(*, path: str | None = None) -> str | None:
    """Why kernels cannot be sandboxed on this machine, or ``None`` when they can.

    ``path`` is the search path for the programs (default: ``PATH``). The check starts
    bubblewrap once with the namespaces a kernel gets (a few milliseconds).

    Examples
    --------
    >>> sandbox_problem(path="/nowhere").startswith("bubblewrap (bwrap) is not installed")
    True
    """
    if not sys.platform.startswith("linux"):
        return (f"the grading sandbox needs Linux namespaces (bubblewrap); this machine "
                f"runs {sys.platform}")
    bwrap = shutil.which("bwrap", path=path)
    if bwrap is None:
        return f"bubblewrap (bwrap) is not installed: {_INSTALL_HINT}"
    needed = ("prlimit", "setpriv") if os.geteuid() == 0 else ("prlimit",)
    for tool in needed:
        if shutil.which(tool, path=path) is None:
            return f"{tool} is not installed: apt-get install util-linux"
    try:
        trial = subprocess.run(
            [bwrap, *_namespace_args(as_root=os.geteuid() == 0), "--ro-bind", "/", "/",
             "--", "true"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap ({bwrap}) could not be started: {exc}"
    if trial.returncode != 0:
        detail = trial.stderr.strip() or f"exit status {trial.returncode}"
        return (f"bubblewrap ({bwrap}) cannot create the sandbox's namespaces here: {detail}"
                " (user namespaces disabled? see sysctl kernel.unprivileged_userns_clone "
                "and user.max_user_namespaces, or AppArmor's restrict_unprivileged_userns)")
    return None


def check_sandbox(*, path: str | None = None) -> None:
    """Raise :class:`SandboxError` saying why kernels cannot be sandboxed here, if so.

    Examples
    --------
    >>> check_sandbox(path="/nowhere")
    Traceback (most recent call last):
    course_utils.instructor.grading.bubblewrap.SandboxError: students' notebooks cannot be run in a sandbox on this machine: bubblewrap (bwrap) is not installed: ...
    """
    problem = sandbox_problem(path=path)
    if problem is not None:
        raise SandboxError(
            f"students' notebooks cannot be run in a sandbox on this machine: {problem}. "
            "Grading without the sandbox lets a notebook read the masters, the gradebook "
            "and other submissions: only for notebooks you trust, pass --unsandboxed to "
            "course grade (sandbox=False to grade_submissions)")


def _namespace_args(*, as_root: bool) -> list[str]:
    """bubblewrap's isolation flags; as root the kernel drops to a uid with ``setpriv``."""
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]
    if as_root:
        # setpriv inside needs these three to switch uid and empty the bounding set.
        return [*args, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add",
                "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    return [*args, "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]


class PromptHeartbeat(HBChannel):
    """jupyter_client's heartbeat channel, except that a socket it replaces is closed at once.

    The channel pings the kernel every second and, when no answer came, replaces its
    socket, closing the old one with a linger of one second. A sandboxed kernel often
    takes longer than that to answer its first ping (bubblewrap and Python are still
    starting), and the unanswered ping then held the client's end, and with it the
    grading of every such submission, for a second. A ping nobody answered needs no
    delivery.
    """

    def _create_socket(self) -> None:
        if self.socket is not None:
            self.poller.unregister(self.socket)
            self.socket.close(linger=0)
            self.socket = None
        super()._create_socket()


class SandboxedKernelClient(AsyncKernelClient):
    """The client of a :class:`SandboxedKernelManager`'s kernel: :class:`PromptHeartbeat`."""

    hb_channel_class = Type(PromptHeartbeat)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel inside bubblewrap.

    nbclient creates it as ``kernel_manager_class(kernel_name=..., config=...)``, so every
    setting is a configurable trait (``c.SandboxedKernelManager.limits = Limits(...)``).
    The kernel's requested working directory (nbgrader passes the notebook's folder) is
    ignored: it starts in :data:`SANDBOX_HOME`, its private scratch, with none of the
    course's files. Starting raises :class:`SandboxError` when the sandbox cannot run.

    Examples
    --------
    >>> km = SandboxedKernelManager(kernel_name="python3")
    >>> km.transport, km.kernel_spec.interrupt_mode, km.limits == Limits()
    ('ipc', 'message', True)
    >>> km.client().hb_channel_class.__name__
    'PromptHeartbeat'
    """

    client_factory = Type(SandboxedKernelClient, klass=AsyncKernelClient).tag(config=True)

    limits = Instance(Limits, args=(), help="what the kernel may use").tag(config=True)
    runtime_root = Unicode(
        "", help="host folder for each kernel's connection file and sockets "
                 "(default: the system's temporary folder)").tag(config=True)
    sandbox_uid = Int(
        -1, help="uid the kernel runs as when the grader is root (-1: the first uid from "
                 "60000 no other kernel holds); one kernel at a time may hold a uid; "
                 "ignored when not root").tag(config=True)
    read_only_paths = List(
        Unicode(), help="more host paths the kernel may read (bound read-only at the same "
                        "place)").tag(config=True)
    env_keep = List(Unicode(), default_value=list(ENV_KEEP),
                    help="environment variables passed to the kernel (shell patterns)").tag(
                        config=True)
    use_cgroups = Bool(
        True, help="also cap memory and tasks with a cgroup where one can be made").tag(
            config=True)
    kernel_log_bytes = Int(
        64 * 1024, help="bytes of the kernel process's own stdout/stderr passed on to the "
                        "grader's stderr; the rest is dropped").tag(config=True)
    transport = CaselessStrEnum(["ipc"], default_value="ipc", help="always ipc: no network")

    @default("cache_ports")
    def _cache_ports_default(self) -> bool:
        return False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime_dir: Path | None = None
        self.uid: int | None = None
        self.cgroups: list[Path] = []
        self._uid_lock: IO[bytes] | None = None

    @property
    def kernel_spec(self) -> Any:
        """The kernelspec, interrupted by message: a signal would stop at bubblewrap."""
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        check_sandbox()
        try:
            return await self._pre_start_in_sandbox(**kw)
        except BaseException:
            self._release()
            raise

    async def _pre_start_in_sandbox(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        self._prepare()
        assert self.runtime_dir is not None
        kw.pop("cwd", None)  # the notebook's folder: the kernel starts in its scratch instead
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        # The kernel's own copy of the connection file names the sockets where it sees them.
        inside = Path(SANDBOX_RUNTIME) / "connection.json"
        info = json.loads(Path(self.connection_file).read_text())
        info["ip"] = f"{SANDBOX_RUNTIME}/kernel"
        _write_private(self.runtime_dir / "connection.json", json.dumps(info), self.uid)
        host_file = os.path.realpath(self.connection_file)
        cmd = [arg.replace(host_file, str(inside)) for arg in cmd]
        kw.update(env=self._kernel_env(kw.get("env") or os.environ), cwd=str(self.runtime_dir),
                  independent=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return self._wrap(cmd), kw

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.stdout is not None:
            _pass_on(os.dup(process.stdout.fileno()), self.kernel_log_bytes)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self._release()

    def _prepare(self) -> None:
        """The kernel's host folder (sockets, connection file), uid and cgroups."""
        if self.runtime_dir is not None:  # a restart: keep them
            return
        as_root = os.geteuid() == 0
        if as_root:
            self.uid = self._claim_uid([self.sandbox_uid] if self.sandbox_uid >= 0 else UID_RANGE)
        else:
            self.uid = os.getuid()
        root = self.runtime_root or None
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="course-sandbox-", dir=root))
        if as_root:
            os.chown(self.runtime_dir, self.uid, self.uid)
        self.transport = "ipc"
        self.ip = str(self.runtime_dir / "kernel")
        self.connection_file = str(self.runtime_dir / "host.json")
        if self.use_cgroups:
            self.cgroups = _make_cgroups(f"course-sandbox-{uuid.uuid4().hex[:12]}",
                                         self.limits)

    def _claim_uid(self, candidates: Iterable[int]) -> int:
        """The first of ``candidates`` no other kernel holds (a lock file each, held by us).

        Each running kernel needs a uid of its own: the process limit counts per uid.
        """
        _UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        candidates = list(candidates)
        for uid in candidates:
            lock = open(_UID_LOCKS / f"{uid}.lock", "wb")  # noqa: SIM115 (held until release)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._uid_lock = lock
            return uid
        raise SandboxError(f"sandbox uids {candidates[0]} to {candidates[-1]}: expected one that "
                           "no running kernel holds, got none")

    def _release(self) -> None:
        """Remove the host folder and cgroups, free the uid."""
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = None
        _remove_cgroups(self.cgroups)
        self.cgroups = []
        if self._uid_lock is not None:
            self._uid_lock.close()
            self._uid_lock = None

    def _kernel_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """The grader's variables named in ``env_keep``, and the sandbox's own."""
        kept = {k: v for k, v in env.items()
                if any(fnmatch.fnmatchcase(k, pattern) for pattern in self.env_keep)}
        home = SANDBOX_HOME
        # JPY_PARENT_PID=1: the kernel's parent is pid 1 of its namespace, which never
        # goes away (ipykernel then neither watches it nor prints its console banner).
        return {**kept, "HOME": home, "TMPDIR": f"{home}/tmp", "USER": "student",
                "JPY_PARENT_PID": "1", "MALLOC_ARENA_MAX": "4",
                "MPLCONFIGDIR": f"{home}/.config/matplotlib", "PYTHONNOUSERSITE": "1",
                "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                         "/usr/local/bin", "/usr/bin", "/bin"])}

    def _wrap(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` inside bubblewrap, with the limits, as the sandbox uid."""
        assert self.runtime_dir is not None and self.uid is not None
        return _sandbox_command(cmd, runtime_dir=self.runtime_dir, limits=self.limits,
                                uid=self.uid if os.geteuid() == 0 else None,
                                read_only=self.read_only_paths, cgroups=self.cgroups)


def _write_private(path: Path, text: str, uid: int | None) -> None:
    """Write ``text`` to ``path`` readable by ``uid`` alone."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, uid)


def _pass_on(fd: int, budget: int) -> None:
    """Copy what the kernel process writes to ``fd`` onto our stderr, ``budget`` bytes at most.

    Read in a thread until every process of the sandbox has closed it; what is past the
    budget is read and dropped, so a kernel writing to its file descriptors directly
    neither blocks nor fills the grader's log.
    """
    def copy() -> None:
        left = budget
        with contextlib.suppress(OSError):
            while chunk := os.read(fd, 65536):
                if left > 0:
                    os.write(2, chunk[:left])
                    left -= len(chunk)
                    if left <= 0:
                        os.write(2, f"\n[kernel output past {budget} bytes dropped]\n".encode())
        os.close(fd)

    threading.Thread(target=copy, name="sandbox-kernel-log", daemon=True).start()


def _sandbox_command(cmd: Sequence[str], *, runtime_dir: Path, limits: Limits,
                     uid: int | None, read_only: Iterable[str] = (),
                     cgroups: Sequence[Path] = ()) -> list[str]:
    """The command that runs ``cmd`` in the sandbox; ``uid`` is None when not root."""
    bwrap, prlimit = shutil.which("bwrap"), shutil.which("prlimit")
    if bwrap is None or prlimit is None:
        raise SandboxError(f"bwrap and prlimit are needed, found {bwrap} and {prlimit}")
    binds = _read_only_binds(read_only)
    executable = Path(shutil.which(cmd[0]) or cmd[0]).absolute()
    if not any(executable.is_relative_to(b) for b in binds) and not str(executable).startswith(
            "/usr/"):
        raise SandboxError(
            f"kernel command: expected a program under what the sandbox binds "
            f"({', '.join(map(str, binds))}), got {cmd[0]}; add its folder to "
            "SandboxedKernelManager.read_only_paths")
    args = [bwrap, *_namespace_args(as_root=uid is not None), "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # /tmp is the scratch's tmp/ (one disk budget), unless the packages live under /tmp
    # (a clone there): then /tmp is a scratch of its own, made before their binds go on it.
    home = SANDBOX_HOME
    under_tmp = any(Path("/tmp") in b.parents for b in binds)
    args += ["--perms", "0755", "--dir", "/home",
             "--size", str(limits.disk_bytes), "--perms", "01777", "--tmpfs", home,
             "--perms", "01777", "--dir", f"{home}/tmp"]
    if under_tmp:
        args += ["--size", str(limits.disk_bytes), "--perms", "01777", "--tmpfs", "/tmp"]
    else:
        args += ["--symlink", f"{home}/tmp", "/tmp"]
    made = {Path("/"), Path("/usr"), Path("/etc"), Path("/home"), Path("/tmp")}
    for path in binds:
        for parent in reversed(path.parents):
            if parent not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(path), str(path)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(SHM_BYTES), "--perms", "01777", "--tmpfs", "/dev/shm",
             "--perms", "0755", "--dir", "/run",
             "--bind", str(runtime_dir), SANDBOX_RUNTIME,
             "--remount-ro", "/", "--chdir", home, "--"]
    if uid is not None:
        args += [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}",
                 "--clear-groups", "--bounding-set=-all", "--inh-caps=-all",
                 "--no-new-privs", "--"]
    address_space = limits.memory_bytes + ADDRESS_SPACE_SLACK
    args += [prlimit, f"--as={address_space}", f"--data={limits.memory_bytes}",
             f"--nproc={limits.processes}", f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 5}",
             f"--fsize={limits.disk_bytes}", "--core=0", "--", *cmd]
    if cgroups:
        # Join the cgroups first, so that bubblewrap and all it starts are in them.
        join = 'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 1; done; ' \
               'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'
        args = ["/bin/sh", "-c", join, "sh", *(str(c / "cgroup.procs") for c in cgroups),
                "--", *args]
    return args


def _read_only_binds(extra: Iterable[str]) -> list[Path]:
    """Host paths the kernel reads, outside ``/usr``: Python, the venv, ``course_utils``."""
    import course_utils

    wanted: set[Path] = set()
    for p in (sys.base_prefix, sys.prefix, Path(course_utils.__file__).parent, *extra):
        wanted |= {Path(p).absolute(), Path(p).resolve()}
    binds: list[Path] = []
    for path in sorted(wanted, key=lambda p: (len(p.parts), str(p))):
        covered = any(path.is_relative_to(b) for b in (*binds, Path("/usr"), Path("/etc")))
        if path.exists() and not covered:
            binds.append(path)
    return binds


def _make_cgroups(name: str, limits: Limits) -> list[Path]:
    """A memory and a pids cgroup ``name`` under this process's own, where it may make them.

    cgroup v1 (a hierarchy per controller) or v2 (one, where memory and pids are delegated
    to this process's cgroup). Empty when none can be made: the rlimits still hold.
    """
    memory = limits.memory_bytes + limits.disk_bytes + SHM_BYTES
    made: list[Path] = []
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return made
    for line in lines:
        _, controllers, own = line.split(":", 2)
        if controllers == "":
            base = Path("/sys/fs/cgroup") / own.lstrip("/")
            enabled = _read(base / "cgroup.subtree_control").split()
            files = {"memory.max": memory, "pids.max": limits.processes + 8}
            if not {"memory", "pids"} <= set(enabled):
                continue
        elif controllers == "memory":
            base = Path("/sys/fs/cgroup/memory") / own.lstrip("/")
            files = {"memory.limit_in_bytes": memory}
        elif controllers == "pids":
            base = Path("/sys/fs/cgroup/pids") / own.lstrip("/")
            files = {"pids.max": limits.processes + 8}
        else:
            continue
        group = base / name
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            for file, value in files.items():
                (group / file).write_text(str(value))
        except OSError:
            _remove_cgroups([group])
            continue
        made.append(group)
    return made


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _remove_cgroups(groups: Iterable[Path]) -> None:
    """Remove cgroups once their processes are gone (a few seconds at most)."""
    for group in groups:
        for _ in range(50):
            try:
                group.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
