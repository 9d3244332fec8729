"""What a process inside a default container can see and do, probed from
inside: Docker's isolation defaults, and --privileged lifting them. The
same probe runs under crun, with the same image and docker's settings, as a
reference."""

import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.root

DOCKER_CAPS = "00000000a80425fb"

PROBE = r"""
grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status
echo "pids $(ls -d /proc/[0-9]* | wc -l)"
echo "keys $(wc -c < /proc/keys)"
echo "timer_list $(wc -c < /proc/timer_list)"
echo "acpi $(ls /proc/acpi | wc -l)"
(echo 1 > /proc/sys/kernel/hostname) 2>/dev/null && echo "proc_sys writable" || echo "proc_sys read-only"
(echo x > /sys/kernel/profiling) 2>/dev/null && echo "sys writable" || echo "sys read-only"
mkdir -p /mnt/t; (mount -t tmpfs none /mnt/t) 2>/dev/null && echo "mount allowed" || echo "mount refused"
(unshare -m true) 2>/dev/null && echo "unshare allowed" || echo "unshare refused"
echo "devices $(ls /dev | tr '\n' ' ')"
echo "fds $(ls /proc/self/fd | tr '\n' ' ')"
echo "cwd $(readlink /proc/self/cwd)"
"""


def probe(client, **options):
    out = client.containers.run("busybox", ["sh", "-c", PROBE], network="none", **options).decode()
    result = {}
    for line in out.splitlines():
        key, _, value = line.replace(":\t", " ").partition(" ")
        result[key] = value.strip()
    return result


def test_default_container_is_confined(client):
    seen = probe(client)
    assert seen["CapEff"] == DOCKER_CAPS and seen["CapBnd"] == DOCKER_CAPS
    assert seen["Seccomp"] == "2" and seen["NoNewPrivs"] == "1"
    assert int(seen["pids"]) <= 4  # sh, its pipeline: no host process is visible
    assert seen["keys"] == "0" and seen["timer_list"] == "0"  # masked with /dev/null
    assert seen["acpi"] == "0"
    assert seen["proc_sys"] == "read-only" and seen["sys"] == "read-only"
    assert seen["mount"] == "refused" and seen["unshare"] == "refused"
    assert set(seen["devices"].split()) == {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts",
                                            "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom",
                                            "zero"} - {"console"}
    # Nothing of the runtime's reaches the container (the CVE-2024-21626
    # class): only stdio and the descriptor ls itself opens, cwd inside.
    assert seen["fds"].split() == ["0", "1", "2", "3"]
    assert seen["cwd"] == "/"


def test_privileged_lifts_the_defaults(client):
    seen = probe(client, privileged=True)
    assert seen["CapEff"] != DOCKER_CAPS and int(seen["CapEff"], 16) > int(DOCKER_CAPS, 16)
    assert seen["Seccomp"] == "0"
    assert seen["mount"] == "allowed"
    assert seen["proc_sys"] == "writable"
    assert seen["timer_list"] != "0"  # nothing masked


def test_cap_add_drop_and_security_opts(client):
    seen = probe(client, cap_drop=["ALL"], cap_add=["CHOWN"])
    assert seen["CapEff"] == "0000000000000001"
    seen = probe(client, security_opt=["seccomp=unconfined"])
    assert seen["Seccomp"] == "0" and seen["CapEff"] == DOCKER_CAPS
    seen = probe(client, security_opt=["no-new-privileges=false"])
    assert seen["NoNewPrivs"] == "0" and seen["Seccomp"] == "2"


def test_no_container_process_sees_the_runtime_binary(client):
    """Exec helpers are the host's python until they exec: they are not
    dumpable and live outside the container's PID namespace, so no process
    inside can open their /proc/PID/exe (the CVE-2019-5736 class)."""
    watcher = client.containers.run(
        "busybox", ["sh", "-c", "while true; do for e in /proc/[0-9]*/exe; do readlink $e; done; done"],
        network="none", detach=True)
    time.sleep(0.2)
    for _ in range(10):
        assert watcher.exec_run(["true"]).exit_code == 0
    watcher.kill()
    seen = set(watcher.logs().decode().split())
    assert seen and all("python" not in path for path in seen), seen


def crun_probe(busybox_image, tmp_path):
    """The same probe in crun with docker's defaults (its own defaults when
    run from an OCI bundle are docker's caps, masked and read-only paths;
    the seccomp profile is not set by umoci, so that line is not compared)."""
    bundle = tmp_path / "bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{busybox_image.layout}:{busybox_image.ref}", str(bundle)],
                   check=True, capture_output=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["sh", "-c", PROBE]
    config["process"]["terminal"] = False
    config["process"]["noNewPrivileges"] = True
    docker_caps = ["CAP_" + c for c in ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                                        "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                                        "AUDIT_WRITE")]
    config["process"]["capabilities"] = {k: docker_caps for k in ("bounding", "effective", "permitted")}
    from jupyter_containers.linux.mounts import MASKED_PATHS, READONLY_PATHS

    config["linux"]["maskedPaths"] = list(MASKED_PATHS)
    config["linux"]["readonlyPaths"] = list(READONLY_PATHS)
    config["linux"].pop("resources", None)
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "user"] + \
        [{"type": "network"}]
    config_path.write_text(json.dumps(config))
    name = f"jc-probe-{os.getpid()}"
    # crun refuses this host's hybrid cgroup layout unless the cgroup2 mount
    # is gone: run it in a mount namespace of its own without it.
    command = f"umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --cgroup-manager=disabled run --bundle {bundle} {name}"
    out = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", command],
                         capture_output=True, timeout=60)
    subprocess.run(["crun", "delete", "-f", name], capture_output=True)
    result = {}
    for line in out.stdout.decode().splitlines():
        key, _, value = line.replace(":\t", " ").partition(" ")
        result[key] = value.strip()
    return result


def test_same_confinement_as_crun(client, busybox_image, tmp_path):
    ours = probe(client)
    theirs = crun_probe(busybox_image, tmp_path)
    if not theirs:
        pytest.fail("crun did not run the probe")
    for key in ("CapEff", "CapBnd", "NoNewPrivs", "keys", "timer_list", "acpi", "proc_sys", "mount", "unshare"):
        assert ours[key] == theirs[key], (key, ours[key], theirs[key])
