"""The CLI's side of attached runs and execs: raw terminal mode, stdin
forwarding, window-size changes and signal proxying, as docker's CLI does."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading


@contextlib.contextmanager
def raw_terminal(fd: int):
    """Put the terminal on ``fd`` in raw mode for the duration (so ^C, ^D
    and friends reach the container's own terminal)."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        # TCSANOW: what was typed before the terminal went raw is kept,
        # not flushed (tty.setraw's default).
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> tuple[int, int]:
    size = os.get_terminal_size(fd)
    return size.lines, size.columns


def attach_terminal(attachment, ui, *, stdin: bool, tty: bool) -> int:
    """Stream an attached container to this terminal; return its exit code."""
    stdin_fd = ui.stdin.fileno() if stdin else None
    container = attachment.container
    client = container.client
    proxied = {}

    def proxy(number, _frame):
        try:
            client.runtime.kill(container.id, number)
        except Exception:  # noqa: BLE001 - the container may have just exited
            pass

    if not tty:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
            proxied[number] = signal.signal(number, proxy)
    elif stdin_fd is not None and os.isatty(stdin_fd):
        attachment.resize(*terminal_size(stdin_fd))
        proxied[signal.SIGWINCH] = signal.signal(
            signal.SIGWINCH, lambda *_: attachment.resize(*terminal_size(stdin_fd)))

    if stdin_fd is not None:
        threading.Thread(target=_pump_stdin, args=(stdin_fd, attachment), daemon=True).start()
    try:
        with raw_terminal(stdin_fd) if (tty and stdin_fd is not None) else contextlib.nullcontext():
            for stream, data in attachment:
                ui.output(stream, data)
    finally:
        for number, previous in proxied.items():
            signal.signal(number, previous)
    return attachment.exit_code if attachment.exit_code is not None else 0


def _pump_stdin(fd: int, attachment) -> None:
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            attachment.send(data)
    except OSError:
        pass
    finally:
        try:
            attachment.close_stdin()
        except OSError:
            pass


def exec_terminal(container, command, *, environment, user, workdir, tty, interactive, privileged,
                  detach, stdin=None, stdout=None, stderr=None) -> int:
    """``exec`` in the CLI: the process gets this terminal's stdio (a new
    pty relayed to it with ``-t``: a container process must never share the
    caller's controlling terminal)."""
    import subprocess

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    kwargs = dict(environment=environment, user=user, workdir=workdir, tty=tty, privileged=privileged,
                  detach=detach)
    if detach:
        container.exec(command, **kwargs)
        return 0
    if not tty:
        process = container.exec(command, stdin=stdin if interactive else subprocess.DEVNULL,
                                 stdout=stdout, stderr=stderr or sys.stderr, **kwargs)
        return process.wait()
    master, slave = os.openpty()
    try:
        if os.isatty(stdin.fileno()):
            import fcntl
            import struct
            import termios

            rows, cols = terminal_size(stdin.fileno())
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        process = container.exec(command, stdin=slave, stdout=slave, stderr=slave, **kwargs)
    finally:
        os.close(slave)
    with raw_terminal(stdin.fileno()) if interactive else contextlib.nullcontext():
        _relay_pty(master, stdin.fileno() if interactive else None, stdout.fileno(), process)
    os.close(master)
    return process.wait()


def _relay_pty(master: int, in_fd, out_fd: int, process) -> None:
    fds = [master] + ([in_fd] if in_fd is not None else [])
    while True:
        try:
            ready, _, _ = select.select(fds, [], [], 0.2)
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                data = b""
            if not data:
                return
            os.write(out_fd, data)
        if in_fd is not None and in_fd in ready:
            data = os.read(in_fd, 65536)
            if not data:
                fds.remove(in_fd)
                in_fd = None
            else:
                os.write(master, data)
        if not ready and process.popen.poll() is not None:
            return
