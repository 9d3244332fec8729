"""The ``jupyter-containers`` command as a docker user types it: docker's
verbs, flags, output shapes and exit codes, run as a subprocess against the
test's storage root (plain ``busybox`` resolves to the loopback registry)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from tests.fixtures.network import wait_until
from tests.fixtures.registry import PASSWORD, USERNAME

pytestmark = pytest.mark.root

BUSYBOX = "docker.io/library/busybox:latest"
LONG_ID = re.compile(r"^[0-9a-f]{64}$")


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


def one_line_error(result: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """docker's shape: the exit code, nothing on stdout, one line on stderr."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def started(cli, *args: str) -> str:
    """``run -d ARGS``: the new container's full ID."""
    container_id = ok(cli("run", "-d", "--network", "none", *args)).stdout.strip()
    assert LONG_ID.match(container_id)
    return container_id


def in_pty(command: list[str], env: dict, keys: bytes = b"", timeout: float = 30) -> tuple[int, bytes]:
    """Run ``command`` with a new pseudo-terminal as its stdio (as a user's
    shell would), ``keys`` typed ahead at once; return its exit code and
    everything the terminal showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        if keys:
            os.write(master, keys)
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the process side is closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=max(1, deadline - time.monotonic())), output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


# --- images -----------------------------------------------------------------------------

def test_pull_shows_progress_and_quiet_prints_the_name(cli):
    first = ok(cli("pull", "busybox"))
    lines = first.stdout.splitlines()
    layer_lines = [line for line in lines if re.match(r"^[0-9a-f]{12}: ", line)]
    assert any(line.endswith(": Pull complete") for line in layer_lines), lines
    assert re.search(r"^Digest: sha256:[0-9a-f]{64}$", first.stdout, re.M)
    assert "Status: Downloaded newer image for busybox:latest" in lines
    assert lines[-1] == BUSYBOX
    again = ok(cli("pull", "busybox"))
    assert "Status: Image is up to date for busybox:latest" in again.stdout.splitlines()
    assert ok(cli("pull", "-q", "busybox")).stdout == BUSYBOX + "\n"
    missing = cli("pull", "busybox:no-such-tag")
    one_line_error(missing, 1, "busybox:no-such-tag")


def test_images_quiet_digests_inspect_and_tag(cli, client):
    ok(cli("pull", "-q", "busybox"))
    image = client.images.get("busybox")
    short = image.short_id
    table = ok(cli("images")).stdout.splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:3] == ["busybox", "latest", short]
    assert ok(cli("images", "-q")).stdout == short + "\n"
    digests = ok(cli("images", "--digests")).stdout.splitlines()
    repo_digest = image.attrs["RepoDigests"][0].split("@")[1]
    assert digests[0].split()[2] == "DIGEST" and digests[1].split()[2] == repo_digest

    assert ok(cli("tag", "busybox", "lesson/box:v1")).stdout == ""
    assert ok(cli("images", "-q", "lesson/box")).stdout == short + "\n"
    assert ok(cli("inspect", "-f", "{{.Id}}", "lesson/box:v1")).stdout == image.id + "\n"
    assert ok(cli("image", "inspect", "-f", "{{.Config.Cmd}} {{json .Config.Cmd}}", "busybox")).stdout == \
        '[sh] ["sh"]\n'
    assert ok(cli("inspect", "-f", "{RepoTags[0]}", "busybox")).stdout == "busybox:latest\n"
    assert json.loads(ok(cli("image", "inspect", "busybox")).stdout)[0]["Id"] == image.id
    one_line_error(cli("inspect", "-f", "{{.NoSuchField}}", "busybox"), 1, "NoSuchField")
    one_line_error(cli("tag", "nothing-here", "x:y"), 1, "nothing-here")


def test_rmi_refuses_an_image_in_use_unless_forced_and_image_prune(cli, client):
    ok(cli("pull", "-q", "busybox"))
    short = client.images.get("busybox").short_id
    ok(cli("tag", "busybox", "spare:latest"))
    assert ok(cli("rmi", "spare")).stdout == "Untagged: spare:latest\n"
    container = ok(cli("create", "--network", "none", "busybox", "true")).stdout.strip()
    in_use = cli("rmi", "busybox")
    one_line_error(in_use, 1, container[:12])
    assert ok(cli("rmi", "-f", "busybox")).stdout == "Untagged: busybox:latest\n"
    # The image lives on, untagged, for its container, as in docker.
    assert ok(cli("images")).stdout.splitlines()[1].split()[:3] == ["busybox", "<none>", short]
    assert ok(cli("start", "-a", container)).returncode == 0
    ok(cli("rm", container))
    pruned = ok(cli("image", "prune", "-f"))
    assert pruned.stdout.startswith("Deleted Images:\n") and "Total reclaimed space:" in pruned.stdout
    assert client.images.list() == []
    one_line_error(cli("rmi", "busybox"), 1, "busybox")


@pytest.mark.parametrize("archive_format", ["docker-archive", "oci-archive"])
def test_save_and_load_round_trip(cli, client, tmp_path, archive_format):
    ok(cli("pull", "-q", "busybox"))
    image_id = client.images.get("busybox").id
    archives = tmp_path / "archives"
    archives.mkdir()
    archive = archives / "busybox.tar"
    ok(cli("save", "--format", archive_format, "-o", str(archive), "busybox"))
    streamed = cli("save", "--format", archive_format, "busybox", text=False)
    assert streamed.returncode == 0 and streamed.stderr == b""
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert ("manifest.json" in names) if archive_format == "docker-archive" else ("index.json" in names)

    ok(cli("rmi", "busybox"))
    loaded = ok(cli("load", "-i", str(archive)))
    assert "Loaded image: " in loaded.stdout and "busybox" in loaded.stdout.splitlines()[-1]
    assert client.images.get("busybox").id == image_id
    ok(cli("rmi", "busybox"))
    assert "Loaded image" in ok(cli("load", input=streamed.stdout)).stdout.decode()
    assert ok(cli("run", "--rm", "--network", "none", "--pull", "never", "busybox", "echo", "loaded")).stdout == \
        "loaded\n"
    one_line_error(cli("load", "-i", str(archives / "nothing.tar")), 1, "nothing.tar")
    one_line_error(cli("save", "-o", str(archives / "partial.tar"), "busybox", "no-such-image"), 1, "no-such-image")
    assert os.listdir(archives) == ["busybox.tar"]  # nothing half-written


def test_docker_archive_loads_in_podman_and_oci_archive_in_skopeo(cli, client, podman, tmp_path):
    ok(cli("pull", "-q", "busybox"))
    image_id = client.images.get("busybox").id
    docker_archive, oci_archive = tmp_path / "docker.tar", tmp_path / "oci.tar"
    ok(cli("save", "-o", str(docker_archive), "busybox"))
    ok(cli("save", "--format", "oci-archive", "-o", str(oci_archive), "busybox"))
    loaded = podman("load", "-i", str(docker_archive))
    assert "busybox" in loaded.stdout
    assert podman("image", "inspect", "--format", "{{.Id}}", "docker.io/library/busybox:latest").stdout.strip() == \
        image_id.split(":")[1]
    assert podman("run", "--rm", "--network", "none", "docker.io/library/busybox:latest",
                  "echo", "from podman").stdout == "from podman\n"
    manifest = json.loads(skopeo("inspect", "--raw", f"oci-archive:{oci_archive}"))
    assert manifest["config"]["digest"] == image_id
    assert json.loads(skopeo("inspect", "--config", f"oci-archive:{oci_archive}"))["config"]["Cmd"] == ["sh"]


def skopeo(*args: str) -> str:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, text=True, timeout=60).stdout


# --- run ----------------------------------------------------------------------------------

def test_run_attached_passes_exit_code_and_streams(cli):
    result = cli("run", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout) == (3, "out\n")
    # The image is pulled first, as docker does, and says so on stderr.
    assert result.stderr.startswith("WARNING: Unable to find image 'busybox' locally\n") or \
        result.stderr.startswith("Unable to find image 'busybox' locally\n")
    assert result.stderr.endswith("err\n") and "out" not in result.stderr
    again = cli("run", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (again.returncode, again.stdout, again.stderr) == (0, "out\n", "err\n")


def test_run_detached_rm_and_stdin(cli, client):
    container_id = started(cli, "--name", "detached", "busybox", "sh", "-c", "echo started; sleep 30")
    assert client.containers.get("detached").id == container_id
    assert ok(cli("rm", "-f", "detached")).stdout == "detached\n"

    assert ok(cli("run", "--rm", "--network", "none", "--name", "gone", "busybox", "echo", "bye")).stdout == "bye\n"
    assert "gone" not in ok(cli("ps", "-a")).stdout
    piped = cli("run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", "tr a-z A-Z; echo done",
                input="through stdin\n")
    assert (piped.returncode, piped.stdout) == (0, "THROUGH STDIN\ndone\n")
    # Without -i the container's stdin is empty, as in docker.
    ignored = cli("run", "--rm", "--network", "none", "busybox", "sh", "-c", "cat; echo end", input="lost\n")
    assert (ignored.returncode, ignored.stdout) == (0, "end\n")


def test_run_with_a_tty(cli, cli_env):
    ok(cli("pull", "-q", "busybox"))
    command = [sys.executable, "-m", "jupyter_containers", "run", "--rm", "--network", "none"]
    code, shown = in_pty(command + ["-t", "busybox", "sh", "-c", "test -t 0 && test -t 1 && echo on a tty; exit 4"],
                         cli_env)
    assert code == 4 and b"on a tty\r" in shown  # \r\r\n: no -i, so this terminal is not raw (as docker)
    code, shown = in_pty(command + ["-it", "busybox", "sh", "-c", "read line; echo got $line"], cli_env,
                         keys=b"typed\r")
    assert code == 0 and b"got typed" in shown


# --- ps, logs ------------------------------------------------------------------------------

def test_ps_all_quiet_filter_and_last(cli):
    ok(cli("pull", "-q", "busybox"))
    running = started(cli, "--name", "ps-running", "--label", "lesson=1", "busybox", "sleep", "60")
    done = started(cli, "--name", "ps-done", "--label", "lesson=2", "busybox", "true")
    assert ok(cli("wait", "ps-done")).stdout == "0\n"
    table = ok(cli("ps")).stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "ID", "IMAGE"] and table[0].rstrip().endswith("NAMES")
    assert len(table) == 2 and table[1].startswith(running[:12]) and table[1].endswith("ps-running")
    assert "Up " in table[1] and '"sleep 60"' in table[1]
    everything = ok(cli("ps", "-a")).stdout
    assert "Exited (0)" in everything and "ps-done" in everything
    assert ok(cli("ps", "-q")).stdout == running[:12] + "\n"
    assert ok(cli("ps", "-aq")).stdout.split() == [done[:12], running[:12]]  # newest first
    assert ok(cli("ps", "-q", "--no-trunc")).stdout == running + "\n"
    assert ok(cli("ps", "-aq", "--filter", "label=lesson=2")).stdout == done[:12] + "\n"
    assert ok(cli("ps", "-aq", "-f", "status=exited")).stdout == done[:12] + "\n"
    assert ok(cli("ps", "-aq", "-f", "name=ps-run")).stdout == running[:12] + "\n"
    assert ok(cli("ps", "-q", "-n", "1")).stdout == done[:12] + "\n"
    one_line_error(cli("ps", "--filter", "colour=red"), 1, "colour")


def test_logs_tail_since_timestamps_and_follow(cli, cli_env):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "talker", "busybox", "sh", "-c",
            "echo one; echo two >&2; sleep 1.5; echo three; sleep 1.5; echo four")
    time.sleep(0.5)
    follower = subprocess.Popen([sys.executable, "-m", "jupyter_containers", "logs", "-f", "talker"], env=cli_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = ok(cli("logs", "talker"))
    assert (first.stdout, first.stderr) == ("one\n", "two\n")  # each stream to its own
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0 and (out, err) == ("one\nthree\nfour\n", "two\n")  # followed to the end
    assert ok(cli("logs", "--tail", "2", "talker")).stdout == "three\nfour\n"
    stamped = ok(cli("logs", "-t", "--tail", "1", "talker")).stdout
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z four\n$", stamped), stamped
    assert ok(cli("logs", "--since", stamped.split()[0], "talker")).stdout == "four\n"  # inclusive, as docker
    three = ok(cli("logs", "-t", "--tail", "2", "talker")).stdout.split()[0]
    assert ok(cli("logs", "--until", three, "talker")).stdout == "one\nthree\n"
    assert ok(cli("logs", "--since", "1h", "talker")).stdout == "one\nthree\nfour\n"
    assert ok(cli("logs", "--since", "1h", "--until", "1h", "talker")).stdout == ""
    one_line_error(cli("logs", "--tail", "many", "talker"), 1, "many")
    one_line_error(cli("logs", "nobody"), 1, "no such container: nobody")


# --- lifecycle verbs --------------------------------------------------------------------------

def status(client, name: str) -> str:
    return client.containers.get(name).status


def test_stop_kill_restart_pause_unpause_wait_rename_rm(cli, client, cli_env):
    ok(cli("pull", "-q", "busybox"))
    loop = "trap 'echo got TERM; exit 7' TERM; trap 'echo got USR1' USR1; while true; do sleep 0.1; done"
    started(cli, "--name", "worker", "busybox", "sh", "-c", loop)
    assert ok(cli("pause", "worker")).stdout == "worker\n" and status(client, "worker") == "paused"
    assert "(Paused)" in ok(cli("ps")).stdout
    one_line_error(cli("pause", "worker"), 1, "already paused")
    assert ok(cli("unpause", "worker")).stdout == "worker\n" and status(client, "worker") == "running"
    assert ok(cli("kill", "-s", "USR1", "worker")).stdout == "worker\n"
    assert wait_until(lambda: "got USR1" in cli("logs", "worker").stdout, timeout=10)
    assert status(client, "worker") == "running"
    assert ok(cli("stop", "-t", "5", "worker")).stdout == "worker\n"
    assert client.containers.get("worker").exit_code == 7
    assert ok(cli("wait", "worker")).stdout == "7\n"
    assert ok(cli("restart", "-t", "1", "worker")).stdout == "worker\n" and status(client, "worker") == "running"
    assert ok(cli("rename", "worker", "renamed")).stdout == ""
    assert ok(cli("ps")).stdout.splitlines()[1].endswith(" renamed")
    # An attached run ends with the container, with its exit code.
    attached = subprocess.Popen([sys.executable, "-m", "jupyter_containers", "run", "--name", "attached",
                                 "--network", "none", "busybox", "sleep", "60"], env=cli_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert wait_until(lambda: "attached" in cli("ps").stdout, timeout=20)
    assert ok(cli("kill", "attached")).stdout == "attached\n"
    assert attached.wait(timeout=20) == 137
    one_line_error(cli("kill", "attached"), 1, "is not running")
    one_line_error(cli("rm", "renamed"), 1, "stop the container before attempting removal or force remove")
    assert ok(cli("rm", "-f", "-v", "renamed", "attached")).stdout == "renamed\nattached\n"
    assert client.containers.list(all=True) == []
    one_line_error(cli("kill", "-s", "NOPE", "renamed"), 1, "no such container: renamed")


def test_rm_v_removes_anonymous_volumes_only(cli, client):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "with-volumes", "-v", "/anonymous", "-v", "kept:/named", "busybox", "true")
    ok(cli("wait", "with-volumes"))
    volumes = ok(cli("volume", "ls", "-q")).stdout.split()
    assert "kept" in volumes and len(volumes) == 2
    ok(cli("rm", "-v", "with-volumes"))
    assert ok(cli("volume", "ls", "-q")).stdout.split() == ["kept"]


# --- exec ------------------------------------------------------------------------------------

def test_exec_env_user_workdir_detach_and_stdin(cli, cli_env):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "box", "-e", "FROM_RUN=1", "busybox", "sleep", "120")
    out = ok(cli("exec", "-e", "EXTRA=2", "-u", "app", "-w", "/tmp", "box",
                 "sh", "-c", "echo $FROM_RUN $EXTRA; id -un; pwd")).stdout
    assert out == "1 2\napp\n/tmp\n"
    result = cli("exec", "box", "sh", "-c", "echo to-out; echo to-err >&2; exit 9")
    assert (result.returncode, result.stdout, result.stderr) == (9, "to-out\n", "to-err\n")
    assert ok(cli("exec", "-d", "box", "sh", "-c", "sleep 0.5; echo later > /tmp/detached")).stdout == ""
    assert wait_until(lambda: cli("exec", "box", "cat", "/tmp/detached").stdout == "later\n", timeout=10)
    piped = cli("exec", "-i", "box", "sh", "-c", "tr a-z A-Z", input="piped in\n")
    assert (piped.returncode, piped.stdout) == (0, "PIPED IN\n")
    assert cli("exec", "box", "sh", "-c", "cat; echo end", input="not forwarded\n").stdout == "end\n"
    missing = cli("exec", "box", "no-such-command")
    assert missing.returncode == 127 and "no-such-command" in missing.stderr
    code, shown = in_pty([sys.executable, "-m", "jupyter_containers", "exec", "-it", "box",
                          "sh", "-c", "test -t 0 && echo tty; read line; echo got $line"], cli_env, keys=b"hi\r")
    assert code == 0 and b"tty" in shown and b"got hi" in shown
    one_line_error(cli("exec", "nobody", "true"), 1, "no such container: nobody")
    ok(cli("stop", "-t", "0", "box"))
    one_line_error(cli("exec", "box", "true"), 1, "is not running")


# --- cp, export, stats, top, port ------------------------------------------------------------

def test_cp_both_ways_and_to_stdout(cli, tmp_path):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "files", "busybox", "sh", "-c", "mkdir -p /data/sub && echo inside > /data/sub/f; "
                                                           "sleep 120")
    assert wait_until(lambda: cli("exec", "files", "test", "-f", "/data/sub/f").returncode == 0)
    (tmp_path / "in.txt").write_text("from the host\n")
    assert ok(cli("cp", str(tmp_path / "in.txt"), "files:/data/")).stdout == ""
    assert ok(cli("exec", "files", "cat", "/data/in.txt")).stdout == "from the host\n"
    ok(cli("cp", "files:/data/sub", str(tmp_path / "out")))
    assert (tmp_path / "out" / "f").read_text() == "inside\n"
    streamed = cli("cp", "files:/data/sub/f", "-", text=False)
    assert streamed.returncode == 0
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as archive:
        assert archive.getnames() == ["f"] and archive.extractfile("f").read() == b"inside\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        entry = tarfile.TarInfo("from-stdin.txt")
        entry.size = 4
        archive.addfile(entry, io.BytesIO(b"tar\n"))
    ok(cli("cp", "-", "files:/data", input=buffer.getvalue()))
    assert ok(cli("exec", "files", "cat", "/data/from-stdin.txt")).stdout == "tar\n"
    one_line_error(cli("cp", "files:/no/such", str(tmp_path / "x")), 1, "/no/such")
    one_line_error(cli("cp", str(tmp_path / "in.txt"), str(tmp_path / "y")), 1)


def test_export_to_a_file(cli, tmp_path):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "exported", "busybox", "sh", "-c", "echo mark > /root/mark")
    ok(cli("wait", "exported"))
    target = tmp_path / "fs.tar"
    assert ok(cli("export", "-o", str(target), "exported")).stdout == ""
    with tarfile.open(target) as archive:
        assert archive.extractfile("root/mark").read() == b"mark\n" and "bin/busybox" in archive.getnames()
    one_line_error(cli("export", "-o", str(tmp_path / "no" / "dir.tar"), "exported"), 1, "no")


def test_stats_top_and_port(cli):
    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "busy", "busybox", "sh", "-c", "sleep 100")
    stats = ok(cli("stats", "--no-stream")).stdout.splitlines()
    assert stats[0].split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                                "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert len(stats) == 2 and " busy " in stats[1] and stats[1].split()[-1] == "1"
    top = ok(cli("top", "busy")).stdout.splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and top[1].endswith("sleep 100")
    assert ok(cli("port", "busy")).stdout == ""
    ok(cli("stop", "-t", "0", "busy"))
    one_line_error(cli("top", "busy"), 1, "is not running")


# --- volumes and networks -------------------------------------------------------------------

def test_volume_create_ls_inspect_rm_prune(cli):
    assert ok(cli("volume", "create", "--label", "lesson=5", "notes")).stdout == "notes\n"
    unnamed = ok(cli("volume", "create")).stdout.strip()
    assert re.match(r"^[0-9a-f]{64}$", unnamed)
    listed = ok(cli("volume", "ls")).stdout.splitlines()
    assert listed[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(line.split()[1] for line in listed[1:]) == sorted(["notes", unnamed])
    assert ok(cli("volume", "ls", "-q", "--filter", "label=lesson=5")).stdout == "notes\n"
    details = json.loads(ok(cli("volume", "inspect", "notes")).stdout)[0]
    assert details["Name"] == "notes" and details["Labels"] == {"lesson": "5"} and details["Driver"] == "local"
    assert os.path.isdir(details["Mountpoint"])
    assert ok(cli("volume", "inspect", "-f", "{{.Mountpoint}}", "notes")).stdout == details["Mountpoint"] + "\n"

    ok(cli("pull", "-q", "busybox"))
    started(cli, "--name", "user", "-v", "notes:/notes", "-v", "/scratch", "busybox", "sh", "-c",
            "echo kept > /notes/f; sleep 60")
    anonymous = next(m["Name"] for m in json.loads(ok(cli("inspect", "user")).stdout)[0]["Mounts"]
                     if m["Destination"] == "/scratch")
    one_line_error(cli("volume", "rm", "notes"), 1, "notes")
    ok(cli("rm", "-f", "user"))  # without -v: its anonymous volume stays, unused
    # As docker 23+: prune takes unused anonymous volumes; -a also named ones.
    assert ok(cli("volume", "prune", "-f")).stdout.splitlines()[:2] == ["Deleted Volumes:", anonymous]
    started(cli, "--name", "user", "-v", "notes:/notes", "busybox", "sleep", "60")
    assert ok(cli("volume", "prune", "-a", "-f")).stdout.splitlines()[:2] == ["Deleted Volumes:", unnamed]
    ok(cli("rm", "-f", "user"))
    assert ok(cli("run", "--rm", "--network", "none", "-v", "notes:/notes", "busybox", "cat", "/notes/f")).stdout \
        == "kept\n"
    assert ok(cli("volume", "rm", "notes")).stdout == "notes\n"
    assert ok(cli("volume", "ls", "-q")).stdout == ""
    one_line_error(cli("volume", "rm", "notes"), 1, "notes")
    one_line_error(cli("volume", "inspect", "nothing"), 1, "nothing")


def test_network_create_ls_inspect_connect_disconnect_rm_prune(cli, client):
    network_id = ok(cli("network", "create", "--label", "lesson=6", "lesson-net")).stdout.strip()
    assert re.match(r"^[0-9a-f]{64}$", network_id)
    ok(cli("network", "create", "spare-net"))
    one_line_error(cli("network", "create", "lesson-net"), 1, "lesson-net")
    listed = ok(cli("network", "ls")).stdout.splitlines()
    assert listed[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    names = [line.split()[1] for line in listed[1:]]
    assert {"bridge", "host", "none", "lesson-net", "spare-net"} <= set(names)
    assert network_id[:12] in ok(cli("network", "ls", "-q")).stdout.split()
    assert ok(cli("network", "ls", "-q", "--filter", "label=lesson=6")).stdout == network_id[:12] + "\n"
    details = json.loads(ok(cli("network", "inspect", "lesson-net")).stdout)[0]
    assert details["Id"] == network_id and details["Driver"] == "bridge" and details["Labels"] == {"lesson": "6"}
    subnet = details["IPAM"]["Config"][0]["Subnet"]
    assert ok(cli("network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "lesson-net")).stdout == \
        subnet + "\n"

    ok(cli("pull", "-q", "busybox"))
    ok(cli("run", "-d", "--name", "member", "--dns", "127.0.0.1", "busybox", "sleep", "120"))
    assert ok(cli("network", "connect", "--alias", "teacher", "lesson-net", "member")).stdout == ""
    networks = json.loads(ok(cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "member")).stdout)
    assert set(networks) == {"bridge", "lesson-net"} and "teacher" in networks["lesson-net"]["Aliases"]
    addresses = ok(cli("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", "member")).stdout
    assert addresses.split() == [networks["bridge"]["IPAddress"], networks["lesson-net"]["IPAddress"]]
    members = json.loads(ok(cli("network", "inspect", "lesson-net")).stdout)[0]["Containers"]
    assert list(members) == [client.containers.get("member").id]
    one_line_error(cli("network", "connect", "lesson-net", "member"), 1, "already")
    one_line_error(cli("network", "rm", "lesson-net"), 1, "lesson-net")
    assert ok(cli("network", "disconnect", "lesson-net", "member")).stdout == ""
    assert set(json.loads(ok(cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "member")).stdout)) == \
        {"bridge"}
    # a filter limits what is pruned: only the unused network with the label
    ok(cli("network", "create", "--label", "lesson=7", "labelled-net"))
    pruned = ok(cli("network", "prune", "-f", "--filter", "label=lesson=7")).stdout
    assert "labelled-net" in pruned and "spare-net" not in pruned and "lesson-net" not in pruned
    one_line_error(cli("network", "prune", "-f", "--filter", "until=1h"), 1, "until")
    pruned = ok(cli("network", "prune", "-f")).stdout
    assert "lesson-net" in pruned and "spare-net" in pruned
    assert "lesson-net" not in ok(cli("network", "ls")).stdout
    one_line_error(cli("network", "rm", "lesson-net"), 1, "lesson-net")
    one_line_error(cli("network", "create", "--driver", "overlay", "x"), 1, "overlay")


# --- login, logout -------------------------------------------------------------------------

def test_login_logout_with_password_stdin(cli, cli_env, auth_registry, busybox_image, tmp_path):
    auth_registry.push_layout(busybox_image.layout, busybox_image.ref, "private/busybox", "v1")
    cli_env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    image = f"{auth_registry.host}/private/busybox:v1"
    denied = cli("pull", "-q", image)
    assert denied.returncode == 1 and f"login {auth_registry.host}" in denied.stderr
    wrong = cli("login", "-u", USERNAME, "--password-stdin", auth_registry.host, input="wrong\n")
    assert wrong.returncode == 1 and wrong.stderr.startswith("Error: ")
    assert not (tmp_path / "docker" / "config.json").exists()
    one_line_error(cli("login", auth_registry.host), 1, "--username")

    logged_in = ok(cli("login", "-u", USERNAME, "--password-stdin", auth_registry.host, input=PASSWORD + "\n"))
    assert logged_in.stdout == "Login Succeeded\n"
    config = tmp_path / "docker" / "config.json"
    assert oct(config.stat().st_mode & 0o777) == "0o600" and auth_registry.host in json.loads(config.read_text())["auths"]
    assert ok(cli("pull", "-q", image)).stdout == image + "\n"
    assert ok(cli("logout", auth_registry.host)).stdout == f"Removing login credentials for {auth_registry.host}\n"
    assert json.loads(config.read_text())["auths"] == {}
    assert cli("pull", "-q", image).returncode == 1  # as docker's, a pull asks the registry even for a local image


# --- errors, help, the jupyter subcommand --------------------------------------------------------

def test_errors_and_exit_codes_as_docker(cli):
    missing = cli("run", "--network", "none", "no-such-image")
    assert missing.returncode == 125
    assert missing.stderr.splitlines()[-1].startswith("Error: ") and "no-such-image" in missing.stderr.splitlines()[-1]
    one_line_error(cli("run", "--bogus", "busybox"), 125, "--bogus")
    one_line_error(cli("ps", "--bogus"), 125, "--bogus")
    ok(cli("pull", "-q", "busybox"))
    one_line_error(cli("run", "--network", "none", "--memory", "lots", "busybox"), 125, "lots")
    not_found = cli("run", "--network", "none", "busybox", "no-such-command")
    assert not_found.returncode == 127 and "no-such-command" in not_found.stderr
    not_executable = cli("run", "--network", "none", "busybox", "/etc/passwd")
    assert not_executable.returncode == 126
    one_line_error(cli("run", "--network", "none", "--name", "bad name", "busybox"), 125, "bad name")
    for verb in ("stop", "start", "rm", "kill", "logs", "inspect", "wait", "pause", "port", "top"):
        one_line_error(cli(verb, "nobody"), 1, "nobody")
    one_line_error(cli("not-a-verb"), 1, "not-a-verb")


def test_help(cli):
    top = ok(cli("--help")).stdout
    for verb in ("run", "ps", "pull", "images", "network", "volume", "login"):
        assert re.search(rf"^\s+{verb}\s", top, re.M), verb
    assert ok(cli()).stdout == top
    run_help = ok(cli("run", "--help")).stdout
    assert run_help.startswith("usage: jupyter-containers run") and "--publish" in run_help
    assert "--subnet" in ok(cli("network", "create", "--help")).stdout


@pytest.mark.skipif(shutil.which("jupyter-containers") is None,
                    reason="the jupyter-containers console script is not installed (pip install -e .)")
def test_jupyter_subcommand(cli_env, client):
    result = subprocess.run(["jupyter", "containers", "ps", "-a"], env=cli_env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == ["CONTAINER", "ID", "IMAGE"]
    version = subprocess.run(["jupyter", "containers", "version"], env=cli_env, capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("Version:")
