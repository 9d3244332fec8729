"""Write OCI image layouts and OCI archives, with no external tool.

A :class:`LayoutWriter` holds one image layout directory (``oci-layout``,
``index.json``, ``blobs/sha256/…``). Layers are written by a
:class:`LayerWriter` from a directory tree, from the changes between two
trees, from single entries (whiteouts, devices, hardlinks to a lower layer)
or from an existing tar stream; each is compressed with gzip, zstd or not at
all. :meth:`LayoutWriter.add_image` writes the image config (docker's config
fields, history, ``rootfs.diff_ids``) and the manifest; :meth:`add_index`
writes a multi-platform index; :meth:`tag` names a manifest or index with an
``org.opencontainers.image.ref.name`` annotation.

The output is reproducible: entries are sorted by their byte names, owners
are numeric, modification times are clamped to ``SOURCE_DATE_EPOCH`` (the
``source_date_epoch`` argument, or the environment variable), gzip streams
carry no name and mtime 0, and JSON is written canonically. The same inputs
give the same digests. skopeo (``oci:DIR:REF``), umoci and registries accept
the result.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import platform as _platform
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

from ..errors import UserError
from ..storage import fsync_dir, write_atomic
from .mediatypes import OCI_CONFIG as CONFIG_MEDIA_TYPE
from .mediatypes import OCI_INDEX as INDEX_MEDIA_TYPE
from .mediatypes import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, layer_compression
from .mediatypes import OCI_MANIFEST as MANIFEST_MEDIA_TYPE
from .store import REF_NAME as REF_NAME_ANNOTATION
from .unpack import OPAQUE_WHITEOUT, WHITEOUT_PREFIX

LAYER_MEDIA_TYPES = {"gzip": OCI_LAYER_GZIP, "zstd": OCI_LAYER_ZSTD, "none": OCI_LAYER}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

GZIP_LEVEL = 6
ZSTD_LEVEL = 3
COPY_CHUNK = 1 << 20
# Extended attributes carried into layers: what images use (file
# capabilities, user data). SELinux labels and overlayfs' trusted.* belong to
# the host that built the tree, not to the image.
XATTR_PREFIXES = ("user.", "security.capability")

# Debian architecture / Python machine name → OCI platform.
_OCI_ARCHITECTURES = {
    "x86_64": ("amd64", None), "amd64": ("amd64", None),
    "aarch64": ("arm64", None), "arm64": ("arm64", None),
    "armhf": ("arm", "v7"), "armv7l": ("arm", "v7"), "armel": ("arm", "v5"),
    "i386": ("386", None), "i686": ("386", None),
    "ppc64el": ("ppc64le", None), "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None), "riscv64": ("riscv64", None),
}


def oci_platform(machine: str | None = None) -> dict:
    """The OCI platform of a Debian architecture or machine name (the host's
    by default): ``{"os": "linux", "architecture": "amd64"}``."""
    machine = machine or _platform.machine()
    try:
        architecture, variant = _OCI_ARCHITECTURES[machine]
    except KeyError:
        raise UserError(f"unknown architecture {machine!r}",
                        hint=f"use one of {', '.join(sorted(_OCI_ARCHITECTURES))}") from None
    result = {"architecture": architecture, "os": "linux"}
    if variant:
        result["variant"] = variant
    return result


def resolve_source_date_epoch(value: int | None = None) -> int | None:
    """``value``, else ``$SOURCE_DATE_EPOCH``, else None (times kept as found)."""
    if value is not None:
        return int(value)
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise UserError(f"SOURCE_DATE_EPOCH={env!r} is not a number of seconds",
                            hint="set it to an integer such as 1704067200") from None
    return None


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    annotations: dict | None = None

    def to_json(self) -> dict:
        result = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            result["platform"] = self.platform
        if self.annotations:
            result["annotations"] = self.annotations
        return result

    @classmethod
    def from_json(cls, value: Mapping) -> "Descriptor":
        return cls(value["mediaType"], value["digest"], value["size"],
                   value.get("platform"), value.get("annotations"))


@dataclass(frozen=True)
class Layer:
    """A written layer: its blob's descriptor and its diff ID (the digest of
    the uncompressed tar), with the history line that made it."""

    blob: Descriptor
    diff_id: str
    created_by: str = ""


@dataclass
class Healthcheck:
    """Docker's HEALTHCHECK: ``test`` as in the config (``["CMD", …]`` or
    ``["CMD-SHELL", "…"]``); durations in seconds."""

    test: list[str]
    interval: float = 0
    timeout: float = 0
    start_period: float = 0
    retries: int = 0

    def to_json(self) -> dict:
        result = {"Test": list(self.test)}
        for key, seconds in (("Interval", self.interval), ("Timeout", self.timeout),
                             ("StartPeriod", self.start_period)):
            if seconds:
                result[key] = int(seconds * 1_000_000_000)
        if self.retries:
            result["Retries"] = self.retries
        return result


@dataclass
class ImageConfig:
    """The runtime configuration of an image, in docker's terms."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=lambda: [f"PATH={DEFAULT_PATH}"])
    working_dir: str = ""
    user: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "3306/tcp"
    volumes: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None

    def to_json(self) -> dict:
        result: dict = {}
        for key, value in (("Entrypoint", self.entrypoint), ("Cmd", self.cmd), ("Env", self.env),
                           ("WorkingDir", self.working_dir), ("User", self.user),
                           ("Labels", self.labels), ("StopSignal", self.stop_signal)):
            if value:
                result[key] = value
        if self.exposed_ports:
            result["ExposedPorts"] = {port if "/" in port else f"{port}/tcp": {}
                                      for port in self.exposed_ports}
        if self.volumes:
            result["Volumes"] = {volume: {} for volume in self.volumes}
        if self.healthcheck:
            result["Healthcheck"] = self.healthcheck.to_json()
        return result


