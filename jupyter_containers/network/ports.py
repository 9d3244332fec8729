"""Published ports: docker's ``-p`` syntax, ``-P``, and host-port reservation.

A published port is reserved on the host by binding a socket to it (no
``listen``): while the socket is open nothing else on the host can take the
port, and the firewall's DNAT rule sends the traffic to the container. The
sockets are handed to whoever holds them for the container's lifetime (its
monitor process).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from ..errors import Conflict, UserError

PROTOCOLS = ("tcp", "udp")
_SOCKET_TYPES = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


@dataclass(frozen=True)
class PortSpec:
    """One container port published on the host.

    ``host_ip`` is ``""`` for every address of the host. ``host_port`` 0
    means a random free port; ``host_port_last`` > ``host_port`` means the
    first free port of that range.
    """

    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_last: int = 0


@dataclass(frozen=True)
class PortBinding:
    """A published port once its host port is chosen."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int

    @property
    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def overlaps(self, other: "PortBinding") -> bool:
        """Whether both bindings claim the same host port (an empty host IP
        is every address, so it overlaps any)."""
        return (self.proto == other.proto and self.host_port == other.host_port
                and (not self.host_ip or not other.host_ip or self.host_ip == other.host_ip))

    def to_dict(self) -> dict:
        return {"container_port": self.container_port, "proto": self.proto,
                "host_ip": self.host_ip, "host_port": self.host_port}

    @classmethod
    def from_dict(cls, data: dict) -> "PortBinding":
        return cls(data["container_port"], data["proto"], data["host_ip"], data["host_port"])


def _port_range(text: str, what: str, spec: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    if not first.isdigit() or (sep and not last.isdigit()) or not (
            1 <= int(first) <= 65535 and 1 <= int(last or first) <= 65535):
        raise UserError(f"invalid port spec {spec!r}: {what} {text!r} is not a port (1-65535) or range",
                        hint="use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    low, high = int(first), int(last or first)
    if high < low:
        raise UserError(f"invalid port spec {spec!r}: {what} range {text!r} ends before it starts")
    return low, high


def _host_ip(text: str, spec: str) -> str:
    if text.startswith("["):
        raise UserError(f"invalid port spec {spec!r}: IPv6 host address {text!r} is not supported",
                        hint="container networks are IPv4 only")
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        raise UserError(f"invalid port spec {spec!r}: host IP {text!r} is not an IPv4 address") from None
    return "" if address.is_unspecified else str(address)


def parse_port_spec(spec: str) -> list[PortSpec]:
    """One ``-p`` value, in docker's syntax, as one PortSpec per container port::

        80  80/udp  8080:80  127.0.0.1:8080:80  127.0.0.1::80  8080-8081:80-81
        8000-8010:80  (the first free host port of the range)
    """
    text = spec.strip()
    rest, slash, proto = text.rpartition("/")
    if not slash:
        rest, proto = text, "tcp"
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise UserError(f"invalid port spec {spec!r}: protocol {proto!r} is not supported",
                        hint="use tcp or udp")
    if rest.startswith("["):
        _host_ip(rest[:rest.find("]") + 1], spec)
    parts = rest.split(":")
    if len(parts) > 3 or not rest:
        raise UserError(f"invalid port spec {spec!r}",
                        hint="use [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    container_text = parts[-1]
    host_text = parts[-2] if len(parts) >= 2 else ""
    host_ip = _host_ip(parts[0], spec) if len(parts) == 3 else ""
    c_low, c_high = _port_range(container_text, "container port", spec)
    if not host_text:
        return [PortSpec(port, proto, host_ip) for port in range(c_low, c_high + 1)]
    h_low, h_high = _port_range(host_text, "host port", spec)
    if c_low == c_high:
        return [PortSpec(c_low, proto, host_ip, h_low, h_high if h_high > h_low else 0)]
    if h_high - h_low != c_high - c_low:
        raise UserError(f"invalid port spec {spec!r}: host range {host_text!r} and container range "
                        f"{container_text!r} differ in length")
    return [PortSpec(c_low + offset, proto, host_ip, h_low + offset)
            for offset in range(c_high - c_low + 1)]


def parse_port_specs(specs) -> list[PortSpec]:
    """Every ``-p`` value of a command line, in order."""
    result: list[PortSpec] = []
    for spec in specs:
        result.extend(parse_port_spec(spec))
    return result


def exposed_port_specs(exposed_ports) -> list[PortSpec]:
    """``-P``: every port of an image's ExposedPorts (``{"80/tcp": {}}`` or
    a list of ``"80/tcp"``/``"53"``) published on a random host port."""
    specs = []
    for key in sorted(exposed_ports or (), key=lambda k: (str(k).partition("/")[0].zfill(5), str(k))):
        specs.extend(PortSpec(port.container_port, port.proto) for port in parse_port_spec(str(key)))
    return specs


def _bind(spec: PortSpec, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, _SOCKET_TYPES[spec.proto])
    try:
        # No SO_REUSEADDR: with it, another socket could share the port.
        sock.bind((spec.host_ip or "0.0.0.0", port))
    except BaseException:
        sock.close()
        raise
    return sock


def _reserve_one(spec: PortSpec) -> socket.socket:
    where = f"{spec.host_ip or '0.0.0.0'}:"
    if spec.host_port_last:
        for port in range(spec.host_port, spec.host_port_last + 1):
            try:
                return _bind(spec, port)
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
        raise Conflict(f"no free host port in {where}{spec.host_port}-{spec.host_port_last}/{spec.proto}",
                       hint="choose another range or stop what uses those ports")
    try:
        return _bind(spec, spec.host_port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise Conflict(f"host port {where}{spec.host_port}/{spec.proto} is already in use",
                           hint="choose another host port or stop what uses it") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"host IP {spec.host_ip} is not an address of this host") from None
        raise


def reserve(specs: list[PortSpec]) -> tuple[list[PortBinding], list[socket.socket]]:
    """Bind a socket on each spec's host port (random ones chosen by the
    kernel from the ephemeral range). All or nothing: on an error every
    socket bound so far is closed."""
    fixed = [PortBinding(s.container_port, s.proto, s.host_ip, s.host_port)
             for s in specs if s.host_port and not s.host_port_last]
    for index, binding in enumerate(fixed):
        if any(binding.overlaps(other) for other in fixed[:index]):
            raise UserError(f"host port {binding.host_port}/{binding.proto} is published twice")
    bindings: list[PortBinding] = []
    sockets: list[socket.socket] = []
    try:
        for spec in specs:
            sock = _reserve_one(spec)
            sockets.append(sock)
            bindings.append(PortBinding(spec.container_port, spec.proto, spec.host_ip,
                                        sock.getsockname()[1]))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return bindings, sockets


def ports_dict(bindings: list[PortBinding]) -> dict:
    """NetworkSettings.Ports as docker shows it:
    ``{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}``."""
    ports: dict[str, list[dict]] = {}
    for binding in bindings:
        ports.setdefault(binding.key, []).append(
            {"HostIp": binding.host_ip or "0.0.0.0", "HostPort": str(binding.host_port)})
    return ports
