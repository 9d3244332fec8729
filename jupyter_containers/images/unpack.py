"""Unpacking one layer into a directory in the overlayfs format.

:func:`unpack_layer` reads a layer from a non-seekable stream (the pull feeds
it while the blob downloads), decompresses it (gzip, zstd or none, told by the
magic bytes), parses the tar headers with :mod:`tarfile` and creates every
entry itself with ``*at`` calls on directory file descriptors: tarfile's own
extraction is never used. The diff ID (sha256 of the uncompressed tar) is
computed on the way and returned.

Rules (docs/architecture.md, "Unpacking"):

- An entry's path is cleaned (``a/./b``, ``a/../b``); a ``..`` that would climb
  out of the root refuses the layer; an absolute path is placed inside it.
- No entry is written through a symlink: a parent that is a symlink (even one
  pointing inside the root) refuses the layer, as does a hardlink whose target
  path passes through one. Symlinks themselves are created as given; they are
  data and never followed while unpacking.
- A later entry replaces an earlier one at the same path (a directory over a
  directory only updates its metadata).
- OCI whiteouts become overlayfs ones: ``.wh.NAME`` a 0:0 character device
  ``NAME``, ``.wh..wh..opq`` the xattr ``trusted.overlay.opaque=y`` on its
  directory. A whiteout of something this same layer created, or a directory
  this layer creates over its own whiteout, makes that directory opaque (the
  whiteout applies to the layers below only).
- A hardlink to a file of a lower layer copies that file (overlayfs copy-up),
  from the topmost lower that shows it (whiteouts and opaque directories of
  the lowers respected).
- A directory the layer needs but does not contain takes its owner, mode,
  xattrs and times from the lowers (as if the layers had been unpacked into
  one tree); so does the layer's root without a ``./`` entry.
- Owners are numeric; the mode is set after chown (which clears setuid);
  xattrs from PAX ``SCHILY.xattr.*`` except ``trusted.overlay.*`` and
  ``user.overlay.*`` (an image must not steer overlayfs); directory times are
  set last, deepest first.
"""

from __future__ import annotations

import decimal
import errno
import hashlib
import logging
import os
import queue
import stat
import tarfile
import threading
import zlib
from typing import Callable, Iterator, Sequence, Union

from ..errors import InvalidLayer, UnsafeLayer
from ..linux import paths

log = logging.getLogger(__name__)

LAYER_MEDIA_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# Entries deeper than this refuse the layer: each open directory level costs
# a file descriptor. Real images stay far below.
MAX_DEPTH = 256

_CHUNK = 1 << 20
_SKIPPED_XATTR_ERRORS = (errno.ENOTSUP, errno.EPERM)
_XATTR_PREFIX = "SCHILY.xattr."
# overlayfs' own xattrs (redirect, metacopy, opaque…) are never taken from an
# image: they would steer the kernel's lookups.
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")
# Errors that mean "this entry cannot be made as the layer says", not "the host failed".
_ENTRY_ERRORS = (errno.ENOENT, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ELOOP,
                 errno.ENOTEMPTY, errno.EINVAL, errno.ENAMETOOLONG)

Lowers = Union[Sequence[Union[str, os.PathLike]], Callable[[], Sequence[Union[str, os.PathLike]]]]


