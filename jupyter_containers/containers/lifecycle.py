"""The container's start and exit hooks, run by its monitor (jc-monitor).

    python -I -S …/containers/lifecycle.py STATE_DIR start
    python -I -S …/containers/lifecycle.py STATE_DIR exited

``start`` runs in a fresh, single-threaded interpreter (never a fork of a
Jupyter process): it reads ``spec.marshal`` (written by the runtime), puts
itself into the container's cgroup, unshares the namespaces and forks the
container's first process, which assembles the root filesystem, drops
privileges and execs the entrypoint. It reports ``pid N`` or
``error CODE MESSAGE`` on fd 3 and exits; the container's process is then
re-parented to the monitor. Only the standard library and
``jupyter_containers.linux`` are imported on this path.

``exited`` runs after the container's process ended: it records the exit in
``state.json``, releases what the container held and decides whether the
restart policy restarts it (exit status 75 tells the monitor to start again).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # Run as a script: make the package importable, and make sure this
    # directory does not shadow standard modules.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import marshal  # noqa: E402
import time  # noqa: E402

RESTART = 75
SYNC_FD = 3
SPEC_FILE = "spec.marshal"


class StartFailed(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def hook_script() -> list[str]:
    """How to run this file as a hook: a fresh, isolated interpreter."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__)]


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds, UTC, as docker writes it."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as handle:
        return handle.read().strip()


def process_start_ticks(pid: int) -> int:
    """Field 22 of /proc/PID/stat: tells a pid from a later reuse of it."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    return int(data[data.rindex(b")") + 2:].split()[19])


# --- start ----------------------------------------------------------------

def start(state_dir: str) -> int:
    with open(os.path.join(state_dir, SPEC_FILE), "rb") as handle:
        spec = marshal.load(handle)
    try:
        pid = launch(spec)
    except StartFailed as failure:
        _report(f"error {failure.code} {failure.message}")
        return 1
    except Exception as error:  # noqa: BLE001 - anything else is a runtime bug, reported
        _report(f"error 125 {type(error).__name__}: {error}")
        return 1
    _write_running_state(state_dir, spec, pid)
    _report(f"pid {pid}")
    return 0


def _report(line: str) -> None:
    data = (" ".join(line.split("\n")) + "\n").encode()
    try:
        os.write(SYNC_FD, data)
    except OSError:
        pass  # not started by a monitor (tests driving the hook directly)


def _write_running_state(state_dir: str, spec: dict, pid: int) -> None:
    from .jsonlite import dumps

    state = dict(spec.get("state") or {})
    state.update(
        Status="running",
        Running=True,
        Paused=False,
        Restarting=False,
        Pid=pid,
        PidStartTicks=process_start_ticks(pid),
        ExitCode=0,
        Error="",
        StartedAt=timestamp(),
        FinishedAt="0001-01-01T00:00:00Z",
        OOMKilled=False,
        BootId=boot_id(),
        MonitorPid=os.getppid(),
    )
    # Atomic, not durable: no fsync on the start path. A process killed at
    # any point leaves the old or the new file; after a power cut the
    # record's BootId marks the container exited anyway.
    path = os.path.join(state_dir, "state.json")
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as handle:
        handle.write(dumps(state) + "\n")
    os.rename(tmp, path)


def launch(spec: dict) -> int:
    """Create the namespaces and the container's first process; return its
    pid (as the host sees it) once it has exec'd the entrypoint."""
    from ..linux import syscalls as sc

    joining = None
    if spec.get("cgroup") is not None:
        joining = _join_cgroup_in_background(spec)

    # Meanwhile (joining a v1 cgroup waits for an RCU grace period, 7-15 ms):
    # import what the container's first process needs, read its seccomp
    # filter from the host. Only the PID namespace is entered here (it
    # applies to children); the others are created by the child itself:
    # pivot_root moves the root of every process in a mount namespace, and
    # this process must keep the host's view to report back.
    from ..linux import caps, mounts, seccomp  # noqa: F401 - for the child
    from . import users  # noqa: F401
    seccomp_filter = None
    if spec.get("seccomp"):
        with open(spec["seccomp"], "rb") as handle:
            seccomp_filter = handle.read()
    try:
        sc.unshare(sc.CLONE_NEWPID)
    except OSError as error:
        raise StartFailed(125, f"cannot create the container's PID namespace: {error}") from None
    if joining is not None:
        joining.acquire()  # released by the joining thread when it is done
        import _thread

        while _thread._count():  # and gone: fork only a single-threaded process
            time.sleep(0.0001)
        if _join_error:
            raise _join_error[0]

    return fork_exec(lambda: init_container(spec, seccomp_filter))


