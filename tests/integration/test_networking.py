"""Networking end to end with real containers: busybox's httpd, nc and wget
(python for UDP, which busybox's nc lacks) on user networks, the default
bridge and the host network; published ports; connect and disconnect;
teardown after rm, network prune and starters killed mid-way.

Traffic goes only to loopback, to the test's own bridges and containers.
Every container gets ``--dns 127.0.0.1``, so a name that does not resolve
from /etc/hosts is asked of the container's own loopback, never of the
host's resolver."""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from jupyter_containers.errors import Conflict, ContainerError, UserError
from tests.fixtures.network import firewall_rules, host_links, state_of, wait_until
from tests.fixtures.registry import free_port

pytestmark = pytest.mark.root

LOCAL_DNS = ["127.0.0.1"]
HTTPD = 'mkdir -p /www && echo "$MESSAGE" > /www/index.html && exec httpd -f -p 80 -h /www'
#: wget from inside a container, retried while the server comes up (busybox
#: 1.35's own ``wget -T`` crashes, hence ``timeout``).
WGET = ["timeout", "5", "wget", "-q", "-O", "-"]
FETCH = f'for i in $(seq 50); do {" ".join(WGET)} "$URL" && exit 0; sleep 0.1; done; exit 1'


def web(client, message: str, **options):
    """A detached busybox httpd answering ``message`` on port 80."""
    return client.containers.run("busybox", ["sh", "-c", HTTPD], environment={"MESSAGE": message}, detach=True,
                                 dns=LOCAL_DNS, **options)


def sleeper(client, **options):
    return client.containers.run("busybox", ["sleep", "300"], detach=True, dns=LOCAL_DNS, **options)


def fetch(client, url: str, **options) -> str:
    """The body of ``url`` fetched by a new container."""
    return client.containers.run("busybox", ["sh", "-c", FETCH], environment={"URL": url}, dns=LOCAL_DNS,
                                 remove=True, **options).decode()


def fetch_once(client, url: str, **options) -> tuple[int, bytes]:
    """One attempt, no retry: (exit code, stderr)."""
    try:
        client.containers.run("busybox", [*WGET, url], dns=LOCAL_DNS, remove=True,
                              stderr=True, **options)
        return 0, b""
    except ContainerError as error:
        return error.exit_status, error.stderr


def exec_fetch(container, url: str) -> tuple[int, str]:
    code, out = container.exec_run([*WGET, url])
    return code, out.decode()


def http_get(host: str, port: int, timeout: float = 10.0) -> str:
    """GET / from the host, retried while the server comes up."""
    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection(host, port, timeout=2)
        try:
            connection.request("GET", "/")
            return connection.getresponse().read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            connection.close()


def settings(container) -> dict:
    return container.reload().attrs["NetworkSettings"]


def address(container, network: str = "bridge") -> str:
    return settings(container)["Networks"][network]["IPAddress"]


def netns_files(client) -> list[str]:
    directory = client.runtime.network.netns_dir
    return sorted(os.listdir(directory)) if directory.exists() else []


def host_addresses() -> str:
    return subprocess.run(["ip", "-br", "-4", "addr"], capture_output=True, text=True, check=True).stdout


def default_route_interface() -> str:
    with open("/proc/net/route") as routes:
        return next(fields[0] for fields in (line.split() for line in routes) if fields[1] == "00000000")


def wait_for_log(container, text: bytes, timeout: float = 10) -> None:
    assert wait_until(lambda: text in container.logs(), timeout=timeout), container.logs()


# Other work shares this host, so "nothing left" is checked on what is the
# test's own: the veths its state recorded, its bridges' ports and addresses,
# its rules, namespace files and leases.

def recorded_veths(manager) -> set[str]:
    return {endpoint["host_veth"] for record in state_of(manager)["containers"].values()
            for endpoint in record["endpoints"]}


def bridges(client) -> dict[str, str]:
    """bridge name -> subnet of every bridge network of the test's root."""
    return {network.attrs["Options"]["com.docker.network.bridge.name"]: network.attrs["IPAM"]["Config"][0]["Subnet"]
            for network in client.networks.list() if network.attrs.get("Driver") == "bridge"}


