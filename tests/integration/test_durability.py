"""Daemonless and durable: containers outlive the process that started them,
every process sees the same state, a lost /run (a reboot) is survived, and
many processes create, start and pull at once without clash or corruption.

"Starters" are separate Python processes using the API or the CLI on the
test's storage root; they are ended by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from jupyter_containers import storage
from jupyter_containers.network import links, netns
from tests.fixtures.network import drop_rules, state_of, wait_until
from tests.fixtures.registry import free_port

pytestmark = pytest.mark.root


def python(cli_env, code: str, *args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], env=cli_env, stdin=subprocess.DEVNULL,
                            **options)


def cli_process(cli_env, *args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "jupyter_containers", *args], env=cli_env,
                            stdin=subprocess.DEVNULL, **options)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def ps_from_another_process(cli) -> list[tuple[str, str]]:
    """(full id, status) of every container, as the CLI in another process
    sees them."""
    result = cli("inspect", "-f", "{{.Id}} {{.State.Status}}", *cli("ps", "-aq", "--no-trunc").stdout.split())
    assert result.returncode == 0, result.stderr
    return sorted(tuple(line.split()) for line in result.stdout.splitlines())


def ps_here(client) -> list[tuple[str, str]]:
    return sorted((c.id, c.status) for c in client.containers.list(all=True))


# --- outliving the starter ---------------------------------------------------------------

COUNTER = "for i in $(seq 1 12); do echo out $i; echo err $i >&2; sleep 0.25; done; exit 3"


def test_container_outlives_a_sigkill_of_its_attached_starter(client, cli, cli_env):
    """``run`` attached (the starter is the attach client) is SIGKILLed;
    the container keeps running and logging, and its exit is recorded."""
    starter = cli_process(cli_env, "run", "--name", "orphan", "--network", "none", "busybox", "sh", "-c", COUNTER,
                          stdout=subprocess.PIPE)
    assert starter.stdout.readline() == b"out 1\n"  # attached and streaming
    kill(starter)
    container = client.containers.get("orphan")
    assert container.status == "running"
    assert ps_from_another_process(cli) == ps_here(client) == [(container.id, "running")]
    assert container.wait(timeout=30)["StatusCode"] == 3
    assert container.logs(stderr=False) == b"".join(b"out %d\n" % i for i in range(1, 13))
    assert container.logs(stdout=False) == b"".join(b"err %d\n" % i for i in range(1, 13))
    state = container.reload().attrs["State"]
    assert (state["Status"], state["ExitCode"], state["Running"], state["Pid"]) == ("exited", 3, False, 0)
    assert state["FinishedAt"] > state["StartedAt"] > "2020"
    assert ps_from_another_process(cli) == ps_here(client) == [(container.id, "exited")]
    last = cli("logs", "--tail", "2", "orphan")
    assert (last.stdout, last.stderr) == ("out 12\n", "err 12\n")


STARTER = """
import sys
from jupyter_containers.client import Client
container = Client().containers.run("busybox", ["sh", "-c", sys.argv[1]], detach=True, network="none",
                                    restart_policy="always", name="phoenix")
print(container.id, flush=True)
sys.stdin.read()
"""


def test_restart_always_is_applied_by_the_monitor_once_the_starter_is_gone(client, cli, cli_env):
    starter = python(cli_env, STARTER, "echo run; sleep 0.3; exit 1", stdout=subprocess.PIPE)
    container_id = starter.stdout.readline().decode().strip()
    kill(starter)
    container = client.containers.get(container_id)
    assert wait_until(lambda: container.reload().attrs["RestartCount"] >= 3, timeout=30), container.attrs["State"]
    assert container.logs().count(b"run\n") >= 3
    assert cli("stop", "-t", "1", "phoenix").returncode == 0
    count = container.reload().attrs["RestartCount"]
    time.sleep(1.5)  # longer than any restart delay so far: a stopped container stays stopped
    assert container.reload().status == "exited" and container.attrs["RestartCount"] == count


# --- a reboot: the runtime state under /run is lost ------------------------------------

def fetch(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.read()
    except OSError:
        return None


def forget_the_boot(client) -> None:
    """What a reboot does to the records: another boot ID, and the run
    directory (monitor pid files, attach sockets, namespace files) gone.
    The processes are left alone."""
    for container_id in client.runtime.store.ids():
        path = client.layout.containers / container_id / "state.json"
        state = json.loads(path.read_text())
        if "BootId" in state:
            state["BootId"] = "00000000-0000-4000-8000-000000000000"
            storage.write_json(path, state)
    netns_dir = client.runtime.network.netns_dir
    for name in os.listdir(netns_dir) if netns_dir.exists() else []:
        netns.remove(netns_dir / name)  # a bind mount: the one thing rmtree cannot take
    storage_run = client.layout.run
    subprocess.run(["rm", "-rf", str(storage_run)], check=True)


def power_cut(client, pids: list[int]) -> None:
    """The rest of the reboot: the processes die (monitors first, so none
    records an exit), and the kernel's bridges and rules of the test's root
    are gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), timeout=10)
    manager = client.runtime.network
    links.delete_links([n.attrs["Options"]["com.docker.network.bridge.name"] for n in client.networks.list()
                        if n.attrs.get("Driver") == "bridge"])
    drop_rules(manager)


