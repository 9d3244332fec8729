"""Unpacking layers into snapshots: compressions, every kind of entry,
metadata, whiteouts in the overlayfs format, hardlinks across layers,
directories implied by entries, and the snapshot life cycle."""

import io
import os
import stat
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from jupyter_containers.errors import IntegrityError, InvalidLayer
from jupyter_containers.images.unpack import unpack_layer
from tests.fixtures import layers as L

pytestmark = pytest.mark.root

WORKTREE = Path(__file__).resolve().parents[2]
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


class Pipe:
    """A non-seekable stream fed by a thread, as a download feeds a layer."""

    def __init__(self, data: bytes):
        read_fd, write_fd = os.pipe()
        self._reader = open(read_fd, "rb", buffering=0)
        self._thread = threading.Thread(target=self._feed, args=(write_fd, data))
        self._thread.start()

    @staticmethod
    def _feed(fd, data):
        with open(fd, "wb", buffering=0) as writer:
            try:
                for start in range(0, len(data), 65536):
                    writer.write(data[start:start + 65536])
            except BrokenPipeError:
                pass

    def read(self, size=-1):
        return self._reader.read(size)

    def close(self):
        self._reader.close()
        self._thread.join()


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "layer"
    path.mkdir()
    return path


def _unpack(raw, dest, compression="gzip", media_type=None, lowers=()):
    stream = Pipe(L.compress(raw, compression))
    try:
        return unpack_layer(stream, media_type or L.MEDIA_TYPES[compression], dest, lowers)
    finally:
        stream.close()


def _kind(path):
    return stat.filemode(os.lstat(path).st_mode)


EVERYTHING = [
    L.directory("./", mode=0o751, mtime=1_100_000_000),
    L.directory("etc", mode=0o755, mtime=1_200_000_000),
    L.file("etc/hostname", b"box\n", mode=0o644, uid=1, gid=2, mtime=1_300_000_000.5),
    L.file("etc/empty", b""),
    L.file("usr/bin/su", b"su", mode=0o4755),
    L.file("usr/bin/wall", b"wall", mode=0o2711, gid=5),
    L.directory("tmp", mode=0o1777),
    L.file("usr/bin/ping", b"ping", mode=0o755, xattrs={"security.capability": CAPABILITY}),
    L.file("notes", b"n", xattrs={"user.a": b"1", "user.binary": b"\x00\xff"}),
    L.symlink("bin", "usr/bin", uid=3, gid=4, mtime=1_400_000_000),
    L.symlink("dangling", "/nowhere/at/all"),
    L.hardlink("usr/bin/su-again", "usr/bin/su"),
    L.device("dev/null", 1, 3, mode=0o666),
    L.device("dev/loop0", 7, 0, block=True, mode=0o660, gid=6),
    L.fifo("run/fifo", mode=0o620, uid=9),
    L.file("big", os.urandom(5 << 20) + b"end"),
]


