"""Find or build ``jc-monitor`` (``monitor.c``; and the other C programs,
``jc-init`` and ``jc-exec``), start one for a container,
and tell whether one is running.

The monitor is compiled when the package is built (``hatch_build.py`` puts it
in ``jupyter_containers/_bin/``). When that binary is missing or was built
from another version of ``monitor.c`` (an editable install after an edit), it
is compiled on first use into ``<storage root>/cache/bin/``.

This module imports only the standard library at import time:
``hatch_build.py`` loads it on its own to compile the monitor, where the
package's dependencies are not installed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import select
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Sequence

if TYPE_CHECKING:
    from .attach import AttachClient

HERE = Path(__file__).resolve().parent
BIN = HERE.parent / "_bin"
#: The C programs of the package: name → (source, extra compiler flags).
#: jc-init is static: it runs inside images whose libc is not the host's.
PROGRAMS = {
    "jc-monitor": (HERE / "monitor.c", ()),
    "jc-init": (HERE / "init.c", ("-static",)),
    "jc-exec": (HERE / "exec.c", ()),
}
SOURCE = PROGRAMS["jc-monitor"][0]
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror")
NO_COMPILER_HINT = "install gcc (apt-get install gcc) or reinstall jupyter-containers from a wheel"


@functools.lru_cache(maxsize=None)
def source_digest(program: str = "jc-monitor") -> str:
    """sha256 of the compiler flags and the source: the identity of a build."""
    source, extra = PROGRAMS[program]
    digest = hashlib.sha256(" ".join(CFLAGS + extra).encode() + b"\0")
    digest.update(source.read_bytes())
    return digest.hexdigest()


def digest_file(binary: Path) -> Path:
    """Where the digest of the source a binary was built from is recorded."""
    return binary.with_name(binary.name + ".sha256")


def compile_program(program: str, output: Path, compiler: str = "cc") -> None:
    """Compiles ``program``'s source into ``output`` (atomically, beside it)
    and records its source digest. Raises FileNotFoundError without a
    compiler and CalledProcessError when compiling fails."""
    source, extra = PROGRAMS[program]
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        subprocess.run([compiler, *CFLAGS, *extra, "-o", str(temporary), str(source)],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        digest_file(temporary).write_text(source_digest(program) + "\n")
        os.rename(digest_file(temporary), digest_file(output))
        os.rename(temporary, output)
    finally:
        for leftover in (temporary, digest_file(temporary)):
            if leftover.exists():
                leftover.unlink()


def compile_monitor(output: Path, compiler: str = "cc") -> None:
    compile_program("jc-monitor", output, compiler)


def _built_from_this_source(binary: Path, program: str) -> bool:
    try:
        return binary.is_file() and digest_file(binary).read_text().strip() == source_digest(program)
    except FileNotFoundError:
        return False


def program_binary(program: str, cache_dir: os.PathLike | str | None = None) -> Path:
    """The path of ``program`` built from this package's source: the
    installed one, else one compiled on demand into ``cache_dir`` (default:
    ``<storage root>/cache``)."""
    installed = BIN / program
    if _built_from_this_source(installed, program):
        return installed
    if cache_dir is None:
        from ..storage import Layout

        cache_dir = Layout().cache
    cached = Path(cache_dir) / "bin" / f"{program}-{source_digest(program)[:16]}"
    if cached.is_file():
        return cached
    from .. import errors
    from ..storage import FileLock

    # One compiler run for every thread and process that asks at once: two
    # compiling into one temporary file (same pid) or executing a binary
    # still being written (ETXTBSY) is what happens without it.
    lock = FileLock(cached.with_name(f".{cached.name}.lock"))
    lock.acquire()
    try:
        if not cached.is_file():
            compile_program(program, cached)
    except FileNotFoundError:
        raise errors.HostUnsupported(
            f"{program} is not built and there is no C compiler", hint=NO_COMPILER_HINT) from None
    except subprocess.CalledProcessError as failure:
        first = (failure.stderr or b"").decode(errors="replace").strip().splitlines()[:1]
        raise errors.RuntimeFailure(
            f"cannot compile {PROGRAMS[program][0]}: {first[0] if first else failure}",
            hint=NO_COMPILER_HINT) from None
    finally:
        lock.remove_and_release()
    return cached


def monitor_binary(cache_dir: os.PathLike | str | None = None) -> Path:
    return program_binary("jc-monitor", cache_dir)


def init_binary(cache_dir: os.PathLike | str | None = None) -> Path:
    """jc-init, the reaper ``run --init`` puts at PID 1."""
    return program_binary("jc-init", cache_dir)


class MonitorStart(NamedTuple):
    """What ``spawn_monitor`` returns once the container has started."""

    pid: int                          # the container's init, as the host sees it
    monitor_pid: int
    attach: "AttachClient | None"     # connected before the start (wait_attach)


def spawn_monitor(container_id: str, state_dir: os.PathLike | str, run_dir: os.PathLike | str,
                  hook_argv: Sequence[str], *, log_max_size: int, log_max_files: int,
                  tty: bool = False, stdin: bool = False, wait_attach: bool = False,
                  hold_fds: Sequence[int] = (), health_interval: float | None = None,
                  oom_counter: os.PathLike | str | None = None,
                  timeout: float | None = None, binary: os.PathLike | str | None = None) -> MonitorStart:
    """Starts a detached jc-monitor that runs ``hook_argv + ["start"]`` and
    waits until the container has started.

    ``hold_fds`` stay open in the monitor for the container's lifetime
    (sockets reserving its published ports); with ``health_interval``
    (seconds) it runs ``hook_argv + ["health"]`` that often while the
    container runs.

    Raises ``errors.ContainerStartError`` (with docker's exit code, e.g. 127)
    when the start hook reports an error, ``errors.RuntimeFailure`` when the
    monitor itself cannot start. Safe in a multi-threaded process: no Python
    runs between fork and exec.
    """
    from .. import errors
    from .attach import AttachClient

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ready_read, ready_write = os.pipe2(os.O_CLOEXEC)
    argv = [str(binary or monitor_binary()), "--id", container_id, "--state-dir", str(state_dir),
            "--run-dir", str(run_dir), "--log-max-size", str(log_max_size),
            "--log-max-files", str(log_max_files), "--ready-fd", str(ready_write)]
    argv += [flag for flag, wanted in (("--tty", tty), ("--stdin", stdin), ("--wait-attach", wait_attach))
             if wanted]
    for fd in hold_fds:
        argv += ["--hold-fd", str(fd)]
    if health_interval:
        argv += ["--health-interval", str(max(1, int(health_interval * 1000)))]
    if oom_counter:
        argv += ["--oom-counter", str(oom_counter)]
    argv += ["--", *hook_argv]
    attach = None
    try:
        try:
            first = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, close_fds=True, pass_fds=(ready_write, *hold_fds),
                                     start_new_session=True)
        finally:
            os.close(ready_write)
        # The first process exits as soon as the monitor is detached and its
        # attach socket listens; its errors are about the setup.
        _, stderr = first.communicate()
        if first.returncode != 0:
            lines = stderr.decode(errors="replace").strip().splitlines()
            reason = lines[-1].removeprefix("jc-monitor: ") if lines else f"exit status {first.returncode}"
            raise errors.RuntimeFailure(f"cannot start the monitor of container {container_id}: {reason}")
        if wait_attach:
            attach = AttachClient.connect(run_dir)
        line = _read_ready_line(ready_read, timeout)
    except BaseException:
        if attach is not None:
            attach.close()
        raise
    finally:
        os.close(ready_read)

    word, _, rest = line.partition(" ")
    if word == "ok" and rest.replace(" ", "").isdigit():
        container_pid, monitor_pid = (int(n) for n in rest.split())
        return MonitorStart(container_pid, monitor_pid, attach)
    if attach is not None:
        attach.close()
    if word == "error":
        code, _, message = rest.partition(" ")
        raise errors.ContainerStartError(message or "the container did not start",
                                         exit_code=int(code) if code.isdigit() else 125)
    raise errors.RuntimeFailure(
        f"the monitor of container {container_id} ended before the container started",
        hint=f"see {run_dir / 'monitor.log'}")


def _read_ready_line(fd: int, timeout: float | None) -> str:
    deadline = None if timeout is None else time.monotonic() + timeout
    data = b""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while b"\n" not in data:
        wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if not poller.poll(wait_ms):
            raise TimeoutError(f"the container did not start within {timeout} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").split("\n", 1)[0]


def running_monitor(run_dir: os.PathLike | str) -> int | None:
    """The pid of the container's monitor if one is running, else None.

    The monitor holds an exclusive lock on ``monitor.pid`` while it lives, so
    a stale file or a reused pid can never look alive."""
    try:
        fd = os.open(Path(run_dir) / "monitor.pid", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            # Locked: alive. Its pid is written right after the lock is taken.
            for _ in range(1000):
                text = os.pread(fd, 32, 0).strip()
                if text:
                    return int(text)
                time.sleep(0.001)
            return 0
        return None
    finally:
        os.close(fd)


def wait_monitor(run_dir: os.PathLike | str, timeout: float | None = None) -> bool:
    """Waits until the container's monitor has exited; False on timeout."""
    pid = running_monitor(run_dir)
    if not pid:
        return pid is None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if running_monitor(run_dir) != pid:     # it exited before pidfd_open: the pid may be reused
            return True
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)