_join_error: list = []


def _join_cgroup_in_background(spec: dict):
    """Create the container's cgroup and move this process into it, in a
    thread; returns a lock released when that is done (errors are left in
    ``_join_error`` as StartFailed)."""
    import _thread

    from ..errors import ContainersError
    from . import cgroups

    done = _thread.allocate_lock()
    done.acquire()

    def join():
        try:
            cgroup = cgroups.create(spec["id"], spec["cgroup"], parent=spec["cgroup_parent"])
            cgroup.join(os.getpid())
        except ContainersError as error:
            _join_error.append(StartFailed(125, str(error)))
        except OSError as error:
            _join_error.append(StartFailed(125, f"cannot set up the container's cgroup: {error}"))
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            _join_error.append(StartFailed(125, f"{type(error).__name__}: {error}"))
        finally:
            done.release()

    _thread.start_new_thread(join, ())
    return done


def fork_exec(child) -> int:
    """Fork; the child runs ``child()``, which must end in an exec. Its
    failure comes back through a close-on-exec pipe as ``CODE MESSAGE``
    (125 for an unexpected error) and is raised here as StartFailed; a
    successful exec closes the pipe with nothing written. Returns the
    child's pid."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            child()
        except StartFailed as failure:
            os.write(write_end, f"{failure.code} {failure.message}".encode())
        except BaseException as error:  # noqa: BLE001 - reported, never raised in the child
            os.write(write_end, f"125 {type(error).__name__}: {error}".encode())
        finally:
            os._exit(127)
    os.close(write_end)
    message = b""
    while chunk := os.read(read_end, 4096):
        message += chunk
    os.close(read_end)
    if message:
        os.waitpid(pid, 0)
        code, _, text = message.decode("utf-8", "replace").partition(" ")
        raise StartFailed(int(code) if code.isdigit() else 125, text)
    return pid


def init_container(spec: dict, seccomp_filter: bytes | None) -> None:
    """In the container's first process: build the root, drop privileges,
    exec. Returns only by raising."""
    # Everything this process will need is imported now: after pivot_root
    # the package's files are out of reach.
    from ..linux import caps, mounts, seccomp  # noqa: F401 - caps and seccomp: for drop_privileges
    from ..linux import syscalls as sc
    from . import users

    # No process in the container may ptrace or read /proc/1/exe of this
    # host binary before it becomes the entrypoint (CVE-2019-5736 class).
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    os.setsid()
    if spec.get("tty"):
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    enter_namespaces(spec, sc, with_cgroup=spec.get("cgroup") is not None)

    rootfs = spec["rootfs"]
    try:
        mounts.make_rslave()
        mounts.mount_overlay(rootfs, spec["lowers"], spec["upper"], spec["work"],
                             base_dir=spec["snapshots_dir"])
        mounts.mount_at(rootfs, "/proc", "proc", "proc", mounts.NOSUID_NODEV_NOEXEC)
        mounts.setup_dev(rootfs, console=os.ttyname(0) if spec.get("tty") else None,
                         shm_size=spec.get("shm_size", 64 << 20))
        mounts.setup_sys(rootfs, readonly=not spec.get("privileged"),
                         cgroup_mounts=tuple(tuple(m) for m in spec.get("cgroup_mounts", ())))
        for mount in spec["mounts"]:
            _mount_one(rootfs, mount)
        mounts.pivot(rootfs)
        if not spec.get("privileged"):
            mounts.mask_paths()
            mounts.readonly_paths()
        if spec.get("readonly_rootfs"):
            mounts.remount_root_readonly()
    except OSError as error:
        raise StartFailed(125, f"cannot set up the container's filesystem: {error}") from None

    if spec.get("hostname"):
        sc.sethostname(spec["hostname"])

    # The user, from the image's own files (we are inside its root now).
    try:
        user = users.resolve(spec.get("user") or "", additional_groups=tuple(spec.get("group_add", ())))
    except users.UserNotFound as error:
        raise StartFailed(125, str(error)) from None
    env = users.env_with_home(spec["env"], user)

    cwd = spec.get("cwd") or "/"
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
    except OSError as error:
        raise StartFailed(125, f"cannot create the working directory {cwd}: {error}") from None

    drop_privileges(spec, user, seccomp_filter)
    try:
        os.chdir(cwd)
    except OSError as error:
        raise StartFailed(126, f"cannot enter the working directory {cwd}: {error.strerror}") from None

    # Nothing of the runtime's may reach the container (CVE-2024-21626
    # class): every inherited descriptor but stdio closes on exec.
    sc.close_range(3, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)
    exec_command(spec["args"], env)


def enter_namespaces(spec: dict, sc, *, with_cgroup: bool) -> None:
    flags = sc.CLONE_NEWNS | sc.CLONE_NEWUTS | sc.CLONE_NEWIPC
    if with_cgroup:
        flags |= sc.CLONE_NEWCGROUP
    net = spec["namespaces"].get("net")
    if net == "none":
        flags |= sc.CLONE_NEWNET
    netns_fd = None
    try:
        if net not in (None, "none", "host"):
            netns_fd = os.open(net, os.O_RDONLY | os.O_CLOEXEC)
        sc.unshare(flags)
        if netns_fd is not None:
            sc.setns(netns_fd, sc.CLONE_NEWNET)
    except OSError as error:
        raise StartFailed(125, f"cannot create the container's namespaces: {error}") from None
    finally:
        if netns_fd is not None:
            os.close(netns_fd)


def _mount_one(rootfs: str, mount: dict) -> None:
    from ..linux import mounts

    kind = mount["type"]
    marker = mount.get("copy_up_marker")
    if marker and not os.path.exists(marker):
        _copy_up(rootfs, mount["destination"], mount["source"])
        with open(marker, "w"):
            pass
    if kind == "bind":
        mounts.bind_at(rootfs, mount["source"], mount["destination"],
                       readonly=mount.get("readonly", False))
    elif kind == "tmpfs":
        mounts.mount_at(rootfs, mount["destination"], "tmpfs", "tmpfs",
                        mount.get("flags", mounts.NOSUID_NODEV_NOEXEC), mount.get("data") or None)
    else:
        raise StartFailed(125, f"unknown mount type {kind!r}")


def drop_privileges(spec: dict, user, seccomp_filter: bytes | None) -> None:
    """Become the container's user with its capabilities, set no_new_privs
    and install the seccomp filter — the last steps before exec. Without
    no_new_privs the filter goes in first, while CAP_SYS_ADMIN still allows
    it (Docker's profile permits every call the user switch makes)."""
    from ..linux import caps, seccomp
    from ..linux import syscalls as sc

    no_new_privs = spec.get("no_new_privs", True)
    if seccomp_filter is not None and not no_new_privs:
        seccomp.load(seccomp_filter)
    caps.apply(spec["caps"], user.uid, user.gid, user.groups)
    if no_new_privs:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if seccomp_filter is not None:
            seccomp.load(seccomp_filter)


def exec_command(args: list, env: list) -> None:
    """execve with a $PATH search of our own: os.execvpe imports modules
    lazily, and after pivot_root the package and the stdlib are gone.

    Python ignores SIGPIPE and SIGXFSZ, and ignored signals stay ignored
    across exec: give the container the defaults (as subprocess's
    restore_signals does), or `yes | head` never ends."""
    import _signal

    for number in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(_signal, number):
            _signal.signal(getattr(_signal, number), _signal.SIG_DFL)
    environ = {}
    for item in env:
        key, _, value = item.partition("=")
        environ[key] = value
    program = args[0]
    if "/" in program:
        candidates = [program]
    else:
        search = environ.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        candidates = [os.path.join(d or ".", program) for d in search.split(":")]
    denied = None
    for candidate in candidates:
        try:
            os.execve(candidate, args, environ)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError as error:
            denied = error
            continue
        except OSError as error:
            raise StartFailed(126, f'exec: "{program}": {error.strerror}') from None
    if denied is not None:
        raise StartFailed(126, f'exec: "{program}": permission denied')
    where = "" if "/" in program else " in $PATH"
    raise StartFailed(127, f'exec: "{program}": executable file not found{where}')


def _copy_up(rootfs: str, destination: str, volume_dir: str) -> None:
    """Fill a new, empty volume with what the image has at its mount point,
    owners and modes included (docker's behaviour). Symlinks are copied as
    links, never followed."""
    from ..linux import mounts, paths

    if os.listdir(volume_dir):
        return
    try:
        fd = paths.open_in_root(rootfs, destination, mounts.O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        source = mounts.fd_path(fd)
        if not os.path.isdir(source):
            return
        _copy_tree(source, volume_dir)
        info = os.stat(source)
        os.chown(volume_dir, info.st_uid, info.st_gid)
        os.chmod(volume_dir, info.st_mode & 0o7777)
    finally:
        os.close(fd)


def _copy_tree(source: str, target: str) -> None:
    import shutil
    import stat

    with os.scandir(source) as entries:
        for entry in entries:
            src, dst = entry.path, os.path.join(target, entry.name)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                os.mkdir(dst)
                _copy_tree(src, dst)
            elif stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(info.st_mode):
                shutil.copyfile(src, dst, follow_symlinks=False)
            else:
                os.mknod(dst, info.st_mode, info.st_rdev)
            os.chown(dst, info.st_uid, info.st_gid, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode):
                os.chmod(dst, stat.S_IMODE(info.st_mode))
            os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns), follow_symlinks=False)


