"""Nothing of a container's network outlives it: after detach, after a
SIGKILL of the process that attached it (then sweep), and with several
processes attaching at once (no address given twice)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.network import firewall_rules, host_links, mounted, state_of, wait_until

pytestmark = pytest.mark.root

BOTH_BACKENDS = pytest.mark.parametrize("network_manager", ["nftables", "iptables"], indirect=True)
WORKTREE = Path(__file__).resolve().parents[2]


def host_veths(manager, container_id) -> set[str]:
    return {e["host_veth"] for e in state_of(manager)["containers"][container_id]["endpoints"]}


@BOTH_BACKENDS
def test_detach_leaves_nothing(network_manager, containers):
    network_manager.create("app")
    web = containers.attach("web", networks=["bridge", {"name": "app", "aliases": ["w"]}],
                            ports=["127.0.0.1::80", "0.0.0.0::53/udp"])
    veths = host_veths(network_manager, web.container_id)
    assert veths <= host_links() and mounted(web.sandbox_key)
    assert web.container_id[:12] in firewall_rules(network_manager)

    containers.detach(web)
    assert not mounted(web.sandbox_key) and not os.path.exists(web.sandbox_key)
    assert state_of(network_manager)["containers"] == {}
    assert web.container_id[:12] not in firewall_rules(network_manager)
    # The kernel removes the veth pairs with the namespace, asynchronously.
    assert wait_until(lambda: not veths & host_links())
    network_manager.detach(web.container_id)  # again: nothing to do, no error

    bridges = {n.inspect()["Options"]["com.docker.network.bridge.name"] for n in network_manager.list()
               if n.driver == "bridge"}
    network_manager.remove("app")
    network_manager.prune()
    assert not bridges & host_links()
    assert firewall_rules(network_manager) == ""
    assert state_of(network_manager)["networks"] == {}


CRASHING_ATTACHER = """
import json, sys, time
from jupyter_containers import config
from jupyter_containers.network import NetworkManager
from jupyter_containers.storage import Layout

manager = NetworkManager(Layout(), config.Network(**json.loads(sys.argv[1])))
(manager.layout.containers / sys.argv[2]).mkdir(parents=True)
settings = manager.attach(sys.argv[2], "victim", networks=["bridge", "app"], ports=["127.0.0.1::80"])
print(json.dumps({"sandbox": settings.sandbox_key,
                  "port": settings.inspect()["Ports"]["80/tcp"][0]["HostPort"]}), flush=True)
time.sleep(120)
"""


def _settings_json(manager) -> str:
    keys = ("bridge_name", "bridge_subnet", "user_subnet_pool", "firewall_backend")
    return json.dumps({key: getattr(manager.settings, key) for key in keys})


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(WORKTREE)}


@BOTH_BACKENDS
def test_sigkill_of_the_attaching_process_then_sweep(network_manager, processes):
    network_manager.create("app")
    container_id = secrets.token_hex(32)
    attacher = subprocess.Popen(_python(CRASHING_ATTACHER, _settings_json(network_manager), container_id),
                                stdout=subprocess.PIPE, text=True, env=_env())
    processes.append(attacher)
    reported = json.loads(attacher.stdout.readline())
    veths = host_veths(network_manager, container_id)
    assert veths <= host_links() and mounted(reported["sandbox"])

    attacher.send_signal(signal.SIGKILL)
    attacher.wait(timeout=10)
    # The port reservation died with the process; the rest is still there.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", int(reported["port"])))
    assert mounted(reported["sandbox"]) and container_id[:12] in firewall_rules(network_manager)

    assert network_manager.sweep([]) == [container_id]
    assert not mounted(reported["sandbox"]) and not os.path.exists(reported["sandbox"])
    assert container_id[:12] not in firewall_rules(network_manager)
    assert state_of(network_manager)["containers"] == {}
    assert wait_until(lambda: not veths & host_links())
    assert network_manager.sweep([]) == []


def test_sweep_keeps_existing_containers(network_manager, containers):
    kept = containers.attach("kept")
    gone = containers.attach("gone")
    assert network_manager.sweep([kept.container_id]) == [gone.container_id]
    assert mounted(kept.sandbox_key) and not mounted(gone.sandbox_key)
    assert list(state_of(network_manager)["containers"]) == [kept.container_id]


def test_sweep_removes_interfaces_of_a_namespace_still_held(network_manager, containers, processes):
    """A process left in a container's namespace keeps it, and its veth,
    alive after detach; sweep deletes what is left on the bridge."""
    held = containers.attach("held")
    veths = host_veths(network_manager, held.container_id)
    holder = subprocess.Popen(["nsenter", f"--net={held.sandbox_key}", "sleep", "120"])
    processes.append(holder)
    namespace = os.stat(held.sandbox_key).st_ino
    assert wait_until(lambda: os.stat(f"/proc/{holder.pid}/ns/net").st_ino == namespace)
    containers.detach(held)
    time.sleep(0.3)
    assert veths <= host_links()  # still held by the process
    network_manager.sweep([])
    assert not veths & host_links()


CONCURRENT_ATTACHER = """
import json, os, secrets, sys, time
from jupyter_containers import config
from jupyter_containers.network import NetworkManager
from jupyter_containers.storage import Layout

manager = NetworkManager(Layout(), config.Network(**json.loads(sys.argv[1])))
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
addresses = []
for index in range(int(sys.argv[3])):
    cid = secrets.token_hex(32)
    (manager.layout.containers / cid).mkdir(parents=True)
    addresses.append(manager.attach(cid, f"c{index}", networks=["shared"]).networks["shared"]["IPAddress"])
print(json.dumps(addresses))
"""


def test_two_processes_attaching_at_once_get_distinct_addresses(network_manager, tmp_path):
    network_manager.create("shared")
    go = tmp_path / "go"
    workers = [subprocess.Popen(_python(CONCURRENT_ATTACHER, _settings_json(network_manager), str(go), "8"),
                                stdout=subprocess.PIPE, text=True, env=_env()) for _ in range(2)]
    go.touch()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        results += json.loads(out)
    assert len(results) == 16 and len(set(results)) == 16
    recorded = [e["ip"] for c in state_of(network_manager)["containers"].values() for e in c["endpoints"]]
    assert sorted(recorded) == sorted(results)


NONE_ATTACHER = """
import json, sys
from jupyter_containers import config
from jupyter_containers.network import NetworkManager
from jupyter_containers.storage import Layout

manager = NetworkManager(Layout(), config.Network(**json.loads(sys.argv[1])))
(manager.layout.containers / sys.argv[2]).mkdir(parents=True)
settings = manager.attach(sys.argv[2], "isolated", networks=["none"])
manager.detach(sys.argv[2])
print("pyroute2" in sys.modules)
"""


def test_network_none_does_not_import_pyroute2(network_manager):
    done = subprocess.run(_python(NONE_ATTACHER, _settings_json(network_manager), secrets.token_hex(32)),
                          capture_output=True, text=True, env=_env(), check=True)
    assert done.stdout.strip() == "False"
