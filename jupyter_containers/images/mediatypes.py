"""Media types of Docker image manifest schema 2 and the OCI image spec.

One place for the strings every piece of image code compares against: the
registry client (what to accept), the store (what it keeps), unpacking (how a
layer is compressed), save/load (what to write).
"""

from __future__ import annotations

from typing import Optional

# Docker image manifest v2, schema 2.
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
# Schema 1 (signed, deprecated since 2017): recognised only to refuse it clearly.
DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_MANIFEST_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# OCI image spec v1.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

#: Manifests of a single image (config + layers).
IMAGE_MANIFESTS = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
#: Lists of per-platform manifests.
INDEXES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFESTS = IMAGE_MANIFESTS | INDEXES
SCHEMA1_MANIFESTS = frozenset({DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED})
CONFIGS = frozenset({DOCKER_CONFIG, OCI_CONFIG})

#: The ``Accept`` header for manifest requests, most specific first.
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

_LAYER_COMPRESSION = {
    DOCKER_LAYER: "gzip",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER: None,
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_LAYER_NONDISTRIBUTABLE: None,
    OCI_LAYER_NONDISTRIBUTABLE_GZIP: "gzip",
    OCI_LAYER_NONDISTRIBUTABLE_ZSTD: "zstd",
}
LAYERS = frozenset(_LAYER_COMPRESSION)


def layer_compression(media_type: str) -> Optional[str]:
    """``"gzip"``, ``"zstd"`` or ``None`` (plain tar) for a layer media type.

    Raises ``KeyError`` for a media type that is not a layer; the caller knows
    which image it was reading and says so in its error.
    """
    return _LAYER_COMPRESSION[media_type]


def sniff_manifest_type(manifest: dict) -> Optional[str]:
    """The media type of a parsed manifest that does not say it itself (the
    ``mediaType`` field is optional in OCI): an index lists ``manifests``, an
    image manifest has ``config`` and ``layers``; schema 1 has ``fsLayers``."""
    declared = manifest.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if "manifests" in manifest:
        return OCI_INDEX
    if "config" in manifest and "layers" in manifest:
        return OCI_MANIFEST
    if manifest.get("schemaVersion") == 1 or "fsLayers" in manifest:
        return DOCKER_MANIFEST_V1
    return None
