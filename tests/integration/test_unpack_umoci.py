"""Differential test: our snapshots, stacked by overlayfs, equal what
``umoci unpack`` makes of the same OCI image (paths, types, modes, owners,
link targets, device numbers, contents, xattrs, mtimes).

Each image is a fixture returning ``(OCI layout directory, ref name)``; to
hold another image against umoci, add its fixture's name to IMAGE_FIXTURES.
umoci 0.4 reads no zstd layers, so it gets a copy of the image with those
recompressed as gzip (same diff IDs); ours unpacks the original.
"""

import os
import struct
import subprocess
import time

import pytest

from jupyter_containers.images.store import ContentStore
from jupyter_containers.storage import Layout
from tests.fixtures import layers as L
from tests.fixtures.compare import tree_differences

pytestmark = pytest.mark.root

IMAGE_FIXTURES = ["crafted_image", "crafted_zstd_image"]

REF = "docker.io/library/crafted:latest"
# CAP_NET_RAW permitted and effective, as `setcap cap_net_raw+ep` writes it.
NET_RAW_CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def crafted_layers(compressions) -> list[tuple[bytes, str]]:
    """Three layers using every kind of entry, whiteouts, opaque directories,
    hardlinks within and across layers, and directories implied by entries."""
    base = L.tar([
        L.directory("./", mode=0o755),
        L.directory("etc", mode=0o755),
        L.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        L.file("etc/shadow", b"root:*:19000:0:99999:7:::\n", mode=0o640, gid=42),
        L.symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
        L.directory("usr", mode=0o755),
        L.directory("usr/bin", mode=0o755),
        L.file("usr/bin/prog", b"#!/bin/sh\necho prog\n" * 100, mode=0o755),
        L.hardlink("usr/bin/prog-alias", "usr/bin/prog"),
        L.file("usr/bin/su", b"setuid", mode=0o4755),
        L.file("usr/bin/wall", b"setgid", mode=0o2755, gid=5),
        L.file("usr/bin/ping", b"ping", mode=0o755, xattrs={"security.capability": NET_RAW_CAPABILITY}),
        L.symlink("bin", "usr/bin"),
        L.symlink("relative", "../../../outside"),
        L.directory("tmp", mode=0o1777),
        L.directory("var", mode=0o755),
        L.directory("var/lib", mode=0o755),
        L.directory("var/lib/app", mode=0o750, uid=100, gid=101, mtime=1_500_000_000),
        L.file("var/lib/app/state", b"state", mode=0o600, uid=100, gid=101),
        L.directory("dev", mode=0o755),
        L.device("dev/null", 1, 3),
        L.device("dev/sda", 8, 0, block=True, mode=0o660, gid=6),
        L.fifo("dev/initctl", mode=0o600),
        L.file("notes", b"with xattrs", xattrs={"user.comment": b"hello", "user.binary": b"\x00\xff\xfe"}),
        L.directory("old", mode=0o755),
        L.file("old/a", b"a"),
        L.file("old/b", b"b"),
        L.directory("olddir", mode=0o755),
        L.file("olddir/x", b"x"),
        L.directory("opq", mode=0o755),
        L.file("opq/lower-only", b"hidden by the opaque marker"),
        L.directory("opq/sub", mode=0o755),
        L.file("opq/sub/y", b"y"),
        L.file("shared-data", b"lower copy " * 1000, mode=0o640, uid=7, gid=8,
               xattrs={"user.origin": b"base"}),
        L.file("big", os.urandom(3 << 20), mode=0o644),
    ])
    middle = L.tar([
        L.whiteout("old/a"),
        L.whiteout("olddir"),
        L.opaque("opq"),
        L.file("opq/new", b"new in the opaque directory"),
        L.hardlink("usr/bin/prog-from-below", "usr/bin/prog"),
        L.hardlink("copied-data", "shared-data"),
        L.file("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n"),
        L.file("var/lib/app/data", b"implied parent", uid=100, gid=101),
        L.directory("etc", mode=0o700, mtime=1_400_000_000),
        L.file("relative", b"a file replacing a symlink"),
        L.directory("usr/bin/wall-dir", mode=0o755),
        L.symlink("usr/bin/sh", "prog"),
        L.hardlink("usr/bin/sh-alias", "usr/bin/sh"),
    ])
    top = L.tar([
        L.directory("olddir", mode=0o711),
        L.file("olddir/fresh", b"after the whiteout"),
        L.file("old/b", b"b changed", mode=0o600),
        L.file("usr/bin/su", b"setuid again", mode=0o4711),
        L.device("dev/null", 1, 3, mode=0o666),
        L.whiteout("dev/sda"),
        L.file("deep/er/and/deeper/file", b"only implied directories above"),
    ])
    return list(zip([base, middle, top], compressions))


