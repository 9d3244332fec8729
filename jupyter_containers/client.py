"""The one Python API every frontend calls, shaped like docker-py::

    from jupyter_containers import Client

    client = Client()
    client.images.pull("busybox")
    print(client.containers.run("busybox", "echo hello"))       # b'hello\\n'
    db = client.containers.run("mysql", detach=True, name="some-mysql",
                               environment={"MYSQL_ROOT_PASSWORD": "my-secret-pw"},
                               ports={"3306/tcp": 3306})
    db.logs(tail=10); db.stop(); db.remove()

Objects (``Container``, ``Image``, ``Network``, ``Volume``) keep docker's
inspect dict in ``attrs`` and have rich HTML reprs for notebooks.
"""

from __future__ import annotations

import html
import os
from typing import Iterator

from . import config as config_module
from .errors import ContainerError
from .storage import Layout


class Client:
    """Images, containers, networks and volumes of one storage root."""

    def __init__(self, root=None, *, config=None, run_root=None):
        self.config = config if config is not None else config_module.get_config()
        self.layout = Layout(root if root is not None else config_module.storage_root(self.config),
                             run_root if run_root is not None else config_module.run_root(self.config)).ensure()
        self._image_service = None
        self._runtime = None
        self._network_manager = None
        self.images = ImageCollection(self)
        self.containers = ContainerCollection(self)
        self.networks = NetworkCollection(self)
        self.volumes = VolumeCollection(self)

    @classmethod
    def from_env(cls, **kwargs) -> "Client":
        """docker-py's name for the default client."""
        return cls(**kwargs)

    # --- services below the API, created on first use -------------------------

    @property
    def image_service(self):
        if self._image_service is None:
            from .images.service import ImageService

            self._image_service = ImageService(self.layout, config=self.config)
        return self._image_service

    @property
    def runtime(self):
        if self._runtime is None:
            from .containers.runtime import Runtime

            self._runtime = Runtime(self.layout, config=self.config, images=self.image_service)
        return self._runtime

    @property
    def network_manager(self):
        return self.runtime.network

    def login(self, registry: str, username: str, password: str) -> dict:
        return self.image_service.login(registry, username, password)

    def logout(self, registry: str) -> None:
        self.image_service.logout(registry)

    def close(self) -> None:
        """Nothing to release: there is no daemon connection."""

    def __repr__(self) -> str:
        return f"<Client root={str(self.layout.root)!r}>"


class Model:
    """A client object holding docker's inspect dict in ``attrs``."""

    def __init__(self, attrs: dict, client: Client):
        self.attrs = attrs
        self.client = client

    @property
    def id(self) -> str:
        return self.attrs.get("Id", "")

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]

    def __eq__(self, other) -> bool:
        return isinstance(other, type(self)) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


# --- containers -------------------------------------------------------------------