@pytest.mark.parametrize("compression", ["tar", "gzip", "zstd"])
def test_every_kind_of_entry(compression, dest):
    raw = L.tar(EVERYTHING)
    assert _unpack(raw, dest, compression) == L.diff_id(raw)
    root = os.lstat(dest)
    assert (stat.S_IMODE(root.st_mode), root.st_mtime_ns) == (0o751, 1_100_000_000 * 10**9)
    hostname = os.lstat(dest / "etc" / "hostname")
    assert (dest / "etc" / "hostname").read_bytes() == b"box\n"
    assert (hostname.st_uid, hostname.st_gid, stat.S_IMODE(hostname.st_mode)) == (1, 2, 0o644)
    assert hostname.st_mtime_ns == 1_300_000_000_500_000_000
    assert os.lstat(dest / "etc").st_mtime_ns == 1_200_000_000 * 10**9  # set after its contents
    assert (dest / "etc" / "empty").read_bytes() == b""
    assert _kind(dest / "usr" / "bin" / "su") == "-rwsr-xr-x"
    assert _kind(dest / "usr" / "bin" / "wall") == "-rwx--s--x"
    assert os.lstat(dest / "usr" / "bin" / "wall").st_gid == 5
    assert _kind(dest / "tmp") == "drwxrwxrwt"
    assert os.getxattr(dest / "usr" / "bin" / "ping", "security.capability") == CAPABILITY
    assert os.getxattr(dest / "notes", "user.binary") == b"\x00\xff"
    assert os.readlink(dest / "bin") == "usr/bin"
    link = os.lstat(dest / "bin")
    assert (link.st_uid, link.st_gid, link.st_mtime_ns) == (3, 4, 1_400_000_000 * 10**9)
    assert os.readlink(dest / "dangling") == "/nowhere/at/all"
    assert os.path.samefile(dest / "usr" / "bin" / "su", dest / "usr" / "bin" / "su-again")
    null = os.lstat(dest / "dev" / "null")
    assert stat.S_ISCHR(null.st_mode) and (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = os.lstat(dest / "dev" / "loop0")
    assert stat.S_ISBLK(loop.st_mode) and os.minor(loop.st_rdev) == 0 and os.major(loop.st_rdev) == 7
    assert _kind(dest / "run" / "fifo") == "prw--w----" and os.lstat(dest / "run" / "fifo").st_uid == 9
    assert (dest / "big").read_bytes().endswith(b"end")
    # Implied directories: root-owned 0755.
    assert _kind(dest / "usr") == "drwxr-xr-x" and os.lstat(dest / "usr").st_uid == 0


def test_compression_is_told_by_magic_bytes(dest, tmp_path):
    raw = L.tar([L.file("f", b"mislabelled")])
    assert _unpack(raw, dest, "gzip", media_type=L.MEDIA_TYPES["tar"]) == L.diff_id(raw)
    other = tmp_path / "other"
    other.mkdir()
    assert _unpack(raw, other, "zstd", media_type="application/vnd.docker.image.rootfs.diff.tar.gzip") \
        == L.diff_id(raw)
    assert (other / "f").read_bytes() == b"mislabelled"


def test_multi_member_gzip_and_trailing_padding(dest):
    import gzip
    raw = L.tar([L.file("a", b"a" * 5000), L.file("b", b"b")]) + b"\0" * 10240
    half = len(raw) // 2
    blob = gzip.compress(raw[:half]) + b"\0" * 100 + gzip.compress(raw[half:])
    assert unpack_layer(io.BytesIO(blob), L.MEDIA_TYPES["gzip"], dest) == L.diff_id(raw)
    assert (dest / "a").read_bytes() == b"a" * 5000


@pytest.mark.parametrize("blob, media_type, message", [
    (b"", L.MEDIA_TYPES["tar"], "not a valid tar archive"),
    (b"this is no tar archive at all" * 40, L.MEDIA_TYPES["tar"], "not a valid tar archive"),
    (L.compress(L.tar([L.file("f", os.urandom(100000))]), "gzip")[:-5000], L.MEDIA_TYPES["gzip"],
     "ends in the middle of its gzip stream"),
    (b"\x1f\x8b" + b"garbage" * 100, L.MEDIA_TYPES["gzip"], "is not valid gzip"),
    (b"\x28\xb5\x2f\xfd" + b"garbage" * 100, L.MEDIA_TYPES["zstd"], "is not valid zstd"),
    (L.tar([L.file("f")]), "application/vnd.oci.image.config.v1+json", "is not a layer"),
])
def test_content_that_is_not_a_layer(blob, media_type, message, dest):
    with pytest.raises(InvalidLayer, match=message):
        unpack_layer(io.BytesIO(blob), media_type, dest)


def test_whiteouts_become_overlayfs_whiteouts(dest):
    raw = L.tar([
        L.whiteout("gone"),
        L.whiteout("etc/gone-too"),
        L.opaque("var/cache"),
        L.file("var/cache/new", b"kept"),
        L.file("other/.wh..wh.plnk", b""),  # AUFS bookkeeping: ignored
        L.directory("mine"), L.file("mine/own", b"x"), L.whiteout("mine"),
        L.whiteout("redone"), L.directory("redone"),
        L.file("file"), L.whiteout("file"),
    ])
    _unpack(raw, dest)
    for path in ("gone", "etc/gone-too"):
        st = os.lstat(dest / path)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "var" / "cache", "trusted.overlay.opaque") == b"y"
    assert (dest / "var" / "cache" / "new").read_bytes() == b"kept"
    assert os.listdir(dest / "other") == []
    # A whiteout applies to the layers below only: this layer's own entry
    # stays and what the lowers had there is hidden.
    assert (dest / "mine" / "own").exists()
    assert os.getxattr(dest / "mine", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(dest / "redone", "trusted.overlay.opaque") == b"y"
    assert stat.S_ISREG(os.lstat(dest / "file").st_mode)
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "etc")


