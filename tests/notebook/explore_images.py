import gzip, json, subprocess
from pathlib import Path
from tests.fixtures import layers as L
from tests.fixtures.registry import sha256_digest
from jupyter_containers.images import mediatypes

def busybox_image(registry, name="library/busybox", tag="latest"):
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
    entries = [L.directory("bin"), L.directory("tmp", mode=0o1777), L.directory("etc"),
               L.file("bin/busybox", Path("/bin/busybox").read_bytes(), mode=0o755)]
    entries += [L.symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"]
    raw = L.tar(entries)
    blob = gzip.compress(raw, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [L.diff_id(raw)]}}).encode()
    registry.push_blob(name, blob); registry.push_blob(name, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST,
        "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
        "layers": [{"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": sha256_digest(blob), "size": len(blob)}]}).encode()
    registry.push_manifest(name, tag, manifest, mediatypes.OCI_MANIFEST)
    return f"{registry.host}/{name}:{tag}"
