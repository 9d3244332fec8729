"""``save`` and ``load``: images as tar archives, so a classroom can carry
them offline.

``docker-archive`` is what ``docker save`` writes since Docker 25: a
``manifest.json`` (read by ``docker load`` of any version) beside an OCI image
layout (``oci-layout``, ``index.json``, ``blobs/``), so the same file also
loads with OCI tools. ``oci-archive`` is the OCI image layout alone (as
``skopeo copy … oci-archive:`` and ``podman save --format oci-archive``
write). ``load`` accepts both, and older docker archives whose layers are
``<id>/layer.tar`` files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time

from .. import events
from ..errors import IntegrityError, UserError
from . import mediatypes
from . import reference as references
from .platform import select_platform
from .store import REF_NAME, REPO_DIGEST, ContentStore, digest_hex

_CHUNK = 1 << 20


# --- save ---------------------------------------------------------------------

def save(store: ContentStore, images: list[tuple[str, dict]], fileobj, *, format: str = "docker-archive") -> None:
    """Write the images (``(name, index entry)`` pairs) to ``fileobj``."""
    if format not in ("docker-archive", "oci-archive"):
        raise UserError(f"unknown archive format '{format}'", hint="use docker-archive or oci-archive")
    blobs: list[str] = []
    index_manifests = []
    docker_manifest = []
    for name, entry in images:
        manifest = store.read_json(entry["digest"])
        config_digest = manifest["config"]["digest"]
        layer_digests = [layer["digest"] for layer in manifest.get("layers", [])]
        for digest in [entry["digest"], config_digest, *layer_digests]:
            if digest not in blobs:
                blobs.append(digest)
        descriptor = {k: v for k, v in entry.items() if k != "annotations"}
        annotations = {REF_NAME: name}
        if "@" not in name:
            annotations["io.containerd.image.name"] = name
        descriptor["annotations"] = annotations
        index_manifests.append(descriptor)
        tag = references.parse(name, default_tag=False)
        docker_manifest.append({
            "Config": f"blobs/sha256/{digest_hex(config_digest)}",
            "RepoTags": [tag.familiar] if tag.tag and not tag.digest else [],
            "Layers": [f"blobs/sha256/{digest_hex(d)}" for d in layer_digests],
        })
    now = time.time()
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), now)
        _add_bytes(tar, "index.json", json.dumps({
            "schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": index_manifests}).encode(), now)
        if format == "docker-archive":
            _add_bytes(tar, "manifest.json", json.dumps(docker_manifest).encode(), now)
        _add_directory(tar, "blobs", now)
        _add_directory(tar, "blobs/sha256", now)
        for digest in blobs:
            path = store.path(digest)
            info = tar.gettarinfo(str(path), f"blobs/sha256/{digest_hex(digest)}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with open(path, "rb") as handle:
                tar.addfile(info, handle)


def _add_bytes(tar, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_directory(tar, name: str, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
    tar.addfile(info)


# --- load -----------------------------------------------------------------------

def load(store: ContentStore, fileobj, *, progress: events.ProgressCallback = events.ignore) -> list[str]:
    """Read an archive from ``fileobj`` into the store; return the names
    of the images it held."""
    store.layout.ingest.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="load-", dir=store.layout.ingest)
    try:
        _extract(fileobj, scratch)
        with store.lease():
            if os.path.exists(os.path.join(scratch, "manifest.json")):
                names = _load_docker(store, scratch, progress)
            elif os.path.exists(os.path.join(scratch, "index.json")):
                names = _load_oci(store, scratch, progress)
            else:
                raise UserError("the archive is neither a docker archive (manifest.json) nor an OCI layout (index.json)",
                                hint="create it with `save` (docker-archive or oci-archive)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return names


def _extract(fileobj, target: str) -> None:
    """Extract only regular files and directories with plain relative
    names; anything else makes the archive unacceptable."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                name = os.path.normpath(member.name)
                if name.startswith(("/", "..")) or "/../" in f"/{name}/":
                    raise UserError(f"the archive has an unsafe entry '{member.name}'")
                destination = os.path.join(target, name)
                if member.isdir():
                    os.makedirs(destination, exist_ok=True)
                elif member.isfile():
                    os.makedirs(os.path.dirname(destination), exist_ok=True)
                    source = tar.extractfile(member)
                    with open(destination, "wb") as handle:
                        shutil.copyfileobj(source, handle, _CHUNK)
                elif member.issym() or member.islnk():
                    # docker's old format links identical layers; resolve inside the archive
                    link = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname)) \
                        if member.issym() else os.path.normpath(member.linkname)
                    if link.startswith(("/", "..")):
                        raise UserError(f"the archive has an unsafe link '{member.name}'")
                    os.makedirs(os.path.dirname(destination), exist_ok=True)
                    shutil.copyfile(os.path.join(target, link), destination)
                else:
                    raise UserError(f"the archive has an unexpected entry '{member.name}'")
    except tarfile.TarError as error:
        raise UserError(f"cannot read the archive: {error}", hint="is it a tar file made by `save`?") from None


