"""Snapshots: unpacked layers, one directory per diff ID.

``snapshots/<diff-id hex>/fs`` holds one layer in the overlayfs format
(:mod:`.unpack`); a container's root is an overlay of its image's snapshots.
A snapshot is unpacked into ``snapshots/.tmp-<hex>/fs`` and renamed into place
only once its diff ID is verified and its data synced, so a snapshot that
exists is complete. A lock per diff ID makes a second process unpacking the
same layer wait and then find it done; a temporary directory left by a killed
process is removed by the next unpack of that layer or by :meth:`prune`.

``snapshots/<hex>`` is mode 0700: a layer's setuid binaries must not be
reachable by host users through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .. import storage
from ..errors import IntegrityError
from ..events import short_id
from ..linux import paths, syscalls
from .store import digest_hex

_TMP_PREFIX = ".tmp-"


class Snapshots:
    def __init__(self, layout: storage.Layout):
        self.layout = layout
        self.root = layout.snapshots

    def __repr__(self) -> str:
        return f"Snapshots({str(self.root)!r})"

    def path(self, diff_id: str) -> Path:
        """The directory to use as an overlay lowerdir."""
        return self.root / digest_hex(diff_id) / "fs"

    def exists(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def list(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted("sha256:" + entry.name for entry in os.scandir(self.root)
                      if not entry.name.startswith(_TMP_PREFIX))

    def lock(self, diff_id: str, *, blocking: bool = True) -> storage.FileLock:
        return self.layout.lock(f"snapshot-{digest_hex(diff_id)}", blocking=blocking)

    def unpack(self, diff_id: str, stream, media_type: str, lowers=()) -> bool:
        """Unpack the layer read from ``stream`` as the snapshot ``diff_id``
        (see :func:`.unpack.unpack_layer` for ``lowers``). Returns False,
        without reading the stream, when the snapshot already exists."""
        from .unpack import unpack_layer  # tarfile and zstandard: only when unpacking

        hex_digest = digest_hex(diff_id)
        label = f"layer {short_id(diff_id)}"
        lock = self.lock(diff_id)
        lock.acquire()
        try:
            if self.exists(diff_id):
                return False
            self.root.mkdir(parents=True, exist_ok=True)
            temporary = self.root / f"{_TMP_PREFIX}{hex_digest}"
            self._remove_entry(temporary.name)  # left by a process that died
            os.mkdir(temporary, 0o700)
            try:
                os.mkdir(temporary / "fs", 0o755)
                actual = unpack_layer(stream, media_type, temporary / "fs", lowers, label=label)
                if actual != diff_id:
                    raise IntegrityError(f"{label} unpacks to {actual}, not to the diff ID {diff_id} its image lists",
                                         hint="the image is corrupt; nothing was kept")
                fd = os.open(temporary, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    syscalls.syncfs(fd)  # one sync for the whole layer, before it becomes visible
                finally:
                    os.close(fd)
                os.rename(temporary, self.root / hex_digest)
                storage.fsync_dir(self.root)
            except BaseException:
                self._remove_entry(temporary.name)
                raise
        finally:
            lock.remove_and_release()
        return True

    def remove(self, diff_id: str) -> bool:
        """Delete a snapshot (waiting if it is being unpacked); False if absent."""
        lock = self.lock(diff_id)
        lock.acquire()
        try:
            return self._remove_entry(digest_hex(diff_id))
        finally:
            lock.remove_and_release()

    def prune(self, keep: Iterable[str]) -> list[str]:
        """Remove snapshots whose diff ID is not in ``keep`` and temporary
        directories of dead unpacks; snapshots being unpacked are skipped."""
        keep = set(keep)
        removed = []
        if not self.root.exists():
            return removed
        for entry in os.scandir(self.root):
            hex_digest = entry.name[len(_TMP_PREFIX):] if entry.name.startswith(_TMP_PREFIX) else entry.name
            diff_id = "sha256:" + hex_digest
            if entry.name == hex_digest and diff_id in keep:
                continue
            try:
                lock = self.lock(diff_id, blocking=False)
            except IntegrityError:
                continue  # not ours
            if not lock.acquire():
                continue
            try:
                if self._remove_entry(entry.name) and entry.name == hex_digest:
                    removed.append(diff_id)
            finally:
                lock.remove_and_release()
        return removed

    def _remove_entry(self, name: str) -> bool:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            paths.remove_at(fd, name)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)

