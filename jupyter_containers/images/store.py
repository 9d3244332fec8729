"""The content store: an OCI image layout under ``<storage root>/oci``.

``oci-layout``, ``index.json`` and ``blobs/sha256/<hex>``, so skopeo and umoci
read it (``skopeo inspect oci:ROOT/oci:docker.io/library/busybox:latest``).

Blobs enter only through an :class:`Ingest`: bytes are hashed while they are
written to ``ingest/<hex>.partial``; at commit the size and digest are
checked, the file is fsynced and renamed into ``blobs/``. A blob that does not
match is discarded and never visible; a download killed half-way leaves only
the partial file, which the next ingest of that digest re-hashes and resumes.
A lock per digest makes a second process ingesting the same blob wait and
then find it committed.

Images are the entries of ``index.json``: the descriptor of an image's
platform-specific manifest with the annotations ``org.opencontainers.image.ref.name``
(the full normalised name, ``docker.io/library/busybox:latest``) and
``io.jupyter-containers.repo-digest`` (the digest the registry served for the
reference). Every change to the index is made under the ``images`` lock and
written by atomic replace, so readers need no lock.

Garbage collection removes blobs no image reaches. A pull holds a
:meth:`ContentStore.lease` from its first blob until its index entry is
written, so a collection never removes the blobs of a pull in progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from typing import IO, Iterable, Iterator

from .. import storage
from ..errors import ImageNotFound, IntegrityError, NotFound

OCI_LAYOUT_VERSION = "1.0.0"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
REPO_DIGEST = "io.jupyter-containers.repo-digest"

INDEX_MEDIA_TYPES = (
    INDEX_MEDIA_TYPE,
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)

_DIGEST_RE = re.compile(r"^sha256:([a-f0-9]{64})$")
_CHUNK = 1 << 20


def repository_of(name: str) -> str:
    """The repository of a stored name (``repo:tag`` or ``repo@digest``)."""
    return name.split("@")[0] if "@" in name else name.rsplit(":", 1)[0]


def _kept_by_digest(replaced: dict, manifests: list[dict]) -> list[dict]:
    """As docker does, an image whose name moved to another image stays,
    untagged but known by the digest its registry served (so a run of
    ``repo@digest`` — a pin of containers.lock — finds it with no registry),
    unless another name still reaches it. Returns the entry to add, if any."""
    repo_digest = replaced["annotations"].get(REPO_DIGEST)
    if not repo_digest or any(other["digest"] == replaced["digest"] for other in manifests):
        return []
    name = f"{repository_of(replaced['annotations'][REF_NAME])}@{repo_digest}"
    return [dict(replaced, annotations={**replaced["annotations"], REF_NAME: name})]


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:`` digest; anything else is refused (it
    would also be a path outside ``blobs/``)."""
    match = _DIGEST_RE.match(digest or "")
    if not match:
        raise IntegrityError(f"'{digest}' is not a sha256 digest",
                             hint="only sha256 content is supported")
    return match.group(1)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ContentStore:
    """The OCI image layout of one storage root (a :class:`storage.Layout`)."""

    def __init__(self, layout: storage.Layout):
        self.layout = layout
        self.root = layout.oci
        self.blobs = self.root / "blobs" / "sha256"
        self._index_path = self.root / "index.json"
        if not (self._index_path.exists() and (self.root / "oci-layout").exists()):
            self._create()

    def _create(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.layout.ingest.mkdir(parents=True, exist_ok=True)
        with self._images_lock():
            if not (self.root / "oci-layout").exists():
                storage.write_json(self.root / "oci-layout", {"imageLayoutVersion": OCI_LAYOUT_VERSION})
            if not self._index_path.exists():
                self._write_index([])

    def __repr__(self) -> str:
        return f"ContentStore({str(self.root)!r})"

    # --- blobs ------------------------------------------------------------

    def path(self, digest: str):
        return self.blobs / digest_hex(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).exists()

    def open(self, digest: str) -> IO[bytes]:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the image store",
                           hint="pull the image again") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as handle:
            return handle.read()

    def read_json(self, digest: str):
        return json.loads(self.read(digest))

    def ingest(self, digest: str, size: int | None = None) -> "Ingest":
        """A context manager through which the blob ``digest`` of ``size``
        bytes enters the store; see :class:`Ingest`."""
        return Ingest(self, digest, size)

    def write_bytes(self, data: bytes, expected_digest: str | None = None,
                    media_type: str = "application/octet-stream") -> dict:
        """Store a small blob held in memory; returns its descriptor."""
        digest = expected_digest or sha256_digest(data)
        with self.ingest(digest, len(data)) as ingest:
            if not ingest.exists:
                ingest.reset()
                ingest.write(data)
                ingest.commit()
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    # --- the index: images by name ------------------------------------------

    def _images_lock(self) -> storage.FileLock:
        return self.layout.lock("images")

    def _read_index(self) -> dict:
        return storage.read_json(self._index_path)

    def _write_index(self, manifests: list) -> None:
        storage.write_json(self._index_path, {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": manifests,
        })

    def images(self) -> list[dict]:
        """The descriptors of all named images, in the order they were added."""
        return [entry for entry in self._read_index().get("manifests", [])
                if REF_NAME in entry.get("annotations", {})]

    def get(self, name: str) -> dict | None:
        """The descriptor stored under the full name ``name``, or None."""
        for entry in self.images():
            if entry["annotations"][REF_NAME] == name:
                return entry
        return None

    def set(self, name: str, descriptor: dict, annotations: dict | None = None) -> dict:
        """Point ``name`` at ``descriptor`` (a manifest already in the store),
        replacing what the name pointed at before."""
        if not self.has(descriptor["digest"]):
            raise NotFound(f"cannot name {name}: manifest {descriptor['digest']} is not in the image store")
        entry = {key: value for key, value in descriptor.items() if key != "annotations"}
        entry["annotations"] = {**(annotations or {}), REF_NAME: name}
        with self._images_lock():
            manifests = self._read_index().get("manifests", [])
            for position, existing in enumerate(manifests):
                if existing.get("annotations", {}).get(REF_NAME) == name:
                    manifests[position] = entry
                    manifests += _kept_by_digest(existing, manifests)
                    break
            else:
                manifests.append(entry)
            self._write_index(manifests)
        return entry

    def remove(self, name: str) -> dict:
        """Drop the name ``name``; returns the descriptor it pointed at.
        Blobs stay until :meth:`gc`."""
        with self._images_lock():
            manifests = self._read_index().get("manifests", [])
            kept = [entry for entry in manifests
                    if entry.get("annotations", {}).get(REF_NAME) != name]
            if len(kept) == len(manifests):
                raise ImageNotFound(f"No such image: {name}")
            self._write_index(kept)
        return next(entry for entry in manifests if entry.get("annotations", {}).get(REF_NAME) == name)

    # --- garbage collection -----------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[None]:
        """Hold while adding blobs that no index entry reaches yet (a pull):
        :meth:`gc` waits until every lease is released."""
        with self.layout.lock("gc", shared=True):
            yield

    def reachable(self) -> tuple[set[str], set[str]]:
        """``(blob digests, layer diff IDs)`` reachable from the index: each
        image's manifest (and the index it came from, when stored), its
        config, its layers, and the diff IDs its config lists."""
        blobs: set[str] = set()
        diff_ids: set[str] = set()
        pending = []
        for entry in self.images():
            pending.append((entry["digest"], entry.get("mediaType")))
            repo_digest = entry["annotations"].get(REPO_DIGEST)
            if repo_digest and _DIGEST_RE.match(repo_digest):
                pending.append((repo_digest, None))
        while pending:
            digest, media_type = pending.pop()
            if digest in blobs or not self.has(digest):
                continue
            blobs.add(digest)
            document = self._document(digest)
            media_type = media_type or document.get("mediaType")
            if media_type in INDEX_MEDIA_TYPES or "manifests" in document:
                pending.extend((child["digest"], child.get("mediaType"))
                               for child in document.get("manifests", []))
                continue
            config = document.get("config", {}).get("digest")
            if config and self.has(config):
                blobs.add(config)
                diff_ids.update(self._document(config).get("rootfs", {}).get("diff_ids", []))
            blobs.update(layer["digest"] for layer in document.get("layers", []))
        return blobs, diff_ids

    def _document(self, digest: str) -> dict:
        """A JSON blob, or {} for one that is not a JSON object (it reaches
        nothing further; collecting garbage must not fail on it)."""
        try:
            document = self.read_json(digest)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}

    def gc(self, snapshots=None, keep_snapshots_for: Iterable[str] = ()) -> dict:
        """Remove blobs no image reaches, abandoned partial downloads and,
        given the :class:`~.snapshots.Snapshots`, snapshots of layers no image
        uses except the diff IDs in ``keep_snapshots_for`` (those of
        containers). Returns ``{"blobs": [...], "snapshots": [...],
        "bytes": n}``: what was removed."""
        removed = {"blobs": [], "snapshots": [], "bytes": 0}
        with self.layout.lock("gc"), self._images_lock():
            keep_blobs, keep_layers = self.reachable()
            for entry in os.scandir(self.blobs):
                digest = "sha256:" + entry.name
                if digest in keep_blobs or not _DIGEST_RE.match(digest):
                    continue
                removed["bytes"] += entry.stat(follow_symlinks=False).st_size
                os.unlink(entry.path)
                removed["blobs"].append(digest)
            self._remove_abandoned_ingests()
            if snapshots is not None:
                removed["snapshots"] = snapshots.prune(keep_layers | set(keep_snapshots_for))
        if removed["blobs"]:
            storage.fsync_dir(self.blobs)
        return removed

    def _remove_abandoned_ingests(self) -> None:
        for entry in os.scandir(self.layout.ingest):
            if not entry.name.endswith(".partial"):
                continue
            lock = storage.FileLock(self.layout.ingest / (entry.name[:-len(".partial")] + ".lock"),
                                    blocking=False)
            if lock.acquire():  # else a download is using it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                lock.remove_and_release()


