"""The /etc/hosts, /etc/resolv.conf and /etc/hostname a container gets
(files in its state directory, bind-mounted by the start hook)."""

from __future__ import annotations

import re

from ..errors import UserError
from ..network.hosts import LOCALHOST

FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # docker's, when the host has only loopback resolvers


def parse_extra_host(item: str, gateway: str | None = None) -> tuple[str, str]:
    """``--add-host name:ip`` (or ``name=ip``); ``host-gateway`` is the
    network's gateway, as in docker."""
    separator = "=" if "=" in item else ":"
    name, _, address = item.partition(separator)
    if not name or not address:
        raise UserError(f"invalid --add-host '{item}'", hint="use NAME:IP, e.g. db:10.0.0.5")
    if address == "host-gateway":
        if not gateway:
            raise UserError(f"--add-host '{item}': host-gateway needs a bridge network")
        address = gateway
    return name, address


def hosts_file(hostname: str, addresses: list[tuple[str, str]] | None, extra_hosts: list[str],
               *, host_network: bool = False, gateway: str | None = None) -> str:
    """``addresses`` are ``(ip, names)`` lines for the container itself and
    for its peers on user networks."""
    if host_network:
        try:
            with open("/etc/hosts", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            text = LOCALHOST
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = LOCALHOST
    for item in extra_hosts:
        name, address = parse_extra_host(item, gateway)
        text += f"{address}\t{name}\n"
    for address, names in addresses or []:
        text += f"{address}\t{names}\n"
    return text


def resolv_conf(dns: list[str], *, host_network: bool = False, path: str = "/etc/resolv.conf") -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = []
    other = [line for line in lines if not line.strip().startswith("nameserver")]
    servers = [line.split()[1] for line in lines if line.strip().startswith("nameserver") and len(line.split()) > 1]
    if dns:
        servers = list(dns)
    elif not host_network:
        # Loopback resolvers of the host are unreachable from another
        # network namespace.
        servers = [s for s in servers if not re.match(r"^(127\.|::1$)", s)] or list(FALLBACK_DNS)
    return "".join(f"{line}\n" for line in other if line.strip()) + "".join(f"nameserver {s}\n" for s in servers)
