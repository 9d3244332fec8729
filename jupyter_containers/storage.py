"""The storage root on disk, file locks and atomic writes.

Every process that uses jupyter-containers (a kernel, the Jupyter server, the
CLI, a container's monitor) shares the same state on disk. Writers take a
file lock and replace files atomically (temp file, fsync, rename, fsync of the
directory), so a reader never sees half a file and a SIGKILL at any point
leaves either the old or the new version.

Layout below the root::

    oci/                OCI image layout (oci-layout, index.json, blobs/sha256/…)
    ingest/             partial downloads, resumable
    snapshots/<hex>/    unpacked layers, by diff ID
    containers/<id>/    container records, logs, overlay upper dirs
    volumes/<name>/     named volumes
    networks/           network records, address leases
    cache/              derived data (compiled seccomp filters)
    locks/              lock files

Runtime state that must not survive a reboot (monitor sockets) lives below
``run_root()/<hash of the storage root>``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path

TYPE_CHECKING = False  # typing costs 3 ms in the hooks' fresh interpreters
if TYPE_CHECKING:
    from typing import Any, Iterator


class Layout:
    """Paths of one storage root. Cheap to create; creates directories on
    first use of :meth:`ensure`."""

    def __init__(self, root: os.PathLike | str | None = None, run_root: os.PathLike | str | None = None):
        if root is None or run_root is None:
            from . import config as _config  # traitlets: only when the paths come from configuration

        self.root = Path(root).absolute() if root is not None else _config.storage_root()
        base_run = Path(run_root).absolute() if run_root is not None else _config.run_root()
        import hashlib

        tag = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        self.run = base_run / tag

    oci = property(lambda self: self.root / "oci")
    ingest = property(lambda self: self.root / "ingest")
    snapshots = property(lambda self: self.root / "snapshots")
    containers = property(lambda self: self.root / "containers")
    volumes = property(lambda self: self.root / "volumes")
    networks = property(lambda self: self.root / "networks")
    cache = property(lambda self: self.root / "cache")
    locks = property(lambda self: self.root / "locks")

    def ensure(self) -> "Layout":
        for path in (self.oci, self.ingest, self.snapshots, self.containers, self.volumes,
                     self.networks, self.cache, self.locks):
            path.mkdir(parents=True, exist_ok=True, mode=0o711)
        self.root.chmod(0o711)
        self.run.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def lock(self, name: str, *, shared: bool = False, blocking: bool = True) -> "FileLock":
        """A lock named ``name`` (e.g. ``"images"``, ``"container-<id>"``)."""
        return FileLock(self.locks / f"{name}.lock", shared=shared, blocking=blocking)

    def __repr__(self) -> str:
        return f"Layout({str(self.root)!r})"


class FileLock:
    """An ``flock(2)`` lock on a file, usable as a context manager.

    flock locks belong to the open file description, so they are released
    when the holder dies, however it dies, and they work between threads of
    one process too (each FileLock opens its own description).
    """

    def __init__(self, path: os.PathLike | str, *, shared: bool = False, blocking: bool = True):
        self.path = Path(path)
        self.shared = shared
        self.blocking = blocking
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        flags = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if not self.blocking:
            flags |= fcntl.LOCK_NB
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, flags)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    return False
                raise
            # The holder may have removed the file (remove_and_release) while
            # we waited: then our lock is on a dead inode; lock the new file.
            try:
                current = os.stat(self.path)
            except FileNotFoundError:
                current = None
            held = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the lock

    def remove_and_release(self) -> None:
        """Delete the lock file, then release: for per-object locks (one
        per blob, one per layer) that would otherwise pile up. Waiters notice
        and retry on a fresh file."""
        if self._fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.release()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        if not self.acquire():
            raise BlockingIOError(errno.EWOULDBLOCK, f"{self.path} is locked")
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def fsync_dir(path: os.PathLike | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: os.PathLike | str, mode: int = 0o644, *, durable: bool = True) -> Iterator[Any]:
    """Write a file so that it appears whole or not at all.

    Yields a binary file object on a temporary file beside ``path``; on
    success it is flushed, fsynced and renamed over ``path``. On error the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    # (not tempfile.mkstemp: importing tempfile costs the hooks milliseconds)
    tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def write_atomic(path: os.PathLike | str, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    with atomic_writer(path, mode, durable=durable) as handle:
        handle.write(data)


def write_json(path: os.PathLike | str, value: Any, mode: int = 0o644, *, durable: bool = True) -> None:
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True).encode() + b"\n", mode, durable=durable)


def read_json(path: os.PathLike | str, default: Any = ...) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.load(handle)
    except FileNotFoundError:
        if default is ...:
            raise
        return default


def tree_size(path: os.PathLike | str) -> int:
    """Bytes of the regular files below ``path`` (not following links)."""
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                continue
    return total