class _HashingWriter(io.RawIOBase):
    """Passes bytes on to ``target`` while counting and hashing them."""

    def __init__(self, target: BinaryIO):
        self.target = target
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.discarding = False  # set when the output is abandoned

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if not self.discarding:
            self.sha256.update(data)
            self.size += len(data)
            self.target.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def _compressor(compression: str, target: BinaryIO) -> BinaryIO:
    if compression == "gzip":
        return gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=target, mtime=0)
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(target, closefd=False)
    return _Uncompressed(target)


class _Uncompressed:
    """The "none" compression: bytes pass through; closing leaves the target open."""

    def __init__(self, target: BinaryIO):
        self.write = target.write

    def close(self) -> None:
        pass


def open_layer_blob(path: os.PathLike | str, media_type: str) -> BinaryIO:
    """The uncompressed tar stream of a layer blob of the given media type."""
    compression = layer_compression(media_type)
    handle = open(path, "rb")
    if compression == "gzip":
        return gzip.GzipFile(fileobj=handle, mode="rb")
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(handle, closefd=True)
    return handle


def _read_xattrs(path: str) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    result = {}
    for name in sorted(names):
        if name.startswith(XATTR_PREFIXES):
            with contextlib.suppress(OSError):
                result[name] = os.getxattr(path, name, follow_symlinks=False)
    return result


def _sorted_names(directory: str) -> list[str]:
    return sorted(os.listdir(directory), key=os.fsencode)


