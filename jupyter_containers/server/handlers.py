"""The REST and websocket API under ``{base_url}containers/api/``: one
handler per verb (``docs/rest-api.yaml`` describes them).

A handler turns its request into one call of the client API, run on the
extension's own thread pool so the event loop never waits for the disk, a
registry or a container, and turns the result into JSON. A ContainersError
becomes ``{"message": "<its one line>"}`` with the error's ``http_status``.

Streams (logs, stats, pull) run in a thread per websocket. Each message is
awaited until tornado has written it, so a slow browser slows the producer
instead of piling up memory, and closing the socket stops the producer.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Callable, Iterator

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web, websocket
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from traitlets.config import Config

from .. import config as config_module
from ..client import Client
from ..commands.format import ago
from ..errors import ContainersError
from ..events import DOWNLOADING, Progress

AUTH_RESOURCE = "containers"
SETTINGS_KEY = "jupyter_containers"

#: docker-py's ``containers.run`` keyword arguments a create request may
#: carry besides ``image`` and ``command``. Anything else is refused, so a
#: misspelt option is an error instead of being silently ignored.
RUN_OPTIONS = frozenset({
    "name", "environment", "working_dir", "user", "hostname", "domainname", "entrypoint", "volumes",
    "tmpfs", "read_only", "auto_remove", "init", "stdin_open", "tty", "mem_limit", "memswap_limit",
    "cpus", "nano_cpus", "cpu_shares", "pids_limit", "shm_size", "restart_policy", "labels", "network",
    "network_aliases", "ip", "ports", "publish_all_ports", "expose", "extra_hosts", "dns", "cap_add",
    "cap_drop", "privileged", "security_opt", "group_add", "stop_signal", "stop_timeout", "platform",
    "healthcheck", "pull",
})

#: Pull progress of one layer is sent at most this often while it downloads.
PULL_PROGRESS_INTERVAL = 0.1


#: Client calls run here: a pool of the extension's own, so long registry
#: or container calls (a pull, a stop's grace period, an exec) never starve
#: the server's default executor; its threads are started only as needed.
#: One per process: jupyter_server gives function-based extensions no stop
#: hook to shut a per-server pool down (and tests start many servers).
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def client_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="jupyter-containers")
        return _executor


class Backend:
    """What the handlers of one server share: the client, the pool that
    calls it, and the proxy's HTTP client."""

    def __init__(self, client: Client):
        self.client = client
        self.executor = client_executor()
        self._http_client = None

    def http_client(self) -> SimpleAsyncHTTPClient:
        """The service proxy's HTTP client: its own, so long-lived proxied
        requests (event streams, long polls) never queue behind tornado's
        shared client's 10 connections."""
        if self._http_client is None:
            # Answers stream through without being buffered: no size limit.
            self._http_client = SimpleAsyncHTTPClient(force_instance=True, max_clients=64, max_body_size=1 << 50)
        return self._http_client