def _store_image(tmp_path_factory, name: str, compressions) -> tuple:
    layout = Layout(tmp_path_factory.mktemp(name) / "root", tmp_path_factory.mktemp(name + "-run")).ensure()
    L.add_image(ContentStore(layout), REF, crafted_layers(compressions))
    return layout.oci, REF


@pytest.fixture(scope="session")
def crafted_image(tmp_path_factory):
    return _store_image(tmp_path_factory, "crafted", ["gzip", "tar", "gzip"])


@pytest.fixture(scope="session")
def crafted_zstd_image(tmp_path_factory):
    return _store_image(tmp_path_factory, "crafted-zstd", ["zstd", "zstd", "tar"])


@pytest.fixture(params=IMAGE_FIXTURES)
def oci_image(request):
    return request.getfixturevalue(request.param)


def test_our_unpacking_matches_umoci(oci_image, tmp_path, snapshots, overlay_view):
    layout, ref = oci_image
    started = time.time_ns() - 50_000_000  # file times come from a coarse clock
    reference = Layout(tmp_path / "for-umoci", tmp_path / "for-umoci-run").ensure()
    L.without_zstd(layout, ref, ContentStore(reference))
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{reference.oci}:{ref}", str(bundle)],
                   check=True, capture_output=True)

    merged = overlay_view(L.unpack_image(layout, ref, snapshots))

    differences = tree_differences(bundle / "rootfs", merged, unpacked_since=started)
    assert differences == [], "\n".join(differences)


def test_umoci_and_skopeo_accept_full_names_as_tags(crafted_image, tmp_path):
    layout, ref = crafted_image
    listed = subprocess.run(["umoci", "ls", "--layout", str(layout)], check=True,
                            capture_output=True, text=True).stdout.split()
    assert listed == [ref]
    subprocess.run(["skopeo", "inspect", f"oci:{layout}:{ref}"], check=True, capture_output=True)


# --- the project's fixture images, through the whole pull path --------------------

PULLED_FIXTURES = [
    ("busybox_image", "library/busybox", None),
    ("special_image", "fixtures/special", None),
    ("zstd_image", "fixtures/zstd", None),
    ("python_image", "library/python", "3.11"),
    ("debian_image", "library/debian", "bookworm"),
    ("mysql_image", "library/mysql", "latest"),
]


@pytest.mark.parametrize("fixture, repository, tag", PULLED_FIXTURES, ids=[f[0] for f in PULLED_FIXTURES])
def test_pulled_fixture_images_match_umoci(fixture, repository, tag, request, client, hub, tmp_path, overlay_view):
    """Each fixture image built from Debian packages, pushed to the test
    registry and pulled by us (layers unpacked while they download), equals
    umoci's unpack of the same image."""
    image = request.getfixturevalue(fixture)
    ref = tag or image.ref
    hub.ensure(fixture, repository, (tag,) if tag else None)
    started = time.time_ns() - 50_000_000  # directories we made have our clock's time
    pulled = client.image_service.pull(f"{repository}:{tag or 'latest'}")
    lowers = [client.image_service.snapshots.path(d) for d in reversed(pulled.diff_ids)]
    merged = overlay_view(lowers)

    reference = Layout(tmp_path / "for-umoci", tmp_path / "for-umoci-run").ensure()
    L.without_zstd(image.layout, ref, ContentStore(reference))
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{reference.oci}:{ref}", str(bundle)],
                   check=True, capture_output=True)
    differences = tree_differences(bundle / "rootfs", merged, unpacked_since=started)
    assert differences == [], "\n".join(differences[:50])
