"""From ``create`` options and an image's config to a container record.

The options are docker-py's keyword arguments (``environment``,
``mem_limit``, ``restart_policy``…, plus a few plain aliases such as
``memory`` and ``cpus``); the record is docker's ``inspect`` layout. The CLI
and the magics convert docker's flags into these options in
``jupyter_containers/commands``.
"""

from __future__ import annotations

import os
import shlex

from ..errors import UserError
from ..units import parse_cpus, parse_duration, parse_size, parse_swap

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
SPECIAL_NETWORKS = ("none", "host", "bridge", "default")

# Options create() understands; anything else is a mistake worth naming.
KNOWN_OPTIONS = {
    "name", "entrypoint", "environment", "env", "working_dir", "workdir", "user", "hostname",
    "domainname", "labels", "volumes", "mounts", "tmpfs", "read_only", "auto_remove", "remove",
    "init", "stdin_open", "tty", "mem_limit", "memory", "memswap_limit", "memory_swap",
    "nano_cpus", "cpus", "cpu_shares", "pids_limit", "restart_policy", "restart", "network",
    "network_mode", "network_aliases", "ip", "ports", "publish_all_ports", "expose", "cap_add",
    "cap_drop", "privileged", "security_opt", "stop_signal", "stop_timeout", "healthcheck",
    "extra_hosts", "group_add", "dns", "shm_size", "platform",
}


def as_list(value, what: str) -> list[str]:
    """A command or entrypoint: a list as is, a string split like a shell
    would (docker-py's behaviour)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as error:
            raise UserError(f"invalid {what} '{value}': {error}") from None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise UserError(f"invalid {what}: expected a string or a list, got {type(value).__name__}")


def env_list(value) -> list[str]:
    """``{"A": "1"}`` or ``["A=1"]`` → ``["A=1"]``."""
    if not value:
        return []
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    result = []
    for item in value:
        item = str(item)
        if not item or item.startswith("="):
            raise UserError(f"invalid environment variable '{item}'", hint="use NAME=value")
        result.append(item)
    return result


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    merged: dict[str, str] = {}
    for item in list(base) + list(overrides):
        key, sep, value = item.partition("=")
        merged[key] = item if sep else key
    return list(merged.values())


def label_dict(value) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    result = {}
    for item in value:
        key, _, val = str(item).partition("=")
        if not key:
            raise UserError(f"invalid label '{item}'", hint="use key=value")
        result[key] = val
    return result


def restart_policy(value) -> dict:
    """``"on-failure:3"`` or ``{"Name": …, "MaximumRetryCount": …}``."""
    if not value:
        return {"Name": "no", "MaximumRetryCount": 0}
    if isinstance(value, dict):
        name = value.get("Name") or value.get("name") or "no"
        count = int(value.get("MaximumRetryCount") or value.get("maximum_retry_count") or 0)
    else:
        name, _, count_text = str(value).partition(":")
        if count_text and not count_text.isdigit():
            raise UserError(f"invalid restart policy '{value}': the retry count must be a number")
        count = int(count_text or 0)
    if name not in RESTART_POLICIES:
        raise UserError(f"invalid restart policy '{value}'",
                        hint="use no, always, unless-stopped or on-failure[:max-retries]")
    if count and name != "on-failure":
        raise UserError(f"invalid restart policy '{value}': a maximum retry count only goes with on-failure")
    return {"Name": name, "MaximumRetryCount": count}


def port_specs(value) -> list[str]:
    """Published ports as ``-p`` strings, from the CLI's list or docker-py's
    dict (``{"80/tcp": 8080}``, ``{"53/udp": ("127.0.0.1", 5353)}``,
    ``{"80": None}`` for a random host port, or a list of those), checked
    now so a bad spec fails before anything is created."""
    from ..network.ports import parse_port_specs

    if not value:
        return []
    specs = []
    if isinstance(value, dict):
        for container_port, host in value.items():
            for binding in host if isinstance(host, list) else [host]:
                if binding is None:
                    specs.append(str(container_port))
                elif isinstance(binding, tuple):
                    specs.append(f"{binding[0]}:{binding[1] if len(binding) > 1 else ''}:{container_port}")
                else:
                    specs.append(f"{binding}:{container_port}")
    else:
        specs = [str(v) for v in ([value] if isinstance(value, str) else value)]
    parse_port_specs(specs)  # checks each
    return specs


def parse_volume(spec) -> dict:
    """``-v`` syntax: ``/host:/ctr[:ro]``, ``name:/ctr[:ro]``, ``/ctr``."""
    parts = str(spec).split(":")
    options: list[str] = []
    if len(parts) == 1:
        source, destination = "", parts[0]
    elif len(parts) == 2:
        if parts[1] in ("ro", "rw") or not parts[1].startswith("/"):
            if parts[0].startswith("/") and parts[1] in ("ro", "rw"):
                source, destination, options = "", parts[0], [parts[1]]
            else:
                raise UserError(f"invalid volume specification '{spec}'",
                                hint="use /host/path:/container/path[:ro], NAME:/container/path or /container/path")
        else:
            source, destination = parts
    elif len(parts) == 3:
        source, destination, opts = parts
        options = [o for o in opts.split(",") if o]
    else:
        raise UserError(f"invalid volume specification '{spec}': too many ':'")
    if not destination.startswith("/"):
        raise UserError(f"invalid volume specification '{spec}': the container path must be absolute")
    readonly = False
    for option in options:
        if option == "ro":
            readonly = True
        elif option in ("rw", "z", "Z", "nocopy", "copy", "rprivate", "private", "rslave", "slave",
                        "rshared", "shared"):
            continue
        else:
            raise UserError(f"invalid volume specification '{spec}': unknown option '{option}'")
    if not source:
        kind = "volume"  # anonymous
    elif source.startswith("/") or source.startswith("."):
        kind = "bind"
        source = os.path.abspath(source)
    else:
        kind = "volume"
        if not _valid_volume_name(source):
            raise UserError(f"invalid volume name '{source}'",
                            hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]+, or an absolute path for a bind mount")
    return {"Type": kind, "Source": source, "Destination": os.path.normpath(destination),
            "RW": not readonly, "Mode": "ro" if readonly else "", "nocopy": "nocopy" in options}


def _valid_volume_name(name: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+", name))


def volume_list(value) -> list[dict]:
    """docker-py's ``volumes``: a list of -v strings, or a dict
    ``{source: {"bind": dst, "mode": "ro"}}``."""
    if not value:
        return []
    if isinstance(value, dict):
        specs = []
        for source, target in value.items():
            if isinstance(target, dict):
                mode = target.get("mode", "rw")
                specs.append(f"{source}:{target['bind']}:{mode}")
            else:
                specs.append(f"{source}:{target}")
        value = specs
    if isinstance(value, str):
        value = [value]
    return [parse_volume(v) for v in value]


def tmpfs_dict(value) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v or "") for k, v in value.items()}
    if isinstance(value, str):
        value = [value]
    result = {}
    for item in value:
        path, _, options = str(item).partition(":")
        if not path.startswith("/"):
            raise UserError(f"invalid tmpfs '{item}': the path must be absolute")
        result[path] = options
    return result


def healthcheck(value, image_check: dict | None) -> dict | None:
    """docker-py's ``healthcheck`` dict (test, interval, timeout, retries,
    start_period; durations in ns or docker strings) over the image's."""
    if value is None:
        return image_check or None
    check = dict(image_check or {})
    aliases = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "retries": "Retries",
               "start_period": "StartPeriod"}
    for key, val in value.items():
        field = aliases.get(key, key)
        if val is None:
            continue
        if field in ("Interval", "Timeout", "StartPeriod"):
            val = val if isinstance(val, int) and val > 1000 else int(parse_duration(val, key) * 1e9)
        if field == "Test" and isinstance(val, str):
            val = ["CMD-SHELL", val]
        check[field] = val
    if check.get("Test") in (["NONE"], "NONE"):
        return None
    return check or None