class ApiError(web.HTTPError):
    """An HTTP error whose JSON ``message`` is exactly ``message`` (tornado
    would %-format a log_message)."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message.replace("%", "%%"))
        self.message = message

    @classmethod
    def from_error(cls, error: ContainersError) -> "ApiError":
        return cls(error.http_status, str(error))


class ClientCalls:
    """Shared by every handler: the client, calls off the event loop, query
    and body parsing, and JSON errors."""

    auth_resource = AUTH_RESOURCE

    @property
    def backend(self) -> Backend:
        return self.settings[SETTINGS_KEY]

    @property
    def client(self) -> Client:
        return self.backend.client

    async def require(self, action: str) -> None:
        """403 unless the authorizer lets the current user ``action`` containers."""
        allowed = await ensure_async(self.authorizer.is_authorized(self, self.current_user, action, AUTH_RESOURCE))
        if not allowed:
            raise web.HTTPError(403, f"User is not authorized to {action} on resource: {AUTH_RESOURCE}.")

    async def call(self, function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)`` on the extension's pool; a
        ContainersError becomes the matching HTTP error."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.backend.executor,
                                              partial(function, *args, **kwargs))
        except ContainersError as error:
            raise ApiError.from_error(error) from None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        if value.lower() in ("", "1", "true", "yes"):
            return True
        if value.lower() in ("0", "false", "no"):
            return False
        raise ApiError(400, f"query parameter '{name}' must be true or false, not '{value}'")

    def number(self, name: str, value, *, default=None, minimum: float = 0):
        if value is None or value == "":
            return default
        try:
            result = float(value)
        except (TypeError, ValueError):
            result = None
        if result is None or result < minimum or isinstance(value, bool):
            raise ApiError(400, f"'{name}' must be a number of at least {minimum:g}, not {value!r}")
        return int(result) if result.is_integer() else result

    def json_object(self) -> dict:
        """The request body as a JSON object; an empty body is ``{}``."""
        if not self.request.body:
            return {}
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs) -> None:
        error = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(error, ApiError):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"message": error.message}))
        else:
            # JSON for websocket handlers too, which are not APIHandlers.
            APIHandler.write_error(self, status_code, **kwargs)


class Handler(ClientCalls, APIHandler):
    def reply(self, value, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(value))


# --- containers ---------------------------------------------------------------------


class ContainersHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self):
        """List containers (running ones; ``?all=true`` for every one):
        inspect documents with docker ps's ``Status`` text added."""
        show_all = self.flag("all")
        self.reply(await self.call(lambda: [{**c.attrs, "Status": c.status_text}
                                            for c in self.client.containers.list(all=show_all)]))

    @web.authenticated
    @authorized
    async def post(self):
        """Create and start a container; answers its inspect document."""
        body = self.json_object()
        image = body.get("image")
        if not isinstance(image, str) or not image.strip():
            raise ApiError(400, "'image' is required: the image to run, e.g. {\"image\": \"busybox\"}")
        unknown = sorted(set(body) - RUN_OPTIONS - {"image", "command"})
        if unknown:
            raise ApiError(400, f"unknown option '{unknown[0]}': use the keyword arguments of "
                                f"docker-py's containers.run ({', '.join(sorted(RUN_OPTIONS))})")
        options = {k: v for k, v in body.items() if k in RUN_OPTIONS}
        container = await self.call(self.client.containers.run, image, body.get("command"), detach=True, **options)
        self.reply(container.attrs, 201)


class ContainerHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str):
        """Inspect one container."""
        self.reply(await self.call(lambda: self.client.containers.get(name).attrs))

    @web.authenticated
    @authorized
    async def delete(self, name: str):
        """Remove a container (``?force=true`` kills a running one first,
        ``?volumes=true`` removes its anonymous volumes)."""
        force, volumes = self.flag("force"), self.flag("volumes")
        await self.call(lambda: self.client.containers.get(name).remove(force=force, v=volumes))
        self.set_status(204)
        self.finish()


class LifecycleHandler(Handler):
    """``stop`` or ``restart``: the stop signal, then SIGKILL after
    ``timeout`` seconds (body ``{"timeout": 10}``, optional); answers the
    container's inspect document."""

    def initialize(self, verb: str) -> None:
        self.verb = verb

    @web.authenticated
    @authorized
    async def post(self, name: str):
        timeout = self.number("timeout", self.json_object().get("timeout"))

        def act():
            container = self.client.containers.get(name)
            getattr(container, self.verb)(timeout=timeout)
            return container.attrs

        self.reply(await self.call(act))


class StatsHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str):
        """One sample of a container's resource usage (taken over a quarter second)."""

        def sample():
            found = self.client.runtime.stats([name])
            if not found:
                raise ApiError(409, f"container '{name}' is not running: it uses no resources")
            return found[0].to_dict()

        self.reply(await self.call(sample))


class AllStatsHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self):
        """One sample of every running container, all taken together (a
        quarter second in all, however many there are): what the panel's
        CPU and memory bars show."""

        def sample():
            running = [container.id for container in self.client.containers.list()]
            return [stats.to_dict() for stats in self.client.runtime.stats(running)] if running else []

        self.reply(await self.call(sample))


class ExecHandler(Handler):
    @web.authenticated
    @authorized("execute")
    async def post(self, name: str):
        """Run a command in a running container and answer its exit code and
        output: body ``{"cmd": ["ls", "/"], "user": "", "workdir": null,
        "environment": {}}``."""
        body = self.json_object()
        command = body.get("cmd")
        if not command or not isinstance(command, (str, list)) or (
                isinstance(command, list) and not all(isinstance(part, str) for part in command)):
            raise ApiError(400, "'cmd' is required: a command line or a list of arguments, e.g. [\"ls\", \"/\"]")
        unknown = sorted(set(body) - {"cmd", "user", "workdir", "environment"})
        if unknown:
            raise ApiError(400, f"unknown option '{unknown[0]}': exec takes cmd, user, workdir and environment")

        def run():
            result = self.client.containers.get(name).exec_run(
                command, user=body.get("user") or "", workdir=body.get("workdir"),
                environment=body.get("environment"), demux=True)
            out, err = result.output
            return {"exit_code": result.exit_code, "stdout": (out or b"").decode(errors="replace"),
                    "stderr": (err or b"").decode(errors="replace")}

        self.reply(await self.call(run))