class LayerWriter:
    """Writes one layer into a layout. Use as a context manager, or call
    :meth:`close` to finish; the blob appears in the layout only whole.

    Entries are written in the order they are added; :meth:`add_tree` adds a
    tree in sorted order. Owners are numeric (no names), times are clamped to
    ``source_date_epoch``.
    """

    def __init__(self, blobs: Path, compression: str = "gzip", source_date_epoch: int | None = None,
                 created_by: str = ""):
        if compression not in LAYER_MEDIA_TYPES:
            raise UserError(f"unknown layer compression {compression!r}",
                            hint="use gzip, zstd or none")
        self.compression = compression
        self.epoch = source_date_epoch
        self.created_by = created_by
        self._blobs = blobs
        fd, self._temp = tempfile.mkstemp(prefix=".layer.", suffix=".tmp", dir=blobs)
        self._file = os.fdopen(fd, "wb")
        self._blob = _HashingWriter(self._file)
        self._compressed = _compressor(compression, self._blob)
        self._tar_bytes = _HashingWriter(self._compressed)
        self._tar: tarfile.TarFile | None = None
        self._copied_stream = False
        self._hardlinks: dict[tuple[int, int], str] = {}
        self.layer: Layer | None = None

    # -- entries -----------------------------------------------------------------

    @property
    def tar(self) -> tarfile.TarFile:
        if self._copied_stream:
            raise UserError("a layer copied from a tar stream cannot take further entries")
        if self._tar is None:
            self._tar = tarfile.open(fileobj=self._tar_bytes, mode="w|", format=tarfile.PAX_FORMAT,
                                     encoding="utf-8", errors="surrogateescape")
        return self._tar

    def _mtime(self, mtime: float) -> int:
        mtime = int(mtime)
        return min(mtime, self.epoch) if self.epoch is not None else mtime

    def add(self, info: tarfile.TarInfo, data: BinaryIO | bytes | None = None,
            xattrs: Mapping[str, bytes] | None = None) -> None:
        """Add one entry. ``info.name`` is relative to the root; owners are
        written as numbers only."""
        info.name = info.name.strip("/")
        info.uname = info.gname = ""
        info.mtime = self._mtime(info.mtime)
        for name, value in sorted((xattrs or {}).items()):
            # PAX records are text to tarfile; surrogateescape carries the
            # raw bytes of binary values (security.capability) through.
            info.pax_headers["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
        if isinstance(data, bytes):
            info.size = len(data)
            data = io.BytesIO(data)
        self.tar.addfile(info, data if info.isreg() else None)

    def add_path(self, path: os.PathLike | str, name: str) -> None:
        """Add the file system object at ``path`` (not following a symlink) as
        ``name``: its type, mode (setuid, setgid and sticky included), owner,
        time, link target, device numbers and extended attributes. A second
        name of a file already added becomes a hardlink to the first."""
        path = os.fspath(path)
        st = os.lstat(path)
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mtime = st.st_mtime
        xattrs = _read_xattrs(path)
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._hardlinks:
                info.type, info.linkname = tarfile.LNKTYPE, self._hardlinks[key]
                self.add(info)
                return
            if st.st_nlink > 1:
                self._hardlinks[key] = name.strip("/")
            info.size = st.st_size
            with open(path, "rb") as handle:
                self.add(info, handle, xattrs)
            return
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:  # sockets have no tar representation; docker skips them too
            return
        self.add(info, None, xattrs)

    def add_tree(self, root: os.PathLike | str, prefix: str = "") -> None:
        """Add everything below ``root`` (not ``root`` itself), parents before
        children, siblings sorted by their byte names."""
        root = os.fspath(root)
        for name in _sorted_names(root):
            path = os.path.join(root, name)
            entry = f"{prefix}{name}"
            self.add_path(path, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                self.add_tree(path, entry + "/")

    def add_changes(self, base: "TreeIndex", root: os.PathLike | str) -> None:
        """Add what makes ``base`` (the index of the layers below) into the
        tree at ``root``: new and changed entries, and a whiteout for each
        path that is gone. Modification times alone are no change. Parent
        directories of a change are added with it, as docker does."""
        root = os.fspath(root)
        present: set[str] = set()
        written_dirs: set[str] = set()

        def add_parents(name: str) -> None:
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                parent = "/".join(parts[:depth])
                if parent not in written_dirs:
                    written_dirs.add(parent)
                    self.add_path(os.path.join(root, parent), parent)

        def walk(directory: str, prefix: str) -> None:
            for name in _sorted_names(directory):
                path = os.path.join(directory, name)
                entry = f"{prefix}{name}"
                present.add(entry)
                is_dir = os.path.isdir(path) and not os.path.islink(path)
                if base.get(entry) != entry_signature(path):
                    add_parents(entry)
                    self.add_path(path, entry)
                    if is_dir:
                        written_dirs.add(entry)
                if is_dir:
                    walk(path, entry + "/")

        walk(root, "")
        for gone in sorted(set(base) - present, key=os.fsencode):
            parent, _, name = gone.rpartition("/")
            if parent and parent not in present:
                continue  # a whiteout of an ancestor covers it
            add_parents(gone)
            self.add_whiteout(gone)

    def add_whiteout(self, name: str) -> None:
        """Hide ``name`` of the layers below."""
        parent, _, base = name.strip("/").rpartition("/")
        self.add(self._marker(f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base))

    def add_opaque(self, directory: str) -> None:
        """Hide everything the layers below have in ``directory``."""
        self.add(self._marker(f"{directory.strip('/')}/{OPAQUE_WHITEOUT}"))

    def _marker(self, name: str) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.mtime = self.epoch or 0
        return info

    def copy_tar(self, stream: BinaryIO) -> None:
        """Use an existing uncompressed tar stream as the layer, byte for byte."""
        if self._tar is not None:
            raise UserError("a layer with entries cannot also copy a tar stream")
        self._copied_stream = True
        while chunk := stream.read(COPY_CHUNK):
            self._tar_bytes.write(chunk)

    # -- finishing -------------------------------------------------------------

    def close(self) -> Layer:
        if self.layer is not None:
            return self.layer
        try:
            if self._tar is not None or not self._copied_stream:
                self.tar.close()
            self._compressed.close()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            blob = Descriptor(LAYER_MEDIA_TYPES[self.compression], self._blob.digest, self._blob.size)
            os.chmod(self._temp, 0o644)
            os.rename(self._temp, self._blobs / blob.digest.split(":", 1)[1])
        except BaseException:
            self.abort()
            raise
        self.layer = Layer(blob, self._tar_bytes.digest, self.created_by)
        return self.layer

    def abort(self) -> None:
        # tarfile flushes its buffer when collected; nothing must reach the
        # closed file after this.
        self._tar_bytes.discarding = True
        with contextlib.suppress(Exception):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._temp)

    def __enter__(self) -> "LayerWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# -- comparing trees with layers --------------------------------------------------

def entry_signature(path: str) -> tuple:
    """What makes an entry the same as another for :meth:`LayerWriter.add_changes`:
    type, mode, owner, link target or device, xattrs, and content."""
    st = os.lstat(path)
    kind = stat.S_IFMT(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as handle:
            detail = _sha256_stream(handle)
    elif stat.S_ISLNK(st.st_mode):
        detail = os.fsencode(os.readlink(path)).hex()
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        detail = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    else:
        detail = ""
    xattrs = tuple(sorted((name, value.hex()) for name, value in _read_xattrs(path).items()))
    return (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, detail, xattrs)


def _sha256_stream(handle: BinaryIO) -> str:
    sha = hashlib.sha256()
    while chunk := handle.read(COPY_CHUNK):
        sha.update(chunk)
    return sha.hexdigest()


_TAR_KINDS = {tarfile.REGTYPE: stat.S_IFREG, tarfile.AREGTYPE: stat.S_IFREG,
              tarfile.CONTTYPE: stat.S_IFREG, tarfile.DIRTYPE: stat.S_IFDIR,
              tarfile.SYMTYPE: stat.S_IFLNK, tarfile.CHRTYPE: stat.S_IFCHR,
              tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}


def entry_name(name: str) -> str:
    """A tar member name as a plain relative path: ``./etc/`` → ``etc``."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


class TreeIndex(dict):
    """Path → :func:`entry_signature` of what a stack of layers holds, built
    by reading their tar streams (applying whiteouts), never unpacking them."""

    def add_layer(self, stream: BinaryIO) -> "TreeIndex":
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8", errors="surrogateescape") as tar:
            for member in tar:
                name = entry_name(member.name)
                parent, _, base = name.rpartition("/")
                if base == OPAQUE_WHITEOUT:
                    self._remove_below(parent)
                    continue
                if base.startswith(WHITEOUT_PREFIX):
                    hidden = f"{parent}/{base[len(WHITEOUT_PREFIX):]}" if parent else base[len(WHITEOUT_PREFIX):]
                    self.pop(hidden, None)
                    self._remove_below(hidden)
                    continue
                if member.islnk():
                    target = self.get(entry_name(member.linkname))
                    if target is not None:
                        self[name] = target
                    continue
                if member.isreg():
                    detail = _sha256_stream(tar.extractfile(member))
                elif member.issym():
                    detail = os.fsencode(member.linkname).hex()
                elif member.ischr() or member.isblk():
                    detail = f"{member.devmajor}:{member.devminor}"
                else:
                    detail = ""
                xattrs = tuple(sorted(
                    (key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape").hex())
                    for key, value in member.pax_headers.items()
                    if key.startswith("SCHILY.xattr.") and key[len("SCHILY.xattr."):].startswith(XATTR_PREFIXES)))
                if not member.isdir():
                    self._remove_below(name)  # a non-directory replaces a directory
                self[name] = (_TAR_KINDS.get(member.type, stat.S_IFREG), member.mode, member.uid,
                              member.gid, detail, xattrs)
        return self

    def _remove_below(self, directory: str) -> None:
        prefix = f"{directory}/" if directory else ""
        for name in [name for name in self if name.startswith(prefix) and name != directory]:
            del self[name]


# -- layouts ---------------------------------------------------------------------

class LayoutWriter:
    """An OCI image layout directory being written. Blobs are content
    addressed and appear whole; ``index.json`` is replaced atomically by
    :meth:`save` (also on leaving a ``with`` block without error)."""

    def __init__(self, path: os.PathLike | str, source_date_epoch: int | None = None):
        self.path = Path(path)
        self.blobs = self.path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.epoch = resolve_source_date_epoch(source_date_epoch)
        oci_layout = self.path / "oci-layout"
        if not oci_layout.exists():
            write_atomic(oci_layout, canonical_json({"imageLayoutVersion": "1.0.0"}))
        existing = self.path / "index.json"
        self.manifests: list[Descriptor] = []
        if existing.exists():
            self.manifests = [Descriptor.from_json(entry)
                              for entry in json.loads(existing.read_bytes()).get("manifests", [])]

    def layer(self, compression: str = "gzip", created_by: str = "") -> LayerWriter:
        return LayerWriter(self.blobs, compression, self.epoch, created_by)

    def add_blob(self, data: bytes, media_type: str) -> Descriptor:
        digest = hashlib.sha256(data).hexdigest()
        target = self.blobs / digest
        if not target.exists():
            write_atomic(target, data)
        return Descriptor(media_type, "sha256:" + digest, len(data))

    def blob_path(self, descriptor: Descriptor) -> Path:
        return blob_path(self.path, descriptor.digest)

    def import_blob(self, source_layout: os.PathLike | str, digest: str) -> None:
        """Bring the blob ``digest`` of another layout into this one (a
        hardlink when both are on one file system)."""
        source = blob_path(source_layout, digest)
        target = blob_path(self.path, digest)
        if target.exists():
            return
        try:
            os.link(source, target)
        except OSError:
            with open(source, "rb") as handle, tempfile.NamedTemporaryFile(
                    dir=self.blobs, prefix=".import.", delete=False) as out:
                while chunk := handle.read(COPY_CHUNK):
                    out.write(chunk)
            os.rename(out.name, target)

    def add_image(self, config: ImageConfig, layers: list[Layer], *, platform: dict | None = None,
                  annotations: dict | None = None) -> Descriptor:
        """Write the image config and manifest; return the manifest's
        descriptor (carrying ``platform``, for an index)."""
        platform = platform or oci_platform()
        created = rfc3339(self.epoch) if self.epoch is not None else None
        history = []
        for layer in layers:
            entry = {"created_by": layer.created_by or "jupyter-containers build"}
            if created:
                entry["created"] = created
            history.append(entry)
        image = {
            "architecture": platform["architecture"],
            "os": platform["os"],
            "config": config.to_json(),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": history,
        }
        if platform.get("variant"):
            image["variant"] = platform["variant"]
        if created:
            image["created"] = created
        config_blob = self.add_blob(canonical_json(image), CONFIG_MEDIA_TYPE)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config_blob.to_json(),
            "layers": [layer.blob.to_json() for layer in layers],
        }
        if annotations:
            manifest["annotations"] = annotations
        written = self.add_blob(canonical_json(manifest), MANIFEST_MEDIA_TYPE)
        return Descriptor(written.media_type, written.digest, written.size, platform=platform)

    def add_index(self, manifests: list[Descriptor], annotations: dict | None = None) -> Descriptor:
        """Write a multi-platform image index of the given manifests."""
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
                 "manifests": [manifest.to_json() for manifest in manifests]}
        if annotations:
            index["annotations"] = annotations
        return self.add_blob(canonical_json(index), INDEX_MEDIA_TYPE)

    def tag(self, descriptor: Descriptor, ref: str) -> None:
        """Name ``descriptor`` ``ref`` in ``index.json`` (replacing what had
        that name). ``skopeo inspect oci:DIR:REF`` finds it."""
        self.manifests = [entry for entry in self.manifests
                          if (entry.annotations or {}).get(REF_NAME_ANNOTATION) != ref]
        annotations = dict(descriptor.annotations or {}, **{REF_NAME_ANNOTATION: ref})
        self.manifests.append(Descriptor(descriptor.media_type, descriptor.digest, descriptor.size,
                                         descriptor.platform, annotations))

    def save(self) -> None:
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
                 "manifests": [entry.to_json() for entry in self.manifests]}
        write_atomic(self.path / "index.json", json.dumps(index, indent=1, sort_keys=True).encode() + b"\n")
        fsync_dir(self.blobs)

    def __enter__(self) -> "LayoutWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.save()


def blob_path(layout: os.PathLike | str, digest: str) -> Path:
    """Where the blob ``digest`` (``sha256:…``) lives in a layout."""
    return Path(layout) / "blobs" / "sha256" / digest.split(":", 1)[-1]


def read_index(layout: os.PathLike | str) -> dict[str, Descriptor]:
    """Ref name → descriptor of a layout's ``index.json``."""
    index = json.loads((Path(layout) / "index.json").read_bytes())
    return {entry["annotations"][REF_NAME_ANNOTATION]: Descriptor.from_json(entry)
            for entry in index.get("manifests", [])
            if REF_NAME_ANNOTATION in entry.get("annotations", {})}


def read_blob_json(layout: os.PathLike | str, descriptor: Descriptor) -> dict:
    return json.loads(blob_path(layout, descriptor.digest).read_bytes())


def image_layers(layout: os.PathLike | str, ref: str) -> list[Layer]:
    """The layers of the single-platform image named ``ref`` in a layout."""
    try:
        manifest = read_blob_json(layout, read_index(layout)[ref])
    except KeyError:
        raise UserError(f"no image named {ref!r} in the layout {layout}") from None
    config = read_blob_json(layout, Descriptor.from_json(manifest["config"]))
    history = [entry.get("created_by", "") for entry in config.get("history", [])
               if not entry.get("empty_layer")]
    return [Layer(Descriptor.from_json(blob), diff_id, created_by)
            for blob, diff_id, created_by in zip(manifest["layers"], config["rootfs"]["diff_ids"], history)]


def write_oci_archive(layout: os.PathLike | str, archive: os.PathLike | str) -> None:
    """Write the layout as an OCI archive (a tar of the layout directory, as
    ``skopeo … oci-archive:FILE:REF`` reads), reproducibly and atomically."""
    layout = Path(layout)
    archive = Path(archive)
    with tempfile.NamedTemporaryFile(dir=archive.parent, prefix=f".{archive.name}.", delete=False) as out:
        try:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for path in _layout_files(layout):
                    info = tar.gettarinfo(str(path), str(path.relative_to(layout)))
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mtime = 0
                    info.mode = 0o755 if info.isdir() else 0o644
                    if info.isreg():
                        with open(path, "rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            os.unlink(out.name)
            raise
    os.rename(out.name, archive)


def _layout_files(layout: Path) -> Iterator[Path]:
    for name in ("oci-layout", "index.json", "blobs", "blobs/sha256"):
        yield layout / name
    for name in sorted(os.listdir(layout / "blobs" / "sha256")):
        if not name.startswith("."):
            yield layout / "blobs" / "sha256" / name
