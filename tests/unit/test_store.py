"""The content store: blobs verified while they stream in, committed
atomically, resumable, safe between processes; the index of named images;
garbage collection. The layout is checked with skopeo, the reference reader."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jupyter_containers.errors import ImageNotFound, IntegrityError, NotFound
from jupyter_containers.images.store import REF_NAME, REPO_DIGEST, ContentStore
from tests.fixtures import layers

WORKTREE = Path(__file__).resolve().parents[2]
DATA = os.urandom(3 << 20)
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(storage_root):
    return ContentStore(storage_root)


def _child(storage_root, code: str) -> subprocess.Popen:
    """A process using the same store, running ``code`` with ``store`` bound."""
    prelude = ("import sys, time\n"
               "from jupyter_containers.storage import Layout\n"
               "from jupyter_containers.images.store import ContentStore\n"
               f"store = ContentStore(Layout({str(storage_root.root)!r}, {str(storage_root.run)!r}))\n")
    return subprocess.Popen([sys.executable, "-c", prelude + code], cwd=WORKTREE,
                            env={**os.environ, "PYTHONPATH": str(WORKTREE)},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _partials(storage_root):
    return sorted(path.name for path in storage_root.ingest.glob("*.partial"))


def test_a_new_store_is_an_oci_layout(store):
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((store.root / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    assert store.blobs.is_dir()


def test_small_blobs_round_trip(store):
    descriptor = store.write_bytes(b"{}", media_type="application/vnd.oci.image.config.v1+json")
    assert descriptor == {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(), "size": 2}
    assert store.has(descriptor["digest"])
    assert store.read(descriptor["digest"]) == b"{}"
    assert store.path(descriptor["digest"]).read_bytes() == b"{}"
    with store.open(descriptor["digest"]) as handle:
        assert handle.read() == b"{}"
    # Shared content is stored once: writing it again changes nothing.
    assert store.write_bytes(b"{}")["digest"] == descriptor["digest"]
    assert len(list(store.blobs.iterdir())) == 1


def test_a_blob_that_does_not_match_its_digest_never_becomes_visible(store):
    wrong = "sha256:" + "0" * 64
    with pytest.raises(IntegrityError, match=f"blob {wrong} does not match its digest"):
        store.write_bytes(b"not what was promised", expected_digest=wrong)
    assert not store.has(wrong)
    assert _partials(store.layout) == []
    with pytest.raises(NotFound, match="not in the image store"):
        store.read(wrong)


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, ""])
def test_malformed_digests_are_refused(store, digest):
    with pytest.raises(IntegrityError, match="is not a sha256 digest"):
        store.ingest(digest, 1)


def test_streamed_ingest_verifies_and_commits(store):
    with store.ingest(DIGEST, len(DATA)) as ingest:
        assert not ingest.exists and ingest.offset == 0
        for start in range(0, len(DATA), 100_000):
            ingest.write(DATA[start:start + 100_000])
        assert not store.has(DIGEST)  # not before the commit
        ingest.commit()
        assert ingest.exists
    assert store.read(DIGEST) == DATA
    assert _partials(store.layout) == [] and list(store.layout.ingest.iterdir()) == []


def test_an_interrupted_ingest_resumes_where_it_stopped(store):
    half = len(DATA) // 2
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA[:half])
    assert not store.has(DIGEST)
    with store.ingest(DIGEST, len(DATA)) as ingest:
        assert ingest.offset == half
        ingest.write(DATA[half:])
        ingest.commit()
    assert store.read(DIGEST) == DATA


def test_reset_starts_over(store):
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(b"garbage from a server that ignored the Range header")
    with store.ingest(DIGEST, len(DATA)) as ingest:
        assert ingest.offset > 0
        ingest.reset()
        ingest.write(DATA)
        ingest.commit()
    assert store.read(DIGEST) == DATA


def test_a_blob_longer_than_its_descriptor_is_discarded(store):
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA)
        with pytest.raises(IntegrityError, match=f"larger than the {len(DATA)} bytes"):
            ingest.write(b"x")
    assert not store.has(DIGEST) and _partials(store.layout) == []


def test_a_blob_shorter_than_its_descriptor_is_discarded(store):
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA[:-1])
        with pytest.raises(IntegrityError, match=f"ended after {len(DATA) - 1} of its {len(DATA)} bytes"):
            ingest.commit()
    assert not store.has(DIGEST) and _partials(store.layout) == []


def test_a_second_process_waits_and_finds_the_blob_committed(store, storage_root):
    child = _child(storage_root, (
        f"ingest = store.ingest({DIGEST!r}, {len(DATA)}).__enter__()\n"
        f"data = open({str(storage_root.root / 'data')!r}, 'rb').read()\n"
        "ingest.write(data[:1000])\n"
        "print('writing', flush=True)\n"
        "sys.stdin.readline()\n"
        "ingest.write(data[1000:]); ingest.commit(); ingest.__exit__(None, None, None)\n"))
    (storage_root.root / "data").write_bytes(DATA)
    try:
        assert child.stdout.readline() == "writing\n"
        seen = {}

        def second():
            with store.ingest(DIGEST, len(DATA)) as ingest:
                seen["exists"], seen["offset"] = ingest.exists, ingest.offset

        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.5)
        assert waiter.is_alive(), "the second ingest did not wait for the first"
        child.stdin.write("go\n")
        child.stdin.flush()
        waiter.join(10)
        assert seen == {"exists": True, "offset": len(DATA)}
        assert child.wait(10) == 0
    finally:
        child.kill()
        child.wait()
    assert store.read(DIGEST) == DATA


def test_sigkill_mid_ingest_leaves_only_a_partial_that_the_next_ingest_resumes(store, storage_root):
    (storage_root.root / "data").write_bytes(DATA)
    child = _child(storage_root, (
        f"ingest = store.ingest({DIGEST!r}, {len(DATA)}).__enter__()\n"
        f"ingest.write(open({str(storage_root.root / 'data')!r}, 'rb').read()[:2000000])\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"))
    try:
        assert child.stdout.readline() == "written\n"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
    assert not store.has(DIGEST)
    assert _partials(store.layout) == [DIGEST[7:] + ".partial"]
    with store.ingest(DIGEST, len(DATA)) as ingest:
        assert ingest.offset == 2_000_000  # re-hashed, not trusted blindly
        ingest.write(DATA[ingest.offset:])
        ingest.commit()
    assert store.read(DIGEST) == DATA


def test_a_corrupted_partial_is_caught_at_commit(store):
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA[:1000])
    partial = store.layout.ingest / (DIGEST[7:] + ".partial")
    partial.write_bytes(b"X" * 1000)  # a disk error, another writer…
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA[ingest.offset:])
        with pytest.raises(IntegrityError, match="does not match its digest"):
            ingest.commit()
    assert not store.has(DIGEST) and not partial.exists()


def _image(store, name, *contents):
    return layers.add_image(store, name, [(layers.tar([layers.file(f"f{i}", data)]), "gzip")
                                          for i, data in enumerate(contents)])


def test_images_are_named_in_the_index(store):
    first = _image(store, "docker.io/library/a:latest", b"a")
    second = _image(store, "docker.io/library/b:1", b"b")
    assert [entry["annotations"][REF_NAME] for entry in store.images()] == [
        "docker.io/library/a:latest", "docker.io/library/b:1"]
    assert store.get("docker.io/library/a:latest")["digest"] == first["digest"]
    assert store.get("docker.io/library/a:latest")["annotations"][REPO_DIGEST] == first["digest"]
    assert store.get("docker.io/library/nope:latest") is None
    # Re-pointing a name replaces its entry in place; the image it named
    # stays, untagged, under the digest its registry served (docker's
    # dangling image), since no other name reaches it.
    store.set("docker.io/library/a:latest", second)
    kept = f"docker.io/library/a@{first['digest']}"
    assert [(entry["annotations"][REF_NAME], entry["digest"]) for entry in store.images()] == [
        ("docker.io/library/a:latest", second["digest"]), ("docker.io/library/b:1", second["digest"]),
        (kept, first["digest"])]
    removed = store.remove("docker.io/library/a:latest")
    assert removed["digest"] == second["digest"]
    assert [entry["annotations"][REF_NAME] for entry in store.images()] == ["docker.io/library/b:1", kept]
    # An image another name still reaches is not kept twice.
    store.set("docker.io/library/b:2", second)
    store.set("docker.io/library/b:1", first)
    assert len(store.images()) == 3
    with pytest.raises(ImageNotFound, match="No such image: docker.io/library/a:latest"):
        store.remove("docker.io/library/a:latest")


def test_a_name_cannot_point_at_a_missing_manifest(store):
    with pytest.raises(NotFound, match="is not in the image store"):
        store.set("docker.io/library/a:latest", {"mediaType": "x", "digest": DIGEST, "size": 1})
    assert store.images() == []


def test_gc_removes_only_what_no_image_reaches(store):
    _image(store, "docker.io/library/a:latest", b"shared", b"only a")
    kept = _image(store, "docker.io/library/b:latest", b"shared")
    sizes = {path.name: path.stat().st_size for path in store.blobs.iterdir()}
    with store.ingest(DIGEST, len(DATA)) as ingest:
        ingest.write(DATA[:10])  # an abandoned download
    store.remove("docker.io/library/a:latest")
    removed = store.gc()
    after = {path.name for path in store.blobs.iterdir()}
    assert {"sha256:" + name for name in sizes.keys() - after} == set(removed["blobs"])
    assert len(removed["blobs"]) == 3  # a's manifest, config and own layer
    assert removed["bytes"] == sum(sizes[digest[7:]] for digest in removed["blobs"])
    reachable, diff_ids = store.reachable()
    assert {"sha256:" + name for name in after} == reachable
    assert kept["digest"] in reachable and len(diff_ids) == 1
    assert _partials(store.layout) == []


def test_gc_waits_for_pulls_holding_a_lease(store):
    done = threading.Event()
    with store.lease():
        collector = threading.Thread(target=lambda: (store.gc(), done.set()))
        collector.start()
        time.sleep(0.3)
        assert not done.is_set()
    collector.join(10)
    assert done.is_set()


def test_skopeo_reads_the_layout(store):
    manifest = _image(store, "docker.io/library/busybox:latest", b"hello")
    result = subprocess.run(["skopeo", "inspect", f"oci:{store.root}:docker.io/library/busybox:latest"],
                            capture_output=True, text=True, check=True)
    inspected = json.loads(result.stdout)
    assert inspected["Digest"] == manifest["digest"]
    assert inspected["Layers"] == [layer["digest"] for layer in store.read_json(manifest["digest"])["layers"]]
