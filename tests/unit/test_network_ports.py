import socket
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_containers.errors import Conflict, UserError
from jupyter_containers.network.ports import (PortBinding, PortSpec, exposed_port_specs, parse_port_specs,
                                              ports_dict, reserve)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("80", [PortSpec(80)]),
        ("80/udp", [PortSpec(80, "udp")]),
        ("8080:80", [PortSpec(80, "tcp", "", 8080)]),
        ("127.0.0.1:5353:53/udp", [PortSpec(53, "udp", "127.0.0.1", 5353)]),
        ("0.0.0.0::80", [PortSpec(80)]),
        ("127.0.0.1::80", [PortSpec(80, "tcp", "127.0.0.1")]),
        ("8080-8081:80-81", [PortSpec(80, "tcp", "", 8080), PortSpec(81, "tcp", "", 8081)]),
        ("8000-8010:80", [PortSpec(80, "tcp", "", 8000, 8010)]),
        ("1000-1001", [PortSpec(1000), PortSpec(1001)]),
        ("80/TCP", [PortSpec(80)]),
    ],
)
def test_docker_syntax(spec, expected):
    assert parse_port_specs([spec]) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("8080:http", "container port 'http'"),
        ("http:80", "host port 'http'"),
        ("70000:80", "host port '70000'"),
        ("0:80", "host port '0'"),
        ("80/sctp", "protocol 'sctp'"),
        ("localhost:8080:80", "host IP 'localhost'"),
        ("[::1]:8080:80", "IPv6 host address '[::1]'"),
        ("1:2:3:4", "invalid port spec '1:2:3:4'"),
        ("", "invalid port spec ''"),
        ("90-80", "container port range '90-80' ends before it starts"),
        ("8080-8082:80-81", "host range '8080-8082' and container range '80-81' differ"),
        ("80-", "container port '80-'"),
    ],
)
def test_bad_specs_name_the_bad_part(spec, message):
    with pytest.raises(UserError) as caught:
        parse_port_specs([spec])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_publish_all_takes_every_exposed_port():
    assert exposed_port_specs({"443/tcp": {}, "80/tcp": {}, "53/udp": {}}) == [
        PortSpec(53, "udp"), PortSpec(80), PortSpec(443)]
    assert exposed_port_specs(["8080"]) == [PortSpec(8080)]
    assert exposed_port_specs(None) == []


def test_reserve_binds_and_releases_on_error():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        with pytest.raises(Conflict, match=f"127.0.0.1:{taken}/tcp is already in use"):
            reserve([PortSpec(81, "tcp", "127.0.0.1"), PortSpec(80, "tcp", "127.0.0.1", taken)])
    bindings, sockets = reserve([PortSpec(80, "tcp", "127.0.0.1"), PortSpec(53, "udp", "127.0.0.1")])
    try:
        assert [b.proto for b in bindings] == ["tcp", "udp"]
        assert all(b.host_port > 0 for b in bindings)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("0.0.0.0", bindings[0].host_port))  # held by the reservation
    finally:
        for sock in sockets:
            sock.close()


def test_reserve_refuses_a_port_published_twice():
    with pytest.raises(UserError, match="published twice"):
        reserve([PortSpec(80, "tcp", "", 18080), PortSpec(81, "tcp", "127.0.0.1", 18080)])


def test_reserve_range_takes_the_first_free_port():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        first = squatter.getsockname()[1]
        bindings, sockets = reserve([PortSpec(80, "tcp", "127.0.0.1", first, first + 20)])
        try:
            assert first < bindings[0].host_port <= first + 20
        finally:
            for sock in sockets:
                sock.close()


def test_unknown_host_ip_is_a_user_error():
    with pytest.raises(UserError, match="203.0.113.9 is not an address of this host"):
        reserve([PortSpec(80, "tcp", "203.0.113.9", 8080)])


def test_ports_dict_is_dockers_shape():
    assert ports_dict([PortBinding(80, "tcp", "", 8080), PortBinding(80, "tcp", "127.0.0.1", 8081)]) == {
        "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8081"}]}


@pytest.mark.parametrize("code, expected", [
    ("import sys, jupyter_containers.network; print('pyroute2' in sys.modules)", "False"),
    ("import sys; from jupyter_containers.network import links; links.preload().join(); "
     "print('pyroute2.iproute.linux' in sys.modules)", "True"),
])
def test_pyroute2_is_imported_on_first_use_or_preload_only(code, expected):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == expected
