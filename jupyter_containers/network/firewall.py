"""Forwarding, masquerade and published-port rules, with nftables or iptables.

The rules are a pure function of the network state: the bridges that are up
and the published ports of attached containers. Every change rewrites all of
the project's rules in one atomic transaction (``nft -f -`` or
``iptables-restore --noflush``), and with no bridge left they are removed.
The one exception is the start path: a container's published ports are
appended to the rules in place (``add_forwards``), because any removal in a
transaction makes the kernel wait for an RCU grace period (about 13 ms here)
while additions do not.
Each storage root has rules of its own, named after its tag (the 12 hex
digits that also name its run directory), so two roots never touch each
other's rules:

- nftables: ``table ip jupyter_containers_<tag>`` with base chains
  ``forward``, ``prerouting``, ``output`` and ``postrouting``;
- iptables: chains ``JC-<tag>-FORWARD`` (filter) and ``JC-<tag>-PREROUTING``,
  ``-OUTPUT``, ``-POSTROUTING`` (nat), each jumped to from the top of its
  built-in chain.

Per network (bridge B, subnet S), in this order across all networks:

1. into B: accept established/related, traffic from B itself, and DNAT'ed
   (published) connections; drop the rest, so networks are isolated from
   each other and from outside, as docker's are;
2. out of B: accept (drop on an internal network);
3. masquerade S leaving by another interface (not for internal networks),
   127.0.0.0/8 leaving by B (published ports reached through loopback; B has
   ``route_localnet=1``), and S-to-S connections that were DNAT'ed (a
   container reaching a published port through the host).

Published ports are DNAT'ed in nat PREROUTING and OUTPUT, to any local
address or to the given host IP (docker's ``userland-proxy=false`` design).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import HostUnsupported, RuntimeFailure

BACKENDS = ("nftables", "iptables")


@dataclass(frozen=True)
class BridgeNetwork:
    name: str
    bridge: str
    subnet: str
    internal: bool = False


@dataclass(frozen=True)
class PortForward:
    proto: str
    host_ip: str  # "" for every local address
    host_port: int
    address: str
    port: int
    container: str  # short id, for the rule's comment


@dataclass(frozen=True)
class Rule:
    action: str  # accept, drop, masquerade, dnat
    comment: str
    iif: str = ""
    oif: str = ""
    not_oif: str = ""
    saddr: str = ""
    daddr: str = ""
    local: bool = False  # destination is any address of the host
    proto: str = ""
    dport: int = 0
    established: bool = False
    dnatted: bool = False
    to: str = ""


#: How each match of a Rule is written: (field, nftables, iptables).
_MATCHES = (
    ("iif", 'iifname "{}"', "-i {}"),
    ("oif", 'oifname "{}"', "-o {}"),
    ("not_oif", 'oifname != "{}"', "! -o {}"),
    ("saddr", "ip saddr {}", "-s {}"),
    ("daddr", "ip daddr {}", "-d {}"),
    ("local", "fib daddr type local", "-m addrtype --dst-type LOCAL"),
    ("established", "ct state established,related", "-m conntrack --ctstate RELATED,ESTABLISHED"),
    ("dnatted", "ct status dnat", "-m conntrack --ctstate DNAT"),
)


def _matches(rule: Rule, column: int) -> list[str]:
    return [formats[column].format(getattr(rule, field))
            for field, *formats in _MATCHES if getattr(rule, field)]


def forward_rules(networks: list[BridgeNetwork]) -> list[Rule]:
    inbound, outbound = [], []
    for net in networks:
        tag = f"network {net.name}"
        if not net.internal:
            inbound.append(Rule("accept", tag, oif=net.bridge, established=True))
        inbound.append(Rule("accept", tag, oif=net.bridge, iif=net.bridge))
        if not net.internal:
            inbound.append(Rule("accept", tag, oif=net.bridge, dnatted=True))
        inbound.append(Rule("drop", tag, oif=net.bridge))
        outbound.append(Rule("drop" if net.internal else "accept", tag, iif=net.bridge))
    return inbound + outbound


def dnat_rules(forwards: list[PortForward]) -> list[Rule]:
    return [Rule("dnat", f"container {f.container}", daddr=f.host_ip, local=not f.host_ip,
                 proto=f.proto, dport=f.host_port, to=f"{f.address}:{f.port}") for f in forwards]


def postrouting_rules(networks: list[BridgeNetwork]) -> list[Rule]:
    rules = []
    for net in networks:
        tag = f"network {net.name}"
        if not net.internal:
            rules.append(Rule("masquerade", tag, saddr=net.subnet, not_oif=net.bridge))
        rules.append(Rule("masquerade", tag, oif=net.bridge, saddr="127.0.0.0/8"))
        rules.append(Rule("masquerade", tag, oif=net.bridge, saddr=net.subnet, dnatted=True))
    return rules


def _run(argv: list[str], script: str = "") -> str:
    try:
        done = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise HostUnsupported(f"{argv[0]} is not installed",
                              hint="install nftables or iptables, or set Network.firewall_backend") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["exit status %d" % done.returncode])[0]
        raise RuntimeFailure(f"{argv[0]} failed: {detail}")
    return done.stdout


class Nftables:
    name = "nftables"

    def __init__(self, tag: str):
        self.table = f"jupyter_containers_{tag}"

    @staticmethod
    def rule(rule: Rule) -> str:
        parts = _matches(rule, 0)
        if rule.proto:
            parts.append(f"{rule.proto} dport {rule.dport}")
        parts.append(f"dnat to {rule.to}" if rule.action == "dnat" else rule.action)
        parts.append(f'comment "{rule.comment}"')
        return " ".join(parts)

    def render(self, networks: list[BridgeNetwork], forwards: list[PortForward]) -> str:
        # Declaring the table first makes the delete valid when it is absent;
        # the whole script is one transaction.
        lines = [f"table ip {self.table} {{}}", f"delete table ip {self.table}"]
        if not networks:
            return "\n".join(lines) + "\n"
        chains = [
            ("forward", "type filter hook forward priority filter; policy accept;", forward_rules(networks)),
            ("prerouting", "type nat hook prerouting priority dstnat; policy accept;", dnat_rules(forwards)),
            ("output", "type nat hook output priority -100; policy accept;", dnat_rules(forwards)),
            ("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
             postrouting_rules(networks)),
        ]
        lines.append(f"table ip {self.table} {{")
        for name, hook, rules in chains:
            lines.append(f"  chain {name} {{")
            lines.append(f"    {hook}")
            lines.extend(f"    {self.rule(rule)}" for rule in rules)
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def apply(self, networks: list[BridgeNetwork], forwards: list[PortForward]) -> None:
        _run(["nft", "-f", "-"], self.render(networks, forwards))

    def add_forwards(self, forwards: list[PortForward]) -> None:
        """Append published ports to rules already in place (fails if the
        table is gone)."""
        _run(["nft", "-f", "-"], "".join(f"add rule ip {self.table} {chain} {self.rule(rule)}\n"
                                         for chain in ("prerouting", "output") for rule in dnat_rules(forwards)))


class Iptables:
    name = "iptables"

    def __init__(self, tag: str):
        self.chains = {
            ("filter", "FORWARD"): f"JC-{tag}-FORWARD",
            ("nat", "PREROUTING"): f"JC-{tag}-PREROUTING",
            ("nat", "OUTPUT"): f"JC-{tag}-OUTPUT",
            ("nat", "POSTROUTING"): f"JC-{tag}-POSTROUTING",
        }

    @staticmethod
    def rule(chain: str, rule: Rule) -> str:
        parts = [f"-A {chain}", *_matches(rule, 1)]
        if rule.proto:
            parts.append(f"-p {rule.proto} --dport {rule.dport}")
        parts.append(f'-m comment --comment "{rule.comment}"')
        parts.append(f"-j {rule.action.upper()}")
        if rule.action == "dnat":
            parts.append(f"--to-destination {rule.to}")
        return " ".join(parts)

    def _jumps(self) -> set[tuple[str, str]]:
        """The (table, built-in chain) pairs that jump to our chains now."""
        found, table = set(), ""
        for line in _run(["iptables-save"]).splitlines():
            if line.startswith("*"):
                table = line[1:]
            for (chain_table, builtin), ours in self.chains.items():
                if chain_table == table and line == f"-A {builtin} -j {ours}":
                    found.add((table, builtin))
        return found

    def render(self, networks: list[BridgeNetwork], forwards: list[PortForward],
               jumps: set[tuple[str, str]]) -> str:
        rules = {
            ("filter", "FORWARD"): forward_rules(networks),
            ("nat", "PREROUTING"): dnat_rules(forwards),
            ("nat", "OUTPUT"): dnat_rules(forwards),
            ("nat", "POSTROUTING"): postrouting_rules(networks),
        }
        lines = []
        for table in ("filter", "nat"):
            lines.append(f"*{table}")
            for (chain_table, builtin), ours in self.chains.items():
                if chain_table != table:
                    continue
                if networks:
                    lines.append(f":{ours} - [0:0]")  # declares and flushes it
                    lines.extend(self.rule(ours, rule) for rule in rules[(table, builtin)])
                    if (table, builtin) not in jumps:
                        lines.append(f"-I {builtin} -j {ours}")
                elif (table, builtin) in jumps:
                    lines += [f"-D {builtin} -j {ours}", f"-F {ours}", f"-X {ours}"]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def apply(self, networks: list[BridgeNetwork], forwards: list[PortForward]) -> None:
        _run(["iptables-restore", "-w", "--noflush"], self.render(networks, forwards, self._jumps()))

    def add_forwards(self, forwards: list[PortForward]) -> None:
        """Append published ports to chains already in place (fails if they
        are gone)."""
        lines = ["*nat"] + [self.rule(self.chains[("nat", builtin)], rule)
                            for builtin in ("PREROUTING", "OUTPUT") for rule in dnat_rules(forwards)]
        _run(["iptables-restore", "-w", "--noflush"], "\n".join(lines + ["COMMIT"]) + "\n")


def backend(name: str, tag: str):
    return {"nftables": Nftables, "iptables": Iptables}[name](tag)


def iptables_forward_policy_drop() -> bool:
    """Whether the host's iptables FORWARD chain drops by default (docker
    sets that). An nftables accept cannot overrule a drop in another base
    chain; only a rule in that chain can."""
    if not shutil.which("iptables"):
        return False
    try:
        return "-P FORWARD DROP" in _run(["iptables", "-w", "-S", "FORWARD"]).splitlines()
    except RuntimeFailure:
        return False


def choose(setting: str) -> str:
    """The backend for ``Network.firewall_backend``."""
    if setting in BACKENDS:
        return setting
    if iptables_forward_policy_drop():
        return "iptables"
    return "nftables" if shutil.which("nft") else "iptables"


def foreign_forward_drops(own_table: str) -> list[str]:
    """nftables base chains of other tables on the forward hook whose policy
    is drop: they drop container traffic whatever our table accepts."""
    if not shutil.which("nft"):
        return []
    try:
        listing = json.loads(_run(["nft", "-j", "list", "chains"]))
    except (RuntimeFailure, ValueError):
        return []
    found = []
    for item in listing.get("nftables", []):
        chain = item.get("chain")
        if chain and chain.get("hook") == "forward" and chain.get("policy") == "drop" \
                and chain.get("table") != own_table:
            found.append(f"{chain['family']} {chain['table']} {chain['name']}")
    return found