class Ingest:
    """One blob entering the store, as a context manager.

    On entry it takes the blob's lock (waiting for another process ingesting
    the same digest) and then either finds the blob committed (``exists`` is
    true: nothing to do) or opens ``ingest/<hex>.partial``, re-hashing the
    bytes an earlier, interrupted download left there: ``offset`` says how
    many, so the download resumes from there (a Range request). If the
    source cannot resume, :meth:`reset` starts over. :meth:`write` hashes
    and appends; :meth:`commit` checks size and digest and makes the blob
    visible. Leaving without a commit keeps the partial file for a resume,
    except after an :class:`~jupyter_containers.errors.IntegrityError`, which
    discards it.
    """

    def __init__(self, store: ContentStore, digest: str, size: int | None):
        self.digest = digest
        self.size = size
        hex_digest = digest_hex(digest)
        self._store = store
        self._lock = storage.FileLock(store.layout.ingest / f"{hex_digest}.lock")
        self._partial = store.layout.ingest / f"{hex_digest}.partial"
        self._blob = store.blobs / hex_digest
        self._fd: int | None = None
        self._hash = hashlib.sha256()
        self.offset = 0
        self.exists = False

    @property
    def partial_path(self):
        """Where the bytes of an interrupted download wait (``offset`` of them)."""
        return self._partial

    def __repr__(self) -> str:
        state = "committed" if self.exists else f"{self.offset}/{self.size}"
        return f"<Ingest {self.digest} {state}>"

    def __enter__(self) -> "Ingest":
        self._lock.acquire()
        try:
            if self._blob.exists():
                self.exists = True
                self.offset = self._blob.stat().st_size
                return self
            self._fd = os.open(self._partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._rehash()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.exists or not self._partial.exists():
            self._lock.remove_and_release()
        else:
            self._lock.release()

    def _rehash(self) -> None:
        self._hash = hashlib.sha256()
        self.offset = 0
        os.lseek(self._fd, 0, os.SEEK_SET)
        while chunk := os.read(self._fd, _CHUNK):
            self._hash.update(chunk)
            self.offset += len(chunk)
        if self.size is not None and self.offset > self.size:
            self.reset()

    def reset(self) -> None:
        """Forget the bytes already there and start from offset 0."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data) -> None:
        if self.size is not None and self.offset + len(data) > self.size:
            self._discard()
            raise IntegrityError(f"blob {self.digest} is larger than the {self.size} bytes its descriptor says",
                                 hint="the registry sent other content; it was discarded")
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.offset += len(data)

    def commit(self) -> None:
        """Verify and make the blob visible in ``blobs/``."""
        if self.exists:
            return
        if self.size is not None and self.offset != self.size:
            self._discard()
            raise IntegrityError(f"blob {self.digest} ended after {self.offset} of its {self.size} bytes",
                                 hint="the download was cut short; pull again")
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            self._discard()
            raise IntegrityError(f"blob {self.digest} does not match its digest (its content is {actual})",
                                 hint="the registry sent other content; it was discarded")
        os.fsync(self._fd)
        os.rename(self._partial, self._blob)
        storage.fsync_dir(self._blob.parent)
        self.exists = True

    def _discard(self) -> None:
        os.close(self._fd)
        self._fd = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._partial)
