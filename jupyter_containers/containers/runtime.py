"""The container runtime: create, start, stop, kill, wait, remove, pause…

Daemonless: every call works on the shared on-disk state under locks, and
each running container is kept by its own monitor process (jc-monitor), so a
container started here outlives this process and is managed the same way
from any other (a kernel, the Jupyter server, the CLI).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from pathlib import Path

from .. import storage
from ..errors import Conflict, ContainerNotFound, ContainersError, RuntimeFailure, UserError
from . import spec as specs
from .filters import labels_match
from .lifecycle import SPEC_FILE, timestamp
from .state import LIVE_STATUSES, STOP_REQUESTED, ContainerStore, initial_state



def signal_number(value) -> int:
    """``SIGTERM``, ``TERM``, ``15`` → 15."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(getattr(signal.Signals, text))
    except AttributeError:
        raise UserError(f"invalid signal: {value}", hint="use a name such as SIGTERM or KILL, or a number") from None


class Runtime:
    """Containers of one storage root."""

    def __init__(self, layout: storage.Layout, config=None, images=None):
        from .. import config as config_module

        self.layout = layout
        self.config = config if config is not None else config_module.get_config()
        self.settings = config_module.Runtime(config=self.config)
        self.store = ContainerStore(layout)
        self._images = images
        self._network = None
        #: What the last create/start had to say (docker prints these).
        self.warnings: list[str] = []

    @property
    def cgroup_parent(self) -> str:
        """Where this storage root's container cgroups live: one
        subdirectory per root below ``Runtime.cgroup_parent``, so sweeping
        one root's leftovers never touches another's containers."""
        return f"{self.settings.cgroup_parent}/{self.layout.run.name}"

    # --- collaborators, created on first use -----------------------------

    @property
    def images(self):
        if self._images is None:
            from ..images.service import ImageService

            self._images = ImageService(self.layout, config=self.config)
        return self._images

    @property
    def network(self):
        if self._network is None:
            from ..network.manager import NetworkManager

            from .. import config as config_module

            self._network = NetworkManager(self.layout, config_module.Network(config=self.config))
        return self._network

    # --- create ------------------------------------------------------------

    def create(self, image: str, command=None, **options) -> str:
        """Create a container from ``image`` (pulled if missing unless
        ``pull="never"``) and return its ID."""
        pull_policy = options.pop("pull", "missing")
        platform = options.get("platform")
        image_info = self.images.resolve_for_run(image, pull=pull_policy, platform=platform)
        from .volumes import VolumeStore

        volumes = VolumeStore(self.layout)
        container_id = None
        with self.store.index_lock():
            from .state import new_id

            container_id = new_id()
            name = self.store.reserve_name(options.pop("name", None), container_id)
            record = specs.build_record(container_id, name, image_info, command, options, timestamp())
            record["Snapshots"] = list(image_info.diff_ids)
            from . import cgroups

            self.warnings = cgroups.check(cgroup_limits(record), parent=self.cgroup_parent)
            directory = self.store.dir(container_id)
            try:
                directory.mkdir(parents=True, mode=0o700)
                # The overlay's root takes the upper directory's mode: 0755,
                # so a container's non-root users can reach "/".
                (directory / "upper").mkdir(mode=0o755)
                (directory / "upper").chmod(0o755)
                (directory / "work").mkdir(mode=0o700)
                self._prepare_volumes(record, image_info, volumes)
                self.store.write_state(container_id, initial_state())
                self.store.write_config(container_id, record)
            except BaseException:
                self.store.remove_files(container_id)
                raise
        return container_id

    def check_options(self, options: dict) -> None:
        """Refuse bad ``create`` options (one line) before anything is
        pulled or made: every option that does not depend on the image."""
        from . import cgroups

        class _AnyImage:  # what the options are checked against: no config
            id = name = requested = ""
            config = {}

        options = {k: v for k, v in options.items() if k not in ("pull", "platform")}
        record = specs.build_record("0" * 64, "check", _AnyImage, ["true"], options, "")
        cgroups.check(cgroup_limits(record), parent=self.cgroup_parent)

    def _prepare_volumes(self, record: dict, image_info, volumes) -> None:
        """Named volumes are created on first use; every image VOLUME not
        covered by a mount gets an anonymous volume, as in docker."""
        mounts = record["Mounts"]
        taken = {m["Destination"] for m in mounts} | set(record["HostConfig"]["Tmpfs"])
        for path in sorted((record["Config"].get("Volumes") or {})):
            path = os.path.normpath(path)
            if path not in taken:
                mounts.append({"Type": "volume", "Source": "", "Destination": path, "RW": True,
                               "Mode": "", "nocopy": False})
        for mount in mounts:
            if mount["Type"] == "volume":
                volume = volumes.ensure(mount["Source"] or None, anonymous=not mount["Source"],
                                        container_id=record["Id"])
                mount["Name"] = volume["Name"]
                mount["Source"] = volume["Mountpoint"]
                mount["Driver"] = "local"
            elif mount["Type"] == "bind":
                # docker -v creates a missing host directory (a file may be bound too).
                if not os.path.exists(mount["Source"]):
                    os.makedirs(mount["Source"])
            mount["Propagation"] = "rprivate" if mount["Type"] == "bind" else ""

    # --- start ---------------------------------------------------------------

    def start(self, name_or_id: str, *, attach: bool = False):
        """Start a created or exited container. With ``attach`` the
        container waits until the returned attach connection is open, so no
        output is missed; the caller reads it and the exit code from it."""
        from .monitor import wait_monitor

        container_id = self.store.resolve(name_or_id)
        if self.store.load_state(container_id)["Status"] in ("running", "restarting"):
            return None
        # The monitor of the previous run may still be finishing its exit
        # hook (which takes the container's lock): let it.
        if not wait_monitor(self.store.run_dir(container_id), timeout=30):
            raise RuntimeFailure(f"container {name_or_id} is still being stopped", hint="try again in a moment")
        with self.store.lock(container_id):
            state = self.store.load_state(container_id)
            if state["Status"] in ("running", "restarting"):
                return None
            if state["Status"] == "paused":
                raise Conflict(f"container {name_or_id} is paused", hint="unpause it instead")
            record = self.store.read_config(container_id)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.store.dir(container_id) / STOP_REQUESTED)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.store.dir(container_id) / "exit.json")
            try:
                start_spec, held_fds = self._start_spec(record, state)
                storage.write_atomic(self.store.dir(container_id) / SPEC_FILE,
                                     _marshal(start_spec), 0o600, durable=False)
                started = self._spawn(container_id, record, start_spec, attach=attach, held_fds=held_fds)
                return started.attach
            except BaseException as error:
                self._release(container_id, record)
                failed = dict(state)
                failed.update(Status="created" if state["Status"] == "created" else "exited",
                              Error=str(error) if isinstance(error, ContainersError) else repr(error),
                              ExitCode=getattr(error, "exit_code", 125) or 125)
                self.store.write_state(container_id, failed)
                failure = error
        if record["HostConfig"].get("AutoRemove"):
            # As docker's: --rm removes a container that failed to start too.
            with contextlib.suppress(ContainersError):
                self.remove(container_id, volumes=True)
        raise failure

    def _spawn(self, container_id: str, record: dict, start_spec: dict, *, attach: bool, held_fds):
        from .monitor import spawn_monitor

        run_dir = self.store.run_dir(container_id)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        config = record["Config"]
        check = start_spec.get("health")
        try:
            return spawn_monitor(
                container_id,
                state_dir=str(self.store.dir(container_id)),
                run_dir=str(run_dir),
                hook_argv=hook_argv(str(self.store.dir(container_id))),
                tty=bool(config.get("Tty")),
                stdin=bool(config.get("OpenStdin")),
                wait_attach=attach,
                log_max_size=self.settings.log_max_size,
                log_max_files=self.settings.log_max_files,
                hold_fds=[s.fileno() for s in held_fds],
                health_interval=check["Interval"] / 1e9 if check else None,
                oom_counter=self._oom_counter(container_id),
            )
        finally:
            for held in held_fds:
                held.close()  # the monitor holds them now

    def _start_spec(self, record: dict, state: dict) -> tuple[dict, list]:
        """Everything the start hook needs, precomputed (it reads it with
        marshal, in a fresh interpreter)."""
        container_id = record["Id"]
        directory = self.store.dir(container_id)
        config, host = record["Config"], record["HostConfig"]
        run_dir = self.store.run_dir(container_id)
        rootfs = run_dir / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True, mode=0o700)

        privileged = bool(host.get("Privileged"))
        cap_set, seccomp_path, no_new_privs = self.security(record)

        from ..network import hosts
        from .etc import resolv_conf

        network_mode = host.get("NetworkMode") or "bridge"
        held_fds: list = []
        etc = {"resolv.conf": resolv_conf(host.get("Dns") or [], host_network=network_mode == "host"),
               "hostname": config["Hostname"] + "\n"}
        if network_mode == "none":
            # The start hook makes a namespace with only lo: nothing to set up here.
            netns = "none"
            extra = hosts.parse_extra_hosts(host.get("ExtraHosts") or [])
            hosts.check_host_gateway(extra, None)
            etc["hosts"] = hosts.render([], [], extra)
        else:
            attached = self._attach_network(record)
            netns = attached.sandbox_key or "host"
            held_fds = list(attached.sockets)
            self.warnings.extend(attached.warnings)
        for filename, content in etc.items():
            path = directory / filename
            if not path.exists():
                storage.write_atomic(path, content.encode(), 0o644, durable=False)
            else:
                # The file may be bind-mounted in a running peer's view:
                # rewrite in place, never by rename.
                with open(path, "r+b") as handle:
                    handle.truncate(0)
                    handle.write(content.encode())

        mounts = []
        user_targets = {m["Destination"] for m in record["Mounts"]} | set(host.get("Tmpfs") or {})
        for filename, target in (("hosts", "/etc/hosts"), ("hostname", "/etc/hostname"),
                                 ("resolv.conf", "/etc/resolv.conf")):
            if target not in user_targets:
                mounts.append({"type": "bind", "source": str(directory / filename), "destination": target})
        for mount in sorted(record["Mounts"], key=lambda m: m["Destination"].count("/")):
            entry = {"type": "bind", "source": mount["Source"], "destination": mount["Destination"],
                     "readonly": not mount["RW"]}
            if mount["Type"] == "volume" and not mount.get("nocopy"):
                entry["copy_up_marker"] = str(Path(mount["Source"]).parent / "initialized")
            mounts.append(entry)
        for path, options in sorted((host.get("Tmpfs") or {}).items()):
            flags, data = _tmpfs_options(options)
            mounts.append({"type": "tmpfs", "destination": path, "flags": flags, "data": data})

        args = [record["Path"], *record["Args"]]
        if host.get("Init"):
            from .monitor import init_binary

            mounts.append({"type": "bind", "source": str(init_binary()), "destination": "/dev/init",
                           "readonly": True})
            args = ["/dev/init", "--", *args]

        from . import cgroups

        base_state = {k: state.get(k) for k in ("RestartCount",) if k in state}
        spec = {
            "id": container_id,
            "rootfs": str(rootfs),
            "snapshots_dir": str(self.layout.snapshots),
            "lowers": [f"{digest.split(':', 1)[-1]}/fs" for digest in reversed(record["Snapshots"])],
            "upper": str(directory / "upper"),
            "work": str(directory / "work"),
            "readonly_rootfs": bool(host.get("ReadonlyRootfs")),
            "namespaces": {"net": netns},
            "mounts": mounts,
            "hostname": config["Hostname"],
            "user": config.get("User") or "",
            "group_add": list(host.get("GroupAdd") or []),
            "env": list(config["Env"]),
            "cwd": config.get("WorkingDir") or "/",
            "args": args,
            "tty": bool(config.get("Tty")),
            "caps": sorted(cap_set),
            "privileged": privileged,
            "no_new_privs": no_new_privs,
            "seccomp": seccomp_path,
            "cgroup": cgroup_limits(record),
            "cgroup_parent": self.cgroup_parent,
            "cgroup_mounts": container_cgroup_mounts(cgroups.detect()),
            "shm_size": host.get("ShmSize") or (64 << 20),
            "sys_path": list(sys.path),
            "run_root": str(self.layout.run.parent),
            "network_settings": self._network_values() if network_mode != "none" else None,
            "state": base_state,
        }
        from . import health
        from .monitor import program_binary

        check = health.settings(config.get("Healthcheck"))
        if check is not None:
            spec["health"] = check
            spec["health_exec"] = {
                "id": container_id, "env": list(config["Env"]), "user": config.get("User") or "",
                "group_add": spec["group_add"], "cwd": spec["cwd"], "tty": False, "caps": spec["caps"],
                "no_new_privs": no_new_privs, "seccomp": seccomp_path, "cgroup": True,
                "cgroup_parent": self.cgroup_parent,
                "host_network": network_mode == "host", "detach": False,
                "binary": str(program_binary("jc-exec")),
            }
        return spec, held_fds

    def _oom_counter(self, container_id: str) -> str | None:
        """The cgroup file counting the container's OOM kills, for its
        monitor to read the moment the container ends."""
        from . import cgroups

        return cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).oom_counter()

    def security(self, record: dict, *, privileged: bool = False) -> tuple[set, str | None, bool]:
        """(capabilities, compiled seccomp filter path or None, no_new_privs)
        for the container — or for an exec in it with ``privileged``."""
        from ..linux import caps as capabilities

        host = record["HostConfig"]
        privileged = privileged or bool(host.get("Privileged"))
        cap_set = capabilities.resolve(host.get("CapAdd") or [], host.get("CapDrop") or [], privileged)
        options = _security_options(host.get("SecurityOpt") or [])
        from ..linux import seccomp

        profile = options["seccomp"] or self.settings.seccomp_profile or None
        seccomp_path = seccomp.prepare(profile, cap_set, self.layout, privileged=bool(host.get("Privileged")))
        return cap_set, seccomp_path, options["no_new_privileges"]

    def _network_values(self) -> dict:
        """The network configuration as plain values (for the exit hook)."""
        settings = self.network.settings
        return {name: getattr(settings, name) for name in settings.trait_names(config=True)}

    def _attach_network(self, record: dict):
        """The container's networks, set up before it starts (the network
        manager writes its /etc/hosts)."""
        from ..network.ports import exposed_port_specs

        if self.network.attached(record["Id"]):
            # Left attached by a run that ended without its exit hook (a
            # reboot, a killed monitor): its processes are gone.
            self.network.detach(record["Id"])
        host = record["HostConfig"]
        endpoints = (record.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        mode = host.get("NetworkMode") or "bridge"
        networks = []
        for name in [mode] + [n for n in endpoints if n != mode]:
            endpoint = endpoints.get(name) or {}
            networks.append({"name": name, "aliases": list(endpoint.get("Aliases") or []),
                             "ip": ((endpoint.get("IPAMConfig") or {}).get("IPv4Address")) or None})
        ports = list(host.get("PortBindings") or [])
        if host.get("PublishAllPorts"):
            ports += exposed_port_specs(record["Config"].get("ExposedPorts") or {})
        return self.network.attach(record["Id"], record["Name"].lstrip("/"), networks=networks, ports=ports,
                                   extra_hosts=host.get("ExtraHosts") or [], hostname=record["Config"]["Hostname"])

    # --- inspect, list ------------------------------------------------------

    def inspect(self, name_or_id: str) -> dict:
        """docker's ``inspect`` of a container."""
        return self._attrs(self.store.resolve(name_or_id))

    def _attrs(self, container_id: str, state: dict | None = None) -> dict:
        record = self.store.read_config(container_id)
        state = self.store.load_state(container_id) if state is None else state
        from . import health

        if health.settings(record["Config"].get("Healthcheck")) is not None:
            state["Health"] = health.current(self.store.dir(container_id), state)
        record["State"] = state
        record["RestartCount"] = state.get("RestartCount", 0)
        record["NetworkSettings"] = self._network_settings(record, state)
        directory = self.store.dir(container_id)
        record["LogPath"] = str(directory / "ctr.log")
        record["HostnamePath"] = str(directory / "hostname")
        record["HostsPath"] = str(directory / "hosts")
        record["ResolvConfPath"] = str(directory / "resolv.conf")
        record["GraphDriver"] = {"Name": "overlay", "Data": {
            "LowerDir": ":".join(str(self.layout.snapshots / d.split(":", 1)[-1] / "fs")
                                 for d in reversed(record.get("Snapshots", []))),
            "UpperDir": str(directory / "upper"), "WorkDir": str(directory / "work")}}
        return record

    def _network_settings(self, record: dict, state: dict) -> dict:
        """docker's NetworkSettings: live while the container runs; exposed
        ports show as unpublished (None)."""
        mode = record["HostConfig"].get("NetworkMode") or "bridge"
        settings = {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": "", "MacAddress": "", "SandboxKey": ""}
        if state["Status"] in LIVE_STATUSES and mode != "none":
            attached = self.network.network_settings(record["Id"])
            if attached is not None:
                settings = attached.inspect()
        elif mode == "none":
            settings["Networks"] = {"none": {"IPAddress": "", "Gateway": "", "MacAddress": ""}}
        ports = dict(settings.get("Ports") or {})
        for port in record["Config"].get("ExposedPorts") or {}:
            ports.setdefault(port, None)
        settings["Ports"] = ports
        return settings

    def list(self, *, all: bool = False, filters=None, limit: int | None = None) -> list[dict]:
        """``ps``: newest first, running only unless ``all``."""
        from .filters import container_matches, parse_filters

        filters = parse_filters(filters)
        live_only = not all and not filters.get("status")
        result = []
        for container_id in self.store.ids():
            try:
                # The state first: a stopped container is skipped before
                # its inspect document is built.
                state = self.store.load_state(container_id)
                if live_only and state["Status"] not in LIVE_STATUSES:
                    continue
                result.append(self._attrs(container_id, state))
            except ContainerNotFound:
                continue  # removed meanwhile
        if filters:
            by_name = {a["Name"].lstrip("/"): a for a in result}

            def resolve(value):
                if value in by_name:
                    return by_name[value]
                try:
                    return self._attrs(self.store.resolve(value))
                except ContainersError:
                    return None

            result = [a for a in result if container_matches(a, filters, resolve_container=resolve,
                                                             image_matches=self._image_matches)]
        result.sort(key=lambda a: a["Created"], reverse=True)
        if limit is not None and limit >= 0:
            result = result[:limit]
        return result

    def stats(self, names_or_ids, *, stream: bool = False, interval: float = 1.0):
        """docker stats' figures: a list of ``stats.ContainerStats`` (one
        sample over a quarter second for all of them together), or with
        ``stream`` an iterator of such lists. ``names_or_ids`` may be a
        callable returning the ids to follow."""
        from . import stats

        if callable(names_or_ids):
            ids = names_or_ids
        else:
            ids = [self.store.resolve(n) for n in names_or_ids]
        def network(container_id):
            counters = self.network.interface_counters(container_id)
            return counters["rx_bytes"], counters["tx_bytes"]

        if not stream:
            return stats.one_shot(ids, network=network, parent=self.cgroup_parent)
        return stats.stream(ids, interval=interval, network=network, parent=self.cgroup_parent)

    def top(self, name_or_id: str) -> dict:
        """docker top: the container's processes, as ps -ef shows them."""
        from . import cgroups

        container_id = self.store.resolve(name_or_id)
        if self.store.load_state(container_id)["Status"] not in ("running", "paused"):
            raise Conflict(f"container {name_or_id} is not running")
        rows = []
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in sorted(cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).pids()):
            try:
                with open(f"/proc/{pid}/stat", "rb") as handle:
                    stat = handle.read()
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                uid = os.stat(f"/proc/{pid}").st_uid
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = stat[stat.rindex(b")") + 2:].split()
            comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode("utf-8", "replace")
            cpu_seconds = (int(fields[11]) + int(fields[12])) // ticks
            rows.append([str(uid), str(pid), fields[1].decode(), "0", "", "?",
                         time.strftime("%H:%M:%S", time.gmtime(cpu_seconds)), cmdline or f"[{comm}]"])
        return {"Titles": ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], "Processes": rows}

    def _image_matches(self, attrs: dict, value: str) -> bool:
        if value in (attrs.get("ImageName"), attrs.get("Image"), attrs["Config"].get("Image")):
            return True
        try:
            return self.images.get(value).id == attrs.get("Image")
        except ContainersError:
            return False

    # --- stop, kill, wait ------------------------------------------------------

    def stop_timeout_of(self, record: dict) -> float:
        """docker stop's grace period for a container: its --stop-timeout,
        else the runtime's default (``Runtime.stop_timeout``)."""
        timeout = (record.get("Config") or {}).get("StopTimeout")
        return self.settings.stop_timeout if timeout is None else timeout

    def _live_state(self, container_id: str) -> dict:
        return self.store.load_state(container_id)

    def kill(self, name_or_id: str, sig="SIGKILL") -> None:
        container_id = self.store.resolve(name_or_id)
        number = signal_number(sig)
        state = self._live_state(container_id)
        if state["Status"] not in LIVE_STATUSES:
            raise Conflict(f"container {name_or_id} is not running", hint="start it first")
        if number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self._mark_stop_requested(container_id)
        self._signal(container_id, state, number)
        if number == signal.SIGKILL:
            # Nothing survives SIGKILL: return once the exit is recorded, so
            # a `rm` right after a `kill` finds the container stopped.
            self._wait_process(state, 10)
            self._wait_settled(container_id, 10)

    def _mark_stop_requested(self, container_id: str) -> None:
        storage.write_atomic(self.store.dir(container_id) / STOP_REQUESTED, b"", durable=False)

    def _signal(self, container_id: str, state: dict, number: int) -> None:
        pid = state.get("Pid")
        if not pid:
            return
        if state["Status"] == "paused" and number == signal.SIGKILL:
            self._thaw_quietly(container_id)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    def _thaw_quietly(self, container_id: str) -> None:
        from . import cgroups

        with contextlib.suppress(Exception):
            cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).thaw()

    def stop(self, name_or_id: str, timeout: float | None = None, sig=None) -> None:
        """The stop signal, then SIGKILL after ``timeout`` seconds (docker's -t)."""
        container_id = self.store.resolve(name_or_id)
        record = self.store.read_config(container_id)
        state = self._live_state(container_id)
        if state["Status"] not in LIVE_STATUSES:
            return
        if timeout is None:
            timeout = self.stop_timeout_of(record)
        self._mark_stop_requested(container_id)
        if state["Status"] == "paused":
            self._thaw_quietly(container_id)
        number = signal_number(sig or record["Config"].get("StopSignal") or "SIGTERM")
        self._signal(container_id, state, number)
        if not self._wait_process(state, timeout):
            self._signal(container_id, dict(state, Status="running"), signal.SIGKILL)
            self._wait_process(state, 10)
        self._wait_settled(container_id, 10)

    def _wait_process(self, state: dict, timeout: float) -> bool:
        """Wait for the container's first process to end; True if it did."""
        return _wait_pid_exit(state.get("Pid"), state.get("PidStartTicks"), timeout)

    def _wait_settled(self, container_id: str, timeout: float) -> dict:
        """Wait until the monitor has recorded the exit (state no longer live)."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                state = self.store.load_state(container_id)
            except ContainerNotFound:
                return {"Status": "removed"}
            raw = storage.read_json(self.store.dir(container_id) / "state.json", default={}) or {}
            if state["Status"] not in ("running", "paused") and raw.get("Status") != "running":
                return state
            if time.monotonic() > deadline:
                return state
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def wait(self, name_or_id: str, timeout: float | None = None, condition: str = "not-running") -> dict:
        """Block until the container stops; return ``{"StatusCode": N,
        "Error": …}`` as docker-py does."""
        container_id = self.store.resolve(name_or_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.store.load_state(container_id)
            if condition == "next-exit" or state["Status"] in LIVE_STATUSES:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                if state.get("Pid") and not _wait_pid_exit(state["Pid"], state.get("PidStartTicks"), remaining):
                    raise TimeoutError(f"container {name_or_id} is still running after {timeout}s")
                condition = "not-running"
                if state["Status"] == "restarting":
                    time.sleep(0.05)
                    continue
                settled = self._wait_settled(container_id, 10 if deadline is None else max(0.1, deadline - time.monotonic()))
                if settled["Status"] in ("running", "restarting") and settled.get("Pid") != state.get("Pid"):
                    # Restarted by its policy: docker's wait returns on this exit.
                    return {"StatusCode": settled.get("ExitCode", 0), "Error": None}
                state = settled
            if state["Status"] == "removed":
                return {"StatusCode": 0, "Error": None}
            return {"StatusCode": state.get("ExitCode", 0), "Error": {"Message": state["Error"]} if state.get("Error") else None}

    # --- pause -------------------------------------------------------------------

    def pause(self, name_or_id: str) -> None:
        from . import cgroups

        container_id = self.store.resolve(name_or_id)
        with self.store.lock(container_id):
            state = self.store.load_state(container_id)
            if state["Status"] == "paused":
                raise Conflict(f"container {name_or_id} is already paused")
            if state["Status"] != "running":
                raise Conflict(f"container {name_or_id} is not running")
            cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).freeze()
            state.update(Status="paused", Paused=True)
            self.store.write_state(container_id, state)

    def unpause(self, name_or_id: str) -> None:
        from . import cgroups

        container_id = self.store.resolve(name_or_id)
        with self.store.lock(container_id):
            state = self.store.load_state(container_id)
            if state["Status"] != "paused":
                raise Conflict(f"container {name_or_id} is not paused")
            cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).thaw()
            state.update(Status="running", Paused=False)
            self.store.write_state(container_id, state)

    def restart(self, name_or_id: str, timeout: float | None = None) -> None:
        self.stop(name_or_id, timeout)
        self.start(name_or_id)

    # --- remove, rename, prune ---------------------------------------------------

    def remove(self, name_or_id: str, *, force: bool = False, volumes: bool = False) -> None:
        container_id = self.store.resolve(name_or_id)
        while True:
            state = self.store.load_state(container_id)
            if state["Status"] in LIVE_STATUSES:
                if not force:
                    raise Conflict(f"you cannot remove a {state['Status']} container {container_id[:12]}",
                                   hint="stop the container before attempting removal or force remove (-f)")
                self._mark_stop_requested(container_id)
                self._signal(container_id, state, signal.SIGKILL)
                self._wait_process(state, 10)
            self._wait_monitor_gone(container_id, state)
            with self.store.index_lock(), self.store.lock(container_id):
                try:
                    record = self.store.read_config(container_id)
                except ContainerNotFound:
                    return
                if self.store.load_state(container_id)["Status"] in LIVE_STATUSES:
                    continue  # another process started it meanwhile (it held the lock)
                self._release(container_id, record)
                if volumes:
                    from .volumes import VolumeStore

                    VolumeStore(self.layout).remove_anonymous(record)
                self.store.remove_files(container_id)
                return

    def _wait_monitor_gone(self, container_id: str, state: dict, timeout: float = 10) -> None:
        monitor = state.get("MonitorPid")
        if not monitor:
            raw = storage.read_json(self.store.dir(container_id) / "state.json", default={}) or {}
            monitor = raw.get("MonitorPid")
        pid_file = self.store.run_dir(container_id) / "monitor.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            monitor = int(pid_file.read_text().split()[0])
        if monitor and not _wait_pid_exit(monitor, None, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(monitor, signal.SIGKILL)
            _wait_pid_exit(monitor, None, 2)

    def _release(self, container_id: str, record: dict) -> None:
        """Give back what a started container holds: cgroup, network,
        runtime directory. Idempotent; safe when nothing was taken."""
        from . import cgroups

        with contextlib.suppress(FileNotFoundError):
            cgroups.Cgroup.open(container_id, parent=self.cgroup_parent).remove()
        if (record.get("HostConfig") or {}).get("NetworkMode") not in ("none", None):
            self.network.detach(container_id)
        run_dir = self.store.run_dir(container_id)
        with contextlib.suppress(OSError):
            os.rmdir(run_dir / "rootfs")

    def rename(self, name_or_id: str, new_name: str) -> None:
        container_id = self.store.resolve(name_or_id)
        with self.store.index_lock():
            name = self.store.reserve_name(new_name, container_id)
            record = self.store.read_config(container_id)
            record["Name"] = "/" + name
            self.store.write_config(container_id, record)
        if (record["HostConfig"].get("NetworkMode") or "bridge") != "none":
            self.network.rename(container_id, name)

    def connect(self, name_or_id: str, network: str, *, aliases=(), ip: str | None = None) -> None:
        """``network connect``: now if the container runs, and at every
        start from now on."""
        container_id = self.store.resolve(name_or_id)
        self.network.get(network)  # a clear error for an unknown network
        with self.store.lock(container_id):
            record = self.store.read_config(container_id)
            if record["HostConfig"].get("NetworkMode") in ("none", "host"):
                raise Conflict(f"container {name_or_id} uses the {record['HostConfig']['NetworkMode']} network",
                               hint="it cannot join other networks")
            endpoints = record.setdefault("NetworkingConfig", {}).setdefault("EndpointsConfig", {})
            if network in endpoints or record["HostConfig"].get("NetworkMode") == network:
                raise Conflict(f"container {name_or_id} is already connected to network {network}")
            if self.store.load_state(container_id)["Status"] in ("running", "paused"):
                self.network.connect(container_id, network, aliases=list(aliases), ip=ip)
            endpoints[network] = {"Aliases": list(aliases), "IPAMConfig": {"IPv4Address": ip or ""}}
            self.store.write_config(container_id, record)

    def disconnect(self, name_or_id: str, network: str) -> None:
        container_id = self.store.resolve(name_or_id)
        with self.store.lock(container_id):
            record = self.store.read_config(container_id)
            endpoints = (record.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
            if network not in endpoints and record["HostConfig"].get("NetworkMode") != network:
                raise Conflict(f"container {name_or_id} is not connected to network {network}")
            if self.store.load_state(container_id)["Status"] in ("running", "paused"):
                self.network.disconnect(container_id, network)
            endpoints.pop(network, None)
            if record["HostConfig"].get("NetworkMode") == network:
                remaining = [n for n in endpoints]
                record["HostConfig"]["NetworkMode"] = remaining[0] if remaining else "none"
            self.store.write_config(container_id, record)

    def prune(self, filters: dict | None = None) -> dict:
        """Remove every stopped container; sweep leftovers of crashed ones."""
        deleted, reclaimed = [], 0
        for container_id in self.store.ids():
            try:
                state = self.store.load_state(container_id)
                record = self.store.read_config(container_id)
            except ContainerNotFound:
                continue
            if state["Status"] in LIVE_STATUSES:
                continue
            if filters and not labels_match(record.get("Config", {}).get("Labels") or {}, filters.get("label") or []):
                continue
            reclaimed += storage.tree_size(self.store.dir(container_id) / "upper")
            with contextlib.suppress(ContainerNotFound, Conflict):  # Conflict: started meanwhile
                self.remove(container_id)
                deleted.append(container_id)
        self.sweep()
        return {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}

    def sweep(self) -> None:
        """Remove cgroups, network namespaces and runtime directories whose
        container no longer exists (left by a crash)."""
        import shutil

        from . import cgroups

        with self.store.index_lock():
            # Read under the lock: a record is written (under it) before its
            # container's cgroup, namespace or run directory is made.
            existing = set(self.store.ids())
            cgroups.sweep(existing, parent=self.cgroup_parent)
            self.store.remove_debris()
        with contextlib.ExitStack() as held:
            # The network of a container that ended without its exit hook
            # goes; one that another process is starting (it holds the
            # container's lock and is not "running" yet) or has created since
            # stays. The ended ones stay locked until the sweep is done.
            ended = set()
            for container_id in existing & set(self.store.ids()):  # not one removed since
                lock = self.store.lock(container_id, blocking=False)
                if self.store.load_state(container_id)["Status"] not in LIVE_STATUSES and lock.acquire():
                    held.callback(lock.release)
                    ended.add(container_id)
            self.network.sweep(lambda container_id: container_id not in ended
                               and (self.store.dir(container_id) / "config.json").exists())
        try:
            entries = os.listdir(self.layout.run)
        except FileNotFoundError:
            return
        existing = set(self.store.ids())  # listed after the entries, so a new container's is there
        for entry in entries:
            if len(entry) == 64 and entry not in existing:
                shutil.rmtree(self.layout.run / entry, ignore_errors=True)


# --- helpers -------------------------------------------------------------------

def hook_argv(state_dir: str) -> list[str]:
    from .lifecycle import hook_script

    return [*hook_script(), state_dir]


def _marshal(value) -> bytes:
    import marshal

    return marshal.dumps(value)


def cgroup_limits(record: dict) -> dict:
    """The HostConfig keys cgroups.create() takes."""
    host = record["HostConfig"]
    keys = ("Memory", "MemorySwap", "NanoCpus", "CpuShares", "PidsLimit", "CpusetCpus", "BlkioWeight", "Privileged")
    return {key: host[key] for key in keys if host.get(key)}


def container_cgroup_mounts(hierarchies) -> list[tuple]:
    """What the container sees under /sys/fs/cgroup (its own cgroups, by
    its cgroup namespace): each v1 hierarchy, or the cgroup2 one."""
    if not hierarchies.v1:
        return [("cgroup2", None, "")] if hierarchies.unified else []
    by_mount: dict[str, list[str]] = {}
    for controller, mount in sorted(hierarchies.v1.items()):
        by_mount.setdefault(mount, []).append(controller)
    return [("cgroup", ",".join(controllers), os.path.basename(mount)) for mount, controllers in sorted(by_mount.items())]


def _security_options(options: list[str]) -> dict:
    result = {"seccomp": None, "no_new_privileges": True}
    for option in options:
        key, _, value = option.partition("=" if "=" in option else ":")
        if key == "seccomp":
            result["seccomp"] = value or None
        elif key == "no-new-privileges":
            result["no_new_privileges"] = value.lower() not in ("false", "0", "no")
    return result


def _tmpfs_options(options: str) -> tuple[int, str]:
    from ..linux import syscalls as sc

    flags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    data = []
    toggles = {"ro": (sc.MS_RDONLY, True), "rw": (sc.MS_RDONLY, False),
               "exec": (sc.MS_NOEXEC, False), "noexec": (sc.MS_NOEXEC, True),
               "suid": (sc.MS_NOSUID, False), "nosuid": (sc.MS_NOSUID, True),
               "dev": (sc.MS_NODEV, False), "nodev": (sc.MS_NODEV, True)}
    for option in filter(None, (o.strip() for o in options.split(","))):
        if option in toggles:
            bit, on = toggles[option]
            flags = flags | bit if on else flags & ~bit
        elif option.split("=")[0] in ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"):
            data.append(option)
        else:
            raise UserError(f"invalid tmpfs option '{option}'",
                            hint="use size=, mode=, uid=, gid=, ro, exec, suid, dev")
    return flags, ",".join(data)


def _wait_pid_exit(pid, start_ticks, timeout) -> bool:
    """Wait for a process (not our child) to end, with a pidfd. True when it
    has ended (or never existed)."""
    if not pid:
        return True
    from ..linux import syscalls as sc
    from .lifecycle import process_start_ticks

    try:
        fd = sc.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if start_ticks is not None:
            try:
                if process_start_ticks(pid) != start_ticks:
                    return True
            except (FileNotFoundError, ValueError):
                return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))
    finally:
        os.close(fd)

