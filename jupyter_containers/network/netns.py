"""Network namespaces as files, made without forking the calling process.

Namespaces belong to threads: a short-lived thread ``unshare``s a new network
namespace, pins it by bind-mounting ``/proc/thread-self/ns/net`` on a file
(as ``ip netns add`` does), configures it and ends; the calling thread never
changes namespace. Work inside an existing namespace is done the same way, by
a thread that ``setns``es into its file. The container's start hook then
``setns``es into the file. A thread made by a thread inherits its namespaces,
so everything here happens in the namespace of the thread that calls it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import struct
import threading
from typing import Callable, TypeVar

from ..linux import syscalls

T = TypeVar("T")

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a new thread that ends with it, and return its result
    (or raise its exception). Threads are never reused: one that changed its
    namespace dies with the change."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="jupyter-containers-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def create_and_enter(path: os.PathLike | str) -> None:
    """In a worker thread: move the thread into a new network namespace and
    pin that namespace at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        syscalls.mount("/proc/thread-self/ns/net", path, None, syscalls.MS_BIND)
    except BaseException:
        os.unlink(path)
        raise


def enter(path: os.PathLike | str) -> None:
    """In a worker thread: join the network namespace pinned at ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
    finally:
        os.close(fd)


def remove(path: os.PathLike | str) -> None:
    """Unpin and delete a namespace file; nothing to do if it is gone. The
    namespace itself ends, with its interfaces, once no process is left in
    it (the kernel removes a veth pair when either end's namespace ends)."""
    try:
        syscalls.umount(path, syscalls.MNT_DETACH)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOENT):  # not mounted, or no file
            raise
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def loopback_up() -> None:
    """Bring ``lo`` of the current thread's namespace up (an ioctl: no
    netlink library needed for ``--network none``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