def bridge_ports(bridge: str) -> list[str]:
    path = f"/sys/class/net/{bridge}/brif"
    return sorted(os.listdir(path)) if os.path.exists(path) else []


def addresses_in(subnets) -> list[str]:
    prefixes = [subnet.rsplit(".", 1)[0] + "." for subnet in subnets]
    return [line for line in host_addresses().splitlines() if any(p in line for p in prefixes)]


# --- names ---------------------------------------------------------------------------

def test_user_network_containers_reach_each_other_by_name_and_alias(client):
    client.networks.create("lesson-net")
    web(client, "hello from web", name="web", network="lesson-net", network_aliases=["frontend"])
    talker = client.containers.run("busybox", ["sh", "-c", "echo pong | nc -l -p 7000"], detach=True,
                                   name="talker", network="lesson-net", dns=LOCAL_DNS)
    assert fetch(client, "http://web/", network="lesson-net") == "hello from web\n"
    assert fetch(client, "http://frontend/", network="lesson-net") == "hello from web\n"
    out = client.containers.run("busybox", ["sh", "-c", "for i in $(seq 50); do nc talker 7000 && exit; "
                                                        "sleep 0.1; done"],
                                network="lesson-net", dns=LOCAL_DNS, remove=True)
    assert out == b"pong\n"
    assert talker.wait(timeout=10)["StatusCode"] == 0
    # A container outside the network cannot even resolve the names.
    code, stderr = fetch_once(client, "http://web/")
    assert code != 0 and b"bad address 'web'" in stderr


def test_default_bridge_resolves_names_only_through_add_host(client):
    server = web(client, "on the default bridge", name="plain-web")
    ip = address(server)
    code, stderr = fetch_once(client, "http://plain-web/")
    assert code != 0 and b"bad address 'plain-web'" in stderr
    assert fetch(client, f"http://{ip}/") == "on the default bridge\n"
    assert fetch(client, "http://plain-web/", extra_hosts=[f"plain-web:{ip}"]) == "on the default bridge\n"


def test_container_reaches_a_host_service_on_the_gateway_and_host_gateway(client, servers):
    first = sleeper(client)
    gateway = settings(first)["Gateway"]
    assert gateway
    server = servers(None, 0, b"from the host side", address=gateway)
    port = server.sock.getsockname()[1]
    out = client.containers.run("busybox", ["sh", "-c", f"grep host.internal /etc/hosts; nc host.internal {port}"],
                                extra_hosts=["host.internal:host-gateway"], dns=LOCAL_DNS, remove=True,
                                name="caller").decode().splitlines()
    assert out[0].split() == [gateway, "host.internal"]
    # The service sees the container's own address: no masquerade inside the host.
    assert out[1].startswith("from the host side 10.")


# --- published ports ---------------------------------------------------------------------