def test_later_entries_replace_earlier_ones(dest):
    raw = L.tar([
        L.file("a", b"file"), L.directory("a"), L.file("a/inside", b"x"),
        L.directory("b"), L.file("b/gone", b"x"), L.symlink("b", "elsewhere"),
        L.file("c", b"original"), L.hardlink("d", "c"), L.file("d", b"replaced"),
        L.directory("e", mode=0o700), L.file("e/kept", b"x"), L.directory("e", mode=0o755),
    ])
    _unpack(raw, dest)
    assert (dest / "a" / "inside").exists()
    assert os.readlink(dest / "b") == "elsewhere"
    # Replacing a hardlink never writes through it into the file it shares.
    assert (dest / "c").read_bytes() == b"original"
    assert (dest / "d").read_bytes() == b"replaced"
    assert (dest / "e" / "kept").exists() and _kind(dest / "e") == "drwxr-xr-x"


def _layer(tmp_path, name, entries, lowers=()):
    path = tmp_path / name
    path.mkdir()
    _unpack(L.tar(entries), path, lowers=lowers)
    return path


def test_hardlinks_to_lower_layers_copy_the_file(tmp_path):
    bottom = _layer(tmp_path, "bottom", [
        L.file("bin/tool", b"bottom", mode=0o4750, uid=5, gid=6, xattrs={"user.x": b"1",
                                                                          "security.capability": CAPABILITY}),
        L.file("hidden/f", b"bottom"),
        L.file("opaque/f", b"bottom"),
        L.symlink("link", "/target"),
        L.fifo("fifo", mode=0o600),
    ])
    middle = _layer(tmp_path, "middle", [
        L.file("bin/tool", b"middle wins", mode=0o755), L.whiteout("hidden/f"), L.opaque("opaque"),
    ], lowers=[bottom])
    top = _layer(tmp_path, "top", [
        L.hardlink("tool", "bin/tool"), L.hardlink("link-copy", "link"), L.hardlink("fifo-copy", "fifo"),
    ], lowers=[middle, bottom])
    assert (top / "tool").read_bytes() == b"middle wins"
    assert os.lstat(top / "tool").st_nlink == 1
    assert os.readlink(top / "link-copy") == "/target"
    assert stat.S_ISFIFO(os.lstat(top / "fifo-copy").st_mode)
    copied = _layer(tmp_path, "copied", [L.hardlink("tool", "bin/tool")], lowers=[bottom])
    st = os.lstat(copied / "tool")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (5, 6, 0o4750)
    assert os.getxattr(copied / "tool", "security.capability") == CAPABILITY
    assert os.getxattr(copied / "tool", "user.x") == b"1"
    for deleted in ("hidden/f", "opaque/f"):
        with pytest.raises(InvalidLayer, match="neither in this layer nor below it"):
            _layer(tmp_path, deleted.replace("/", "-"), [L.hardlink("x", deleted)], lowers=[middle, bottom])


def test_implied_directories_take_the_lowers_metadata(tmp_path):
    bottom = _layer(tmp_path, "bottom", [
        L.directory("./", mode=0o700, mtime=1_000_000_000),
        L.directory("srv", mode=0o750, uid=7, gid=8, mtime=1_200_000_000, xattrs={"user.d": b"1"}),
    ])
    upper = _layer(tmp_path, "upper", [L.file("srv/new", b"x"), L.file("brand/new", b"x")], lowers=[bottom])
    srv = os.lstat(upper / "srv")
    assert (stat.S_IMODE(srv.st_mode), srv.st_uid, srv.st_gid) == (0o750, 7, 8)
    assert srv.st_mtime_ns == 1_200_000_000 * 10**9
    assert os.getxattr(upper / "srv", "user.d") == b"1"
    root = os.lstat(upper)
    assert (stat.S_IMODE(root.st_mode), root.st_mtime_ns) == (0o700, 1_000_000_000 * 10**9)
    assert _kind(upper / "brand") == "drwxr-xr-x"


def test_lowers_are_asked_for_only_when_needed(tmp_path):
    asked = []

    def lowers():
        asked.append(True)
        return []

    _layer(tmp_path, "self-contained", [L.directory("./"), L.directory("a"), L.file("a/f", b"x")], lowers=lowers)
    assert asked == []
    _layer(tmp_path, "needs-them", [L.file("a/f", b"x")], lowers=lowers)
    assert asked == [True]


