"""``exec``: a new process in a running container.

``jc-exec`` (``exec.c``, a small C program like ``crun exec``) joins the
container's cgroup and namespaces and forks the process, which takes the
container's user, capabilities, no_new_privs and seccomp filter. Everything
it is told is decided here: the user comes from the container's own
``/etc/passwd`` and ``/etc/group``, read through ``/proc/PID/root`` with
symlinks resolved inside that root. The helper's stdio is the process's
stdio, and its exit status is the process's.
"""

from __future__ import annotations

import os
import subprocess

from ..errors import Conflict, ContainerStartError, RuntimeFailure, UserError

TYPE_CHECKING = False  # the health hook imports this module: runtime's imports would cost it
if TYPE_CHECKING:
    from .runtime import Runtime

NAMESPACE_ORDER = ("ipc", "uts", "net", "pid", "cgroup", "mnt")


class NotRunning(Exception):
    """The container's process is gone."""


def helper_argv(spec: dict, binary: str | None = None) -> tuple[list[str], int]:
    """The ``jc-exec`` command line that carries out ``spec`` (the keys
    ``start_exec`` and the health check fill in), and the descriptor that
    holds the process's environment, which the caller passes to the helper
    and then closes. (The environment may hold secrets: it never appears on
    a command line, which every host user can read in ``ps``.) Raises
    ``users.UserNotFound`` for a user or group the image does not know and
    ``NotRunning`` when the container's process is gone."""
    from . import cgroups, users

    pid = spec["pid"]
    if not os.path.exists(f"/proc/{pid}/root"):
        raise NotRunning()  # (jc-exec checks that it is the container's process)
    user = users.resolve(spec.get("user") or "", additional_groups=tuple(spec.get("group_add", ())),
                         root=f"/proc/{pid}/root")
    if binary is None:
        from .monitor import program_binary

        binary = str(program_binary("jc-exec"))
    argv = [binary, "--pid", str(pid),
            "--start-ticks", str(spec.get("pid_start_ticks") or 0), "--sync-fd", str(spec["sync_fd"]),
            "--uid", str(user.uid), "--gid", str(user.gid), "--groups", ",".join(map(str, user.groups)),
            "--caps", format(sum(1 << cap for cap in set(spec["caps"])), "x"), "--cwd", spec.get("cwd") or "/"]
    for name in NAMESPACE_ORDER:
        if not (name == "net" and spec.get("host_network")):
            argv += ["--ns", name]
    if spec.get("cgroup"):
        for directory in cgroups.Cgroup.open(spec["id"], parent=spec["cgroup_parent"]).dirs:
            argv += ["--cgroup", directory]
    if spec.get("no_new_privs", True):
        argv.append("--no-new-privs")
    if spec.get("seccomp"):
        argv += ["--seccomp", spec["seccomp"]]
    if spec.get("tty"):
        argv.append("--tty")
    if spec.get("detach"):
        argv.append("--detach")
    # "NAME" alone is "NAME=" (as execve made it of the old dict); a NUL
    # cannot be in an environment.
    env = [item if "=" in item else f"{item}=" for item in spec["env"]]
    for item in env:
        if "\0" in item:
            raise UserError(f"environment variable {item.partition('=')[0]!r} holds a NUL character")
    env = users.env_with_home(env, user)
    env_fd = os.memfd_create("jc-exec-env", os.MFD_CLOEXEC)
    try:
        os.write(env_fd, b"".join(os.fsencode(item) + b"\0" for item in env))
        os.lseek(env_fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(env_fd)
        raise
    argv += ["--env-fd", str(env_fd)]
    return argv + ["--", *spec["args"]], env_fd


def spawn_helper(spec: dict, *, binary: str | None = None, deadline: float | None = None,
                 **popen_options) -> tuple[subprocess.Popen, str]:
    """Start ``jc-exec`` for ``spec`` (see :func:`helper_argv`, which also
    says what it raises) and read its report: ``pid N`` once the process
    runs, ``error CODE MESSAGE`` when it could not be run, or what came by
    ``deadline`` (a ``time.monotonic()`` value). Returns the helper's Popen
    and that line."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    env_fd = None
    try:
        argv, env_fd = helper_argv(dict(spec, sync_fd=write_end), binary)
        try:
            popen = subprocess.Popen(argv, pass_fds=(write_end, env_fd), **popen_options)
        finally:
            os.close(write_end)
            write_end = None
        return popen, _read_line(read_end, deadline)
    finally:
        for fd in (read_end, write_end, env_fd):
            if fd is not None:
                os.close(fd)


class ExecProcess:
    """A started exec. ``pid`` is the process's host PID. The process leads
    a session and a process group of its own; :meth:`signal` signals that
    group (the process and, say, the command its shell runs, as a
    terminal's Ctrl-C does) once a pidfd taken at the start says the
    process has not been reaped, so a signal never reaches another process
    that got the pid later."""

    def __init__(self, popen: subprocess.Popen, pid: int, container_id: str):
        self.popen = popen
        self.pid = pid
        self.container_id = container_id
        self.stdin = popen.stdin
        self.stdout = popen.stdout
        self.stderr = popen.stderr
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:  # already gone (a quick process), or no pidfds
            self._pidfd = None

    def wait(self, timeout: float | None = None) -> int:
        code = self.popen.wait(timeout)
        self._close_pidfd()
        return code

    def signal(self, number: int) -> None:
        if self._pidfd is None:
            return
        import signal

        try:
            signal.pidfd_send_signal(self._pidfd, 0)  # not reaped: its pid is still its group's id
            os.killpg(self.pid, number)
        except ProcessLookupError:
            pass

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __del__(self):
        self._close_pidfd()

    @property
    def returncode(self):
        return self.popen.returncode


def start_exec(runtime: Runtime, name_or_id: str, cmd, *, user: str | None = None,
               workdir: str | None = None, environment=None, tty: bool = False,
               privileged: bool = False, detach: bool = False,
               stdin=subprocess.DEVNULL, stdout=None, stderr=None) -> ExecProcess:
    from . import spec as specs

    container_id = runtime.store.resolve(name_or_id)
    record = runtime.store.read_config(container_id)
    state = runtime.store.load_state(container_id)
    if state["Status"] != "running":
        hint = "unpause it first" if state["Status"] == "paused" else "start it first"
        raise Conflict(f"container {record['Name'].lstrip('/')} is not running", hint=hint)
    args = specs.as_list(cmd, "command")
    if not args:
        raise specs.UserError("no command given to exec")
    config = record["Config"]
    cap_set, seccomp_path, no_new_privs = runtime.security(record, privileged=privileged)

    spec = {
        "id": container_id,
        "pid": state["Pid"],
        "pid_start_ticks": state.get("PidStartTicks"),
        "args": args,
        "env": specs.merge_env(config["Env"], specs.env_list(environment)),
        "user": user if user is not None else (config.get("User") or ""),
        "group_add": list(record["HostConfig"].get("GroupAdd") or []),
        "cwd": workdir or config.get("WorkingDir") or "/",
        "tty": tty,
        "caps": sorted(cap_set),
        "no_new_privs": no_new_privs,
        "seccomp": seccomp_path,
        "cgroup": True,
        "cgroup_parent": runtime.cgroup_parent,
        "host_network": record["HostConfig"].get("NetworkMode") == "host",
        "detach": detach,
    }
    from .users import UserNotFound

    if detach:
        stdin = stdout = stderr = subprocess.DEVNULL
    try:
        popen, line = spawn_helper(spec, stdin=stdin, stdout=stdout, stderr=stderr, close_fds=True)
    except UserNotFound as error:
        raise ContainerStartError(f"exec failed: {error}", exit_code=126) from None
    except NotRunning:
        raise Conflict(f"container {record['Name'].lstrip('/')} is not running", hint="start it first") from None
    if line.startswith("pid "):
        pid = int(line.split()[1])
        process = ExecProcess(popen, pid, container_id)
        if detach:
            popen.wait()
        return process
    popen.wait()
    if line.startswith("error "):
        _, code, message = (line.split(" ", 2) + ["", ""])[:3]
        raise ContainerStartError(f"exec failed: {message}", exit_code=int(code) if code.isdigit() else 126)
    raise RuntimeFailure(f"exec failed: the exec helper ended with status {popen.returncode} without starting the process")


def _read_line(fd: int, deadline: float | None = None) -> str:
    """One line from ``fd``, or what came of it by ``deadline``."""
    import select
    import time

    data = b""
    while not data.endswith(b"\n"):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()