def test_published_port_from_loopback_the_bridge_and_the_container_address(client):
    port = free_port()
    server = web(client, "published", ports={"80/tcp": port})
    network = settings(server)
    assert network["Ports"]["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    assert http_get("127.0.0.1", port) == "published\n"
    assert http_get(network["Gateway"], port) == "published\n"
    assert http_get(network["IPAddress"], 80) == "published\n"


def test_port_published_on_loopback_only(client):
    port = free_port()
    server = web(client, "loopback only", ports=[f"127.0.0.1:{port}:80"])
    assert http_get("127.0.0.1", port) == "loopback only\n"
    with pytest.raises(ConnectionRefusedError):
        http_get(settings(server)["Gateway"], port, timeout=0)


def test_random_host_ports_shown_by_port_ps_and_inspect(client, cli):
    script = ('mkdir -p /www && echo random > /www/index.html && httpd -p 80 -h /www && '
              'exec httpd -f -p 8080 -h /www')
    started = cli("run", "-d", "--name", "randomly", "--dns", "127.0.0.1", "-p", "80", "--expose", "8080", "-P",
                  "busybox", "sh", "-c", script)
    assert started.returncode == 0, started.stderr
    ports = json.loads(cli("inspect", "randomly").stdout)[0]["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "8080/tcp"}
    host_ports = {key: int(bindings[0]["HostPort"]) for key, bindings in ports.items()}
    low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    assert all(low <= p <= high for p in host_ports.values()) and len(set(host_ports.values())) == 2
    for host_port in host_ports.values():
        assert http_get("127.0.0.1", host_port) == "random\n"

    listed = cli("port", "randomly").stdout.splitlines()
    assert sorted(listed) == sorted(f"{key} -> 0.0.0.0:{p}" for key, p in host_ports.items())
    assert cli("port", "randomly", "8080").stdout == f"0.0.0.0:{host_ports['8080/tcp']}\n"
    missing = cli("port", "randomly", "9999")
    assert missing.returncode == 1 and "no public port '9999/tcp'" in missing.stderr
    ps = cli("ps").stdout
    for key, host_port in host_ports.items():
        assert f"0.0.0.0:{host_port}->{key}" in ps


UDP_ECHO = """
import socket
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(512)
    sock.sendto(b"echo " + data, peer)
"""

UDP_ASK = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(1)
sock.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(sock.recvfrom(512)[0].decode())
"""


def udp_ask(host: str, port: int, attempts: int = 20) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        for _ in range(attempts):
            sock.sendto(b"ping", (host, port))
            try:
                return sock.recvfrom(512)[0]
            except (TimeoutError, socket.timeout, ConnectionRefusedError):
                continue
    raise AssertionError(f"no UDP answer from {host}:{port}")


def test_udp_published_port_and_udp_to_the_host(client, hub, servers):
    hub.lessons()
    port = free_port()
    echo = client.containers.run("python:3.11", ["python3", "-c", UDP_ECHO], detach=True, dns=LOCAL_DNS,
                                 ports=[f"127.0.0.1:{port}:5353/udp", "5353/udp"])
    wait_for_log(echo, b"ready")
    bindings = settings(echo)["Ports"]["5353/udp"]
    assert {"HostIp": "127.0.0.1", "HostPort": str(port)} in bindings and len(bindings) == 2
    random_port = next(int(b["HostPort"]) for b in bindings if b["HostPort"] != str(port))
    assert udp_ask("127.0.0.1", port) == b"echo ping"
    assert udp_ask("127.0.0.1", random_port) == b"echo ping"

    gateway = settings(echo)["Gateway"]
    server = servers(None, 0, b"udp from the host", proto="udp", address=gateway)
    out = client.containers.run("python:3.11", ["python3", "-c", UDP_ASK, gateway,
                                                str(server.sock.getsockname()[1])], dns=LOCAL_DNS, remove=True)
    assert out.decode().startswith("udp from the host 10.")


def test_port_taken_on_the_host_is_a_one_line_error_and_leaves_nothing(client, cli):
    keep = sleeper(client, name="keep", ports=["127.0.0.1::80"])  # the bridge and its rules are up
    manager = client.runtime.network
    ports, rules, files = bridge_ports(manager.settings.bridge_name), firewall_rules(manager), netns_files(client)
    leases, veths = set(state_of(manager)["containers"]), recorded_veths(manager)
    with socket.socket() as squatter:
        squatter.bind(("0.0.0.0", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        free = free_port()
        with pytest.raises(Conflict) as caught:
            web(client, "never", name="refused", ports=[f"127.0.0.1:{free}:81", f"{taken}:80"])
        assert "\n" not in str(caught.value)
        assert f"host port 0.0.0.0:{taken}/tcp is already in use" in str(caught.value)
        refused = client.containers.get("refused")
        assert refused.status == "created" and refused.attrs["State"]["Pid"] == 0
        assert bridge_ports(manager.settings.bridge_name) == ports and netns_files(client) == files
        assert firewall_rules(manager) == rules and set(state_of(manager)["containers"]) == leases
        assert recorded_veths(manager) == veths
        with socket.socket() as again:  # the first spec's reservation was given back
            again.bind(("127.0.0.1", free))

        result = cli("run", "-d", "--name", "refused-too", "-p", f"{taken}:80", "busybox", "true")
        assert result.returncode == 125, result
        assert result.stderr.count("\n") == 1 and "is already in use" in result.stderr
        assert client.containers.get("refused-too").status == "created"
        result = cli("run", "--rm", "-p", f"{taken}:80", "busybox", "true")
        assert result.returncode == 125
    assert {c.name for c in client.containers.list(all=True)} == {"keep", "refused", "refused-too"}
    assert keep.reload().status == "running"


@pytest.mark.parametrize("spec, message", [
    ("8080:http", "container port 'http'"),
    ("localhost:8080:80", "host IP 'localhost'"),
    ("70000:80", "70000"),
    ("8080:80/sctp", "sctp"),
    ("1:2:3:4", "1:2:3:4"),
])
def test_bad_publish_spec_is_refused_before_anything_is_made(client, cli, spec, message):
    with pytest.raises(UserError) as caught:
        sleeper(client, ports=[spec])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    result = cli("run", "-d", "-p", spec, "busybox", "true")
    assert result.returncode == 125 and message in result.stderr and result.stderr.count("\n") == 1
    assert client.containers.list(all=True) == []
    assert state_of(client.runtime.network)["containers"] == {} and netns_files(client) == []


# --- connect, disconnect, rm, prune ---------------------------------------------------------

def test_connect_and_disconnect_a_running_container(client):
    backend = client.networks.create("backend")
    database = web(client, "database answer", name="db", network="backend")
    app = sleeper(client, name="app")
    assert exec_fetch(app, "http://db/")[0] != 0

    backend.connect(app, aliases=["application"])
    assert set(settings(app)["Networks"]) == {"bridge", "backend"}
    assert exec_fetch(app, "http://db/") == (0, "database answer\n")
    peer_hosts = database.exec_run(["cat", "/etc/hosts"]).output.decode()
    assert any(line.split()[0] == address(app, "backend") and "app" in line.split() and "application" in line.split()
               for line in peer_hosts.splitlines() if line.strip())
    assert b"eth1:" in app.exec_run(["cat", "/proc/net/dev"]).output

    backend.disconnect(app)
    assert set(settings(app)["Networks"]) == {"bridge"}
    assert exec_fetch(app, "http://db/")[0] != 0
    assert b"eth1:" not in app.exec_run(["cat", "/proc/net/dev"]).output
    assert b"app" not in database.exec_run(["cat", "/etc/hosts"]).output


def test_network_rm_of_a_network_in_use_is_a_conflict_and_prune_keeps_it(client, cli):
    in_use = client.networks.create("in-use")
    client.networks.create("unused")
    user = sleeper(client, network="in-use")
    bridge = in_use.attrs["Options"]["com.docker.network.bridge.name"]
    with pytest.raises(Conflict):
        in_use.remove()
    result = cli("network", "rm", "in-use")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    pruned = cli("network", "prune", "-f")
    assert pruned.returncode == 0 and "unused" in pruned.stdout and "in-use" not in pruned.stdout
    assert {n.name for n in client.networks.list()} >= {"in-use"}
    assert "unused" not in {n.name for n in client.networks.list()}
    user.remove(force=True)
    assert cli("network", "rm", "in-use").returncode == 0
    assert wait_until(lambda: bridge not in host_links())


def test_stats_count_network_traffic(client, cli):
    port = free_port()
    server = client.containers.run("busybox", ["sh", "-c", "mkdir /www && head -c 600000 /dev/zero > /www/big && "
                                                           "exec httpd -f -p 80 -h /www"],
                                   detach=True, dns=LOCAL_DNS, name="talkative", ports=[f"127.0.0.1:{port}:80"])
    before = server.stats(stream=False)
    deadline = time.monotonic() + 10
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/big")
            assert len(connection.getresponse().read()) == 600000
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        finally:
            connection.close()
    after = server.stats(stream=False)
    assert after["net_tx"] - before["net_tx"] >= 600000
    assert after["net_rx"] > before["net_rx"]
    row = [line for line in cli("stats", "--no-stream").stdout.splitlines() if "talkative" in line]
    assert len(row) == 1 and re.search(r"B / 6\d\d(\.\d+)?kB ", row[0]), row  # NET I/O, e.g. "2kB / 602kB"


# --- teardown -----------------------------------------------------------------------------

def assert_containers_left_nothing(client, veths: set[str]) -> None:
    manager = client.runtime.network
    assert state_of(manager)["containers"] == {} and netns_files(client) == []
    assert " container " not in firewall_rules(manager).replace('"', " ")
    # The kernel removes the veth pairs with the namespaces, asynchronously.
    assert wait_until(lambda: not veths & host_links() and not any(bridge_ports(b) for b in bridges(client)),
                      timeout=10), (veths & host_links(), {b: bridge_ports(b) for b in bridges(client)})


def assert_networks_left_nothing(client, made: dict[str, str]) -> None:
    client.networks.prune()
    assert wait_until(lambda: not set(made) & host_links())
    assert firewall_rules(client.runtime.network) == ""
    assert addresses_in(made.values()) == []


def test_rm_and_network_prune_leave_nothing(client):
    manager = client.runtime.network
    client.networks.create("teardown")
    on_user = web(client, "user", network="teardown", network_aliases=["alias"], ports=["127.0.0.1::80"])
    on_default = web(client, "default", ports=["80", "127.0.0.1::81/udp"])
    containers = [on_user, on_default]
    for container in containers:
        assert container.short_id in firewall_rules(manager)
    veths = recorded_veths(manager)
    made = bridges(client)
    assert len(veths) == 2 and veths <= host_links() and len(made) == 2 and len(addresses_in(made.values())) == 2
    assert sorted(port for b in made for port in bridge_ports(b)) == sorted(veths)

    for container in containers:
        container.remove(force=True)
    assert_containers_left_nothing(client, veths)
    client.networks.get("teardown").remove()
    assert_networks_left_nothing(client, made)


STARTER = ["run", "-d", "--dns", "127.0.0.1", "--network", "crashes", "-p", "127.0.0.1::80", "busybox",
           "sleep", "300"]


def test_starters_killed_at_any_moment_then_prune_leave_nothing(client, cli_env):
    """The CLI starting a published container is SIGKILLed at random
    moments; whatever each left (a record, a started container, a lease, a
    namespace, rules), container prune and network prune clean it up."""
    client.networks.create("crashes")
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    delays = []
    veths: set[str] = set()
    for _ in range(8):
        starter = subprocess.Popen([sys.executable, "-m", "jupyter_containers", *STARTER], env=cli_env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delays.append(round(rng.uniform(0.2, 1.2), 3))
        time.sleep(delays[-1])
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=10)
        veths |= recorded_veths(client.runtime.network)
    made = bridges(client)
    # What did start keeps running, as a container must after its starter died.
    for container in client.containers.list(all=True):
        if container.status == "running":
            assert container.exec_run(["true"]).exit_code == 0
            container.kill()
            container.wait(timeout=10)
    client.containers.prune()
    assert client.containers.list(all=True) == [], delays
    assert os.listdir(client.layout.containers) == [], delays
    assert_containers_left_nothing(client, veths)
    client.networks.get("crashes").remove()
    assert_networks_left_nothing(client, made)


def test_host_network(client):
    port = free_port()
    out = client.containers.run("busybox", ["sh", "-c", "hostname; cat /etc/hosts; cat /proc/net/dev"],
                                network="host", remove=True).decode()
    host_hosts = open("/etc/hosts").read()
    assert out.startswith(os.uname().nodename + "\n" + host_hosts)  # docker: the host's name and hosts file
    inside = {line.split(":")[0].strip() for line in out[len(os.uname().nodename) + 1 + len(host_hosts):]
              .splitlines()[2:]}
    assert {"lo", default_route_interface()} <= inside

    server = client.containers.run("busybox", ["sh", "-c", f'mkdir /www && echo host net > /www/index.html && '
                                                           f'exec httpd -f -p 127.0.0.1:{port} -h /www'],
                                   detach=True, network="host", ports=["80"])
    assert client.runtime.warnings == ["published ports are discarded when using the host network"]
    assert http_get("127.0.0.1", port) == "host net\n"
    network = settings(server)
    assert set(network["Networks"]) == {"host"} and network["IPAddress"] == "" and network["Ports"] == {}
    assert netns_files(client) == [] and recorded_veths(client.runtime.network) == set()
    server.remove(force=True)
    assert state_of(client.runtime.network)["containers"] == {}
