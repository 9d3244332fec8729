"""inotify(7) through ctypes: sleep until something changes in a directory."""

from __future__ import annotations

import ctypes
import os
import select

from .syscalls import libc

IN_MODIFY = 0x002
IN_MOVED_TO = 0x080
IN_CREATE = 0x100

libc.inotify_add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)


class Inotify:
    """Watches one path for the events in ``mask``; :meth:`wait` returns
    when one happened. Raises OSError when inotify is not available."""

    def __init__(self, path: os.PathLike | str, mask: int) -> None:
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify_add_watch {os.fsdecode(path)}: {os.strerror(err)}")
        self.fd = fd
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits up to ``timeout`` seconds for events and discards them;
        True if there were any."""
        if not self._poller.poll(None if timeout is None else max(0, int(timeout * 1000))):
            return False
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Inotify":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
