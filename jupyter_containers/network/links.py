"""Bridges, veth pairs, addresses and routes, through pyroute2's netlink API.

Every function runs its netlink work in a short-lived thread
(:func:`netns.in_thread`): a netlink socket belongs to the namespace of the
thread that opens it, so the thread opens one socket in the caller's
namespace (the host side) and, after entering the container's namespace,
one there. Nothing forks (pyroute2's own ``netns=`` option forks a child to
open the socket, which a multi-threaded Jupyter process must not do) and no
``ip`` command is run. A worker thread also never finds a running asyncio
loop, which pyroute2's synchronous API would trip over in a Jupyter kernel.

pyroute2 costs about 0.1 s to import, so it is imported on first use only;
:func:`preload` imports it in the background for long-lived processes.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import threading
from dataclasses import dataclass

from ..errors import Conflict, RuntimeFailure
from . import ipam, netns

_LOCAL_TABLE = 255


def _iproute():
    from pyroute2 import IPRoute

    return IPRoute()


def _netlink_errno(error: BaseException) -> int | None:
    return getattr(error, "code", None)


def preload() -> threading.Thread:
    """Import pyroute2 in a background thread, so that the first network
    operation of a long-lived process (a kernel, the server) does not pay
    for it."""
    thread = threading.Thread(target=_import, name="jupyter-containers-preload", daemon=True)
    thread.start()
    return thread


def _import() -> None:
    import pyroute2  # noqa: F401  (its __init__ imports all of it)


def write_sysctl(path: str, value: str) -> None:
    """Write ``/proc/sys/net/…``: per network namespace, and that of the
    calling thread."""
    with open("/proc/sys/net/" + path, "w") as handle:
        handle.write(value)


def read_sysctl(path: str) -> str:
    with open("/proc/sys/net/" + path) as handle:
        return handle.read().strip()


def _lookup(ipr, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def create_bridge(name: str, gateway: str, prefixlen: int, owner: str, mtu: int = 0) -> None:
    """Create and bring up bridge ``name`` with address ``gateway``, its
    interface alias set to ``owner`` (naming the storage root). A bridge of
    that name with that alias is taken as it is (a network brought up again
    after a crash); any other interface of that name is a conflict."""

    def work():
        with _iproute() as ipr:
            index = _lookup(ipr, name)
            if index is not None:
                if ipr.link("get", index=index)[0].get("ifalias") != owner:
                    raise Conflict(f"an interface named {name} already exists on this host",
                                   hint="choose another Network.bridge_name or remove that interface")
                addresses = {(a.get("address"), a.get("prefixlen")) for a in ipr.get_addr(index=index, family=2)}
                if (gateway, prefixlen) not in addresses:
                    ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            else:
                options = {"mtu": mtu} if mtu else {}
                ipr.link("add", ifname=name, kind="bridge", address=ipam.mac_for(gateway), ifalias=owner,
                         **options)
                index = _lookup(ipr, name)
                ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
            # Packets leaving the bridge may come from 127.0.0.1 (published
            # ports reached through loopback) and are forwarded in from it.
            write_sysctl(f"ipv4/conf/{name}/route_localnet", "1")
            write_sysctl(f"ipv4/conf/{name}/forwarding", "1")
            ipr.link("set", index=index, state="up")

    _run(work, f"could not create bridge {name}")


def delete_links(names) -> None:
    """Delete interfaces (a veth's peer goes with it); missing ones are
    skipped."""

    def work():
        with _iproute() as ipr:
            for name in names:
                index = _lookup(ipr, name)
                if index is None:
                    continue
                try:
                    ipr.link("del", index=index)
                except Exception as error:
                    if _netlink_errno(error) != errno.ENODEV:
                        raise

    _run(work, "could not delete interfaces " + ", ".join(names))


def links_on_bridges(bridges) -> set[str]:
    """The names of the interfaces enslaved to any of ``bridges``."""

    def work():
        with _iproute() as ipr:
            indices = {_lookup(ipr, name) for name in bridges} - {None}
            return {link.get("ifname") for link in ipr.get_links() if link.get("master") in indices}

    return _run(work, "could not list interfaces")


def host_subnets(exclude_interfaces=()) -> list[ipaddress.IPv4Network]:
    """The IPv4 networks the host already routes to or has addresses in
    (default routes left out), except those on ``exclude_interfaces``."""

    def work():
        with _iproute() as ipr:
            excluded = {_lookup(ipr, name) for name in exclude_interfaces} - {None}
            found = []
            for route in ipr.get_routes(family=2):
                if route.get("table") == _LOCAL_TABLE or not route.get("dst_len"):
                    continue
                if route.get("oif") in excluded:
                    continue
                found.append(ipaddress.ip_network(f"{route.get('dst')}/{route.get('dst_len')}", strict=False))
            for address in ipr.get_addr(family=2):
                if address.get("index") not in excluded:
                    found.append(ipaddress.ip_network(
                        f"{address.get('address')}/{address.get('prefixlen')}", strict=False))
            return found

    return _run(work, "could not read the host's routes")


@dataclass
class Endpoint:
    """One container interface: the host end ``host_veth`` on ``bridge``,
    the container end ``ifname`` with ``address``/``prefixlen``."""

    bridge: str
    host_veth: str
    ifname: str
    address: str
    prefixlen: int
    mac: str


def configure(netns_path: str, endpoints: list[Endpoint], gateway: str | None, *,
              create: bool, mtu: int = 0) -> None:
    """Create (``create=True``) or enter the namespace pinned at
    ``netns_path`` and add ``endpoints`` to it; point its default route at
    ``gateway`` when given. On error the namespace made here is removed."""

    def work():
        with _iproute() as host:
            bridges = {e.bridge: _lookup(host, e.bridge) for e in endpoints}
            for name, index in bridges.items():
                if index is None:
                    raise RuntimeFailure(f"bridge {name} is missing",
                                         hint="run `network prune` and try again")
            if create:
                netns.create_and_enter(netns_path)
                netns.loopback_up()
            else:
                netns.enter(netns_path)
            nsfd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with _iproute() as inner:
                    options = {"mtu": mtu} if mtu else {}
                    for endpoint in endpoints:
                        # One request: the pair, its peer named and placed in
                        # the namespace, the host end enslaved and up.
                        host.link("add", ifname=endpoint.host_veth, kind="veth",
                                  master=bridges[endpoint.bridge], state="up",
                                  peer={"ifname": endpoint.ifname, "net_ns_fd": nsfd,
                                        "address": endpoint.mac, **options}, **options)
                        index = _lookup(inner, endpoint.ifname)
                        inner.addr("add", index=index, address=endpoint.address, prefixlen=endpoint.prefixlen)
                        inner.link("set", index=index, state="up")
                    if gateway:
                        inner.route("replace", dst="0.0.0.0/0", gateway=gateway)
            finally:
                os.close(nsfd)

    try:
        _run(work, "could not set up the container's network")
    except BaseException:
        if create:
            netns.remove(netns_path)
        else:
            delete_links([endpoint.host_veth for endpoint in endpoints])
        raise


def _run(work, what: str):
    try:
        return netns.in_thread(work)
    except (Conflict, RuntimeFailure):
        raise
    except OSError as error:
        raise RuntimeFailure(f"{what}: {error.strerror or error}") from error
    except Exception as error:
        code = _netlink_errno(error)
        if code:
            raise RuntimeFailure(f"{what}: {os.strerror(code)}") from error
        raise
