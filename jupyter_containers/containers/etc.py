"""The /etc/resolv.conf a container gets (a file in its state directory,
bind-mounted by the start hook, as /etc/hostname and /etc/hosts are; the
hosts file is network/hosts.py's)."""

from __future__ import annotations

import re

FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")  # docker's, when the host has only loopback resolvers


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