def test_lost_run_directory_after_a_reboot(client, cli):
    port = free_port()
    client.networks.create("survivors")
    web = client.containers.run("busybox", ["sh", "-c", "mkdir -p /www; echo up > /www/index.html; echo started; "
                                                        "exec httpd -f -p 80 -h /www"],
                                detach=True, name="web", ports=[f"127.0.0.1:{port}:80"], network="survivors")
    looping = client.containers.run("busybox", ["sh", "-c", "echo started; sleep 300"], detach=True, name="looping",
                                    restart_policy="always", network="none")
    done = client.containers.run("busybox", ["echo", "done"], detach=True, name="done", network="none")
    done.wait(timeout=10)
    running = [web, looping]
    pids = [c.attrs["State"]["Pid"] for c in running]
    monitors = [json.loads((client.layout.containers / c.id / "state.json").read_text())["MonitorPid"]
                for c in running]

    forget_the_boot(client)
    listed = cli("ps", "-a")
    assert listed.returncode == 0 and listed.stderr == ""
    assert ps_from_another_process(cli) == ps_here(client) == sorted(
        (c.id, "exited") for c in (web, looping, done))
    for container in running:
        state = container.reload().attrs["State"]
        assert (state["ExitCode"], state["Running"]) == (255, False) and "restarted" in state["Error"]
        assert container.logs() == b"started\n"
    assert cli("ps", "-q").stdout == ""
    assert cli("inspect", "web").returncode == 0 and cli("logs", "looping").stdout == "started\n"

    power_cut(client, monitors + pids)
    for container in running:
        assert cli("start", container.name).returncode == 0
        assert container.reload().status == "running"
    assert done.reload().status == "exited"
    assert wait_until(lambda: looping.logs() == b"started\nstarted\n")
    assert wait_until(lambda: fetch(f"http://127.0.0.1:{port}/") == b"up\n", timeout=10)  # on a bridge made anew
    assert set(state_of(client.runtime.network)["containers"]) == {web.id}
    for container in running:
        container.stop(timeout=2)
    assert client.containers.prune()["ContainersDeleted"]
    assert client.containers.list(all=True) == []


# --- many processes at once --------------------------------------------------------------

MANY = """
import sys, threading
from jupyter_containers.client import Client

group = sys.argv[1]
client = Client()
errors, ids = [], {}

def start(index):
    try:
        options = {"ports": ["127.0.0.1::80"]} if index % 2 else {"network": "none"}
        script = ("ip -4 -o addr show eth0 2>/dev/null | awk '{print \\"ip \\" $4}'; "
                  "for i in $(seq 1 100); do echo $NAME line $i; done; exit $CODE")
        container = client.containers.run("busybox", ["sh", "-c", script], detach=True, name=f"{group}-{index}",
                                          environment={"NAME": f"{group}-{index}", "CODE": str(index)},
                                          dns=["127.0.0.1"], **options)
        ids[index] = container.id
    except Exception as error:
        errors.append(f"{group}-{index}: {error!r}")

threads = [threading.Thread(target=start, args=(i,)) for i in range(10)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("\\n".join(errors) or "ok", flush=True)
"""


def test_twenty_containers_from_two_processes_at_once(client, cli_env):
    client.images.pull("busybox")
    starters = [python(cli_env, MANY, group, stdout=subprocess.PIPE, text=True) for group in ("a", "b")]
    reports = [starter.communicate(timeout=300)[0].strip() for starter in starters]
    assert reports == ["ok", "ok"] and all(s.returncode == 0 for s in starters)

    containers = client.containers.list(all=True)
    assert len(containers) == 20
    assert len({c.id for c in containers}) == 20
    names = {f"{group}-{index}" for group in "ab" for index in range(10)}
    assert {c.name for c in containers} == names
    addresses = []
    for container in containers:
        index = int(container.name.split("-")[1])
        assert container.wait(timeout=60)["StatusCode"] == index, container.name
        lines = container.logs().decode().splitlines()
        if index % 2:
            assert lines[0].startswith("ip ")
            addresses.append(lines.pop(0).split()[1])
        assert lines == [f"{container.name} line {i}" for i in range(1, 101)], container.name
        assert json.loads((client.layout.containers / container.id / "config.json").read_text())["Id"] == container.id
    assert len(addresses) == 10 and len(set(addresses)) == 10  # no address given twice

    for container in containers:
        container.remove()
    assert client.containers.list(all=True) == [] and os.listdir(client.layout.containers) == []
    assert state_of(client.runtime.network)["containers"] == {}
    assert not os.path.exists(client.runtime.network.netns_dir) or os.listdir(client.runtime.network.netns_dir) == []
    leftovers = [e for e in os.listdir(client.layout.run) if len(e) == 64] if client.layout.run.exists() else []
    assert leftovers == []