# --- images, networks, volumes ---------------------------------------------------------


class ImagesHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self):
        """List images: inspect documents with docker images' CREATED text
        added as ``CreatedSince``."""
        self.reply(await self.call(lambda: [{**image.attrs, "CreatedSince": ago(image.attrs.get("Created", ""))}
                                            for image in self.client.images.list()]))


class ImageHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str):
        """Inspect one image, by name or ID."""
        self.reply(await self.call(lambda: self.client.images.get(name).attrs))

    @web.authenticated
    @authorized
    async def delete(self, name: str):
        """Remove an image (``?force=true`` even if containers use it);
        answers what was untagged and deleted."""
        force = self.flag("force")
        self.reply(await self.call(self.client.images.remove, name, force=force))


class NetworksHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self):
        self.reply(await self.call(lambda: [network.attrs for network in self.client.networks.list()]))


class VolumesHandler(Handler):
    @web.authenticated
    @authorized
    async def get(self):
        self.reply(await self.call(lambda: [volume.attrs for volume in self.client.volumes.list()]))


# --- websockets ------------------------------------------------------------------------

Producer = Callable[[threading.Event], Iterator[dict]]


class StreamSocket(ClientCalls, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """A websocket fed by a producer running in a thread of its own.

    ``start(*path_args)`` runs before the upgrade, so an unknown container
    or a bad parameter is an ordinary HTTP error; it returns the producer: a
    function of a cancel event returning the messages to send. The socket is
    closed when the producer ends. A ContainersError raised while producing
    is sent as ``{"type": "error", "message": …, "status": …}`` first.
    """

    action = "read"
    _cancel: threading.Event | None = None

    async def start(self, *args) -> Producer:
        raise NotImplementedError

    @ws_authenticated
    async def get(self, *args):
        await self.require(self.action)
        self._producer = await self.start(*args)
        await super().get(*args)

    def open(self, *args):
        super().open(*args)
        self._cancel = threading.Event()
        thread = threading.Thread(target=self._pump, args=(asyncio.get_running_loop(),), daemon=True,
                                  name=f"jupyter-containers {self.request.path}")
        thread.start()

    def on_close(self):
        if self._cancel is not None:
            self._cancel.set()

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for message in self._producer(self._cancel):
                if self._cancel.is_set() or not self._send(loop, message):
                    return
        except ContainersError as error:
            self._send(loop, {"type": "error", "message": str(error), "status": error.http_status})
        except Exception as error:  # noqa: BLE001 - reported to the browser, logged with its traceback
            self.log.exception("jupyter_containers: stream %s failed", self.request.path)
            self._send(loop, {"type": "error", "message": f"internal error: {error}", "status": 500})
        finally:
            loop.call_soon_threadsafe(self.close)

    def _send(self, loop: asyncio.AbstractEventLoop, message: dict) -> bool:
        """Send from the producer's thread, waiting until it is written;
        False once the socket is closed."""
        try:
            asyncio.run_coroutine_threadsafe(self._write(json.dumps(message)), loop).result()
            return True
        except (websocket.WebSocketClosedError, RuntimeError):
            return False

    async def _write(self, text: str) -> None:
        await self.write_message(text)


class LogsSocket(StreamSocket):
    """A container's output: ``?tail=N`` last lines (all by default),
    ``?follow=true`` to keep following until the container stops,
    ``?timestamps=true`` prefixes each line with its time. Messages:
    ``{"type": "log", "stream": "stdout"|"stderr", "data": text, "time": …}``."""

    async def start(self, name: str) -> Producer:
        tail = self.number("tail", self.get_query_argument("tail", None), default="all")
        follow, timestamps = self.flag("follow"), self.flag("timestamps")
        container = await self.call(self.client.containers.get, name)

        def produce(cancel: threading.Event):
            for stream, data, moment in container.log_entries(tail=tail, follow=follow, timestamps=timestamps,
                                                              cancel=cancel):
                yield {"type": "log", "stream": stream, "data": data.decode(errors="replace"), "time": moment}

        return produce


class StatsSocket(StreamSocket):
    """Resource usage every ``?interval=`` seconds (default 2), as
    ``{"type": "stats", …one sample…}``, until the container stops."""

    async def start(self, name: str) -> Producer:
        interval = self.number("interval", self.get_query_argument("interval", None), default=2, minimum=0.1)
        container = await self.call(self.client.containers.get, name)

        def produce(cancel: threading.Event):
            # The ids are asked for before each sample: none once cancelled,
            # and a container that stopped has no cgroup left to sample.
            for batch in self.client.runtime.stats(lambda: [] if cancel.is_set() else [container.id], stream=True,
                                                   interval=interval):
                if not batch:
                    return
                yield {"type": "stats", **batch[0].to_dict()}

        return produce


class PullSocket(StreamSocket):
    """Pull ``?image=NAME`` (``&platform=os/arch``), streaming the same
    progress events the CLI shows: ``{"type": "progress", "kind", "id",
    "status", "current", "total", "message", "time"}``; at the end
    ``{"type": "done", "image": <inspect document>}``."""

    action = "write"

    async def start(self) -> Producer:
        image = (self.get_query_argument("image", "") or "").strip()
        if not image:
            raise ApiError(400, "query parameter 'image' is required: the image to pull, e.g. ?image=busybox")
        platform = self.get_query_argument("platform", None) or None

        def produce(cancel: threading.Event):
            events: queue.SimpleQueue = queue.SimpleQueue()
            last_sent: dict[str, float] = {}

            def progress(event: Progress) -> None:
                now = time.monotonic()
                if event.status == DOWNLOADING and now - last_sent.get(event.id, 0.0) < PULL_PROGRESS_INTERVAL:
                    return
                last_sent[event.id] = now
                events.put({"type": "progress", **event.to_dict()})

            def pull() -> None:
                try:
                    pulled = self.client.images.pull(image, platform=platform, progress=progress)
                    events.put({"type": "done", "image": pulled.attrs})
                except BaseException as error:  # noqa: BLE001 - handed over to the producer, which raises it
                    events.put(error)

            # The pull goes on if the socket closes: the user asked for it,
            # and it leaves nothing half-written either way.
            threading.Thread(target=pull, daemon=True, name=f"jupyter-containers pull {image}").start()
            while True:
                item = events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item["type"] == "done":
                    return

        return produce


# --- routes ----------------------------------------------------------------------------


def server_config(serverapp) -> Config:
    """The project's own config files, overridden by the server's config
    (jupyter_server_config.* may hold the Storage, Registry… sections)."""
    merged = Config()
    merged.merge(config_module.get_config())
    merged.merge(serverapp.config)
    return merged


#: Routes below ``{base_url}containers/api/``: (regex, handler[, kwargs]).
API_ROUTES = [
    ("containers", ContainersHandler),
    ("containers/([^/]+)", ContainerHandler),
    ("containers/([^/]+)/stop", LifecycleHandler, {"verb": "stop"}),
    ("containers/([^/]+)/restart", LifecycleHandler, {"verb": "restart"}),
    ("containers/([^/]+)/logs", LogsSocket),
    ("containers/([^/]+)/stats", StatsHandler),
    ("containers/([^/]+)/stats/stream", StatsSocket),
    ("containers/([^/]+)/exec", ExecHandler),
    ("stats", AllStatsHandler),
    ("images", ImagesHandler),
    ("images/(.+)", ImageHandler),
    ("pull", PullSocket),
    ("networks", NetworksHandler),
    ("volumes", VolumesHandler),
]


def setup_handlers(serverapp) -> None:
    from .proxy import proxy_routes

    web_app = serverapp.web_app
    client = Client(config=server_config(serverapp))
    web_app.settings[SETTINGS_KEY] = Backend(client)
    api = url_path_join(web_app.settings["base_url"], "containers", "api")
    handlers = [(url_path_join(api, path), *rest) for path, *rest in API_ROUTES]
    handlers += proxy_routes(web_app.settings["base_url"])
    web_app.add_handlers(".*$", handlers)
    serverapp.log.info("jupyter_containers: API at %s, storage root %s", api, client.layout.root)
