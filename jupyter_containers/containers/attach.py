"""Client of a container monitor's attach socket (``RUNDIR/attach.sock``).

Frames go both ways as an 8-byte header ``[type, 0, 0, 0, length u32 BE]``
and ``length`` bytes (docs/architecture.md). The monitor sends the
container's output, ``started`` (pid) and ``exit`` (exit code); the client
sends stdin, close-stdin and terminal resizes.

One thread may read while another writes: reads and writes each have their
own lock, and every wait honours its own timeout (``TimeoutError``) without
changing the socket's mode.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from typing import Iterator, NamedTuple

from .. import errors

STDIN, STDOUT, STDERR, EXIT, STARTED, CLOSE_STDIN, RESIZE = range(7)
STREAMS = {STDOUT: "stdout", STDERR: "stderr"}
MAX_PAYLOAD = 65536             # the monitor drops a client that sends a larger frame

_HEADER = struct.Struct(">B3xI")


class Frame(NamedTuple):
    type: int
    payload: bytes


def _not_running(run_dir) -> errors.Conflict:
    return errors.Conflict(f"the container is not running: no monitor listens in {run_dir}",
                           hint="start the container first")


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


class AttachClient:
    """A connection to one container's monitor."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._received = bytearray()
        self._at_end = False
        self._read_lock = threading.Lock()
        self._send_lock = threading.Lock()
        #: The container's pid, from the latest ``started`` frame.
        self.pid: int | None = None
        #: The exit code of the latest run, once it has exited.
        self.exit_code: int | None = None

    @classmethod
    def connect(cls, run_dir: os.PathLike | str, timeout: float | None = 5.0) -> "AttachClient":
        """Connects to the monitor whose run directory is ``run_dir``.
        Raises ``errors.Conflict`` when no monitor listens there."""
        # The socket's full path may not fit in a socket address: go through
        # a descriptor of its directory.
        try:
            dir_fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _not_running(run_dir) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(f"/proc/self/fd/{dir_fd}/attach.sock")
            sock.settimeout(None)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise _not_running(run_dir) from None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(dir_fd)
        return cls(sock)

    def fileno(self) -> int:
        return self._sock.fileno()

    def _wait(self, event: int, deadline: float | None) -> None:
        poller = select.poll()
        poller.register(self._sock, event)
        wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        if not poller.poll(wait_ms):
            raise TimeoutError("the container's monitor did not answer in time")

    # --- receiving --------------------------------------------------------

    def read_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame from the monitor; None once it has closed the
        connection (the monitor ended)."""
        deadline = _deadline(timeout)
        with self._read_lock:
            while True:
                if len(self._received) >= _HEADER.size:
                    kind, length = _HEADER.unpack_from(self._received)
                    end = _HEADER.size + length
                    if len(self._received) >= end:
                        payload = bytes(self._received[_HEADER.size:end])
                        del self._received[:end]
                        self._note(kind, payload)
                        return Frame(kind, payload)
                if self._at_end:
                    return None
                self._wait(select.POLLIN, deadline)
                chunk = self._sock.recv(1 << 16)
                if chunk:
                    self._received += chunk
                else:
                    self._at_end = True

    def _note(self, kind: int, payload: bytes) -> None:
        if kind == STARTED:
            self.pid = int(payload)
            self.exit_code = None
        elif kind == EXIT:
            self.exit_code = int(payload)

    def output(self, timeout: float | None = None) -> Iterator[tuple[str, bytes]]:
        """``(stream, data)`` as the container writes it, until it exits or
        the monitor ends. ``timeout`` bounds each wait for the next frame."""
        while True:
            frame = self.read_frame(timeout)
            if frame is None or frame.type == EXIT:
                return
            if frame.type in STREAMS:
                yield STREAMS[frame.type], frame.payload

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code of the current run once it has exited (output read
        meanwhile is discarded); None if the monitor ended without one."""
        deadline = _deadline(timeout)
        while self.exit_code is None:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.read_frame(remaining) is None:
                break
        return self.exit_code

    # --- sending ----------------------------------------------------------

    def _send(self, kind: int, payload: bytes, timeout: float | None) -> None:
        deadline = _deadline(timeout)
        data = memoryview(_HEADER.pack(kind, len(payload)) + payload)
        with self._send_lock:
            while data:
                try:
                    sent = self._sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    self._wait(select.POLLOUT, deadline)
                    continue
                data = data[sent:]

    def send_stdin(self, data: bytes, timeout: float | None = None) -> None:
        """Writes to the container's stdin (it must have been started with
        stdin open). Blocks while the container does not read it."""
        for start in range(0, len(data), MAX_PAYLOAD):
            self._send(STDIN, bytes(data[start:start + MAX_PAYLOAD]), timeout)

    def close_stdin(self, timeout: float | None = None) -> None:
        """End of file on the container's stdin (an EOF character with a tty)."""
        self._send(CLOSE_STDIN, b"", timeout)

    def resize(self, rows: int, cols: int, timeout: float | None = None) -> None:
        """Sets the size of the container's terminal (with a tty)."""
        self._send(RESIZE, f"{int(rows)} {int(cols)}".encode(), timeout)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "AttachClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