def build_record(container_id: str, name: str, image, command, options: dict, created: str) -> dict:
    """The container's config.json. ``image`` has ``id``, ``name`` and
    ``config`` (the OCI image config JSON)."""
    unknown = set(options) - KNOWN_OPTIONS
    if unknown:
        raise UserError(f"unknown container option(s): {', '.join(sorted(unknown))}")
    image_config = (image.config or {}).get("config") or {}

    entrypoint_opt = options.get("entrypoint")
    if entrypoint_opt is not None:
        entrypoint = as_list(entrypoint_opt, "entrypoint") if entrypoint_opt != "" else []
        cmd = as_list(command, "command")  # --entrypoint clears the image's Cmd
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = as_list(command, "command") if command not in (None, [], "") else list(image_config.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise UserError("no command specified", hint=f"the image {image.name} has no CMD or ENTRYPOINT: give a command")

    env = merge_env(image_config.get("Env") or [], env_list(options.get("environment") or options.get("env")))
    if not any(item.startswith("PATH=") for item in env):
        env.insert(0, f"PATH={DEFAULT_PATH}")

    working_dir = options.get("working_dir") or options.get("workdir") or image_config.get("WorkingDir") or "/"
    if not working_dir.startswith("/"):
        raise UserError(f"the working directory '{working_dir}' is invalid: it needs to be an absolute path")
    user = options.get("user")
    user = str(user) if user is not None else (image_config.get("User") or "")

    network = options.get("network") or options.get("network_mode") or "bridge"
    if network == "default":
        network = "bridge"

    exposed = dict(image_config.get("ExposedPorts") or {})
    for port in options.get("expose") or []:
        port = str(port)
        exposed[port if "/" in port else f"{port}/tcp"] = {}

    # Ranges and what the host can enforce are checked by cgroups.check().
    memory = options.get("mem_limit", options.get("memory"))
    memory = parse_size(memory, "--memory") if memory not in (None, "", 0) else 0
    swap = options.get("memswap_limit", options.get("memory_swap"))
    swap = parse_swap(swap) if swap not in (None, "", 0) else 0
    nano_cpus = options.get("nano_cpus") or (parse_cpus(options["cpus"]) if options.get("cpus") else 0)
    pids_limit = options.get("pids_limit")
    pids_limit = int(pids_limit) if pids_limit not in (None, "") else 0

    restart = restart_policy(options.get("restart_policy") or options.get("restart"))
    auto_remove = bool(options.get("auto_remove") or options.get("remove"))
    if auto_remove and restart["Name"] != "no":
        raise UserError("conflicting options: --restart and --rm", hint="use one or the other")

    security_opt = list(options.get("security_opt") or [])
    for opt in security_opt:
        key, sep, _ = opt.partition("=" if "=" in opt else ":")
        if key not in ("seccomp", "no-new-privileges", "apparmor", "label"):
            raise UserError(f"invalid --security-opt '{opt}'",
                            hint="supported: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]")

    ports = port_specs(options.get("ports"))
    mounts = volume_list(options.get("volumes"))
    seen = set()
    for mount in mounts:
        if mount["Destination"] in seen:
            raise UserError(f"duplicate mount point: {mount['Destination']}")
        seen.add(mount["Destination"])
    tmpfs = tmpfs_dict(options.get("tmpfs"))
    for path in tmpfs:
        if os.path.normpath(path) in seen:
            raise UserError(f"duplicate mount point: {path}")

    stop_signal = options.get("stop_signal") or image_config.get("StopSignal") or "SIGTERM"
    # docker: on the host's network the container takes the host's name.
    hostname = options.get("hostname") or (os.uname().nodename if network == "host" else container_id[:12])

    return {
        "Id": container_id,
        "Created": created,
        "Name": "/" + name,
        "Path": args[0],
        "Args": args[1:],
        "Image": image.id,
        "ImageName": image.name,
        "Driver": "overlay",
        "Platform": "linux",
        "RestartCount": 0,
        "Config": {
            "Hostname": hostname,
            "Domainname": options.get("domainname") or "",
            "User": user,
            "AttachStdin": bool(options.get("stdin_open")),
            "OpenStdin": bool(options.get("stdin_open")),
            "StdinOnce": bool(options.get("stdin_open")),
            "Tty": bool(options.get("tty")),
            "Env": env,
            "Cmd": cmd or None,
            "Entrypoint": entrypoint or None,
            "Image": getattr(image, "requested", None) or image.name,
            "WorkingDir": working_dir,
            "Labels": {**(image_config.get("Labels") or {}), **label_dict(options.get("labels"))},
            "StopSignal": str(stop_signal),
            "StopTimeout": options.get("stop_timeout"),
            "ExposedPorts": exposed,
            "Volumes": image_config.get("Volumes") or None,
            "Healthcheck": healthcheck(options.get("healthcheck"), image_config.get("Healthcheck")),
        },
        "HostConfig": {
            "Binds": [f"{m['Source']}:{m['Destination']}{':ro' if not m['RW'] else ''}"
                      for m in mounts if m["Source"]],
            "Tmpfs": tmpfs,
            "ReadonlyRootfs": bool(options.get("read_only")),
            "AutoRemove": auto_remove,
            "Init": bool(options.get("init")),
            "Memory": memory,
            "MemorySwap": swap,
            "NanoCpus": int(nano_cpus or 0),
            "CpuShares": int(options.get("cpu_shares") or 0),
            "PidsLimit": pids_limit,
            "ShmSize": parse_size(options["shm_size"], "--shm-size") if options.get("shm_size") else 64 << 20,
            "RestartPolicy": restart,
            "NetworkMode": network,
            "PortBindings": ports,
            "PublishAllPorts": bool(options.get("publish_all_ports")),
            "ExtraHosts": list(options.get("extra_hosts") or []),
            "Dns": list(options.get("dns") or []),
            "CapAdd": list(options.get("cap_add") or []) or None,
            "CapDrop": list(options.get("cap_drop") or []) or None,
            "Privileged": bool(options.get("privileged")),
            "SecurityOpt": security_opt or None,
            "GroupAdd": [str(g) for g in options.get("group_add") or []] or None,
        },
        "NetworkingConfig": {"EndpointsConfig": {network: {
            "Aliases": list(options.get("network_aliases") or []),
            "IPAMConfig": {"IPv4Address": options.get("ip") or ""},
        }}},
        "Mounts": mounts,
    }
