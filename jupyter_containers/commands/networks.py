"""Network verbs: network create/ls/inspect/rm/prune/connect/disconnect."""

from __future__ import annotations

from . import verb
from .containers import _append, _each, report_prune


def _create_args(p):
    p.add_argument("-d", "--driver", default="bridge", help="Driver to manage the Network")
    p.add_argument("--subnet", help="Subnet in CIDR format that represents a network segment")
    p.add_argument("--gateway", help="IPv4 Gateway for the master subnet")
    p.add_argument("--internal", action="store_true", help="Restrict external access to the network")
    _append(p, "--label", metavar="KEY=VALUE", help="Set metadata on a network")
    p.add_argument("name", metavar="NETWORK")


@verb("create", "Create a network", configure=_create_args, group="network")
def create(client, args, ui):
    labels = dict(item.partition("=")[::2] for item in args.label)
    network = client.networks.create(args.name, driver=args.driver, subnet=args.subnet, gateway=args.gateway,
                                     labels=labels, internal=args.internal)
    ui.print(network.id)
    return network


def _ls_args(p):
    p.add_argument("-q", "--quiet", action="store_true", help="Only display network IDs")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate the output")
    _append(p, "-f", "--filter", metavar="FILTER", help="Provide filter values (e.g. 'driver=bridge')")


@verb("ls", "List networks", configure=_ls_args, group="network", also=[("network", "list")])
def ls(client, args, ui):
    networks = client.networks.list(filters=args.filter)
    if args.quiet:
        ui.lines(n.id if args.no_trunc else n.short_id for n in networks)
    else:
        rows = [[n.id if args.no_trunc else n.short_id, n.name, n.attrs.get("Driver", "bridge"),
                 n.attrs.get("Scope", "local")] for n in networks]
        ui.table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], rows, kind="networks", objects=networks)
    return networks


def _rm_args(p):
    p.add_argument("names", nargs="+", metavar="NETWORK")


@verb("rm", "Remove one or more networks", configure=_rm_args, group="network", also=[("network", "remove")])
def rm(client, args, ui):
    return _each(client, ui, args.names, lambda n: client.networks.get(n).remove())


def _prune_args(p):
    _append(p, "--filter", metavar="FILTER", help="Provide filter values (e.g. 'label=<key>=<value>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


@verb("prune", "Remove all unused networks", configure=_prune_args, group="network")
def prune(client, args, ui):
    result = client.networks.prune(filters=args.filter)
    report_prune(ui, "Networks", result.get("NetworksDeleted") or [], None)
    return result


def _connect_args(p):
    _append(p, "--alias", metavar="ALIAS", help="Add network-scoped alias for the container")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


@verb("connect", "Connect a container to a network", configure=_connect_args, group="network")
def connect(client, args, ui):
    client.networks.get(args.network).connect(args.container, aliases=args.alias, ipv4_address=args.ip)
    return client.containers.get(args.container)


def _disconnect_args(p):
    p.add_argument("-f", "--force", action="store_true", help="Force the container to disconnect from a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")


@verb("disconnect", "Disconnect a container from a network", configure=_disconnect_args, group="network")
def disconnect(client, args, ui):
    client.networks.get(args.network).disconnect(args.container, force=args.force)
    return client.containers.get(args.container)
