"""Pull: registry → content store → snapshots, with progress events.

The manifest (and, for a multi-platform image, the index) and the config
come first; then the layers, ``Registry.max_concurrent_downloads`` at a time.
Each layer is unpacked from the same byte stream while it downloads: one
thread writes the registry's bytes into the store's ingest and hands them on
to a second thread that unpacks them into the layer's snapshot. Both
digests are checked — the compressed blob's at the ingest's commit, the
uncompressed diff ID before the snapshot becomes visible — so nothing
unverified is ever used. A pull killed half-way resumes from the partial
blob; layers already present are not fetched again.
"""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import events
from ..errors import ContainersError, IntegrityError, UnsafeLayer, UserError
from . import mediatypes
from .platform import select_platform
from .reference import Reference
from .store import REPO_DIGEST, ContentStore

_END = object()


@dataclass
class PullResult:
    reference: Reference
    name: str  # the name the image is stored under
    manifest_digest: str
    repo_digest: str
    config_digest: str
    downloaded: bool = False
    layers: list = field(default_factory=list)

    @property
    def status(self) -> str:
        return "Downloaded newer image" if self.downloaded else "Image is up to date"


def pull(ref: Reference, registry, store: ContentStore, snapshots, *, platform=None,
         progress: events.ProgressCallback = events.ignore, max_concurrent: int = 3) -> PullResult:
    """Pull ``ref`` into the store; return where it went. ``registry`` is a
    :class:`~.registry.RegistryClient`."""
    progress(events.Progress("status", str(ref), "resolving", message=f"{ref.pull_target}: Pulling from {ref.path}"))
    descriptor, endpoint = registry.resolve(ref)
    raw, media_type, digest = registry.get_manifest(ref, ref.digest or descriptor["digest"], endpoint=endpoint)
    repo_digest = digest
    with store.lease():
        if media_type in mediatypes.INDEXES:
            store.write_bytes(raw, digest, media_type)
            chosen = select_platform(raw, platform or registry.settings.platform or None)
            raw, media_type, digest = registry.get_manifest(ref, chosen["digest"], endpoint=endpoint)
        if media_type not in mediatypes.IMAGE_MANIFESTS:
            raise UserError(f"{ref.familiar} is not a container image (its manifest is '{media_type}')")
        manifest = json.loads(raw)
        config_descriptor = manifest["config"]
        if not store.has(config_descriptor["digest"]):
            with store.ingest(config_descriptor["digest"], config_descriptor.get("size")) as ingest:
                if not ingest.exists:
                    registry.download_blob(ref, config_descriptor["digest"], ingest.write, ingest.offset,
                                           size=config_descriptor.get("size"), endpoint=endpoint)
                    ingest.commit()
        config = store.read_json(config_descriptor["digest"])
        layers = manifest.get("layers") or []
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise IntegrityError(f"{ref.familiar}: the manifest lists {len(layers)} layers but the config "
                                 f"{len(diff_ids)}", hint="the image is broken; ask its publisher")
        downloaded = _fetch_layers(ref, registry, endpoint, store, snapshots, layers, diff_ids, progress,
                                   max_concurrent)
        manifest_descriptor = store.write_bytes(raw, digest, media_type)
        name = ref.name if ref.tag and not ref.digest else f"{ref.repository}@{repo_digest}"
        entry = store.get(name)
        changed = entry is None or entry["digest"] != digest
        platform_info = {k: config[k] for k in ("architecture", "os", "variant") if config.get(k)}
        if platform_info:
            manifest_descriptor["platform"] = platform_info
        store.set(name, manifest_descriptor, {REPO_DIGEST: repo_digest})
    progress(events.Progress("status", str(ref), "done", message=f"Digest: {repo_digest}"))
    return PullResult(ref, name, digest, repo_digest, config_descriptor["digest"],
                      downloaded=downloaded or changed, layers=diff_ids)


def _fetch_layers(ref, registry, endpoint, store, snapshots, layers, diff_ids, progress, max_concurrent) -> bool:
    finished = [threading.Event() for _ in layers]
    any_downloaded = [False]

    def lowers_of(index: int):
        def wait_for_lowers():
            for position in range(index):
                finished[position].wait()
            return [snapshots.path(diff_ids[position]) for position in reversed(range(index))]
        return wait_for_lowers

    def work(index: int) -> None:
        layer = layers[index]
        layer_id = events.short_id(layer["digest"])
        try:
            if _fetch_layer(ref, registry, endpoint, store, snapshots, layer, diff_ids[index],
                            lowers_of(index), layer_id, progress):
                any_downloaded[0] = True
        except BaseException as error:
            message = str(error) if isinstance(error, ContainersError) else repr(error)
            progress(events.Progress("layer", layer_id, events.ERROR, message=message))
            raise
        finally:
            finished[index].set()

    for layer in layers:
        if layer.get("mediaType") not in mediatypes.LAYERS:
            raise UserError(f"{ref.familiar} has a layer of media type '{layer.get('mediaType')}', "
                            "which this runtime cannot unpack")
        progress(events.Progress("layer", events.short_id(layer["digest"]), events.WAITING, 0, layer.get("size")))
    with ThreadPoolExecutor(max_workers=max(1, max_concurrent), thread_name_prefix="pull") as pool:
        futures = [pool.submit(work, index) for index in range(len(layers))]
        errors = []
        for future in futures:
            try:
                future.result()
            except BaseException as error:  # noqa: BLE001 - re-raised below
                errors.append(error)
        if errors:
            raise errors[0]
    return any_downloaded[0]