class Container(Model):
    @property
    def name(self) -> str:
        return self.attrs.get("Name", "").lstrip("/")

    @property
    def status(self) -> str:
        return self.attrs["State"]["Status"]

    @property
    def labels(self) -> dict:
        return self.attrs["Config"].get("Labels") or {}

    @property
    def image_name(self) -> str:
        return self.attrs["Config"].get("Image") or self.attrs.get("ImageName", "")

    @property
    def image(self) -> "Image":
        return self.client.images.get(self.attrs["Image"])

    @property
    def ports(self) -> dict:
        return (self.attrs.get("NetworkSettings") or {}).get("Ports") or {}

    @property
    def health(self) -> str:
        return ((self.attrs["State"].get("Health") or {}).get("Status")) or "unknown"

    @property
    def exit_code(self) -> int:
        return self.attrs["State"].get("ExitCode", 0)

    def reload(self) -> "Container":
        self.attrs = self.client.runtime.inspect(self.id)
        return self

    def start(self) -> None:
        self.client.runtime.start(self.id)
        self.reload()

    def stop(self, timeout: float | None = None) -> None:
        self.client.runtime.stop(self.id, timeout)
        self._reload_if_present()

    def kill(self, signal="SIGKILL") -> None:
        self.client.runtime.kill(self.id, signal)
        self._reload_if_present()

    def restart(self, timeout: float | None = None) -> None:
        self.client.runtime.restart(self.id, timeout)
        self.reload()

    def pause(self) -> None:
        self.client.runtime.pause(self.id)
        self.reload()

    def unpause(self) -> None:
        self.client.runtime.unpause(self.id)
        self.reload()

    def remove(self, force: bool = False, v: bool = False) -> None:
        self.client.runtime.remove(self.id, force=force, volumes=v)

    def rename(self, name: str) -> None:
        self.client.runtime.rename(self.id, name)
        self.reload()

    def wait(self, timeout: float | None = None, condition: str = "not-running") -> dict:
        return self.client.runtime.wait(self.id, timeout, condition)

    def wait_healthy(self, timeout: float = 60.0) -> dict:
        """Block until the health check passes; raise NotReady (one line)
        if it turns unhealthy, the container ends, or ``timeout`` passes."""
        from .containers.health import wait_healthy

        health = wait_healthy(self.client.runtime, self.id, timeout=timeout)
        self.reload()
        return health

    def wait_port(self, port, timeout: float = 60.0) -> tuple[str, int]:
        """Block until a TCP connection to the container's ``port``
        succeeds; returns the host address and port that reached it."""
        from .containers.health import wait_port

        return wait_port(self.client.runtime, self.id, port, timeout=timeout)

    def _reload_if_present(self) -> None:
        from .errors import ContainerNotFound

        try:
            self.reload()
        except ContainerNotFound:
            self.attrs["State"] = dict(self.attrs.get("State", {}), Status="removed", Running=False)

    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False, timestamps: bool = False,
             tail="all", since=None, until=None, follow: bool | None = None):
        """The container's output: bytes, or with ``stream`` an iterator of
        byte chunks (``follow`` defaults to ``stream``, as in docker-py)."""
        from .containers.logs import read_logs

        if follow is None:
            follow = stream
        runtime = self.client.runtime
        chunks = read_logs(runtime.store.dir(self.id), stdout=stdout, stderr=stderr,
                           tail=None if tail in ("all", None, -1) else int(tail), since=since, until=until,
                           timestamps=timestamps, follow=follow, is_running=self._is_running)
        if stream:
            return (data for _stream, data, _time in chunks)
        return b"".join(data for _stream, data, _time in chunks)

    def log_entries(self, *, cancel=None, **kwargs) -> Iterator[tuple[str, bytes, str]]:
        """Like :meth:`logs` with ``stream=True``, but each item is
        ``(stream, data, time)`` so stdout and stderr can be told apart.
        ``cancel`` (a ``threading.Event``) ends following soon after it is
        set, for a closed websocket or widget."""
        from .containers.logs import read_logs

        def is_running() -> bool:
            return not (cancel is not None and cancel.is_set()) and self._is_running()

        tail = kwargs.pop("tail", None)
        return read_logs(self.client.runtime.store.dir(self.id),
                         tail=None if tail in ("all", None, -1) else int(tail),
                         is_running=is_running, **kwargs)

    def _is_running(self) -> bool:
        from .errors import ContainerNotFound

        try:
            return self.client.runtime.store.load_state(self.id)["Status"] in ("running", "paused", "restarting")
        except ContainerNotFound:
            return False

    def attach(self, stdin: bool = False) -> "Attachment":
        """Connect to the running container's output (and stdin)."""
        from .containers.attach import AttachClient

        return Attachment(AttachClient.connect(self.client.runtime.store.run_dir(self.id)), self)

    def exec_run(self, cmd, stdout: bool = True, stderr: bool = True, stdin: bool = False, tty: bool = False,
                 privileged: bool = False, user: str = "", detach: bool = False, stream: bool = False,
                 environment=None, workdir: str | None = None, demux: bool = False) -> "ExecResult":
        """docker-py's exec_run: ``(exit_code, output)``; with ``stream`` the
        output is an iterator of chunks and exit_code is None until done."""
        import subprocess

        from .containers.exec import start_exec

        if tty and not detach:
            return self._exec_with_pty(cmd, stdin=stdin, privileged=privileged, user=user, environment=environment,
                                       workdir=workdir, stream=stream)
        process = start_exec(self.client.runtime, self.id, cmd, user=user or None, workdir=workdir,
                             environment=environment, tty=tty, privileged=privileged, detach=detach,
                             stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                             stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                             stderr=(subprocess.STDOUT if not demux else subprocess.PIPE) if stderr else subprocess.DEVNULL)
        if detach:
            return ExecResult(None, b"")
        if stream:
            return ExecResult(None, _stream_process(process))
        if demux:
            out, err = process.popen.communicate()
            return ExecResult(process.popen.returncode, (out, err))
        out, _ = process.popen.communicate()
        return ExecResult(process.popen.returncode, out or b"")

    def _exec_with_pty(self, cmd, *, stdin, stream, **options) -> "ExecResult":
        """exec_run with ``tty``: the process gets a new pseudo-terminal
        whose other side we read (docker merges stdout and stderr there)."""
        from .containers.exec import start_exec

        master, slave = os.openpty()
        try:
            process = start_exec(self.client.runtime, self.id, cmd, tty=True, stdin=slave, stdout=slave,
                                 stderr=slave, user=options.pop("user") or None, **options)
        finally:
            os.close(slave)

        def chunks():
            try:
                while True:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every slave side is closed
                        break
                    if not data:
                        break
                    yield data
                process.wait()
            finally:
                os.close(master)

        if stream:
            return ExecResult(None, chunks())
        output = b"".join(chunks())
        return ExecResult(process.returncode, output)

    def exec(self, cmd, **kwargs):
        """The process handle of an exec (streams and ``wait()``), for
        frontends that show output live."""
        from .containers.exec import start_exec

        return start_exec(self.client.runtime, self.id, cmd, **kwargs)

    def stats(self, stream: bool = True, decode: bool | None = None, interval: float = 1.0):
        """docker stats' numbers: one dict (``stream=False``) or an iterator."""
        if not stream:
            found = self.client.runtime.stats([self.id])
            return found[0].to_dict() if found else None
        return (batch[0].to_dict() for batch in self.client.runtime.stats([self.id], stream=True, interval=interval)
                if batch)

    def top(self) -> dict:
        return self.client.runtime.top(self.id)

    def export(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The container's filesystem as a tar stream (docker export)."""
        from .containers.archive import export

        return export(self.client.runtime, self.id, chunk_size=chunk_size)

    def get_archive(self, path: str, chunk_size: int = 1 << 20):
        """``(tar chunks, stat dict)`` of ``path`` in the container (cp out)."""
        from .containers.archive import get_archive

        return get_archive(self.client.runtime, self.id, path, chunk_size=chunk_size)

    def put_archive(self, path: str, data) -> bool:
        """Extract a tar (bytes or file object) at ``path`` (cp in)."""
        from .containers.archive import put_archive

        put_archive(self.client.runtime, self.id, path, data)
        return True

    def port(self, private_port=None) -> list:
        ports = self.ports
        if private_port is None:
            return ports
        key = str(private_port) if "/" in str(private_port) else f"{private_port}/tcp"
        return ports.get(key) or []

    # --- display ------------------------------------------------------------------

    @property
    def status_text(self) -> str:
        from .commands.format import container_status

        return container_status(self.attrs)

    def __repr__(self) -> str:
        return f"<Container: {self.short_id} {self.name} ({self.status})>"

    def _repr_html_(self) -> str:
        from .commands.format import ports_text

        rows = [("Image", self.image_name), ("Status", self.status_text), ("Ports", ports_text(self.ports) or "—"),
                ("ID", self.short_id)]
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<div><b>{html.escape(self.name)}</b> {state_badge(self.status, self.exit_code)}<table>{body}</table></div>"


def state_badge(status: str, exit_code: int = 0) -> str:
    """A container state as a coloured HTML label."""
    colour = {"running": "#2e7d32", "paused": "#f9a825", "restarting": "#f57c00",
              "exited": "#c62828" if exit_code else "#616161"}.get(status, "#616161")
    return (f"<span style='color:white;background:{colour};border-radius:4px;padding:0 6px'>"
            f"{html.escape(status)}</span>")


class ExecResult(tuple):
    """``(exit_code, output)`` with names, as docker-py's."""

    def __new__(cls, exit_code, output):
        return super().__new__(cls, (exit_code, output))

    exit_code = property(lambda self: self[0])
    output = property(lambda self: self[1])


def _stream_process(process) -> Iterator[bytes]:
    while True:
        chunk = process.stdout.read1(65536) if hasattr(process.stdout, "read1") else process.stdout.read(65536)
        if not chunk:
            break
        yield chunk
    process.wait()


class Attachment:
    """Live output of a running container: iterate ``(stream, bytes)``;
    ``exit_code`` is set once the container has ended."""

    def __init__(self, raw, container: Container):
        self.raw = raw
        self.container = container
        self.exit_code = None

    def __iter__(self):
        yield from self.raw.output()
        self.exit_code = self.raw.exit_code
        if self.exit_code is None:
            # The monitor ended without an exit frame: the record knows.
            self.exit_code = self.container.client.runtime.wait(self.container.id)["StatusCode"]
        if self.container.attrs["HostConfig"].get("AutoRemove"):
            # --rm: return once the container is gone, as docker does (the
            # monitor closes the connection after its exit hook). Without
            # it the exit frame is enough: exit.json, OOM kill included,
            # already tells every reader how the container ended.
            while self.raw.read_frame() is not None:
                pass
        self.raw.close()

    def send(self, data: bytes) -> None:
        self.raw.send_stdin(data)

    def close_stdin(self) -> None:
        self.raw.close_stdin()

    def resize(self, rows: int, cols: int) -> None:
        self.raw.resize(rows, cols)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ContainerCollection:
    def __init__(self, client: Client):
        self.client = client

    def create(self, image, command=None, **kwargs) -> Container:
        container_id = self.client.runtime.create(_image_name(image), command, **kwargs)
        return self.get(container_id)

    def get(self, container_id: str) -> Container:
        return Container(self.client.runtime.inspect(container_id), self.client)

    def list(self, all: bool = False, filters=None, limit: int = -1, since=None, before=None,
             sparse: bool = False, ignore_removed: bool = False) -> list[Container]:
        filters = dict(_filters_dict(filters))
        if since:
            filters.setdefault("since", []).append(since)
        if before:
            filters.setdefault("before", []).append(before)
        if since or before:
            all = True
        return [Container(a, self.client) for a in
                self.client.runtime.list(all=all, filters=filters, limit=None if limit < 0 else limit)]

    def prune(self, filters=None) -> dict:
        return self.client.runtime.prune(_filters_dict(filters))

    def run(self, image, command=None, *, detach: bool = False, stdout: bool = True, stderr: bool = False,
            remove: bool = False, stream: bool = False, **kwargs):
        """docker-py's run: with ``detach`` the Container; otherwise the
        output (bytes, or an iterator of chunks with ``stream``), raising
        ContainerError on a non-zero exit."""
        if remove:
            kwargs["auto_remove"] = True
        container = self.create(image, command, **kwargs)
        if detach:
            self.client.runtime.start(container.id)
            return container.reload()
        attachment = self.start_attached(container)
        if stream:
            return (data for name, data in attachment
                    if (name == "stdout" and stdout) or (name == "stderr" and stderr))
        out, err = [], []
        for name, data in attachment:
            if name == "stdout":
                out.append(data)
            else:
                err.append(data)
        code = attachment.exit_code
        if code:
            raise ContainerError(container, code, [container.attrs["Path"], *container.attrs["Args"]],
                                 container.image_name, b"".join(err))
        result = b""
        if stdout:
            result += b"".join(out)
        if stderr:
            result += b"".join(err)
        return result

    def start_attached(self, container: Container) -> Attachment:
        """Start ``container`` with its output attached from the first
        byte; iterate the result, then read ``exit_code``."""
        raw = self.client.runtime.start(container.id, attach=True)
        return Attachment(raw, container)


def _image_name(image) -> str:
    return image.tags[0] if isinstance(image, Image) and image.tags else getattr(image, "id", image)


def _filters_dict(filters):
    from .containers.filters import parse_filters

    return parse_filters(filters)


# --- images -------------------------------------------------------------------------

class Image(Model):
    @property
    def tags(self) -> list[str]:
        return list(self.attrs.get("RepoTags") or [])

    @property
    def labels(self) -> dict:
        return (self.attrs.get("Config") or {}).get("Labels") or {}

    def reload(self) -> "Image":
        self.attrs = self.client.image_service.inspect(self.id)
        return self

    def tag(self, repository: str, tag: str | None = None) -> bool:
        target = f"{repository}:{tag}" if tag else repository
        self.client.image_service.tag(self.id, target)
        self.reload()
        return True

    def save(self, fileobj, format: str = "docker-archive") -> None:
        self.client.image_service.save([self.tags[0] if self.tags else self.id], fileobj, format=format)

    def history(self) -> list:
        return self.client.image_service.history(self.id)

    def __repr__(self) -> str:
        return f"<Image: {', '.join(repr(t) for t in self.tags) or self.short_id}>"

    def _repr_html_(self) -> str:
        from .units import format_decimal

        rows = [("Tags", ", ".join(self.tags) or "<none>"), ("ID", self.short_id),
                ("Size", format_decimal(self.attrs.get("Size", 0))), ("Created", self.attrs.get("Created", "")),
                ("Platform", f"{self.attrs.get('Os', '')}/{self.attrs.get('Architecture', '')}")]
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return f"<div><b>Image</b><table>{body}</table></div>"


class ImageCollection:
    def __init__(self, client: Client):
        self.client = client

    def pull(self, repository: str, tag: str | None = None, *, platform: str | None = None,
             progress=None, all_tags: bool = False) -> Image:
        name = f"{repository}:{tag}" if tag else repository
        info = self.client.image_service.pull(name, platform=platform, progress=progress)
        return self.get(info.id)

    def get(self, name: str) -> Image:
        return Image(self.client.image_service.inspect(name), self.client)

    def list(self, name: str | None = None, all: bool = False, filters=None) -> list[Image]:
        return [Image(a, self.client) for a in self.client.image_service.list(name=name, filters=filters)]

    def remove(self, image: str, force: bool = False, noprune: bool = False) -> list[dict]:
        return self.client.image_service.remove(_image_name(image), force=force, noprune=noprune)

    def tag(self, source: str, target: str) -> None:
        self.client.image_service.tag(source, target)

    def prune(self, filters=None, all: bool = False) -> dict:
        return self.client.image_service.prune(all=all, filters=filters)

    def save(self, names, fileobj, format: str = "docker-archive") -> None:
        self.client.image_service.save(list(names) if not isinstance(names, str) else [names], fileobj, format=format)

    def load(self, data, progress=None) -> list[Image]:
        names = self.client.image_service.load(data, progress=progress)
        return [self.get(n) for n in names]


# --- networks and volumes ------------------------------------------------------------

class Network(Model):
    @property
    def name(self) -> str:
        return self.attrs.get("Name", "")

    @property
    def containers(self) -> list[Container]:
        return [self.client.containers.get(i) for i in (self.attrs.get("Containers") or {})]

    def reload(self) -> "Network":
        self.attrs = self.client.network_manager.get(self.name).inspect()
        return self

    def connect(self, container, aliases=None, ipv4_address=None) -> None:
        self.client.runtime.connect(_container_id(container, self.client), self.name,
                                    aliases=aliases or (), ip=ipv4_address)
        self.reload()

    def disconnect(self, container, force: bool = False) -> None:
        self.client.runtime.disconnect(_container_id(container, self.client), self.name)
        self.reload()

    def remove(self) -> None:
        self.client.network_manager.remove(self.name)

    def __repr__(self) -> str:
        return f"<Network: {self.short_id} {self.name}>"


def _container_id(container, client) -> str:
    if isinstance(container, Container):
        return container.id
    return client.runtime.store.resolve(container)


class NetworkCollection:
    def __init__(self, client: Client):
        self.client = client

    def create(self, name: str, driver: str = "bridge", *, subnet=None, gateway=None, labels=None,
               internal: bool = False, **kwargs) -> Network:
        if driver not in (None, "bridge"):
            from .errors import UserError

            raise UserError(f"network driver '{driver}' is not supported", hint="use the bridge driver")
        return Network(self.client.network_manager.create(name, subnet=subnet, gateway=gateway, labels=labels,
                                                          internal=internal).inspect(), self.client)

    def get(self, name: str) -> Network:
        return Network(self.client.network_manager.get(name).inspect(), self.client)

    def list(self, names=None, ids=None, filters=None) -> list[Network]:
        found = []
        for network in self.client.network_manager.list(filters):
            attrs = network.inspect()
            if names and attrs["Name"] not in names or ids and attrs["Id"] not in ids:
                continue
            found.append(Network(attrs, self.client))
        return found

    def prune(self, filters=None) -> dict:
        return {"NetworksDeleted": self.client.network_manager.prune(filters)}


class Volume(Model):
    @property
    def id(self) -> str:
        return self.attrs.get("Name", "")

    @property
    def name(self) -> str:
        return self.attrs.get("Name", "")

    def reload(self) -> "Volume":
        self.attrs = self.client.volumes.get(self.name).attrs
        return self

    def remove(self, force: bool = False) -> None:
        self.client.volumes._store.remove(self.name, force=force)

    def __repr__(self) -> str:
        return f"<Volume: {self.name}>"


class VolumeCollection:
    def __init__(self, client: Client):
        self.client = client

    @property
    def _store(self):
        from .containers.volumes import VolumeStore

        return VolumeStore(self.client.layout)

    def create(self, name: str | None = None, driver: str = "local", driver_opts=None, labels=None) -> Volume:
        return Volume(self._store.create(name, labels=labels, driver=driver, driver_opts=driver_opts), self.client)

    def get(self, name: str) -> Volume:
        return Volume(self._store.get(name), self.client)

    def list(self, filters=None) -> list[Volume]:
        return [Volume(a, self.client) for a in self._store.list(_filters_dict(filters))]

    def prune(self, filters=None, all: bool = False) -> dict:
        return self._store.prune(all_volumes=all, filters=_filters_dict(filters))