def unpack_layer(stream, media_type: str, dest, lowers: Lowers = (), *, label: str = "layer") -> str:
    """Unpack the layer read from ``stream`` (anything with ``read(n)``) into
    the existing, empty directory ``dest`` and return its diff ID.

    ``lowers`` are the snapshot directories below this layer, topmost first,
    or a callable returning them: it is called at most once, only when the
    layer needs them (a hardlink to a lower file, a directory it implies, its
    root's metadata), so a layer can be unpacked while its lowers still are.
    ``label`` names the layer in error messages.

    Raises :class:`UnsafeLayer` for entries that try to leave ``dest`` and
    :class:`InvalidLayer` for content that is not a layer; ``dest`` is then
    left half-filled for the caller to remove. On success the whole stream
    has been read (the diff ID covers the padding after the tar's end).
    """
    if media_type not in LAYER_MEDIA_TYPES:
        raise InvalidLayer(f"{label} has the media type '{media_type}', which is not a layer",
                           hint="the image is not a container image this tool can run")
    unpacker = _Unpacker(os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), lowers, label)
    chunks = _Prefetched(_decompressed(stream.read, label))  # reads nothing yet
    try:
        source = _TarSource(chunks)
        try:
            archive = tarfile.TarFile(fileobj=source, mode="r", encoding="utf-8", errors="surrogateescape")
            for info in iter(archive.next, None):
                archive.members.clear()  # one entry at a time: keep memory flat
                unpacker.add(info, source)
        except tarfile.TarError as error:
            raise InvalidLayer(f"{label} is not a valid tar archive: {error}") from None
        source.drain()
        unpacker.finish()
    finally:
        chunks.close()
        unpacker.close()
    return "sha256:" + chunks.hash.hexdigest()


# --- the byte stream --------------------------------------------------------


def _decompressed(read, label: str) -> Iterator[bytes]:
    """Chunks of the uncompressed tar, the compression told by magic bytes
    (registries mislabel layers; docker and containerd sniff too)."""
    head = b""
    while len(head) < 4:
        more = read(4 - len(head))
        if not more:
            break
        head += more
    if head.startswith(GZIP_MAGIC):
        yield from _gunzip(head, read, label)
    elif head.startswith(ZSTD_MAGIC):
        yield from _unzstd(head, read, label)
    else:
        yield from _plain(head, read)


def _plain(head: bytes, read) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := read(_CHUNK):
        yield chunk


def _gunzip(head: bytes, read, label: str) -> Iterator[bytes]:
    # Several gzip members may follow each other (pigz, concatenation), with
    # zero padding between them, as gzip(1) accepts.
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = head
    try:
        while True:
            data = decompressor.unconsumed_tail or pending or read(_CHUNK)
            pending = b""
            if not data:
                if not decompressor.eof:
                    raise InvalidLayer(f"{label} ends in the middle of its gzip stream",
                                       hint="the download was cut short; pull again")
                return
            if decompressor.eof:
                data = data.lstrip(b"\0")
                if not data:
                    continue
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = decompressor.decompress(data, _CHUNK)
            if decompressor.eof:
                pending = decompressor.unused_data
            if chunk:
                yield chunk
    except zlib.error as error:
        raise InvalidLayer(f"{label} is not valid gzip: {error}") from None


def _unzstd(head: bytes, read, label: str) -> Iterator[bytes]:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(
        _Prefixed(head, read), read_size=_CHUNK, read_across_frames=True, closefd=False)
    try:
        while chunk := reader.read(_CHUNK):
            yield chunk
    except zstandard.ZstdError as error:
        raise InvalidLayer(f"{label} is not valid zstd: {error}") from None


class _Prefixed:
    """A reader that gives back the bytes already peeked, then the stream."""

    def __init__(self, head: bytes, read):
        self._head = head
        self._read = read

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._read(size if size > 0 else _CHUNK)