def _fetch_layer(ref, registry, endpoint, store, snapshots, layer, diff_id, lowers, layer_id, progress) -> bool:
    """One layer: download into the store and unpack into its snapshot (or
    whichever of the two is missing). True if bytes were downloaded."""
    digest, size, media_type = layer["digest"], layer.get("size"), layer["mediaType"]
    if store.has(digest) and snapshots.exists(diff_id):
        progress(events.Progress("layer", layer_id, events.EXISTS, size or 0, size))
        return False
    with store.ingest(digest, size) as ingest:
        if ingest.exists:
            if not snapshots.exists(diff_id):
                progress(events.Progress("layer", layer_id, events.EXTRACTING, 0, size))
                with store.open(digest) as handle:
                    snapshots.unpack(diff_id, handle, media_type, lowers)
            progress(events.Progress("layer", layer_id, events.EXISTS, size or 0, size))
            return False
        need_snapshot = not snapshots.exists(diff_id)
        feed = _Feed() if need_snapshot else None
        unpacker = None
        if need_snapshot:
            if ingest.offset:
                # The bytes of an earlier, interrupted download come first.
                with open(ingest.partial_path, "rb") as partial:
                    while chunk := partial.read(1 << 20):
                        feed.put(chunk)
            unpacker = _Unpacker(snapshots, diff_id, feed, media_type, lowers)
            unpacker.start()
        received = [ingest.offset]

        def write(chunk: bytes) -> None:
            if unpacker is not None and isinstance(unpacker.error, UnsafeLayer):
                raise unpacker.error  # a hostile layer stops its download
            ingest.write(chunk)
            if feed is not None:
                feed.put(bytes(chunk))
            received[0] += len(chunk)
            progress(events.Progress("layer", layer_id, events.DOWNLOADING, received[0], size))

        progress(events.Progress("layer", layer_id, events.DOWNLOADING, received[0], size))
        try:
            registry.download_blob(ref, digest, write, ingest.offset, size=size, endpoint=endpoint)
        except BaseException:
            if feed is not None:
                feed.fail()
                unpacker.join()
            raise
        progress(events.Progress("layer", layer_id, events.VERIFYING, received[0], size))
        if feed is not None:
            feed.close()
            progress(events.Progress("layer", layer_id, events.EXTRACTING, received[0], size))
            unpacker.join()
            if unpacker.error is not None:
                # Bytes that don't unpack are most often bytes that don't
                # match their digest: say that, when it is so.
                ingest.commit()
                raise unpacker.error
        ingest.commit()
    progress(events.Progress("layer", layer_id, events.DONE, size or received[0], size))
    return True


class _Feed:
    """Bytes handed from the download thread to the unpacking thread, as a
    file-like ``read(n)``. Bounded, so a slow disk slows the download rather
    than filling memory."""

    def __init__(self, max_chunks: int = 64):
        self._queue: queue.Queue = queue.Queue(max_chunks)
        self._chunks: list[memoryview] = []
        self._available = 0
        self._done = False
        self._failed = False
        self.abandoned = False

    def put(self, chunk) -> None:
        while not self.abandoned:
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self.put(_END)

    def fail(self) -> None:
        self._failed = True
        self.put(_END)

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or self._available < size):
            item = self._queue.get()
            if item is _END:
                self._done = True
                if self._failed:
                    raise _DownloadFailed()
                break
            self._chunks.append(memoryview(item))
            self._available += len(item)
        if size < 0 or size > self._available:
            size = self._available
        out = bytearray()
        while len(out) < size:
            head = self._chunks[0]
            take = min(len(head), size - len(out))
            out += head[:take]
            if take == len(head):
                self._chunks.pop(0)
            else:
                self._chunks[0] = head[take:]
        self._available -= size
        return bytes(out)


class _DownloadFailed(Exception):
    """Raised inside the unpacker when the download it reads from failed."""


class _Unpacker(threading.Thread):
    def __init__(self, snapshots, diff_id, feed: _Feed, media_type, lowers):
        super().__init__(name=f"unpack-{events.short_id(diff_id)}", daemon=True)
        self.snapshots, self.diff_id, self.feed = snapshots, diff_id, feed
        self.media_type, self.lowers = media_type, lowers
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.snapshots.unpack(self.diff_id, self.feed, self.media_type, self.lowers)
        except _DownloadFailed:
            pass
        except BaseException as error:  # noqa: BLE001 - handed to the pulling thread
            self.error = error
            self.feed.abandoned = True  # don't block the download on a dead reader

