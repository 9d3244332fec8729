import ipaddress
import os

import pytest

from jupyter_containers.errors import Conflict, UserError
from jupyter_containers.network import firewall, hosts, ipam

NET = ipaddress.ip_network("10.214.5.0/24")


def test_allocation_goes_round_and_skips_used():
    assert ipam.allocate(NET, "10.214.5.1", []) == "10.214.5.2"
    assert ipam.allocate(NET, "10.214.5.1", ["10.214.5.2"]) == "10.214.5.3"
    # After the last one given, not the lowest free: a released address
    # is not handed out again at once.
    assert ipam.allocate(NET, "10.214.5.1", ["10.214.5.3"], last="10.214.5.3") == "10.214.5.4"
    assert ipam.allocate(NET, "10.214.5.1", [], last="10.214.5.254") == "10.214.5.2"


def test_small_subnet_runs_out():
    small = ipaddress.ip_network("10.214.6.0/30")
    assert ipam.allocate(small, "10.214.6.1", []) == "10.214.6.2"
    with pytest.raises(Conflict, match="no free address left"):
        ipam.allocate(small, "10.214.6.1", ["10.214.6.2"])


def test_requested_address():
    assert ipam.allocate(NET, "10.214.5.1", [], requested="10.214.5.9") == "10.214.5.9"
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(NET, "10.214.5.1", ["10.214.5.9"], requested="10.214.5.9")
    with pytest.raises(Conflict, match="already in use"):
        ipam.allocate(NET, "10.214.5.1", [], requested="10.214.5.1")
    for outside in ("10.214.6.9", "10.214.5.0", "10.214.5.255"):
        with pytest.raises(UserError, match="not a host address"):
            ipam.allocate(NET, "10.214.5.1", [], requested=outside)
    with pytest.raises(UserError, match="invalid IP address 'x'"):
        ipam.allocate(NET, "10.214.5.1", [], requested="x")


def test_subnets():
    assert ipam.pick_subnet("10.214.0.0/16", [ipaddress.ip_network("10.214.0.0/23")]) == \
        ipaddress.ip_network("10.214.2.0/24")
    with pytest.raises(Conflict, match="no free /24"):
        ipam.pick_subnet("10.214.0.0/24", [NET.supernet(8)])
    with pytest.raises(UserError, match="host bits are set: did you mean 10.214.5.0/24"):
        ipam.parse_subnet("10.214.5.3/24")
    with pytest.raises(UserError, match="IPv6"):
        ipam.parse_subnet("fd00::/64")
    with pytest.raises(UserError, match="too small"):
        ipam.parse_subnet("10.0.0.0/31")
    assert ipam.gateway_for(NET) == "10.214.5.1"
    assert ipam.gateway_for(NET, "10.214.5.254") == "10.214.5.254"
    with pytest.raises(UserError, match="gateway 10.9.9.9 is not a host address"):
        ipam.gateway_for(NET, "10.9.9.9")


def test_mac_follows_the_address():
    assert ipam.mac_for("10.214.5.2") == "02:6a:0a:d6:05:02"


def test_extra_hosts():
    assert hosts.parse_extra_hosts(["db:10.0.0.5", "gw=host-gateway", "v6:::1"]) == [
        ("db", "10.0.0.5"), ("gw", "host-gateway"), ("v6", "::1")]
    for bad, message in (("nocolon", "use NAME:IP"), ("db:notanip", "'notanip' is not an IP address"),
                         ("-x:1.2.3.4", "'-x' is not a host name")):
        with pytest.raises(UserError, match=message):
            hosts.parse_extra_hosts([bad])


def test_hosts_file_content():
    text = hosts.render([("10.0.0.2", ["abc", "web", "www"])], [("10.0.0.3", ["db"])], [("x", "1.2.3.4")])
    assert text == hosts.LOCALHOST + "1.2.3.4\tx\n10.0.0.2\tabc web www\n10.0.0.3\tdb\n"


def test_hosts_file_is_rewritten_in_place(tmp_path):
    path = tmp_path / "hosts"
    hosts.write_in_place(path, "a much longer first version\n")
    inode = os.stat(path).st_ino
    hosts.write_in_place(path, "short\n")
    assert path.read_text() == "short\n" and os.stat(path).st_ino == inode


NETWORKS = [firewall.BridgeNetwork("app", "jc-app", "10.214.5.0/24"),
            firewall.BridgeNetwork("sealed", "jc-sealed", "10.214.6.0/24", internal=True)]
FORWARDS = [firewall.PortForward("tcp", "", 8080, "10.214.5.2", 80, "abc"),
            firewall.PortForward("udp", "127.0.0.1", 5353, "10.214.5.2", 53, "abc")]


def test_nftables_script():
    script = firewall.Nftables("tag").render(NETWORKS, FORWARDS)
    lines = [line.strip() for line in script.splitlines()]
    assert lines[:3] == ["table ip jupyter_containers_tag {}", "delete table ip jupyter_containers_tag",
                         "table ip jupyter_containers_tag {"]
    forward = lines[lines.index("chain forward {") + 2:lines.index("chain prerouting {") - 1]
    assert forward == [
        'oifname "jc-app" ct state established,related accept comment "network app"',
        'iifname "jc-app" oifname "jc-app" accept comment "network app"',
        'oifname "jc-app" ct status dnat accept comment "network app"',
        'oifname "jc-app" drop comment "network app"',
        'iifname "jc-sealed" oifname "jc-sealed" accept comment "network sealed"',
        'oifname "jc-sealed" drop comment "network sealed"',
        'iifname "jc-app" accept comment "network app"',
        'iifname "jc-sealed" drop comment "network sealed"',
    ]
    assert 'fib daddr type local tcp dport 8080 dnat to 10.214.5.2:80 comment "container abc"' in lines
    assert 'ip daddr 127.0.0.1 udp dport 5353 dnat to 10.214.5.2:53 comment "container abc"' in lines
    assert 'oifname != "jc-app" ip saddr 10.214.5.0/24 masquerade comment "network app"' in lines
    assert not any('oifname != "jc-sealed"' in line for line in lines)
    assert firewall.Nftables("tag").render([], []).splitlines() == lines[:2]


def test_iptables_restore_input():
    rendered = firewall.Iptables("tag").render(NETWORKS, FORWARDS, jumps={("nat", "OUTPUT")})
    lines = rendered.splitlines()
    assert lines[:2] == ["*filter", ":JC-tag-FORWARD - [0:0]"]
    assert "-I FORWARD -j JC-tag-FORWARD" in lines and "-I OUTPUT -j JC-tag-OUTPUT" not in lines
    assert ('-A JC-tag-PREROUTING -m addrtype --dst-type LOCAL -p tcp --dport 8080 '
            '-m comment --comment "container abc" -j DNAT --to-destination 10.214.5.2:80') in lines
    assert ('-A JC-tag-POSTROUTING -o jc-app -s 127.0.0.0/8 -m comment --comment "network app" '
            '-j MASQUERADE') in lines
    removal = firewall.Iptables("tag").render([], [], jumps={("filter", "FORWARD")}).splitlines()
    assert removal == ["*filter", "-D FORWARD -j JC-tag-FORWARD", "-F JC-tag-FORWARD", "-X JC-tag-FORWARD",
                       "COMMIT", "*nat", "COMMIT"]