# --- exited ----------------------------------------------------------------

def _load_spec(state_dir: str) -> dict:
    """The container's spec.marshal, with the runtime's ``sys.path`` ahead
    (for the hooks that import beyond the standard library)."""
    with open(os.path.join(state_dir, SPEC_FILE), "rb") as handle:
        spec = marshal.load(handle)
    sys.path[:0] = [p for p in spec.get("sys_path", ()) if p not in sys.path]
    return spec


def exited(state_dir: str) -> int:
    """Record the exit, release resources, apply the restart policy."""
    from .exits import handle_exit

    return handle_exit(state_dir, _load_spec(state_dir))


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[2] not in ("start", "exited", "health", "archive"):
        sys.stderr.write("usage: lifecycle.py STATE_DIR start|exited|health|archive HEXSPEC\n")
        return 2
    state_dir, action = argv[1], argv[2]
    if action == "start":
        return start(state_dir)
    if action == "archive":
        from .archive import run_helper

        return run_helper(marshal.loads(bytes.fromhex(argv[3])))
    if action == "health":
        from .health import run_check

        return run_check(state_dir, _load_spec(state_dir))
    return exited(state_dir)


if __name__ == "__main__":
    # Re-enter as a module of the package, so relative imports work.
    from jupyter_containers.containers.lifecycle import main as package_main

    code = package_main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # nothing to tear down: skip the interpreter's finalisation
