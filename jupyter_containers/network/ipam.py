"""Address management: subnets for networks, addresses for containers.

Pure functions over the network state (``state.py`` persists it under a
file lock). A container's address is its lease: it is taken when the
container is attached and released when it is detached. Addresses are handed
out in turn after the last one given, as docker does, so an address just
released is not reused at once (the kernel removes a detached container's
interface a few tens of milliseconds after its namespace goes).
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from ..errors import Conflict, UserError

SUBNET_PREFIX = 24  # size of the subnets `network create` takes from the pool


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.ip_network(text.strip())
    except ValueError:
        try:
            loose = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise UserError(f"invalid subnet {text!r}",
                            hint="use CIDR notation, e.g. 10.214.3.0/24") from None
        raise UserError(f"invalid subnet {text!r}: host bits are set", hint=f"did you mean {loose}?") from None
    if subnet.version != 4:
        raise UserError(f"IPv6 subnet {text!r} is not supported", hint="container networks are IPv4 only")
    if subnet.prefixlen > 30:
        raise UserError(f"subnet {text} is too small", hint="use a /30 or larger")
    return subnet


def gateway_for(subnet: ipaddress.IPv4Network, gateway: str | None = None) -> str:
    """The bridge's address: ``gateway`` when given (checked), else the
    subnet's first host address."""
    if not gateway:
        return str(next(subnet.hosts()))
    address = _address(gateway, "gateway")
    if not _is_host(subnet, address):
        raise UserError(f"gateway {gateway} is not a host address of subnet {subnet}")
    return str(address)


def pick_subnet(pool: str, taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of ``pool`` that overlaps nothing in ``taken``."""
    pool_net = parse_subnet(pool)
    taken = list(taken)
    candidates = pool_net.subnets(new_prefix=SUBNET_PREFIX) if pool_net.prefixlen < SUBNET_PREFIX else [pool_net]
    for candidate in candidates:
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise Conflict(f"no free /{SUBNET_PREFIX} subnet left in the pool {pool}",
                   hint="remove unused networks (network prune), give --subnet, or set Network.user_subnet_pool")


def allocate(subnet: ipaddress.IPv4Network, gateway: str, used: Iterable[str],
             last: str | None = None, requested: str | None = None) -> str:
    """An address of ``subnet`` for a container: ``requested`` (``--ip``)
    when given and free, else the next free one after ``last``."""
    taken = set(used) | {gateway}
    if requested:
        address = _address(requested, "IP address")
        if not _is_host(subnet, address):
            raise UserError(f"IP address {requested} is not a host address of the network's subnet {subnet}")
        if str(address) in taken:
            raise Conflict(f"IP address {requested} is already in use on subnet {subnet}",
                           hint="choose another --ip or leave it out")
        return str(address)
    first = int(subnet.network_address) + 1
    count = subnet.num_addresses - 2
    start = int(ipaddress.IPv4Address(last)) - first + 1 if last and _is_host(subnet, _address(last, "")) else 0
    for step in range(count):
        candidate = str(ipaddress.IPv4Address(first + (start + step) % count))
        if candidate not in taken:
            return candidate
    raise Conflict(f"no free address left in subnet {subnet}", hint="remove containers from the network")


def mac_for(address: str) -> str:
    """A locally administered MAC derived from the address (as docker did):
    an address that changes hands keeps its MAC, so ARP caches stay right."""
    octets = ipaddress.IPv4Address(address).packed
    return "02:6a:" + ":".join(f"{b:02x}" for b in octets)


def _address(text: str, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise UserError(f"invalid {what} {text!r}", hint="use an IPv4 address") from None


def _is_host(subnet: ipaddress.IPv4Network, address: ipaddress.IPv4Address) -> bool:
    return address in subnet and address not in (subnet.network_address, subnet.broadcast_address)