PULL = """
import sys
from jupyter_containers.client import Client
image = Client().images.pull(sys.argv[1])
print(image.id, flush=True)
"""


def test_two_processes_pull_the_same_image_while_containers_start(client, hub, cli_env):
    hub.lessons()
    client.images.pull("busybox")
    pullers = [python(cli_env, PULL, "python:3.11", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs: list[bytes] = []
    errors: list[BaseException] = []

    def start_containers():
        try:
            for index in range(6):
                outputs.append(client.containers.run("busybox", ["echo", f"while pulling {index}"], network="none",
                                                     remove=True))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    runner = threading.Thread(target=start_containers)
    runner.start()
    results = [p.communicate(timeout=300) for p in pullers]
    runner.join(timeout=120)
    assert errors == [] and outputs == [f"while pulling {i}\n".encode() for i in range(6)]
    assert all(p.returncode == 0 for p in pullers), [r[1] for r in results]
    image = client.images.get("python:3.11")
    assert [r[0].strip() for r in results] == [image.id, image.id]
    assert [i.id for i in client.images.list()].count(image.id) == 1
    assert client.containers.run("python:3.11", ["python3", "-c", "print(6 * 7)"], network="none",
                                 remove=True) == b"42\n"
    assert client.containers.list(all=True) == []


PRUNER = """
import sys, time
from jupyter_containers.client import Client
client = Client()
deadline = time.monotonic() + float(sys.argv[1])
count = 0
while time.monotonic() < deadline:
    client.containers.prune()
    count += 1
print(count, flush=True)
"""


def test_container_prune_in_another_process_never_breaks_a_starting_container(client, cli_env):
    """prune sweeps what crashed containers left (cgroups, namespaces,
    leases, run directories); it must take nothing from a container that
    another process is creating or starting at that moment."""
    client.images.pull("busybox")
    pruner = python(cli_env, PRUNER, "15", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started_ids, failures = [], []

    def start(index):
        try:
            container = client.containers.run("busybox", ["sleep", "300"], detach=True, name=f"busy-{index}",
                                              ports=["127.0.0.1::80"], dns=["127.0.0.1"])
            started_ids.append(container.id)
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(repr(error))

    deadline = time.monotonic() + 12
    index = 0
    while time.monotonic() < deadline:
        threads = [threading.Thread(target=start, args=(index + i,)) for i in range(4)]
        index += 4
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    pruned, errors = pruner.communicate(timeout=60)
    assert pruner.returncode == 0 and int(pruned) > 0, errors
    assert failures == []
    manager = client.runtime.network
    attached = state_of(manager)["containers"]
    for container_id in started_ids:
        container = client.containers.get(container_id)
        assert container.status == "running", container.attrs["State"]
        assert container_id in attached, container.name
        assert os.path.exists(manager.netns_dir / container_id), container.name
        assert (client.layout.run / container_id / "monitor.pid").exists(), container.name
        assert container.exec_run(["true"]).exit_code == 0, container.name


def test_what_a_killed_create_or_rm_left_is_swept_by_prune(client):
    """A process killed inside ``create`` (directory made, record not yet
    written) or inside ``rm`` (directory renamed, not yet deleted) leaves
    a directory no listing shows; prune removes it."""
    running = client.containers.run("busybox", ["sleep", "60"], detach=True, network="none")
    half_created = client.containers.create("busybox", ["true"], network="none")
    os.unlink(client.layout.containers / half_created.id / "config.json")
    half_removed = client.containers.create("busybox", ["true"], network="none")
    os.rename(client.layout.containers / half_removed.id, client.layout.containers / f".removing-{half_removed.id}")
    assert [c.id for c in client.containers.list(all=True)] == [running.id]
    client.containers.prune()
    assert os.listdir(client.layout.containers) == [running.id]
    assert running.reload().status == "running"
