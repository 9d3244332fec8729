"""Outbound traffic: masquerade towards a test-made "outside" namespace,
isolation, internal networks, and how the rules live with the host's own
firewall. What must not be done to the real host (a FORWARD policy of DROP,
ip_forward=1) is done in a namespace standing in for it (``fake_host``)."""

from __future__ import annotations

import subprocess

import pytest

from jupyter_containers.network import NetworkManager, links
from tests.fixtures.network import (Containers, Outside, Server, listening_socket, network_settings,
                                    remove_everything, request, state_of)

pytestmark = pytest.mark.root

BOTH_BACKENDS = pytest.mark.parametrize("network_manager", ["nftables", "iptables"], indirect=True)


def ip_forward() -> str:
    with open("/proc/sys/net/ipv4/ip_forward") as handle:
        return handle.read().strip()


@BOTH_BACKENDS
def test_masquerade_towards_outside(network_manager, containers, servers, outside):
    """Forwarding is on for the project's bridge and the test's veth only;
    the host's net.ipv4.ip_forward is left as it is."""
    before = ip_forward()
    client = containers.attach("client")
    servers(outside.path, 8000, b"outside")
    # The outside sees the host's address on its link, not the container's.
    assert request(outside.ip, 8000, netns_path=client.sandbox_key) == b"outside " + outside.host_ip.encode()
    assert ip_forward() == before


@BOTH_BACKENDS
def test_outside_cannot_reach_containers_directly(network_manager, containers, servers, outside):
    target = containers.attach("target")
    servers(target.sandbox_key, 9000, b"inside")
    subnet = network_manager.get("bridge").subnet
    subprocess.run(["nsenter", f"--net={outside.path}", "ip", "route", "add", subnet, "via", outside.host_ip],
                   check=True)
    with pytest.raises(OSError):
        request(target.networks["bridge"]["IPAddress"], 9000, netns_path=outside.path, timeout=0.5)


def test_internal_network_has_no_way_out(network_manager, containers, servers, outside):
    network_manager.create("sealed", internal=True)
    sealed = containers.attach("sealed", networks=["sealed"])
    servers(outside.path, 8001, b"outside")
    routes = subprocess.run(["nsenter", f"--net={sealed.sandbox_key}", "ip", "route"],
                            capture_output=True, text=True, check=True).stdout
    assert "default" not in routes
    gateway = network_manager.get("sealed").gateway
    subprocess.run(["nsenter", f"--net={sealed.sandbox_key}", "ip", "route", "add", "default", "via", gateway],
                   check=True)
    with pytest.raises(OSError):
        request(outside.ip, 8001, netns_path=sealed.sandbox_key, timeout=0.5)


class FakeHostScenario:
    """A NetworkManager, "containers" and an outside namespace, all inside
    the fake host; ``close`` removes them from inside it too."""

    def __init__(self, storage_root, tmp_path, **settings):
        self.manager = NetworkManager(storage_root, network_settings(**settings))
        self.outside = Outside(str(tmp_path / "outside-netns")).create()
        self.containers = Containers(self.manager)
        self.servers: list[Server] = []

    def reply_from_outside(self, client, timeout: float = 3.0) -> bytes:
        if not self.servers:
            self.servers.append(Server(listening_socket(self.outside.path, 8000), b"outside"))
        return request(self.outside.ip, 8000, netns_path=client.sandbox_key, timeout=timeout)

    def close(self):
        for server in self.servers:
            server.close()
        self.containers.close()
        remove_everything(self.manager)
        self.outside.remove()


def in_fake_host(fake_host, storage_root, tmp_path, body, **settings):
    def run():
        # A new namespace inherits ip_forward from the initial one; start
        # from 0, the usual host default. (Writing it also resets every
        # interface's own forwarding, so it comes before anything is made.)
        links.write_sysctl("ipv4/ip_forward", "0")
        scenario = FakeHostScenario(storage_root, tmp_path, **settings)
        try:
            return body(scenario)
        finally:
            scenario.close()

    return fake_host.run(run)


def test_auto_picks_iptables_when_the_forward_policy_is_drop(fake_host, storage_root, tmp_path):
    def body(scenario):
        subprocess.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
        client = scenario.containers.attach("client")
        assert scenario.reply_from_outside(client) == b"outside " + scenario.outside.host_ip.encode()
        forward = subprocess.run(["iptables", "-w", "-S", "FORWARD"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
        assert forward[:2] == ["-P FORWARD DROP", f"-A FORWARD -j JC-{scenario.manager.tag}-FORWARD"]
        assert state_of(scenario.manager)["firewall"] == "iptables"

    in_fake_host(fake_host, storage_root, tmp_path, body, firewall_backend="auto")


def test_nftables_with_a_forward_policy_of_drop_warns(fake_host, storage_root, tmp_path):
    def body(scenario):
        subprocess.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
        client = scenario.containers.attach("client")
        assert any("ip filter FORWARD drops forwarded packets" in w for w in client.warnings)
        with pytest.raises(OSError):  # as the warning says
            scenario.reply_from_outside(client, timeout=0.5)

    in_fake_host(fake_host, storage_root, tmp_path, body, firewall_backend="nftables")


def test_ip_forward_leave_warns_and_enable_sets_it(fake_host, storage_root, tmp_path):
    real_host = ip_forward()

    def leave(scenario):
        assert ip_forward() == "0"
        client = scenario.containers.attach("client")
        assert any(w.startswith("net.ipv4.ip_forward is 0 on this host") for w in client.warnings)
        # Forwarding on the bridge and on the outside link's own interface
        # (the test's veth) is enough for the return path.
        assert scenario.reply_from_outside(client).startswith(b"outside ")
        assert ip_forward() == "0"

    def enable(scenario):
        client = scenario.containers.attach("client")
        assert ip_forward() == "1"
        assert not any("ip_forward" in w for w in client.warnings)
        assert scenario.reply_from_outside(client).startswith(b"outside ")

    in_fake_host(fake_host, storage_root, tmp_path, leave, ip_forward="leave")
    in_fake_host(fake_host, storage_root, tmp_path, enable, ip_forward="enable")
    assert ip_forward() == real_host
