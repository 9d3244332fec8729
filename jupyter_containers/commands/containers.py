"""Container verbs: run, create, start, stop, kill, restart, pause, unpause,
rm, wait, ps, logs, exec, inspect, stats, cp, port, rename, export, prune."""

from __future__ import annotations

import argparse
import contextlib
import os

from .. import events
from ..errors import ContainersError, ContainerStartError, UserError
from . import format as fmt
from . import output_file, verb

# --- run / create -------------------------------------------------------------


def _append(p, *flags, **kwargs):
    p.add_argument(*flags, action="append", default=[], **kwargs)


def container_options(p) -> None:
    """The flags of ``run`` and ``create`` (docker's names)."""
    p.add_argument("--name", help="Assign a name to the container")
    _append(p, "-e", "--env", metavar="VAR[=VALUE]", help="Set environment variables")
    _append(p, "--env-file", metavar="FILE", help="Read in a file of environment variables")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-h", "--hostname", help="Container host name")
    p.add_argument("--domainname", help="Container NIS domain name")
    p.add_argument("--entrypoint", help="Overwrite the default ENTRYPOINT of the image")
    _append(p, "-v", "--volume", metavar="[SRC:]DST[:ro]", help="Bind mount a volume")
    _append(p, "--tmpfs", metavar="PATH[:OPTIONS]", help="Mount a tmpfs directory")
    p.add_argument("--mount-cwd", action="store_true",
                   help="Mount the current directory at /work and start there (short for -v .:/work -w /work)")
    p.add_argument("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    p.add_argument("--rm", action="store_true", help="Automatically remove the container when it exits")
    p.add_argument("--init", action="store_true", help="Run an init inside the container that forwards signals and reaps processes")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-m", "--memory", help="Memory limit (e.g. 512m)")
    p.add_argument("--memory-swap", help="Swap limit equal to memory plus swap: -1 for unlimited")
    p.add_argument("--cpus", help="Number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--pids-limit", type=int, help="Tune container pids limit (-1 for unlimited)")
    p.add_argument("--shm-size", help="Size of /dev/shm")
    p.add_argument("--restart", help="Restart policy: no, on-failure[:max-retries], always, unless-stopped")
    _append(p, "-l", "--label", metavar="KEY=VALUE", help="Set meta data on a container")
    p.add_argument("--network", "--net", help="Connect a container to a network (bridge, host, none or a name)")
    _append(p, "--network-alias", metavar="ALIAS", help="Add network-scoped alias for the container")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    _append(p, "-p", "--publish", metavar="[IP:][HOST:]CONTAINER[/PROTO]", help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    _append(p, "--expose", metavar="PORT", help="Expose a port or a range of ports")
    _append(p, "--add-host", metavar="HOST:IP", help="Add a custom host-to-IP mapping")
    _append(p, "--dns", metavar="IP", help="Set custom DNS servers")
    _append(p, "--cap-add", metavar="CAP", help="Add Linux capabilities")
    _append(p, "--cap-drop", metavar="CAP", help="Drop Linux capabilities")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to this container")
    _append(p, "--security-opt", metavar="OPT", help="Security options: seccomp=unconfined|PROFILE.json, no-new-privileges=false")
    _append(p, "--group-add", metavar="GROUP", help="Add additional groups to join")
    p.add_argument("--stop-signal", help="Signal to stop the container")
    p.add_argument("--stop-timeout", type=int, help="Timeout (in seconds) to stop a container")
    p.add_argument("--health-cmd", help="Command to run to check health")
    p.add_argument("--health-interval", help="Time between running the check (e.g. 30s)")
    p.add_argument("--health-timeout", help="Maximum time to allow one check to run")
    p.add_argument("--health-retries", type=int, help="Consecutive failures needed to report unhealthy")
    p.add_argument("--health-start-period", help="Start period for the container to initialize")
    p.add_argument("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable")
    p.add_argument("--pull", choices=("always", "missing", "never"), default="missing",
                   help="Pull image before running")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the pull output")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def environment_from_flags(env: list[str], env_files: list[str]) -> list[str]:
    """``-e VAR`` takes VAR from this process's environment (dropped when
    unset), as docker's CLI does; env files hold one VAR[=VALUE] a line."""
    items = []
    for path in env_files:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as error:
            raise UserError(f"cannot read env file {path}: {error.strerror}") from None
        items += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    items += env
    result = []
    for item in items:
        if "=" in item:
            result.append(item)
        elif item in os.environ:
            result.append(f"{item}={os.environ[item]}")
    return result


def create_options(args) -> dict:
    """Flags → ``client.containers.create`` keyword arguments."""
    options = {
        "name": args.name,
        "environment": environment_from_flags(args.env, args.env_file),
        "working_dir": args.workdir or ("/work" if args.mount_cwd else None),
        "user": args.user,
        "hostname": args.hostname,
        "domainname": args.domainname,
        "entrypoint": args.entrypoint,
        "volumes": args.volume + ([f"{os.getcwd()}:/work"] if args.mount_cwd else []),
        "tmpfs": args.tmpfs,
        "read_only": args.read_only,
        "auto_remove": args.rm,
        "init": args.init,
        "stdin_open": args.interactive,
        "tty": args.tty,
        "mem_limit": args.memory,
        "memswap_limit": args.memory_swap,
        "cpus": args.cpus,
        "cpu_shares": args.cpu_shares,
        "pids_limit": args.pids_limit,
        "shm_size": args.shm_size,
        "restart_policy": args.restart,
        "labels": args.label,
        "network": args.network,
        "network_aliases": args.network_alias,
        "ip": args.ip,
        "ports": args.publish,
        "publish_all_ports": args.publish_all,
        "expose": args.expose,
        "extra_hosts": args.add_host,
        "dns": args.dns,
        "cap_add": args.cap_add,
        "cap_drop": args.cap_drop,
        "privileged": args.privileged,
        "security_opt": args.security_opt,
        "group_add": args.group_add,
        "stop_signal": args.stop_signal,
        "stop_timeout": args.stop_timeout,
        "platform": args.platform,
    }
    if args.no_healthcheck:
        options["healthcheck"] = {"test": ["NONE"]}
    elif any(v is not None for v in (args.health_cmd, args.health_interval, args.health_timeout,
                                     args.health_retries, args.health_start_period)):
        options["healthcheck"] = {"test": ["CMD-SHELL", args.health_cmd] if args.health_cmd else None,
                                  "interval": args.health_interval, "timeout": args.health_timeout,
                                  "retries": args.health_retries, "start_period": args.health_start_period}
    return {k: v for k, v in options.items() if v not in (None, [], False)}


def _ensure_image(client, args, ui) -> None:
    """docker run pulls a missing image, showing its progress; its flags
    are checked before a pull (a typo must not cost a download), and by
    ``create`` in any case."""
    service = client.image_service
    pin = service.pinned(args.image)
    if pin is not None and not args.quiet:
        ui.print(f"{args.image}: using {pin.familiar} pinned by containers.lock")
    if args.pull == "never":
        return
    if args.pull == "missing" and service.exists(args.image, platform=args.platform):
        return
    client.runtime.check_options(create_options(args))
    progress = None if args.quiet else ui.progress(args.image, to_stderr=True)
    if args.pull == "missing" and progress is not None:
        progress(events.Progress("status", args.image, "missing",
                                 message=f"Unable to find image '{args.image}' locally"))
    service.pull(args.image, platform=args.platform, progress=progress)


@verb("create", "Create a new container", configure=container_options, also=[("container", "create")])
def create(client, args, ui):
    _ensure_image(client, args, ui)
    container = client.containers.create(args.image, args.command or None, pull="never", **create_options(args))
    _warn(client, ui)
    ui.print(container.id)
    return container


def _warn(client, ui) -> None:
    for warning in client.runtime.warnings:
        ui.warn(warning)
    client.runtime.warnings = []


def _run_args(p):
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="Proxy received signals to the process")
    container_options(p)


@verb("run", "Create and run a new container from an image", configure=_run_args, also=[("container", "run")])
def run(client, args, ui):
    try:
        return _run(client, args, ui)
    except ContainersError as error:
        # docker run exits 125 for every failure of its own; 126 and 127
        # say the container's command could not be run.
        if not isinstance(error, ContainerStartError):
            error.exit_code = 125
        raise


def _run(client, args, ui):
    _ensure_image(client, args, ui)
    options = create_options(args)
    container = client.containers.create(args.image, args.command or None, pull="never", **options)
    if args.detach:
        client.runtime.start(container.id)
        _warn(client, ui)
        container.reload()
        ui.detached(container)
        return container
    attachment = client.containers.start_attached(container)
    _warn(client, ui)
    code = ui.attach(attachment, stdin=args.interactive, tty=args.tty)
    return RunResult(container, code)


class RunResult:
    """What an attached ``run`` (or ``start -a``, ``exec``) returns: the
    container and its command's exit code (``int(result)``)."""

    def __init__(self, container, exit_code):
        self.container = container
        self.exit_code = exit_code

    def __int__(self):
        return int(self.exit_code or 0)

    def __repr__(self):
        return f"<exit code {self.exit_code} of {self.container.name}>"


# --- start, stop, kill, restart, pause, rm, wait, rename -----------------------------

def _targets(p, what="CONTAINER"):
    p.add_argument("containers", nargs="+", metavar=what)


def _each(client, ui, names, action):
    """docker's many-container verbs: act on each, report each, fail at
    the end if any failed."""
    failures = []
    done = []
    for name in names:
        try:
            result = action(name)
            ui.print(name)
            done.append(result)
        except ContainersError as error:
            failures.append(error)
            ui.warn(str(error)) if len(names) > 1 else None
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise type(failures[0])(f"{len(failures)} of {len(names)} failed; first: {failures[0]}")
    return done[0] if len(done) == 1 else done


def _start_args(p):
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    _targets(p)


@verb("start", "Start one or more stopped containers", configure=_start_args, also=[("container", "start")])
def start(client, args, ui):
    if args.attach:
        if len(args.containers) != 1:
            raise UserError("you cannot start and attach multiple containers at once")
        container = client.containers.get(args.containers[0])
        attachment = client.containers.start_attached(container)
        return RunResult(container, ui.attach(attachment, stdin=args.interactive, tty=container.attrs["Config"]["Tty"]))
    return _each(client, ui, args.containers, lambda n: client.runtime.start(n) or client.containers.get(n))


def _stop_args(p):
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing the container")
    p.add_argument("-s", "--signal", help="Signal to send to the container")
    _targets(p)


@verb("stop", "Stop one or more running containers", configure=_stop_args, also=[("container", "stop")])
def stop(client, args, ui):
    return _each(client, ui, args.containers, lambda n: client.runtime.stop(n, args.time, sig=args.signal))


def _kill_args(p):
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    _targets(p)


@verb("kill", "Kill one or more running containers", configure=_kill_args, also=[("container", "kill")])
def kill(client, args, ui):
    return _each(client, ui, args.containers, lambda n: client.runtime.kill(n, args.signal))


def _restart_args(p):
    p.add_argument("-t", "--time", "--timeout", type=int, dest="time", help="Seconds to wait before killing the container")
    _targets(p)


@verb("restart", "Restart one or more containers", configure=_restart_args, also=[("container", "restart")])
def restart(client, args, ui):
    return _each(client, ui, args.containers, lambda n: client.runtime.restart(n, args.time))


@verb("pause", "Pause all processes within one or more containers", configure=_targets, also=[("container", "pause")])
def pause(client, args, ui):
    return _each(client, ui, args.containers, client.runtime.pause)


@verb("unpause", "Unpause all processes within one or more containers", configure=_targets,
      also=[("container", "unpause")])
def unpause(client, args, ui):
    return _each(client, ui, args.containers, client.runtime.unpause)


def _rm_args(p):
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes associated with the container")
    _targets(p)


@verb("rm", "Remove one or more containers", configure=_rm_args,
      also=[("container", "rm"), ("container", "remove")])
def rm(client, args, ui):
    return _each(client, ui, args.containers,
                 lambda n: client.runtime.remove(n, force=args.force, volumes=args.volumes))


def _wait_args(p):
    ready = p.add_mutually_exclusive_group()
    ready.add_argument("--healthy", action="store_true",
                       help="Wait until the container's health check passes, instead of until it stops")
    ready.add_argument("--port", metavar="PORT[/tcp]",
                       help="Wait until the container's PORT accepts TCP connections, instead of until it stops")
    p.add_argument("--timeout", type=float, default=None,
                   help="Give up after this many seconds (default: 60 with --healthy/--port, else forever)")
    _targets(p)


@verb("wait", "Block until containers stop (print exit codes), are healthy (--healthy) or listen (--port)",
      configure=_wait_args, also=[("container", "wait")])
def wait(client, args, ui):
    if args.healthy or args.port:
        ready = []
        for name in args.containers:
            container = client.containers.get(name)
            if args.healthy:
                container.wait_healthy(timeout=args.timeout or 60)
                ui.print(f"{container.name}: healthy")
            else:
                host, port = container.wait_port(args.port, timeout=args.timeout or 60)
                ui.print(f"{container.name}: {args.port} accepts connections at {host}:{port}")
            ready.append(container)
        return ready[0] if len(ready) == 1 else ready
    codes = []
    for name in args.containers:
        code = client.runtime.wait(name)["StatusCode"]
        ui.print(str(code))
        codes.append(code)
    return codes[0] if len(codes) == 1 else codes


def _rename_args(p):
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")


@verb("rename", "Rename a container", configure=_rename_args, also=[("container", "rename")])
def rename(client, args, ui):
    client.runtime.rename(args.container, args.new_name)
    return client.containers.get(args.new_name)


# --- ps, inspect, logs, port -----------------------------------------------------

def _ps_args(p):
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    _append(p, "-f", "--filter", metavar="FILTER", help="Filter output based on conditions provided")
    p.add_argument("-n", "--last", type=int, default=-1, help="Show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container (includes all states)")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")


@verb("ps", "List containers", configure=_ps_args,
      also=[("container", "ls"), ("container", "ps"), ("container", "list")])
def ps(client, args, ui):
    limit = 1 if args.latest else args.last
    containers = client.containers.list(all=args.all or limit >= 0, filters=args.filter, limit=limit)
    if args.quiet:
        ui.lines(c.id if args.no_trunc else c.short_id for c in containers)
    else:
        headers, rows = fmt.containers_table(containers, no_trunc=args.no_trunc)
        ui.table(headers, rows, kind="containers", objects=containers)
    return containers


def _format_flag(p):
    p.add_argument("-f", "--format", help="Format the output using a Go template as docker's "
                   "('{{.State.Status}}', '{{json .Config}}') or a Python format string ('{State[Status]}')")


def _inspect_args(p):
    _format_flag(p)
    p.add_argument("--type", choices=("container", "image", "network", "volume"), help="Return JSON for specified type")
    p.add_argument("names", nargs="+", metavar="NAME|ID")


def inspect_objects(client, names, kind=None) -> list[dict]:
    """docker inspect: containers first, then images, networks, volumes."""
    finders = {
        "container": lambda n: client.runtime.inspect(n),
        "image": lambda n: client.image_service.inspect(n),
        "network": lambda n: client.network_manager.get(n).inspect(),
        "volume": lambda n: client.volumes.get(n).attrs,
    }
    result = []
    for name in names:
        for kind_name, finder in finders.items():
            if kind and kind != kind_name:
                continue
            try:
                result.append(finder(name))
                break
            except ContainersError as error:
                last = error
        else:
            from ..errors import NotFound

            raise NotFound(f"no such object: {name}") if not kind else last
    return result


@verb("inspect", "Return low-level information on containers, images, networks or volumes",
      configure=_inspect_args)
def inspect(client, args, ui):
    result = inspect_objects(client, args.names, args.type)
    _show_inspect(ui, result, args.format)
    return result[0] if len(result) == 1 else result


def _show_inspect(ui, result, template):
    if template:
        for item in result:
            try:
                ui.print(fmt.render_template(template, item))
            except (KeyError, IndexError, AttributeError) as error:
                raise UserError(f"template error in '{template}': no field {error}") from None
    else:
        ui.json(result)


def _kind_inspect(kind: str):
    """``container inspect``, ``image inspect``… : inspect restricted to one kind."""

    def configure(p):
        _format_flag(p)
        p.add_argument("names", nargs="+", metavar=kind.upper())

    def run(client, args, ui):
        result = inspect_objects(client, args.names, kind)
        _show_inspect(ui, result, args.format)
        return result[0] if len(result) == 1 else result

    verb("inspect", f"Display detailed information on one or more {kind}s", configure=configure,
         group=kind)(run)


for _kind in ("container", "image", "network", "volume"):
    _kind_inspect(_kind)


def report_prune(ui, title: str, deleted: list[str], reclaimed: int | None) -> None:
    """What docker prints after a prune."""
    if deleted:
        ui.print(f"Deleted {title}:")
        ui.lines(deleted)
        ui.print()
    if reclaimed is not None:
        ui.print(f"Total reclaimed space: {fmt.format_decimal(reclaimed)}")


def _logs_args(p):
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all", help="Number of lines to show from the end of the logs")
    p.add_argument("--since", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)")
    p.add_argument("--until", help="Show logs before a timestamp or relative time")
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("container", metavar="CONTAINER")


@verb("logs", "Fetch the logs of a container", configure=_logs_args, also=[("container", "logs")])
def logs(client, args, ui):
    container = client.containers.get(args.container)
    tail = args.tail
    if tail != "all":
        if not str(tail).lstrip("-").isdigit():
            raise UserError(f"invalid --tail '{tail}'", hint="give a number of lines or 'all'")
        tail = int(tail)
    # Shown in full: nothing is returned for a magic to display again.
    ui.logs(container, tail=tail, since=args.since, until=args.until, timestamps=args.timestamps,
            follow=args.follow)


def _port_args(p):
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


@verb("port", "List port mappings or a specific mapping for the container", configure=_port_args,
      also=[("container", "port")])
def port(client, args, ui):
    container = client.containers.get(args.container)
    ports = container.ports
    if args.private_port:
        key = args.private_port if "/" in args.private_port else f"{args.private_port}/tcp"
        bindings = ports.get(key)
        if not bindings:
            raise UserError(f"no public port '{key}' published for {container.name}")
        ui.lines(f"{b.get('HostIp') or '0.0.0.0'}:{b['HostPort']}" for b in bindings)
        return bindings
    for key, bindings in sorted(ports.items()):
        for binding in bindings or []:
            ui.print(f"{key} -> {binding.get('HostIp') or '0.0.0.0'}:{binding['HostPort']}")
    return ports


# --- exec -------------------------------------------------------------------------

def _exec_args(p):
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    _append(p, "-e", "--env", metavar="VAR[=VALUE]", help="Set environment variables")
    _append(p, "--env-file", metavar="FILE", help="Read in a file of environment variables")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to the command")
    p.add_argument("-u", "--user", help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", help="Working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


@verb("exec", "Execute a command in a running container", configure=_exec_args, also=[("container", "exec")])
def exec_(client, args, ui):
    if not args.command:
        raise UserError("exec needs a command", hint="e.g. exec CONTAINER sh -c 'echo hello'")
    container = client.containers.get(args.container)
    return RunResult(container, ui.exec(container, args.command,
                                        environment=environment_from_flags(args.env, args.env_file),
                                        user=args.user, workdir=args.workdir, tty=args.tty,
                                        interactive=args.interactive, privileged=args.privileged,
                                        detach=args.detach))


# --- stats, top -----------------------------------------------------------------

def _stats_args(p):
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")


@verb("stats", "Display a live stream of container(s) resource usage statistics", configure=_stats_args,
      also=[("container", "stats")])
def stats(client, args, ui):
    names = {}

    def current_ids():
        found = [client.containers.get(n) for n in args.containers] if args.containers else \
            client.containers.list(all=args.all)
        names.update({c.id: c.name for c in found})
        return [c.id for c in found]

    if args.no_stream:
        sample = client.runtime.stats(current_ids())
        ui.stats([sample], stream=False, names=names)
        return sample
    ui.stats(client.runtime.stats(current_ids, stream=True), stream=True, names=names)
    return None


def _top_args(p):
    p.add_argument("container", metavar="CONTAINER")


@verb("top", "Display the running processes of a container", configure=_top_args, also=[("container", "top")])
def top(client, args, ui):
    result = client.containers.get(args.container).top()
    ui.table(result["Titles"], result["Processes"])
    return result


# --- cp, export, prune ---------------------------------------------------------------

def _cp_args(p):
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("source", metavar="SRC_PATH")
    p.add_argument("destination", metavar="DEST_PATH")


def _split_container_path(text: str):
    """``name:/path`` → (name, /path); a local path → (None, path)."""
    if text.startswith((".", "/")) or ":" not in text:
        return None, text
    name, _, path = text.partition(":")
    return name, path


@verb("cp", "Copy files/folders between a container and the local filesystem", configure=_cp_args,
      also=[("container", "cp")])
def cp(client, args, ui):
    from ..containers import archive

    source_container, source_path = _split_container_path(args.source)
    dest_container, dest_path = _split_container_path(args.destination)
    if bool(source_container) == bool(dest_container):
        raise UserError("copying between containers or between local paths is not supported",
                        hint="one of SRC_PATH and DEST_PATH must be CONTAINER:PATH")
    if source_container:
        if dest_path == "-":
            target = ui.binary_output()
            for chunk in client.containers.get(source_container).get_archive(source_path)[0]:
                target.write(chunk)
            return None
        archive.copy_from(client.runtime, source_container, source_path, dest_path,
                          follow_link=args.follow_link)
    elif source_path == "-":
        # docker cp - CONTAINER:DIR extracts a tar read from stdin into DIR.
        archive.put_archive(client.runtime, dest_container, dest_path, ui.binary_input(), archive_mode=args.archive)
    else:
        archive.copy_to(client.runtime, dest_container, dest_path, source_path,
                        follow_link=args.follow_link, archive_mode=args.archive)
    return None


def _export_args(p):
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")


@verb("export", "Export a container's filesystem as a tar archive", configure=_export_args,
      also=[("container", "export")])
def export(client, args, ui):
    container = client.containers.get(args.container)
    with output_file(args.output) if args.output else contextlib.nullcontext(ui.binary_output()) as target:
        for chunk in container.export():
            target.write(chunk)
    return None


def _prune_args(p):
    _append(p, "--filter", metavar="FILTER", help="Provide filter values (e.g. 'label=<key>=<value>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


@verb("prune", "Remove all stopped containers", configure=_prune_args, group="container")
def container_prune(client, args, ui):
    result = client.containers.prune(filters=args.filter)
    report_prune(ui, "Containers", result["ContainersDeleted"], result["SpaceReclaimed"])
    return result
