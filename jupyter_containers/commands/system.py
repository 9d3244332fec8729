"""login, logout, version, info, config."""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import UserError
from . import verb


def _login_args(p):
    p.add_argument("-u", "--username", help="Username")
    p.add_argument("-p", "--password", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


@verb("login", "Log in to a registry", configure=_login_args)
def login(client, args, ui):
    username = args.username
    password = args.password
    if args.password_stdin:
        if args.password:
            raise UserError("--password and --password-stdin are mutually exclusive")
        password = sys.stdin.read().rstrip("\n")
    if not username:
        username = ui.prompt("Username: ", hint="use --username")
    if not password:
        password = ui.prompt("Password: ", secret=True, hint="use --password-stdin")
    if args.password:
        ui.warn("Using --password via the CLI is insecure. Use --password-stdin.")
    client.login(args.server, username, password)
    ui.print("Login Succeeded")


def _logout_args(p):
    p.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


@verb("logout", "Log out from a registry", configure=_logout_args)
def logout(client, args, ui):
    client.logout(args.server)
    ui.print(f"Removing login credentials for {args.server}")


def _no_args(p):
    pass


@verb("version", "Show the jupyter-containers version information", configure=_no_args)
def version(client, args, ui):
    import platform

    info = {"Version": __version__, "Python": platform.python_version(), "Os": "linux",
            "Arch": platform.machine(), "Kernel": platform.release()}
    for key, value in info.items():
        ui.print(f"{key + ':':<10} {value}")
    return info


@verb("info", "Display system-wide information", configure=_no_args, also=[("system", "info")])
def info(client, args, ui):
    from ..containers import cgroups

    containers = client.containers.list(all=True)
    states = [c.status for c in containers]
    data = {
        "Containers": len(containers),
        "Running": states.count("running"),
        "Paused": states.count("paused"),
        "Stopped": len(states) - states.count("running") - states.count("paused"),
        "Images": len(client.images.list()),
        "StorageRoot": str(client.layout.root),
        "RunRoot": str(client.layout.run),
        "CgroupVersion": cgroups.detect().mode,
        "Version": __version__,
    }
    for key, value in data.items():
        ui.print(f" {key}: {value}")
    return data


@verb("config", "Show the effective configuration and where it is read from", configure=_no_args)
def config(client, args, ui):
    from .. import config as config_module

    ui.print("Configuration files are read from (highest priority first):")
    for path in config_module.config_paths():
        ui.print(f"  {path}/{config_module.CONFIG_BASENAME}.json|.py")
    ui.print()
    values = {}
    for cls in config_module.configurables():
        instance = cls(config=client.config)
        for name in sorted(instance.class_trait_names(config=True)):
            values[f"{cls.__name__}.{name}"] = getattr(instance, name)
            ui.print(f"{cls.__name__}.{name} = {getattr(instance, name)!r}")
    return values
