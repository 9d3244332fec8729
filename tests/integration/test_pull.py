"""Pull from a real registry into the store: layers, snapshots, progress,
resume, integrity, hostile content, platforms, concurrency."""

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest
from traitlets.config import Config

from jupyter_containers import events
from jupyter_containers.client import Client
from jupyter_containers.errors import ImageNotFound, IntegrityError, UnsafeLayer
from jupyter_containers.images import mediatypes
from tests.fixtures.registry import make_image, make_index, sha256_digest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def client_for(layout, **registry_options):
    return Client(layout.root, run_root=layout.run.parent, config=Config({"Registry": registry_options}))


def test_pull_stores_layers_snapshots_and_reports_progress(registry, storage_root):
    image = make_image([{"etc/os-release": b"NAME=test\n", "bin/tool": b"#!/bin/sh\n"},
                        {"etc/motd": b"hello\n"}])
    registry.push_image("pull/basic", "v1", image)
    client = client_for(storage_root)
    seen = []
    pulled = client.image_service.pull(f"{registry.host}/pull/basic:v1", progress=seen.append)

    assert pulled.name == f"{registry.host}/pull/basic:v1"
    assert pulled.status == "Downloaded newer image"
    assert pulled.repo_digest == image.digest
    snapshots = [client.image_service.snapshots.path(d) for d in pulled.diff_ids]
    assert (snapshots[0] / "etc/os-release").read_bytes() == b"NAME=test\n"
    assert (snapshots[1] / "etc/motd").read_bytes() == b"hello\n"
    for layer in image.document["layers"]:
        assert client.image_service.store.has(layer["digest"])
    by_layer = {}
    for event in seen:
        if event.kind == "layer":
            by_layer.setdefault(event.id, []).append(event.status)
    assert len(by_layer) == 2
    for statuses in by_layer.values():
        assert statuses[0] == events.WAITING
        assert events.DOWNLOADING in statuses
        assert statuses[-1] == events.DONE
    attrs = client.images.get(f"{registry.host}/pull/basic:v1").attrs
    assert attrs["RepoTags"] == [f"{registry.host}/pull/basic:v1"]
    assert attrs["RepoDigests"] == [f"{registry.host}/pull/basic@{image.digest}"]
    assert attrs["RootFS"]["Layers"] == pulled.diff_ids


def test_second_pull_fetches_nothing(registry, storage_root, fault_proxy):
    image = make_image([{"a": b"1"}, {"b": b"2"}])
    registry.push_image("pull/again", "v1", image)
    proxy = fault_proxy(registry)
    client = client_for(storage_root)
    name = f"{proxy.host}/pull/again:v1"
    client.image_service.pull(name)
    blob_gets = len(proxy.seen(r"/v2/pull/again/blobs/.*", "GET"))
    seen = []
    started = time.monotonic()
    result = client.image_service.pull(name, progress=seen.append)
    elapsed = time.monotonic() - started
    assert result.status == "Image is up to date"
    assert len(proxy.seen(r"/v2/pull/again/blobs/.*", "GET")) == blob_gets
    assert {e.status for e in seen if e.kind == "layer"} <= {events.WAITING, events.EXISTS}
    assert elapsed < 5  # generous; the benchmark measures the real figure


def test_mirror_makes_plain_names_resolve_to_the_test_registry(registry, storage_root):
    image = make_image([{"mirror": b"yes"}])
    registry.push_image("library/mirrortest", "latest", image)
    client = client_for(storage_root, mirrors={"docker.io": [registry.url]}, mirrors_only=True)
    pulled = client.image_service.pull("mirrortest")
    assert pulled.name == "docker.io/library/mirrortest:latest"
    assert client.images.get("mirrortest").tags == ["mirrortest:latest"]


def test_multi_platform_index_selects_the_host_or_the_asked_platform(registry, storage_root):
    amd64 = make_image([{"arch": b"amd64"}], platform="linux/amd64")
    arm64 = make_image([{"arch": b"arm64"}], platform="linux/arm64/v8")
    registry.push_index("pull/multi", "v1", [amd64, arm64])
    index_raw, _ = make_index([amd64, arm64])
    client = client_for(storage_root)
    host = client.image_service.pull(f"{registry.host}/pull/multi:v1")
    expected = amd64 if os.uname().machine == "x86_64" else arm64
    assert host.manifest_digest == expected.digest
    assert host.repo_digest == sha256_digest(index_raw)
    other = client.image_service.pull(f"{registry.host}/pull/multi:v1", platform="linux/arm64")
    assert other.manifest_digest == arm64.digest
    with pytest.raises(ImageNotFound) as info:
        client.image_service.pull(f"{registry.host}/pull/multi:v1", platform="linux/s390x")
    assert "linux/amd64" in str(info.value) and "linux/arm64" in str(info.value)


def _nothing_named(client, name):
    return client.image_service.store.get(name) is None