def test_snapshot_life_cycle(snapshots):
    raw = L.tar([L.file("f", b"content")])
    diff_id = L.diff_id(raw)
    assert not snapshots.exists(diff_id)
    assert snapshots.unpack(diff_id, Pipe(L.compress(raw, "gzip")), L.MEDIA_TYPES["gzip"]) is True
    assert (snapshots.path(diff_id) / "f").read_bytes() == b"content"
    assert stat.S_IMODE(os.lstat(snapshots.path(diff_id).parent).st_mode) == 0o700
    assert snapshots.list() == [diff_id]
    untouched = io.BytesIO(b"never read")
    assert snapshots.unpack(diff_id, untouched, L.MEDIA_TYPES["gzip"]) is False
    assert untouched.tell() == 0
    assert snapshots.prune(keep=[diff_id]) == []
    assert snapshots.prune(keep=[]) == [diff_id]
    assert not snapshots.exists(diff_id) and snapshots.remove(diff_id) is False
    assert list(snapshots.layout.locks.iterdir()) == []


def test_a_layer_that_does_not_match_its_diff_id_is_not_kept(snapshots):
    raw = L.tar([L.file("f", b"content")])
    claimed = "sha256:" + "1" * 64
    with pytest.raises(IntegrityError, match=f"unpacks to {L.diff_id(raw)}, not to the diff ID {claimed}"):
        snapshots.unpack(claimed, io.BytesIO(L.compress(raw, "gzip")), L.MEDIA_TYPES["gzip"])
    assert list(snapshots.root.iterdir()) == []


def test_a_dead_unpack_leaves_nothing_visible_and_is_redone(snapshots):
    raw = L.tar([L.file("f", b"content")])
    diff_id = L.diff_id(raw)
    leftover = snapshots.root / (".tmp-" + diff_id[7:]) / "fs"
    leftover.mkdir(parents=True)
    (leftover / "half-written").write_bytes(b"x")
    assert not snapshots.exists(diff_id) and snapshots.list() == []
    snapshots.unpack(diff_id, io.BytesIO(raw), L.MEDIA_TYPES["tar"])
    assert os.listdir(snapshots.path(diff_id)) == ["f"]
    assert sorted(os.listdir(snapshots.root)) == [diff_id[7:]]


def test_two_processes_unpacking_the_same_layer(snapshots, storage_root, tmp_path):
    raw = L.tar([L.file(f"f{i}", os.urandom(200_000)) for i in range(20)])
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(L.compress(raw, "gzip"))
    code = (
        "import sys\n"
        "from jupyter_containers.storage import Layout\n"
        "from jupyter_containers.images.snapshots import Snapshots\n"
        f"snapshots = Snapshots(Layout({str(storage_root.root)!r}, {str(storage_root.run)!r}))\n"
        f"print(snapshots.unpack({L.diff_id(raw)!r}, open({str(blob)!r}, 'rb'), {L.MEDIA_TYPES['gzip']!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(WORKTREE)}
    children = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    outputs = sorted(child.communicate(timeout=60)[0].strip() for child in children)
    assert outputs == ["False", "True"]
    assert sorted(os.listdir(snapshots.path(L.diff_id(raw)))) == sorted(f"f{i}" for i in range(20))


def test_gc_removes_snapshots_no_image_uses(storage_root, snapshots):
    from jupyter_containers.images.store import ContentStore

    store = ContentStore(storage_root)
    shared, only_a, kept_by_container = (L.tar([L.file(name, name.encode())]) for name in ("s", "a", "c"))
    L.add_image(store, "docker.io/library/a:latest", [(shared, "gzip"), (only_a, "gzip"), (kept_by_container, "tar")])
    L.add_image(store, "docker.io/library/b:latest", [(shared, "gzip")])
    L.unpack_image(store.root, "docker.io/library/a:latest", snapshots)
    assert len(snapshots.list()) == 3
    store.remove("docker.io/library/a:latest")
    removed = store.gc(snapshots, keep_snapshots_for=[L.diff_id(kept_by_container)])
    assert removed["snapshots"] == [L.diff_id(only_a)]
    assert snapshots.list() == sorted([L.diff_id(shared), L.diff_id(kept_by_container)])


def test_an_opaque_root_hides_all_of_the_lowers(tmp_path, overlay_view):
    bottom = _layer(tmp_path, "bottom", [L.file("a", b"a"), L.file("d/x", b"x"), L.file("d/keep", b"k")])
    top = _layer(tmp_path, "top", [L.opaque("."), L.file("d/y", b"y"), L.file("n", b"n")], lowers=[bottom])
    merged = Path(overlay_view([top, bottom]))
    assert sorted(os.listdir(merged)) == ["d", "n"]
    assert os.listdir(merged / "d") == ["y"]
