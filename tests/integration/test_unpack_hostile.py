"""Hostile layers: whatever a layer tries, nothing outside its snapshot
changes. Refused layers leave no snapshot and no temporary directory.

Every escape is aimed at two sentinel directories next to the storage root
(``outside``, to be written into, and ``victim``, holding a file and a
directory to link to, delete or mark), so an escape that worked would show
there. The whole test directory is described before and after and must be
the same (but for the mtimes of directories the store itself touched).
"""

import io
import os
import tarfile
import time

import pytest

from jupyter_containers.errors import InvalidLayer, UnsafeLayer
from tests.fixtures import layers as L
from tests.fixtures.compare import describe_tree, description_differences

pytestmark = pytest.mark.root

UP = "../" * 16


@pytest.fixture
def host(tmp_path, storage_root):
    """The sentinels, and a check at the end that the test directory (storage
    root included) holds exactly what it held before."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = tmp_path / "victim"
    (victim / "dir").mkdir(parents=True)
    (victim / "file").write_text("precious")
    (victim / "dir" / "keep").write_text("keep")
    before = describe_tree(tmp_path)
    time.sleep(0.1)
    started = time.time_ns() - 50_000_000  # file times come from a coarse clock
    yield outside, victim
    assert os.stat(victim / "file").st_nlink == 1, "something hardlinked the victim file"
    differences = description_differences(before, describe_tree(tmp_path), unpacked_since=started)
    assert differences == [], "\n".join(differences)


def _stream(raw):
    return io.BytesIO(L.compress(raw, "gzip"))


def _gnu_sparse_file() -> bytes:
    """A GNU sparse entry (type 'S'): headers built by hand, tarfile writes none."""
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 512
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    # One sparse region (offset 0, 512 bytes) and the real size (4096), then a new checksum.
    header[386:386 + 24] = tarfile.itn(0, 12, tarfile.GNU_FORMAT) + tarfile.itn(512, 12, tarfile.GNU_FORMAT)
    header[483:483 + 12] = tarfile.itn(4096, 12, tarfile.GNU_FORMAT)
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + b"s" * 512 + b"\0" * 1024


def hostile_layers(outside, victim):
    """(id, entries or raw tar, error class, message fragment)."""
    out, vic = str(outside), str(victim)
    return [
        ("dotdot", [L.file("../escape", b"x")], UnsafeLayer, "climbs out of the layer's root"),
        ("dotdot-inside-path", [L.file("a/../../escape", b"x")], UnsafeLayer, "climbs out"),
        ("dotdot-to-sentinel", [L.file(UP + out[1:] + "/pwned", b"x")], UnsafeLayer, "climbs out"),
        ("pax-long-name", [L.file("../" + "x" * 150, b"x")], UnsafeLayer, "climbs out"),
        ("symlink-then-file", [L.symlink("x", out), L.file("x/pwned", b"x")],
         UnsafeLayer, f"writes through the symlink 'x' -> '{out}'"),
        ("relative-symlink-then-file", [L.symlink("x", UP + out[1:]), L.file("x/pwned", b"x")],
         UnsafeLayer, "writes through the symlink 'x'"),
        ("symlink-chain", [L.symlink("a", "b"), L.symlink("b", out), L.file("a/pwned", b"x")],
         UnsafeLayer, "writes through the symlink 'a' -> 'b'"),
        ("symlink-then-directory", [L.symlink("x", out), L.directory("x/sub")],
         UnsafeLayer, "writes through the symlink"),
        ("symlink-then-symlink", [L.symlink("x", out), L.symlink("x/evil", "/etc/shadow")],
         UnsafeLayer, "writes through the symlink"),
        ("symlink-then-fifo", [L.symlink("x", out), L.fifo("x/fifo")], UnsafeLayer, "writes through the symlink"),
        ("symlink-then-device", [L.symlink("x", out), L.device("x/null", 1, 3)],
         UnsafeLayer, "writes through the symlink"),
        ("symlink-then-hardlink-into-it", [L.file("data", b"d"), L.symlink("x", out), L.hardlink("x/h", "data")],
         UnsafeLayer, "writes through the symlink"),
        ("deep-symlink", [L.directory("a"), L.directory("a/b"), L.symlink("a/b/c", out),
                          L.file("a/b/c/d/pwned", b"x")], UnsafeLayer, "writes through the symlink 'a/b/c'"),
        ("hardlink-dotdot", [L.hardlink("h", UP + vic[1:] + "/file")], UnsafeLayer, "climbs out"),
        ("hardlink-through-symlink", [L.symlink("v", vic), L.hardlink("h", "v/file")],
         UnsafeLayer, "a path through a symlink"),
        ("hardlink-absolute", [L.hardlink("h", vic + "/file")],
         InvalidLayer, "which is neither in this layer nor below it"),
        ("hardlink-to-directory", [L.directory("d"), L.hardlink("h", "d")], UnsafeLayer, "is a directory"),
        ("hardlink-to-root", [L.hardlink("h", "/")], UnsafeLayer, "is a hardlink to the layer's root"),
        ("whiteout-dotdot-path", [L.file("../.wh.victim")], UnsafeLayer, "climbs out"),
        ("whiteout-of-dotdot", [L.file("sub/.wh...")], UnsafeLayer, "whites out '..'"),
        ("whiteout-through-symlink", [L.symlink("v", vic), L.whiteout("v/file")],
         UnsafeLayer, "writes through the symlink 'v'"),
        ("opaque-through-symlink", [L.symlink("v", vic), L.opaque("v/dir")], UnsafeLayer, "writes through the symlink"),
        ("root-replaced-by-symlink", [L.symlink(".", out)], UnsafeLayer, "would replace the layer's root"),
        ("file-as-parent", [L.file("f", b"x"), L.file("f/g", b"y")], UnsafeLayer, "needs 'f' to be a directory"),
        ("too-deep", [L.file("a/" * 300 + "f", b"x")], InvalidLayer, "more than 256 directories deep"),
        ("sparse", _gnu_sparse_file(), InvalidLayer, "is a sparse file"),
    ]


def _hostile_ids():
    return [case[0] for case in hostile_layers("/o", "/v")]


@pytest.mark.parametrize("case", _hostile_ids())
def test_hostile_layers_are_refused_and_the_host_is_unchanged(case, host, snapshots):
    outside, victim = host
    (_, entries, error, fragment), = [c for c in hostile_layers(outside, victim) if c[0] == case]
    raw = entries if isinstance(entries, bytes) else L.tar(entries)
    with pytest.raises(error, match=fragment) as raised:
        snapshots.unpack(L.diff_id(raw), _stream(raw), L.MEDIA_TYPES["gzip"])
    assert str(raised.value).startswith(f"layer {L.diff_id(raw)[7:19]} ")
    assert "\n" not in str(raised.value)
    assert snapshots.list() == [] and list(snapshots.root.iterdir()) == []


def test_gnu_long_names_are_checked_too(host, snapshots):
    raw = L.tar([L.file("../" + "y" * 150, b"x")], format=tarfile.GNU_FORMAT)
    assert b"././@LongLink" in raw
    with pytest.raises(UnsafeLayer, match="climbs out"):
        snapshots.unpack(L.diff_id(raw), _stream(raw), L.MEDIA_TYPES["gzip"])


def test_absolute_paths_are_placed_inside_the_root(host, snapshots):
    outside, victim = host
    raw = L.tar([L.file("/etc/abs", b"inside"), L.file(f"{outside}/pwned", b"inside too"),
                 L.hardlink("/etc/abs-link", "/etc/abs")])
    assert snapshots.unpack(L.diff_id(raw), _stream(raw), L.MEDIA_TYPES["gzip"])
    root = snapshots.path(L.diff_id(raw))
    assert (root / "etc" / "abs").read_bytes() == b"inside"
    assert (root / str(outside)[1:] / "pwned").read_bytes() == b"inside too"
    assert os.path.samefile(root / "etc" / "abs", root / "etc" / "abs-link")
    snapshots.remove(L.diff_id(raw))


def test_symlinks_of_lower_layers_are_never_followed(host, snapshots):
    outside, victim = host
    lower_raw = L.tar([L.symlink("x", str(outside)), L.symlink("file-link", f"{victim}/file"),
                       L.symlink("v", str(victim))])
    snapshots.unpack(L.diff_id(lower_raw), _stream(lower_raw), L.MEDIA_TYPES["gzip"])
    lower = snapshots.path(L.diff_id(lower_raw))
    # In the upper snapshot x is a directory of its own (it hides the lower
    # symlink in the overlay); a hardlink to a lower symlink copies the symlink.
    upper_raw = L.tar([L.file("x/pwned", b"stays in the layer"), L.hardlink("h", "file-link")])
    snapshots.unpack(L.diff_id(upper_raw), _stream(upper_raw), L.MEDIA_TYPES["gzip"], lowers=[lower])
    upper = snapshots.path(L.diff_id(upper_raw))
    assert (upper / "x" / "pwned").read_bytes() == b"stays in the layer"
    assert os.readlink(upper / "h") == f"{victim}/file"
    # A hardlink through a lower symlink finds nothing to copy.
    through = L.tar([L.hardlink("h", "v/file")])
    with pytest.raises(InvalidLayer, match="neither in this layer nor below it"):
        snapshots.unpack(L.diff_id(through), _stream(through), L.MEDIA_TYPES["gzip"], lowers=[lower])
    for raw in (upper_raw, lower_raw):
        snapshots.remove(L.diff_id(raw))


def test_overlay_xattrs_from_an_image_are_not_applied(host, snapshots):
    raw = L.tar([
        L.directory("d", xattrs={"trusted.overlay.opaque": b"y", "trusted.overlay.redirect": b"/etc",
                                 "user.overlay.origin": b"x", "user.kept": b"1"}),
        L.file("f", b"x", xattrs={"trusted.overlay.metacopy": b""}),
    ])
    snapshots.unpack(L.diff_id(raw), _stream(raw), L.MEDIA_TYPES["gzip"])
    root = snapshots.path(L.diff_id(raw))
    assert os.listxattr(root / "d") == ["user.kept"]
    assert os.listxattr(root / "f") == []
    snapshots.remove(L.diff_id(raw))