def test_tampered_blob_is_refused_and_nothing_is_kept(registry, storage_root, fault_proxy):
    image = make_image([{"payload": os.urandom(4096)}])
    registry.push_image("pull/tampered", "v1", image)
    proxy = fault_proxy(registry, inject=True)
    layer_digest, _ = image.layer(0)
    proxy.add("tamper", rf"/v2/pull/tampered/blobs/{layer_digest}", times=100)
    client = client_for(storage_root, retries=0)
    name = f"{proxy.host}/pull/tampered:v1"
    with pytest.raises(IntegrityError):
        client.image_service.pull(name)
    service = client.image_service
    assert not service.store.has(layer_digest)
    assert not any(service.snapshots.exists(d) for d in json.loads(image.blobs[image.document["config"]["digest"]])["rootfs"]["diff_ids"])
    assert _nothing_named(client, name)
    assert not list(storage_root.ingest.glob("*.partial"))


def _hostile_layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escaped-by-pull")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    return buffer.getvalue()


def test_hostile_layer_from_a_registry_is_refused(registry, storage_root, tmp_path):
    import gzip

    tar = _hostile_layer()
    compressed = gzip.compress(tar, mtime=0)
    layer_digest = registry.push_blob("pull/hostile", compressed)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]}}).encode()
    config_digest = registry.push_blob("pull/hostile", config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
                           "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": config_digest, "size": len(config)},
                           "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": layer_digest,
                                       "size": len(compressed)}]}).encode()
    registry.push_manifest("pull/hostile", "v1", manifest, mediatypes.OCI_MANIFEST)
    before = sorted(os.listdir(storage_root.root.parent))
    client = client_for(storage_root)
    with pytest.raises(UnsafeLayer) as info:
        client.image_service.pull(f"{registry.host}/pull/hostile:v1")
    assert "escaped-by-pull" in str(info.value)
    assert sorted(os.listdir(storage_root.root.parent)) == before
    assert not (storage_root.snapshots.parent / "escaped-by-pull").exists()
    assert client.image_service.snapshots.list() == []
    assert _nothing_named(client, f"{registry.host}/pull/hostile:v1")


PULL_SCRIPT = """
import sys, time
sys.path.insert(0, {root!r})
from jupyter_containers.client import Client
from jupyter_containers import events
client = Client({store!r}, run_root={run!r})
def slow(event):
    if event.status == events.DOWNLOADING:
        time.sleep(0.02)
client.image_service.pull({name!r}, progress=slow)
"""


def test_pull_killed_half_way_resumes_with_range(registry, storage_root, fault_proxy):
    big = os.urandom(24 << 20)  # incompressible: the blob stays large
    image = make_image([{"big.bin": big}])
    registry.push_image("pull/resume", "v1", image)
    proxy = fault_proxy(registry)
    name = f"{proxy.host}/pull/resume:v1"
    layer_digest, layer = image.layer(0)
    partial = storage_root.ingest / f"{layer_digest.split(':')[1]}.partial"
    script = PULL_SCRIPT.format(root=ROOT, store=str(storage_root.root), run=str(storage_root.run.parent), name=name)
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size > 2 << 20:
                break
            assert process.poll() is None, "the pull ended before it could be killed"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    kept = partial.stat().st_size
    assert 0 < kept < len(layer)
    client = client_for(storage_root)
    assert not client.image_service.store.has(layer_digest)
    pulled = client.image_service.pull(name)
    ranges = [r.headers.get("Range") for r in proxy.seen(rf"/v2/pull/resume/blobs/{layer_digest}", "GET")]
    assert ranges[-1] == f"bytes={kept}-"
    assert (client.image_service.snapshots.path(pulled.diff_ids[0]) / "big.bin").read_bytes() == big


def test_two_processes_pulling_the_same_image(registry, storage_root):
    image = make_image([{"one": os.urandom(1 << 20)}, {"two": os.urandom(1 << 20)}])
    registry.push_image("pull/race", "v1", image)
    name = f"{registry.host}/pull/race:v1"
    script = PULL_SCRIPT.format(root=ROOT, store=str(storage_root.root), run=str(storage_root.run.parent), name=name)
    processes = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(120) for p in processes] == [0, 0]
    client = client_for(storage_root)
    info = client.image_service.get(name)
    for diff_id in info.diff_ids:
        assert client.image_service.snapshots.exists(diff_id)
    assert not list(storage_root.ingest.glob("*.partial"))


def test_the_store_is_a_layout_skopeo_reads(registry, storage_root):
    image = make_image([{"skopeo": b"reads this"}])
    registry.push_image("pull/skopeo", "v1", image)
    client = client_for(storage_root)
    pulled = client.image_service.pull(f"{registry.host}/pull/skopeo:v1")
    output = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{storage_root.oci}:{pulled.name}"],
                            check=True, capture_output=True).stdout
    assert sha256_digest(output) == pulled.manifest_digest