def _ingest_file(store: ContentStore, path: str, digest: str | None = None) -> tuple[str, int]:
    """Put a file into the store; verify it against ``digest`` if given."""
    if digest is None:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        digest = "sha256:" + hasher.hexdigest()
    size = os.path.getsize(path)
    with store.ingest(digest, size) as ingest:
        if not ingest.exists:
            ingest.reset()
            with open(path, "rb") as handle:
                while chunk := handle.read(_CHUNK):
                    ingest.write(chunk)
            ingest.commit()
    return digest, size


def _layer_media_type(path: str) -> str:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] == b"\x1f\x8b":
        return mediatypes.OCI_LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return mediatypes.OCI_LAYER_ZSTD
    return mediatypes.OCI_LAYER


def _load_docker(store: ContentStore, root: str, progress) -> list[str]:
    with open(os.path.join(root, "manifest.json"), "rb") as handle:
        entries = json.load(handle)
    names = []
    for entry in entries:
        config_path = _inside(root, entry["Config"])
        config_digest, config_size = _ingest_file(store, config_path)
        layers = []
        for layer_name in entry.get("Layers") or []:
            path = _inside(root, layer_name)
            media_type = _layer_media_type(path)
            digest, size = _ingest_file(store, path)
            progress(events.Progress("layer", events.short_id(digest), events.DONE, size, size,
                                     message="Loaded"))
            layers.append({"mediaType": media_type, "digest": digest, "size": size})
        manifest = {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                    "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest, "size": config_size},
                    "layers": layers}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        descriptor = store.write_bytes(raw, media_type=mediatypes.OCI_MANIFEST)
        tags = entry.get("RepoTags") or []
        if not tags:
            tags = [f"localhost/loaded@{descriptor['digest']}"]
        for tag in tags:
            name = str(references.parse(tag))
            store.set(name, descriptor, {REPO_DIGEST: descriptor["digest"]})
            names.append(name)
    return names


def import_layout(store: ContentStore, root, *, repository: str | None = None,
                  progress: events.ProgressCallback = events.ignore) -> list[str]:
    """Copy the images of an OCI image layout directory into the store;
    with ``repository`` a tag-only ref name ``T`` becomes ``repository:T``
    (how the lesson layouts name their images). Returns the names."""
    def name_for(ref_name: str, digest: str) -> str:
        if repository and ref_name and "/" not in ref_name and ":" not in ref_name:
            return str(references.parse(f"{repository}:{ref_name}"))
        return _name_for(ref_name, digest)

    with store.lease():
        return _load_oci(store, str(root), progress, name_for)


def _load_oci(store: ContentStore, root: str, progress, name_for=None) -> list[str]:
    with open(os.path.join(root, "index.json"), "rb") as handle:
        index = json.load(handle)
    names = []
    for descriptor in index.get("manifests", []):
        ref_name = (descriptor.get("annotations") or {}).get(REF_NAME) or ""
        name = (name_for or _name_for)(ref_name, descriptor["digest"])
        raw = _read_blob(root, descriptor["digest"])
        media_type = descriptor.get("mediaType") or json.loads(raw).get("mediaType")
        repo_digest = descriptor["digest"]
        if media_type in mediatypes.INDEXES:
            store.write_bytes(raw, descriptor["digest"], media_type)
            descriptor = select_platform(raw)
            raw = _read_blob(root, descriptor["digest"])
            media_type = descriptor.get("mediaType") or json.loads(raw).get("mediaType")
        manifest = json.loads(raw)
        for blob in [manifest["config"], *manifest.get("layers", [])]:
            _ingest_file(store, _blob_path(root, blob["digest"]), blob["digest"])
            if blob is not manifest["config"]:
                progress(events.Progress("layer", events.short_id(blob["digest"]), events.DONE,
                                         blob.get("size", 0), blob.get("size"), message="Loaded"))
        stored = store.write_bytes(raw, descriptor["digest"], media_type)
        store.set(name, stored, {REPO_DIGEST: repo_digest})
        names.append(name)
    return names


def _name_for(ref_name: str, digest: str) -> str:
    """An OCI ref name is a full reference (``busybox:1.36``,
    ``quay.io/x/y:1``) or, as skopeo and umoci write it, only a tag."""
    if "/" in ref_name or ":" in ref_name:
        return str(references.parse(ref_name))
    if ref_name:
        return str(references.parse(f"localhost/image:{ref_name}"))
    return f"localhost/image@{digest}"


def _inside(root: str, name: str) -> str:
    path = os.path.normpath(os.path.join(root, name))
    if not path.startswith(root + os.sep):
        raise UserError(f"the archive's manifest points outside the archive: {name}")
    if not os.path.isfile(path):
        raise UserError(f"the archive is incomplete: {name} is missing")
    return path


def _blob_path(root: str, digest: str) -> str:
    return _inside(root, f"blobs/sha256/{digest_hex(digest)}")


def _read_blob(root: str, digest: str) -> bytes:
    with open(_blob_path(root, digest), "rb") as handle:
        data = handle.read()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"the archive's blob {digest} does not match its digest")
    return data
