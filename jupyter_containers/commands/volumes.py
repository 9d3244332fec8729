"""Volume verbs: volume create/ls/inspect/rm/prune."""

from __future__ import annotations

from . import verb
from .containers import _append, _each, report_prune


def _create_args(p):
    p.add_argument("-d", "--driver", default="local", help="Specify volume driver name")
    _append(p, "--label", metavar="KEY=VALUE", help="Set metadata for a volume")
    _append(p, "-o", "--opt", metavar="KEY=VALUE", help="Set driver specific options")
    p.add_argument("name", nargs="?", metavar="VOLUME")


@verb("create", "Create a volume", configure=_create_args, group="volume")
def create(client, args, ui):
    from .containers import UserError

    labels = {}
    for item in args.label:
        key, _, value = item.partition("=")
        if not key:
            raise UserError(f"invalid label '{item}'", hint="use key=value")
        labels[key] = value
    opts = dict(o.partition("=")[::2] for o in args.opt)
    volume = client.volumes.create(args.name, driver=args.driver, driver_opts=opts or None, labels=labels)
    ui.print(volume.name)
    return volume


def _ls_args(p):
    p.add_argument("-q", "--quiet", action="store_true", help="Only display volume names")
    _append(p, "-f", "--filter", metavar="FILTER", help="Provide filter values (e.g. 'dangling=true')")


@verb("ls", "List volumes", configure=_ls_args, group="volume", also=[("volume", "list")])
def ls(client, args, ui):
    volumes = client.volumes.list(filters=args.filter)
    if args.quiet:
        ui.lines(v.name for v in volumes)
    else:
        ui.table(["DRIVER", "VOLUME NAME"], [[v.attrs["Driver"], v.name] for v in volumes], kind="volumes",
                 objects=volumes)
    return volumes


def _rm_args(p):
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")


@verb("rm", "Remove one or more volumes", configure=_rm_args, group="volume", also=[("volume", "remove")])
def rm(client, args, ui):
    return _each(client, ui, args.names, lambda n: client.volumes.get(n).remove(force=args.force))


def _prune_args(p):
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused volumes, not just anonymous ones")
    _append(p, "--filter", metavar="FILTER", help="Provide filter values (e.g. 'label=<label>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


@verb("prune", "Remove unused local volumes", configure=_prune_args, group="volume")
def prune(client, args, ui):
    result = client.volumes.prune(filters=args.filter, all=args.all)
    report_prune(ui, "Volumes", result["VolumesDeleted"], result["SpaceReclaimed"])
    return result
