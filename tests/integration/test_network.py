"""Bridge networking with real namespaces, veths, bridges and firewall rules
(as root). "Containers" are the namespaces ``attach`` makes, as the runtime
will use them; servers and clients run inside them."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess

import pytest

from jupyter_containers.errors import Conflict, NetworkNotFound, UserError
from jupyter_containers.network import NetworkManager, exposed_port_specs
from jupyter_containers.storage import Layout
from tests.fixtures.network import (drop_rules, firewall_rules, free_subnet, host_links, network_settings,
                                    request, state_of, wait_until)

pytestmark = pytest.mark.root

BOTH_BACKENDS = pytest.mark.parametrize("network_manager", ["nftables", "iptables"], indirect=True)


def hosts_of(manager, settings) -> str:
    return (manager.layout.containers / settings.container_id / "hosts").read_text()


def ip_of(settings, network: str) -> str:
    return settings.networks[network]["IPAddress"]


def run_with_hosts_file(manager, settings, tmp_path, command: list[str]) -> subprocess.CompletedProcess:
    """Run a busybox command in the container's network namespace with its
    hosts file bind-mounted on /etc/hosts (in a private mount namespace, as
    the runtime will), and a resolv.conf that sends any DNS query to the
    container's own loopback: no name lookup leaves the namespace."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    hosts = manager.layout.containers / settings.container_id / "hosts"
    script = (f"mount --bind {hosts} /etc/hosts && mount --bind {resolv} /etc/resolv.conf && "
              + " ".join(command))
    return subprocess.run(["nsenter", f"--net={settings.sandbox_key}", "unshare", "--mount",
                           "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=20)


def test_containers_reach_each_other_by_name_and_alias(network_manager, containers, processes, tmp_path):
    network_manager.create("appnet")
    web = containers.attach("web", networks=[{"name": "appnet", "aliases": ["www"]}])
    db = containers.attach("db", networks=[{"name": "appnet", "aliases": ["database"]}])

    web_hosts, db_hosts = hosts_of(network_manager, web), hosts_of(network_manager, db)
    assert f"{ip_of(db, 'appnet')}\tdb database\n" in web_hosts
    assert f"{ip_of(web, 'appnet')}\t{web.container_id[:12]} web www\n" in web_hosts
    assert f"{ip_of(web, 'appnet')}\tweb www\n" in db_hosts
    assert db.hosts == db_hosts  # attach returns what it wrote

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("served from db\n")
    processes.append(subprocess.Popen(["nsenter", f"--net={db.sandbox_key}", "busybox", "httpd", "-f",
                                       "-p", "80", "-h", str(site)]))
    assert wait_until(lambda: _listening(db.sandbox_key, 80))

    for name in ("db", "database"):
        fetched = run_with_hosts_file(network_manager, web, tmp_path,
                                      ["busybox", "wget", "-q", "-O", "-", f"http://{name}/"])
        assert fetched.stdout == "served from db\n", fetched.stderr

    # The alias of web resolves from db; nc connects by name.
    processes.append(subprocess.Popen(["nsenter", f"--net={web.sandbox_key}", "busybox", "nc", "-l",
                                       "-p", "7000", "-e", "echo", "web-by-alias"]))
    assert wait_until(lambda: _listening(web.sandbox_key, 7000))
    reached = run_with_hosts_file(network_manager, db, tmp_path, ["busybox", "nc", "-w", "3", "www", "7000"])
    assert reached.stdout == "web-by-alias\n", reached.stderr

    # db leaves: web's hosts file is rewritten in place (the bind mount
    # pins the inode).
    inode = os.stat(network_manager.layout.containers / web.container_id / "hosts").st_ino
    containers.detach(db)
    assert "database" not in hosts_of(network_manager, web)
    assert os.stat(network_manager.layout.containers / web.container_id / "hosts").st_ino == inode


def _listening(netns_path, port) -> bool:
    listing = subprocess.run(["nsenter", f"--net={netns_path}", "busybox", "netstat", "-ltn"],
                             capture_output=True, text=True).stdout
    return f":{port} " in listing


def test_default_bridge_resolves_only_add_host(network_manager, containers):
    one = containers.attach("one", extra_hosts=["db.example:10.1.2.3", "gw:host-gateway"])
    two = containers.attach("two")
    text = hosts_of(network_manager, one)
    assert "10.1.2.3\tdb.example\n" in text
    assert f"{one.networks['bridge']['Gateway']}\tgw\n" in text
    assert "two" not in text and ip_of(two, "bridge") not in text
    assert f"{ip_of(one, 'bridge')}\t{one.container_id[:12]}\n" in text


@BOTH_BACKENDS
def test_published_port_on_loopback_and_bridge_address(network_manager, containers, servers):
    web = containers.attach("web", ports=["0.0.0.0::80", "127.0.0.1::81"])
    gateway = web.networks["bridge"]["Gateway"]
    servers(web.sandbox_key, 80, b"port-80")
    servers(web.sandbox_key, 81, b"port-81")
    everywhere = int(web.inspect()["Ports"]["80/tcp"][0]["HostPort"])
    loopback_only = int(web.inspect()["Ports"]["81/tcp"][0]["HostPort"])
    assert web.inspect()["Ports"]["81/tcp"][0]["HostIp"] == "127.0.0.1"

    # Through 127.0.0.1 the source is masqueraded to the bridge address.
    assert request("127.0.0.1", everywhere) == b"port-80 " + gateway.encode()
    assert request(gateway, everywhere) == b"port-80 " + gateway.encode()
    assert request("127.0.0.1", loopback_only) == b"port-81 " + gateway.encode()
    with pytest.raises(ConnectionRefusedError):
        request(gateway, loopback_only)


@BOTH_BACKENDS
def test_fixed_host_port_and_udp(network_manager, containers, servers):
    port = _free_port(socket.SOCK_STREAM)
    udp_port = _free_port(socket.SOCK_DGRAM)
    dns = containers.attach("dns", ports=[f"127.0.0.1:{port}:80", f"127.0.0.1:{udp_port}:53/udp"])
    servers(dns.sandbox_key, 80, b"tcp")
    servers(dns.sandbox_key, 53, b"udp", proto="udp")
    assert request("127.0.0.1", port).startswith(b"tcp ")
    assert request("127.0.0.1", udp_port, proto="udp").startswith(b"udp ")
    assert dns.inspect()["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}],
                                      "53/udp": [{"HostIp": "127.0.0.1", "HostPort": str(udp_port)}]}


@BOTH_BACKENDS
def test_rules_removed_behind_our_back_are_put_back(network_manager, containers, servers):
    first = containers.attach("first", ports=["127.0.0.1::80"])
    servers(first.sandbox_key, 80, b"first")
    drop_rules(network_manager)  # an administrator flushing the firewall
    second = containers.attach("second", ports=["127.0.0.1::80"])
    servers(second.sandbox_key, 80, b"second")
    for settings, reply in ((first, b"first "), (second, b"second ")):
        assert request("127.0.0.1", int(settings.inspect()["Ports"]["80/tcp"][0]["HostPort"])).startswith(reply)


def _free_port(kind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_publish_all_exposed_ports_on_random_host_ports(network_manager, containers, servers):
    specs = exposed_port_specs({"80/tcp": {}, "5353/udp": {}})
    app = containers.attach("app", ports=specs)
    servers(app.sandbox_key, 80, b"web")
    servers(app.sandbox_key, 5353, b"mdns", proto="udp")
    low, high = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    ports = app.inspect()["Ports"]
    tcp, udp = int(ports["80/tcp"][0]["HostPort"]), int(ports["5353/udp"][0]["HostPort"])
    assert low <= tcp <= high and low <= udp <= high
    assert request("127.0.0.1", tcp).startswith(b"web ")
    assert request("127.0.0.1", udp, proto="udp").startswith(b"mdns ")


def test_container_reaches_service_on_the_gateway(network_manager, containers, servers):
    client = containers.attach("client")
    gateway = client.networks["bridge"]["Gateway"]
    server = servers(None, 0, b"host-side", address=gateway)
    port = server.sock.getsockname()[1]
    # The host sees the container's own address: no NAT towards the host.
    assert request(gateway, port, netns_path=client.sandbox_key) == \
        b"host-side " + ip_of(client, "bridge").encode()


def test_port_taken_on_host_is_a_clear_error_and_leaves_nothing(network_manager, containers):
    containers.attach("first")  # the default bridge is up: only the failed attach must leave nothing
    before_rules = firewall_rules(network_manager)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        free = _free_port(socket.SOCK_STREAM)
        with pytest.raises(Conflict, match=f"host port 127.0.0.1:{taken}/tcp is already in use"):
            containers.attach("web", ports=[f"127.0.0.1:{free}:81", f"127.0.0.1:{taken}:80"])
    assert list(network_manager.netns_dir.iterdir()) == [network_manager.netns_dir / c for c in containers.attached]
    state = state_of(network_manager)
    assert len(state["containers"]) == 1
    assert firewall_rules(network_manager) == before_rules
    with socket.socket() as again:  # the reservation of the first spec was released
        again.bind(("127.0.0.1", free))


def test_same_host_port_for_two_containers_is_refused(network_manager, containers):
    port = _free_port(socket.SOCK_STREAM)
    containers.attach("first", ports=[f"{port}:80"])
    with pytest.raises(Conflict, match="already published by container first"):
        containers.attach("second", ports=[f"127.0.0.1:{port}:80"])
    assert len(state_of(network_manager)["containers"]) == 1


def test_bad_port_spec_names_the_bad_part(network_manager, containers):
    with pytest.raises(UserError, match="container port 'http'"):
        containers.attach("web", ports=["8080:http"])
    with pytest.raises(UserError, match="host IP 'localhost'"):
        containers.attach("web", ports=["localhost:8080:80"])
    assert state_of(network_manager)["containers"] == {}


def test_requested_ip(network_manager, containers):
    network = network_manager.create("fixed", subnet=free_subnet())
    base = network.subnet.rsplit(".", 1)[0]
    first = containers.attach("first", networks=[{"name": "fixed", "ip": f"{base}.77"}])
    assert ip_of(first, "fixed") == f"{base}.77"
    assert first.networks["fixed"]["IPAMConfig"] == {"IPv4Address": f"{base}.77"}
    assert _inside_addresses(first) == {"lo": "127.0.0.1/8", "eth0": f"{base}.77/24"}
    with pytest.raises(Conflict, match=f"{base}.77 is already in use"):
        containers.attach("second", networks=[{"name": "fixed", "ip": f"{base}.77"}])
    with pytest.raises(UserError, match="not a host address"):
        containers.attach("third", networks=[{"name": "fixed", "ip": "10.99.99.99"}])
    with pytest.raises(UserError, match="user networks only"):
        containers.attach("fourth", networks=[{"name": "bridge", "ip": f"{base}.78"}])
    assert len(state_of(network_manager)["containers"]) == 1


def _inside_addresses(settings) -> dict[str, str]:
    listing = subprocess.run(["nsenter", f"--net={settings.sandbox_key}", "ip", "-4", "-br", "addr"],
                             capture_output=True, text=True, check=True).stdout
    return {line.split()[0].split("@")[0]: line.split()[2] for line in listing.splitlines()}


def test_namespace_layout_and_routes(network_manager, containers):
    network_manager.create("second")
    both = containers.attach("both", networks=["bridge", "second"])
    assert _inside_addresses(both) == {"lo": "127.0.0.1/8", "eth0": ip_of(both, "bridge") + "/24",
                                       "eth1": ip_of(both, "second") + "/24"}
    routes = subprocess.run(["nsenter", f"--net={both.sandbox_key}", "ip", "route", "show", "default"],
                            capture_output=True, text=True, check=True).stdout
    assert routes.startswith(f"default via {both.networks['bridge']['Gateway']} dev eth0")
    link = subprocess.run(["nsenter", f"--net={both.sandbox_key}", "ip", "-br", "link", "show", "eth0"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert link[2] == both.networks["bridge"]["MacAddress"]


def test_connect_and_disconnect_a_running_container(network_manager, containers, servers):
    network_manager.create("backend")
    app = containers.attach("app")
    db = containers.attach("db", networks=[{"name": "backend", "aliases": ["pg"]}])
    servers(db.sandbox_key, 5432, b"db")
    assert "pg" not in hosts_of(network_manager, app)
    with pytest.raises(OSError):  # networks are isolated from each other
        request(ip_of(db, "backend"), 5432, netns_path=app.sandbox_key, timeout=0.5)

    settings = network_manager.connect(app.container_id, "backend", aliases=["api"])
    assert set(settings.networks) == {"bridge", "backend"}
    assert _inside_addresses(app)["eth1"] == ip_of(settings, "backend") + "/24"
    assert f"{ip_of(db, 'backend')}\tdb pg\n" in hosts_of(network_manager, app)
    assert f"{ip_of(settings, 'backend')}\tapp api\n" in hosts_of(network_manager, db)
    assert request(ip_of(db, "backend"), 5432, netns_path=app.sandbox_key) == \
        b"db " + ip_of(settings, "backend").encode()
    with pytest.raises(Conflict, match="already connected"):
        network_manager.connect(app.container_id, "backend")

    settings = network_manager.disconnect(app.container_id, "backend")
    assert set(settings.networks) == {"bridge"}
    assert "eth1" not in _inside_addresses(app)
    assert "app" not in hosts_of(network_manager, db)
    with pytest.raises(Conflict, match="not connected"):
        network_manager.disconnect(app.container_id, "backend")


def test_none_and_host_networks(network_manager, containers):
    isolated = containers.attach("isolated", networks=["none"], ports=["80"])
    assert isolated.mode == "none"
    assert isolated.warnings == ["published ports are discarded when using the none network"]
    links = subprocess.run(["nsenter", f"--net={isolated.sandbox_key}", "ip", "-br", "link"],
                           capture_output=True, text=True, check=True).stdout.split("\n")
    assert [line.split()[:2] for line in links if line] == [["lo", "UNKNOWN"]]
    assert isolated.inspect()["Networks"]["none"]["IPAddress"] == ""

    shared = containers.attach("shared", networks=["host"], extra_hosts=["extra:10.9.8.7"])
    assert shared.sandbox_key is None
    hosts = hosts_of(network_manager, shared)
    assert hosts.startswith(open("/etc/hosts").read()) and hosts.endswith("10.9.8.7\textra\n")
    assert {n.name: sorted(n.containers) for n in network_manager.list() if n.name in ("host", "none")} == \
        {"host": [shared.container_id], "none": [isolated.container_id]}
    with pytest.raises(UserError, match="cannot be combined"):
        containers.attach("mixed", networks=["host", "bridge"])


def test_interface_counters(network_manager, containers, servers):
    web = containers.attach("web", ports=["127.0.0.1::80"])
    servers(web.sandbox_key, 80, b"x" * 100_000)
    before = network_manager.interface_counters(web.container_id)
    port = int(web.inspect()["Ports"]["80/tcp"][0]["HostPort"])
    assert len(request("127.0.0.1", port)) > 100_000
    after = network_manager.interface_counters(web.container_id)
    assert after["tx_bytes"] - before["tx_bytes"] >= 100_000
    assert after["rx_packets"] > before["rx_packets"] and after["tx_packets"] > before["tx_packets"]


def test_network_lifecycle_and_errors(network_manager, containers):
    created = network_manager.create("data", labels={"team": "db"}, internal=True)
    inspected = network_manager.get("data").inspect()
    assert inspected["Driver"] == "bridge" and inspected["Internal"] is True
    assert inspected["Labels"] == {"team": "db"}
    assert inspected["IPAM"]["Config"][0]["Subnet"] == created.subnet
    assert network_manager.get(created.id[:10]).name == "data"
    assert [n.name for n in network_manager.list()][:3] == ["bridge", "host", "none"]

    with pytest.raises(Conflict, match="already exists"):
        network_manager.create("data")
    with pytest.raises(Conflict, match="overlaps network data"):
        network_manager.create("other", subnet=created.subnet)
    with pytest.raises(Conflict, match="which this host already routes"):
        network_manager.create("loop", subnet="127.0.0.0/24")
    with pytest.raises(UserError, match="invalid network name"):
        network_manager.create("-bad")
    with pytest.raises(UserError, match="pre-defined"):
        network_manager.remove("bridge")
    with pytest.raises(NetworkNotFound):
        network_manager.get("missing")

    with pytest.raises(UserError, match="internal networks only"):
        containers.attach("published", networks=["data"], ports=["80"])
    member = containers.attach("member", networks=["data"])
    assert network_manager.get("data").inspect()["Containers"][member.container_id]["Name"] == "member"
    assert member.networks["data"]["Gateway"] == ""  # internal: no default route out
    with pytest.raises(Conflict, match=r"network data has attached containers \(member\)"):
        network_manager.remove("data")
    containers.detach(member)
    network_manager.remove("data")
    assert "data" not in [n.name for n in network_manager.list()]
    assert created.inspect()["Options"]["com.docker.network.bridge.name"] not in host_links()


def test_attach_from_a_running_event_loop_without_forking(network_manager, containers):
    """As from a Jupyter kernel: an asyncio loop runs in the calling thread,
    and the process must not fork (no port rules here, so no nft either)."""
    network_manager.create("kernelnet")
    forks = []
    os.register_at_fork(before=lambda: forks.append(os.getpid()))

    async def from_a_cell():
        return containers.attach("cell", networks=["kernelnet"])

    settings = asyncio.run(from_a_cell())
    assert settings.networks["kernelnet"]["IPAddress"]
    network_manager.connect(settings.container_id, "bridge")
    network_manager.disconnect(settings.container_id, "bridge")
    containers.detach(settings)
    assert forks == []


def test_settings_of_an_attached_container(network_manager, containers):
    web = containers.attach("web", ports=["127.0.0.1::80"])
    again = network_manager.network_settings(web.container_id)
    assert again.inspect() == web.inspect() and again.hosts == web.hosts and again.sockets == []
    assert again.inspect()["IPAddress"] == ip_of(web, "bridge")
    containers.detach(web)
    assert network_manager.network_settings(web.container_id) is None


def test_attach_leaves_network_definitions_untouched(network_manager, containers):
    """Only networks.json is fsynced; attaching and detaching containers
    writes containers.json alone."""
    network_manager.create("steady")
    containers.attach("warm", networks=["bridge"])  # brings the default bridge up
    definitions = network_manager.layout.networks / "networks.json"
    before = os.stat(definitions).st_ino
    one = containers.attach("one", networks=["steady", "bridge"])
    containers.detach(one)
    assert os.stat(definitions).st_ino == before


def test_another_storage_roots_bridge_is_never_taken_over(network_manager, containers, servers, tmp_path,
                                                          network_registry):
    containers.attach("mine")
    ours = network_manager.get("bridge")
    layout = Layout(tmp_path / "other-root", tmp_path / "other-run").ensure()
    container_id = secrets.token_hex(32)
    (layout.containers / container_id).mkdir(parents=True)
    for clash, message in ((dict(bridge_name=ours.bridge), f"an interface named {ours.bridge} already exists"),
                           (dict(bridge_subnet=ours.subnet), f"overlaps {ours.subnet}, which this host")):
        other = NetworkManager(layout, network_settings(**clash))
        network_registry.append(other)
        with pytest.raises(Conflict, match=message):
            other.attach(container_id, "theirs")
        assert state_of(other)["containers"] == {} and firewall_rules(other) == ""
    # The first root's bridge still serves its containers.
    probe = containers.attach("probe")
    server = servers(None, 0, b"still", address=ours.gateway)
    assert request(ours.gateway, server.sock.getsockname()[1], netns_path=probe.sandbox_key).startswith(b"still ")


def test_prune_removes_unused_networks_and_takes_the_default_bridge_down(network_manager, containers):
    network_manager.create("used")
    network_manager.create("unused")
    member = containers.attach("member", networks=["used", "bridge"])
    bridge = network_manager.get("bridge").bridge
    assert network_manager.prune() == ["unused"]
    assert bridge in host_links()
    containers.detach(member)
    assert network_manager.prune() == ["used"]
    assert bridge not in host_links() and firewall_rules(network_manager) == ""
    assert [n.name for n in network_manager.list()] == ["bridge", "host", "none"]
    again = containers.attach("again")  # the default bridge comes back on use
    assert again.networks["bridge"]["IPAddress"]
