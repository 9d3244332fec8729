"""images/build.py: OCI layouts written without external tools, checked
with skopeo and umoci (the reference implementations)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from jupyter_containers.errors import UserError
from jupyter_containers.images.build import (LAYER_MEDIA_TYPES, Healthcheck, ImageConfig,
                                             LayoutWriter, TreeIndex, blob_path, image_layers,
                                             open_layer_blob, read_blob_json, read_index,
                                             write_oci_archive)
from tests.fixtures.images import (SPECIAL_CONFIG, SPECIAL_EXPECTATIONS, SPECIAL_HARDLINKS,
                                   SPECIAL_XATTRS, FixtureImage, skopeo_inspect, umoci_unpack)

pytestmark = pytest.mark.root

EPOCH = 1704067200


def make_tree(root: Path, order=("b", "a", "c")) -> Path:
    for name in order:
        (root / "dir" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "dir" / name).write_text(f"file {name}\n")
        os.utime(root / "dir" / name, (EPOCH + 1000, EPOCH + 1000))
    os.symlink("dir/a", root / "link")
    return root


def write_image(layout_dir: Path, tree: Path, compression="gzip", config=None) -> str:
    with LayoutWriter(layout_dir, source_date_epoch=EPOCH) as layout:
        with layout.layer(compression) as layer:
            layer.add_tree(tree)
        image = layout.add_image(config or ImageConfig(cmd=["sh"]), [layer.layer])
        layout.tag(image, "latest")
    return image.digest


def test_same_inputs_give_the_same_digests(tmp_path):
    first = write_image(tmp_path / "one", make_tree(tmp_path / "tree1"))
    # Created in another order, with later mtimes: clamped to the epoch.
    second_tree = make_tree(tmp_path / "tree2", order=("c", "a", "b"))
    os.utime(second_tree / "dir" / "a", (EPOCH + 99999, EPOCH + 99999))
    second = write_image(tmp_path / "two", second_tree)
    assert first == second
    assert sorted(os.listdir(tmp_path / "one/blobs/sha256")) == sorted(os.listdir(tmp_path / "two/blobs/sha256"))

    with tarfile.open(fileobj=open_layer_blob(*_only_layer(tmp_path / "one"))) as tar:
        members = tar.getmembers()
    assert [member.name for member in members] == ["dir", "dir/a", "dir/b", "dir/c", "link"]
    assert {member.mtime for member in members} == {EPOCH}
    assert {(member.uname, member.gname) for member in members} == {("", "")}


def _only_layer(layout: Path):
    [layer] = image_layers(layout, "latest")
    return blob_path(layout, layer.blob.digest), layer.blob.media_type


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_compressions_keep_the_diff_id(tmp_path, compression):
    tree = make_tree(tmp_path / "tree")
    write_image(tmp_path / compression, tree, compression)
    write_image(tmp_path / "reference", tree, "none")
    [layer] = image_layers(tmp_path / compression, "latest")
    [plain] = image_layers(tmp_path / "reference", "latest")
    assert layer.blob.media_type == LAYER_MEDIA_TYPES[compression]
    assert layer.diff_id == plain.diff_id == plain.blob.digest
    raw = json.loads(skopeo_inspect(FixtureImage(tmp_path / compression, "latest", "x"), "--raw"))
    assert raw["layers"][0]["mediaType"] == LAYER_MEDIA_TYPES[compression]
    if compression == "gzip":
        header = blob_path(tmp_path / compression, layer.blob.digest).read_bytes()[:10]
        assert header[3] == 0, "no file name or other optional gzip fields"
        assert header[4:8] == b"\0\0\0\0", "gzip mtime is 0"


def test_config_carries_dockers_fields(tmp_path, busybox_image):
    config = ImageConfig(
        entrypoint=["/bin/sh", "-c"], cmd=["echo hi"], env=["PATH=/bin", "A=1"], working_dir="/srv",
        user="app", exposed_ports=["80", "53/udp"], volumes=["/data"], labels={"k": "v"},
        stop_signal="SIGINT", healthcheck=Healthcheck(["CMD", "true"], interval=2, timeout=1.5,
                                                      start_period=10, retries=4))
    with LayoutWriter(tmp_path / "layout", source_date_epoch=EPOCH) as layout:
        [busybox] = image_layers(busybox_image.layout, busybox_image.ref)
        layout.import_blob(busybox_image.layout, busybox.blob.digest)
        with layout.layer() as extra:
            extra.add(tarfile.TarInfo("marker"), b"x")
        layout.tag(layout.add_image(config, [busybox, extra.layer]), "v1")

    manifest = read_blob_json(tmp_path / "layout", read_index(tmp_path / "layout")["v1"])
    written = read_blob_json(tmp_path / "layout", _descriptor(manifest["config"]))
    assert written["config"] == {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["PATH=/bin", "A=1"],
        "WorkingDir": "/srv", "User": "app", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Volumes": {"/data": {}}, "Labels": {"k": "v"}, "StopSignal": "SIGINT",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 2_000_000_000, "Timeout": 1_500_000_000,
                        "StartPeriod": 10_000_000_000, "Retries": 4}}
    assert written["rootfs"] == {"type": "layers", "diff_ids": [busybox.diff_id, extra.layer.diff_id]}
    assert written["created"] == "2024-01-01T00:00:00Z"
    assert len(written["history"]) == 2

    seen = json.loads(skopeo_inspect(FixtureImage(tmp_path / "layout", "v1", "x"), "--config"))["config"]
    assert seen["Entrypoint"] == ["/bin/sh", "-c"] and seen["WorkingDir"] == "/srv"
    assert seen["User"] == "app" and seen["StopSignal"] == "SIGINT"
    assert set(seen["ExposedPorts"]) == {"80/tcp", "53/udp"} and set(seen["Volumes"]) == {"/data"}


def _descriptor(value):
    from jupyter_containers.images.build import Descriptor

    return Descriptor.from_json(value)


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISLNK, "symlink"), (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"),
                       (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo")):
        if test(mode):
            return kind
    return "other"


def test_special_image_unpacks_with_umoci_as_intended(special_image, tmp_path):
    rootfs = umoci_unpack(special_image, tmp_path / "bundle")
    for name, (kind, mode, uid, gid, detail) in SPECIAL_EXPECTATIONS.items():
        path = rootfs / name
        if kind == "absent":
            assert not os.path.lexists(path), name
            continue
        st = os.lstat(path)
        assert _kind(st.st_mode) == kind, name
        if kind != "symlink":
            assert stat.S_IMODE(st.st_mode) == mode, (name, oct(stat.S_IMODE(st.st_mode)))
        assert (st.st_uid, st.st_gid) == (uid, gid), name
        if kind == "file":
            assert path.read_bytes() == detail, name
        elif kind == "symlink":
            assert os.readlink(path) == detail, name
        elif kind in ("char", "block"):
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == detail, name
    for first, second in SPECIAL_HARDLINKS:
        assert os.stat(rootfs / first).st_ino == os.stat(rootfs / second).st_ino, (first, second)
    for name, xattrs in SPECIAL_XATTRS.items():
        for key, value in xattrs.items():
            assert os.getxattr(rootfs / name, key) == value, (name, key)
    assert (rootfs / "bin" / "busybox").is_file(), "the special image stacks on busybox"


def test_special_image_config_and_layers(special_image):
    raw = json.loads(skopeo_inspect(special_image, "--raw"))
    assert [layer["mediaType"] for layer in raw["layers"]] == [
        LAYER_MEDIA_TYPES["gzip"]] * 3 + [LAYER_MEDIA_TYPES["none"]]
    config = json.loads(skopeo_inspect(special_image, "--config"))["config"]
    assert config["Entrypoint"] == SPECIAL_CONFIG.entrypoint
    assert config["StopSignal"] == "SIGUSR1"
    blob = read_blob_json(special_image.layout, _descriptor(raw["config"]))
    assert blob["config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /special/file"]


def _snapshot(root: Path) -> dict:
    """Everything the differential comparison looks at, per path."""
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                detail = path.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            else:
                detail = None
            result[str(path.relative_to(root))] = (_kind(st.st_mode), stat.S_IMODE(st.st_mode),
                                                   st.st_uid, st.st_gid, detail)
    return result


def test_layer_of_changes_rebuilds_the_target_tree(tmp_path):
    base, target = tmp_path / "base", tmp_path / "target"
    for root in (base, target):
        for name in ("same", "content", "mode", "owner", "mtime-only", "gone", "dir/gone-too",
                     "dir-to-file/x", "kept-dir/file"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(f"{name}\n")
        (root / "file-to-dir").write_text("file\n")
        os.symlink("same", root / "link")
    (target / "content").write_text("changed\n")
    os.chmod(target / "mode", 0o600)
    os.chown(target / "owner", 1000, 1000)
    os.utime(target / "mtime-only", (EPOCH - 500, EPOCH - 500))
    (target / "gone").unlink()
    (target / "dir" / "gone-too").unlink()
    (target / "dir").rmdir()
    for child in (target / "dir-to-file").iterdir():
        child.unlink()
    (target / "dir-to-file").rmdir()
    (target / "dir-to-file").write_text("now a file\n")
    (target / "file-to-dir").unlink()
    (target / "file-to-dir").mkdir()
    (target / "file-to-dir" / "child").write_text("child\n")
    (target / "link").unlink()
    os.symlink("content", target / "link")
    (target / "new").write_text("new\n")
    os.link(target / "new", target / "kept-dir" / "new-hardlink")

    with LayoutWriter(tmp_path / "layout", source_date_epoch=EPOCH) as layout:
        with layout.layer() as first:
            first.add_tree(base)
        with open_layer_blob(layout.blob_path(first.layer.blob), first.layer.blob.media_type) as stream:
            index = TreeIndex().add_layer(stream)
        with layout.layer() as second:
            second.add_changes(index, target)
        layout.tag(layout.add_image(ImageConfig(), [first.layer, second.layer]), "latest")

    with tarfile.open(fileobj=open_layer_blob(layout.blob_path(second.layer.blob),
                                              second.layer.blob.media_type)) as tar:
        names = tar.getnames()
    assert "same" not in names and "mtime-only" not in names, "unchanged entries stay below"
    assert {".wh.gone", ".wh.dir"} <= set(names)
    assert "dir/.wh.gone-too" not in names, "the directory's whiteout covers its content"

    rootfs = umoci_unpack(FixtureImage(tmp_path / "layout", "latest", "x"), tmp_path / "bundle")
    assert _snapshot(rootfs) == _snapshot(target)
    assert os.stat(rootfs / "new").st_ino == os.stat(rootfs / "kept-dir" / "new-hardlink").st_ino


def test_multiplatform_index(multiplatform_image, tmp_path):
    raw = json.loads(skopeo_inspect(multiplatform_image, "--raw"))
    assert raw["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = {(entry["platform"]["os"], entry["platform"]["architecture"]) for entry in raw["manifests"]}
    assert platforms == {("linux", "amd64"), ("linux", "arm64")}
    for arch, elf_machine in (("amd64", 62), ("arm64", 183)):
        copy = tmp_path / arch
        subprocess.run(["skopeo", "--override-arch", arch, "copy", "-q", multiplatform_image.transport,
                        f"oci:{copy}:{arch}"], check=True, capture_output=True)
        assert json.loads(skopeo_inspect(FixtureImage(copy, arch, "x")))["Architecture"] == arch
        rootfs = umoci_unpack(FixtureImage(copy, arch, "x"), tmp_path / f"bundle-{arch}")
        header = (rootfs / "bin" / "busybox").read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == elf_machine
        assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"


def test_zstd_layers(zstd_image, busybox_image, tmp_path):
    raw = json.loads(skopeo_inspect(zstd_image, "--raw"))
    assert [layer["mediaType"] for layer in raw["layers"]] == [LAYER_MEDIA_TYPES["zstd"]] * 2
    [busybox] = image_layers(busybox_image.layout, busybox_image.ref)
    assert image_layers(zstd_image.layout, zstd_image.ref)[0].diff_id == busybox.diff_id
    # umoci 0.4 cannot read zstd: skopeo decompresses (checking the diff IDs) for it.
    subprocess.run(["skopeo", "copy", "-q", "--dest-compress", "--dest-compress-format", "gzip",
                    zstd_image.transport, f"oci:{tmp_path / 'gzip'}:latest"], check=True, capture_output=True)
    rootfs = umoci_unpack(FixtureImage(tmp_path / "gzip", "latest", "x"), tmp_path / "bundle")
    assert (rootfs / "zstd-marker").read_text() == "zstd\n"
    assert (rootfs / "bin" / "busybox").is_file()


def test_oci_archive_is_reproducible_and_readable(busybox_image, tmp_path):
    write_oci_archive(busybox_image.layout, tmp_path / "one.tar")
    write_oci_archive(busybox_image.layout, tmp_path / "two.tar")
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    from_archive = json.loads(subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{tmp_path / 'one.tar'}:latest"],
        check=True, capture_output=True, text=True).stdout)
    assert from_archive["Digest"] == read_index(busybox_image.layout)["latest"].digest


def test_unknown_compression_is_a_clear_error(tmp_path):
    layout = LayoutWriter(tmp_path / "layout")
    with pytest.raises(UserError, match="unknown layer compression 'lz4'.*gzip, zstd or none"):
        layout.layer("lz4")
    assert os.listdir(layout.blobs) == []


def test_a_failed_layer_leaves_nothing(tmp_path):
    layout = LayoutWriter(tmp_path / "layout")
    with pytest.raises(FileNotFoundError):
        with layout.layer() as layer:
            layer.add(tarfile.TarInfo("written"), b"data")
            layer.add_path(tmp_path / "missing", "missing")
    assert os.listdir(layout.blobs) == []
    assert not (tmp_path / "layout" / "index.json").exists()


def test_source_date_epoch_must_be_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(UserError, match="SOURCE_DATE_EPOCH='yesterday' is not a number"):
        LayoutWriter(tmp_path / "layout")


@pytest.mark.parametrize("name", ["busybox_image", "special_image", "multiplatform_image", "zstd_image",
                                  "debian_image", "mysql_image", "python_image"])
def test_every_fixture_layout_is_accepted_by_skopeo(name, request):
    image = request.getfixturevalue(name)
    refs = read_index(image.layout)
    assert image.ref in refs
    for ref in refs:
        inspected = json.loads(skopeo_inspect(FixtureImage(image.layout, ref, image.repository)))
        assert inspected["Os"] == "linux" and inspected["Layers"]