class _Prefetched:
    """The uncompressed chunks, produced a few chunks ahead by a thread that
    reads, decompresses and hashes (zlib, zstd and hashlib release the GIL),
    so that work overlaps with creating the files."""

    _DEPTH = 8

    def __init__(self, chunks: Iterator[bytes]):
        self.hash = hashlib.sha256()
        self._queue: queue.Queue = queue.Queue(self._DEPTH)
        self._stopped = False
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(chunks,), name="layer-decompress", daemon=True)
        self._thread.start()

    def _produce(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                self.hash.update(chunk)
                if not self._put(chunk):
                    return
            self._put(b"")
        except BaseException as error:  # handed to the consumer, raised there
            self._put(error)

    def _put(self, item) -> bool:
        while not self._stopped:
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if not item:
            self._finished = True
            raise StopIteration
        return item

    def close(self) -> None:
        self._stopped = True
        self._thread.join()


class _TarSource:
    """The uncompressed tar as a forward-only file for :class:`tarfile.TarFile`
    (``seek`` only skips ahead)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""
        self._position = 0  # in _buffer
        self._offset = 0  # in the tar stream

    def _fill(self) -> bool:
        chunk = next(self._chunks, b"")
        if not chunk:
            return False
        self._buffer = chunk
        self._position = 0
        return True

    def _take(self, size: int) -> memoryview | None:
        """Up to ``size`` buffered bytes, None at the end of the stream."""
        if self._position == len(self._buffer) and not self._fill():
            return None
        end = min(len(self._buffer), self._position + size)
        view = memoryview(self._buffer)[self._position:end]
        self._position = end
        self._offset += len(view)
        return view

    def read(self, size: int = -1) -> bytes:
        parts = []
        while size:
            view = self._take(size if size > 0 else _CHUNK)
            if view is None:
                break
            parts.append(view)
            size -= len(view) if size > 0 else 0
        return b"".join(parts)

    def copy_to(self, fd: int, size: int) -> None:
        while size:
            view = self._take(size)
            if view is None:
                raise tarfile.ReadError("unexpected end of data")
            size -= len(view)
            while view:
                view = view[os.write(fd, view):]

    def tell(self) -> int:
        return self._offset

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET or offset < self._offset:
            raise OSError(errno.ESPIPE, "a layer stream only skips forward")
        while self._offset < offset and self._take(offset - self._offset) is not None:
            pass
        return self._offset

    def drain(self) -> None:
        """Read to the end (the diff ID covers the padding after the tar too)."""
        while self._fill():
            pass


# --- entries ------------------------------------------------------------------


class _Metadata:
    __slots__ = ("uid", "gid", "mode", "xattrs", "times")

    def __init__(self, uid: int, gid: int, mode: int, xattrs: dict, times: tuple[int, int]):
        self.uid, self.gid, self.mode, self.xattrs, self.times = uid, gid, mode, xattrs, times

    @classmethod
    def of_entry(cls, info: tarfile.TarInfo) -> "_Metadata":
        pax = info.pax_headers
        mtime = _nanoseconds(pax["mtime"]) if "mtime" in pax else int(info.mtime) * 10**9
        atime = _nanoseconds(pax["atime"]) if "atime" in pax else mtime
        xattrs = {key[len(_XATTR_PREFIX):]: value.encode("utf-8", "surrogateescape")
                  for key, value in pax.items()
                  if key.startswith(_XATTR_PREFIX) and not key[len(_XATTR_PREFIX):].startswith(_OVERLAY_XATTRS)}
        return cls(info.uid, info.gid, info.mode & 0o7777, xattrs, (atime, mtime))

    @classmethod
    def of_file(cls, st: os.stat_result, xattrs: dict) -> "_Metadata":
        return cls(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), xattrs, (st.st_atime_ns, st.st_mtime_ns))


def _nanoseconds(text: str) -> int:
    return int(decimal.Decimal(text).scaleb(9))


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _xattrs_of(target) -> dict:
    """The xattrs of an fd or path (not following symlinks), overlay's own left out."""
    follow = isinstance(target, int)
    return {name: os.getxattr(target, name, follow_symlinks=follow)
            for name in os.listxattr(target, follow_symlinks=follow)
            if not name.startswith(_OVERLAY_XATTRS)}


class _Unpacker:
    """The state of one layer being unpacked into ``root_fd``.

    Tar entries mostly come in depth-first order, so the directory chain of
    the last entry is kept open (``_dirs``/``_dir_fds``); the next entry reuses
    the common part and opens only the rest, one ``openat`` per level.
    """

    def __init__(self, root_fd: int, lowers: Lowers, label: str):
        self._root = root_fd
        self._lowers_given = lowers
        self._lower_fds: list[int] | None = None
        self._label = label
        self._entry = ""
        self._dirs: list[str] = []
        self._dir_fds: list[int] = [root_fd]
        self._dir_times: dict[tuple, tuple[int, int]] = {}
        self._implied: set[tuple] = {()}  # the root, until a ./ entry says otherwise
        self._opaque_root = False
        self._skipped_xattrs: list[str] = []

    # --- errors

    def _unsafe(self, what: str) -> UnsafeLayer:
        return UnsafeLayer(f"{self._label} refused: entry '{self._entry}' {what}",
                           hint="the image is broken or hostile; nothing was written outside the layer")

    def _invalid(self, what: str) -> InvalidLayer:
        return InvalidLayer(f"{self._label} cannot be unpacked: entry '{self._entry}' {what}")

    # --- paths

    def _path(self, name: str) -> tuple:
        if "\0" in name:
            raise self._invalid("has a NUL byte in its name")
        parts: list[str] = []
        for part in name.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise self._unsafe(f"climbs out of the layer's root ('{name}')")
                parts.pop()
            else:
                parts.append(part)
        if len(parts) > MAX_DEPTH:
            raise self._invalid(f"is more than {MAX_DEPTH} directories deep")
        return tuple(parts)

    def _parent(self, path: tuple) -> int:
        """The fd of the directory holding ``path``, created if missing."""
        parent = path[:-1]
        common = 0
        for mine, theirs in zip(self._dirs, parent):
            if mine != theirs:
                break
            common += 1
        self._close_dirs_below(common)
        for name in parent[common:]:
            self._dir_fds.append(self._open_dir(self._dir_fds[-1], tuple(self._dirs) + (name,)))
            self._dirs.append(name)
        return self._dir_fds[-1]

    def _close_dirs_below(self, depth: int) -> None:
        while len(self._dirs) > depth:
            self._dirs.pop()
            os.close(self._dir_fds.pop())

    def _open_dir(self, dirfd: int, path: tuple) -> int:
        """Open (or create, as implied) the directory ``path`` in ``dirfd``."""
        name = path[-1]
        try:
            return paths.open_subdir(dirfd, name)
        except FileNotFoundError:
            os.mkdir(name, 0o755, dir_fd=dirfd)
            self._implied.add(path)
            fd = paths.open_subdir(dirfd, name)
            os.fchmod(fd, 0o755)
            return fd
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            raise self._not_a_directory(dirfd, path) from None

    def _not_a_directory(self, dirfd: int, path: tuple) -> UnsafeLayer:
        where = "/".join(path)
        try:
            target = os.readlink(path[-1], dir_fd=dirfd)
        except OSError:
            return self._unsafe(f"needs '{where}' to be a directory, but the layer made it a file")
        return self._unsafe(f"writes through the symlink '{where}' -> '{target}'")

    def _forget(self, path: tuple) -> None:
        """``path`` (a directory) was removed: drop what refers to it."""
        if tuple(self._dirs[:len(path)]) == path:
            self._close_dirs_below(len(path) - 1)
        depth = len(path)
        for key in [key for key in self._dir_times if key[:depth] == path]:
            del self._dir_times[key]
        self._implied = {key for key in self._implied if key[:depth] != path}

    def _clear(self, dirfd: int, path: tuple) -> None:
        """Remove whatever is at ``path``."""
        try:
            st = os.stat(path[-1], dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            self._forget(path)
        paths.remove_at(dirfd, path[-1])

    def _create(self, make, dirfd: int, path: tuple):
        """Run ``make()``, which creates ``path``; replace what is in the way."""
        try:
            return make()
        except FileExistsError:
            self._clear(dirfd, path)
            return make()

    # --- the entries

    def add(self, info: tarfile.TarInfo, source: _TarSource) -> None:
        self._entry = info.name
        try:
            self._add(info, source)
        except OSError as error:
            if error.errno not in _ENTRY_ERRORS:
                raise
            raise self._invalid(f"cannot be created: {error.strerror}") from None

    def _add(self, info: tarfile.TarInfo, source: _TarSource) -> None:
        path = self._path(info.name)
        if path and path[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(path)
            return
        if not path:
            if not info.isdir():
                raise self._unsafe("would replace the layer's root with a non-directory")
            metadata = _Metadata.of_entry(info)
            self._apply_fd(self._root, metadata)
            self._dir_times[()] = metadata.times
            self._implied.discard(())
            return
        if info.sparse is not None:
            raise self._invalid("is a sparse file, which layers do not use and this tool does not unpack")
        parent = self._parent(path)
        name = path[-1]
        if info.isreg():
            self._file(parent, path, info, source)
        elif info.isdir():
            self._directory(parent, path, info)
        elif info.issym():
            self._create(lambda: os.symlink(info.linkname, name, dir_fd=parent), parent, path)
            self._apply_at(parent, name, _Metadata.of_entry(info), symlink=True)
        elif info.islnk():
            self._hardlink(parent, path, info)
        elif info.ischr() or info.isblk() or info.isfifo():
            kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK if info.isblk() else stat.S_IFIFO
            device = os.makedev(info.devmajor, info.devminor) if kind != stat.S_IFIFO else 0
            self._create(lambda: os.mknod(name, kind | 0o600, device, dir_fd=parent), parent, path)
            self._apply_at(parent, name, _Metadata.of_entry(info), symlink=False)
        else:
            raise self._invalid(f"has the tar type {info.type!r}, which a layer cannot hold")

    def _file(self, parent: int, path: tuple, info: tarfile.TarInfo, source: _TarSource) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = self._create(lambda: os.open(path[-1], flags, 0o600, dir_fd=parent), parent, path)
        try:
            source.copy_to(fd, info.size)
            self._apply_fd(fd, _Metadata.of_entry(info), times=True)
        finally:
            os.close(fd)

    def _directory(self, parent: int, path: tuple, info: tarfile.TarInfo) -> None:
        name = path[-1]
        opaque = False
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                # Over this layer's own whiteout: the lowers' directory stays hidden.
                opaque = _is_whiteout(st)
                self._clear(parent, path)
                os.mkdir(name, 0o700, dir_fd=parent)
        fd = paths.open_subdir(parent, name)
        metadata = _Metadata.of_entry(info)
        if opaque:
            metadata.xattrs[OPAQUE_XATTR] = b"y"
        self._apply_fd(fd, metadata)
        self._dir_times[path] = metadata.times
        self._implied.discard(path)
        self._dirs.append(name)  # the next entry is most likely inside it
        self._dir_fds.append(fd)

    def _whiteout(self, path: tuple) -> None:
        parent = self._parent(path)
        marker = path[-1]
        if marker == OPAQUE_WHITEOUT:
            if len(path) == 1:
                self._opaque_root = True  # overlayfs ignores opaque on a layer's root: see finish()
            else:
                os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if marker.startswith(WHITEOUT_PREFIX * 2):
            return  # other AUFS bookkeeping (.wh..wh.plnk): meaningless here, as for docker
        name = marker[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise self._unsafe(f"whites out '{name}', outside its directory")
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            os.mknod(name, stat.S_IFCHR, 0, dir_fd=parent)
            return
        if stat.S_ISDIR(st.st_mode):
            # Made by this layer: it survives, but what the lowers had there goes.
            _make_opaque(parent, name)
        # Any other entry of this layer already hides the lowers' one.

    def _hardlink(self, parent: int, path: tuple, info: tarfile.TarInfo) -> None:
        target = self._path(info.linkname)
        if not target:
            raise self._unsafe("is a hardlink to the layer's root")
        if target == path:
            raise self._invalid("is a hardlink to itself")
        link_dir = self._find_in_layer(target)
        if link_dir is None:
            self._copy_up(parent, path, target)
            return
        try:
            self._create(lambda: os.link(target[-1], path[-1], src_dir_fd=link_dir, dst_dir_fd=parent,
                                         follow_symlinks=False), parent, path)
        finally:
            os.close(link_dir)

    def _find_in_layer(self, target: tuple) -> int | None:
        """The fd of the directory holding the hardlink target ``target`` in
        this layer, or None when this layer does not have it."""
        where = "/".join(target)
        try:
            dirfd = paths.open_dir_in_root(self._root, "/".join(target[:-1]), follow=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise self._unsafe(f"is a hardlink to '{where}', a path through a symlink") from None
            raise
        try:
            st = os.stat(target[-1], dir_fd=dirfd, follow_symlinks=False)
        except FileNotFoundError:
            os.close(dirfd)
            return None
        if stat.S_ISDIR(st.st_mode) or _is_whiteout(st):
            os.close(dirfd)
            raise self._unsafe(f"is a hardlink to '{where}', which is a directory or deleted")
        return dirfd

    # --- lowers

    def _lowers(self) -> list[int]:
        if self._lower_fds is None:
            given = self._lowers_given() if callable(self._lowers_given) else self._lowers_given
            self._lower_fds = []
            for lower in given:
                self._lower_fds.append(os.open(lower, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        return self._lower_fds

    def _find_in_lowers(self, path: tuple) -> tuple[int, str, os.stat_result] | None:
        """``(dirfd, name, stat)`` of ``path`` as the stacked lowers show it
        (the caller closes ``dirfd``), or None when they do not."""
        for lower in self._lowers():
            if not path:
                return os.dup(lower), ".", os.stat(lower)
            opened: list[int] = []
            directory = lower
            hides_below = _is_opaque(lower)
            try:
                for depth, name in enumerate(path):
                    try:
                        st = os.stat(name, dir_fd=directory, follow_symlinks=False)
                    except FileNotFoundError:
                        break
                    if _is_whiteout(st):
                        return None
                    if depth == len(path) - 1:
                        return os.dup(directory), name, st
                    if not stat.S_ISDIR(st.st_mode):
                        return None  # a file or symlink here hides the lowers' directory
                    directory = paths.open_subdir(directory, name)
                    opened.append(directory)
                    hides_below = hides_below or _is_opaque(directory)
            finally:
                for fd in opened:
                    os.close(fd)
            if hides_below:
                return None
        return None

    def _copy_up(self, parent: int, path: tuple, target: tuple) -> None:
        found = self._find_in_lowers(target)
        if found is None:
            raise self._invalid(f"is a hardlink to '{'/'.join(target)}', which is neither in this layer nor below it")
        source_dir, source_name, st = found
        name = path[-1]
        try:
            if stat.S_ISDIR(st.st_mode):
                raise self._unsafe(f"is a hardlink to the directory '{'/'.join(target)}'")
            if stat.S_ISREG(st.st_mode):
                source = os.open(source_name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_dir)
                try:
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                    fd = self._create(lambda: os.open(name, flags, 0o600, dir_fd=parent), parent, path)
                    try:
                        _copy_contents(source, fd, st.st_size)
                        self._apply_fd(fd, _Metadata.of_file(st, _xattrs_of(source)), times=True)
                    finally:
                        os.close(fd)
                finally:
                    os.close(source)
                return
            xattrs = _xattrs_of(f"/proc/self/fd/{source_dir}/{source_name}")
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(source_name, dir_fd=source_dir)
                self._create(lambda: os.symlink(link, name, dir_fd=parent), parent, path)
            else:
                self._create(lambda: os.mknod(name, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev, dir_fd=parent),
                             parent, path)
            self._apply_at(parent, name, _Metadata.of_file(st, xattrs), symlink=stat.S_ISLNK(st.st_mode))
        finally:
            os.close(source_dir)

    # --- metadata

    def _set_xattrs(self, target, xattrs: dict, follow: bool) -> None:
        for name, value in xattrs.items():
            try:
                os.setxattr(target, name, value, follow_symlinks=follow)
            except OSError as error:
                if error.errno not in _SKIPPED_XATTR_ERRORS:
                    raise self._invalid(f"has the xattr '{name}', which cannot be set: {error.strerror}") from None
                self._skipped_xattrs.append(f"{self._entry}: {name}")

    def _apply_fd(self, fd: int, metadata: _Metadata, times: bool = False) -> None:
        """Owner, then mode (chown clears setuid), xattrs, times of an open
        file or directory."""
        os.fchown(fd, metadata.uid, metadata.gid)
        os.fchmod(fd, metadata.mode)
        self._set_xattrs(fd, metadata.xattrs, True)
        if times:
            os.utime(fd, ns=metadata.times)

    def _apply_at(self, dirfd: int, name: str, metadata: _Metadata, symlink: bool) -> None:
        """The same for a symlink, device or fifo named ``name`` in ``dirfd``."""
        os.chown(name, metadata.uid, metadata.gid, dir_fd=dirfd, follow_symlinks=False)
        if not symlink:
            os.chmod(name, metadata.mode, dir_fd=dirfd, follow_symlinks=False)
        # The magic link resolves to dirfd itself; `name` is not followed.
        self._set_xattrs(f"/proc/self/fd/{dirfd}/{name}", metadata.xattrs, False)
        os.utime(name, ns=metadata.times, dir_fd=dirfd, follow_symlinks=False)

    # --- the end

    def finish(self) -> None:
        """Give implied directories their lowers' metadata, then set every
        directory's times, deepest first (creating entries changed them)."""
        self._close_dirs_below(0)
        if self._opaque_root and self._lowers_given:
            self._hide_lower_roots()
        for path in sorted(self._implied, key=len):
            self._entry = "/".join(path) or "."
            found = self._find_in_lowers(path) if self._lowers_given else None
            if found is None:
                if not path:
                    os.fchmod(self._root, 0o755)
                continue
            dirfd, name, st = found
            try:
                if not stat.S_ISDIR(st.st_mode):
                    continue
                source = paths.open_subdir(dirfd, name) if path else os.dup(dirfd)
                try:
                    metadata = _Metadata.of_file(st, _xattrs_of(source))
                finally:
                    os.close(source)
            finally:
                os.close(dirfd)
            fd = paths.open_dir_in_root(self._root, "/".join(path), follow=False)
            try:
                self._apply_fd(fd, metadata)
            finally:
                os.close(fd)
            self._dir_times[path] = metadata.times
        for path in sorted(self._dir_times, key=len, reverse=True):
            fd = paths.open_dir_in_root(self._root, "/".join(path), follow=False)
            try:
                os.utime(fd, ns=self._dir_times[path])
            finally:
                os.close(fd)
        if self._skipped_xattrs:
            log.warning("%s: %d xattrs could not be set on this filesystem (first: %s)",
                        self._label, len(self._skipped_xattrs), self._skipped_xattrs[0])

    def _hide_lower_roots(self) -> None:
        """An opaque root, which overlayfs would ignore on a layer's root:
        white out every top-level name of the lowers that this layer lacks,
        make this layer's own directories of those names opaque."""
        self._entry = OPAQUE_WHITEOUT
        names = set()
        for lower in self._lowers():
            names.update(os.listdir(lower))
        for name in names:
            try:
                st = os.stat(name, dir_fd=self._root, follow_symlinks=False)
            except FileNotFoundError:
                os.mknod(name, stat.S_IFCHR, 0, dir_fd=self._root)
                continue
            if stat.S_ISDIR(st.st_mode):
                _make_opaque(self._root, name)

    def close(self) -> None:
        self._close_dirs_below(0)
        os.close(self._root)
        for fd in self._lower_fds or ():
            os.close(fd)


def _make_opaque(dirfd: int, name: str) -> None:
    fd = paths.open_subdir(dirfd, name)
    try:
        os.setxattr(fd, OPAQUE_XATTR, b"y")
    finally:
        os.close(fd)


def _copy_contents(source: int, dest: int, size: int) -> None:
    try:
        while size > 0:
            copied = os.copy_file_range(source, dest, min(size, 1 << 30))
            if not copied:
                return
            size -= copied
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        while chunk := os.read(source, _CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(dest, view):]
