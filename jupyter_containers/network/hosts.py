"""Name resolution through kept-in-sync ``/etc/hosts`` files.

On a user network every container's hosts file lists the other containers of
its networks by name and alias; the files are rewritten whenever a container
joins or leaves. The runtime bind-mounts ``containers/<id>/hosts`` as the
container's ``/etc/hosts``, so the file is rewritten in place (the bind
mount pins its inode; a rename would leave the container reading the old
file): the new content is written over the old and the file is cut to its
length, so a reader sees the old or the new lines, never an empty file.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ..errors import UserError

LOCALHOST = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

#: ``--add-host NAME:host-gateway`` maps NAME to the gateway of the
#: container's first network: the host as the container sees it.
HOST_GATEWAY = "host-gateway"

HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def parse_extra_hosts(entries) -> list[tuple[str, str]]:
    """``--add-host`` values (``NAME:IP`` or ``NAME=IP``) as (name, ip)."""
    result = []
    for entry in entries or ():
        name, sep, address = entry.partition("=") if "=" in entry else entry.partition(":")
        if not sep or not name or not address:
            raise UserError(f"invalid --add-host {entry!r}", hint="use NAME:IP, e.g. db:10.0.0.5")
        if not HOSTNAME.match(name):
            raise UserError(f"invalid --add-host {entry!r}: {name!r} is not a host name")
        if address != HOST_GATEWAY:
            try:
                address = str(ipaddress.ip_address(address.strip("[]")))
            except ValueError:
                raise UserError(f"invalid --add-host {entry!r}: {address!r} is not an IP address",
                                hint=f"use an IP address or {HOST_GATEWAY}") from None
        result.append((name, address))
    return result


def check_host_gateway(extra_hosts: list[tuple[str, str]], gateway: str | None) -> None:
    """``host-gateway`` needs a network with a gateway to stand for."""
    if gateway is None and any(address == HOST_GATEWAY for _, address in extra_hosts):
        raise UserError(f"--add-host ...:{HOST_GATEWAY} needs a bridge network with a gateway")


def render(own: list[tuple[str, list[str]]], peers: list[tuple[str, list[str]]],
           extra_hosts: list[tuple[str, str]], base: str = LOCALHOST) -> str:
    """A hosts file: ``base`` (the localhost lines, or the host's own file
    for ``--network host``), the ``--add-host`` entries, the container's own
    addresses and names, then its peers on user networks."""
    lines = [base if base.endswith("\n") or not base else base + "\n"]
    lines += [f"{address}\t{name}\n" for name, address in extra_hosts]
    lines += [f"{address}\t{' '.join(names)}\n" for address, names in own + peers if names]
    return "".join(lines)


def write_in_place(path: os.PathLike | str, content: str) -> None:
    """Replace a bind-mounted file's content without replacing its inode.
    The caller holds the network lock, so writers never interleave."""
    data = content.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        view = memoryview(data)
        offset = 0
        while offset < len(data):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
