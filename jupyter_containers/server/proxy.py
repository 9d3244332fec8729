"""The service proxy: HTTP and websockets to a port of a container, through
the Jupyter server the user is already logged in to.

- ``{base_url}containers/proxy/{container}/{port}/{path}`` forwards
  ``/{path}``: for apps that serve from ``/`` and use relative links. The
  prefix the browser sees is sent as ``X-Forwarded-Prefix``, and redirects
  to the app's own paths (``Location: /login``) get it put in front.
- ``{base_url}containers/absolute/{container}/{port}/{path}`` forwards the
  full path: for apps told to serve under that prefix (a ``--base-url``
  option, ``SCRIPT_NAME``…).

Only containers the runtime manages, only while they run, and only ports
they expose (``EXPOSE``, ``--expose``) or publish (``-p``) are reachable;
the target is the container's address on its network, or 127.0.0.1 for
``--network host``. Everything else is a 404 (unknown container or port) or
a 503 (not running), so the proxy never reaches an arbitrary host or port.

Authentication and authorization are jupyter_server's (resource
``containers``: ``read`` for GET/HEAD/OPTIONS, ``write`` for other methods,
``execute`` for websockets). Jupyter's own credentials — its token and its
login and XSRF cookies — are removed before a request reaches the container.
XSRF checks are left to the proxied app (its forms carry no Jupyter XSRF
token), but a state-changing request from another origin is refused.
"""

from __future__ import annotations

import asyncio
import re
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import httputil, web, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest

from .handlers import ApiError, ClientCalls

#: Headers that describe one connection and must not be forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "trailers", "transfer-encoding", "upgrade", "host"})
#: The browser's handshake headers; the upstream handshake makes its own.
WEBSOCKET_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                                 "sec-websocket-protocol", "sec-websocket-accept"})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CONNECT_TIMEOUT = 10.0
#: Websocket messages larger than this are refused (tornado's default is 10 MiB).
MAX_MESSAGE_SIZE = 64 << 20


def proxy_routes(base_url: str) -> list:
    routes = []
    for kind, absolute in (("proxy", False), ("absolute", True)):
        pattern = url_path_join(base_url, "containers", kind) + r"/([^/]+)/(\d+)(/.*)?$"
        routes.append((pattern, ProxyHandler, {"absolute": absolute, "pattern": re.compile(pattern)}))
    return routes


def target_address(attrs: dict, port: int) -> str:
    """Where ``port`` of the container with inspect document ``attrs`` is
    reached, or an ApiError saying why it is not."""
    name = attrs.get("Name", "").lstrip("/")
    if attrs["State"].get("Status") != "running":
        raise ApiError(503, f"container '{name}' is not running: start it to reach its port {port}")
    settings = attrs.get("NetworkSettings") or {}
    offered = set((attrs.get("Config") or {}).get("ExposedPorts") or {}) | set(settings.get("Ports") or {})
    if f"{port}/tcp" not in offered:
        listed = ", ".join(sorted(p for p in offered if p.endswith("/tcp"))) or "none"
        raise ApiError(404, f"port {port} is not exposed or published by container '{name}' "
                            f"(its ports: {listed}): run it with --expose {port} or -p {port}")
    from ..containers.health import container_address

    address = container_address(attrs)
    if address is not None:
        return address
    raise ApiError(404, f"container '{name}' has no network address: it was started with --network none")


class ProxyHandler(ClientCalls, WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """One proxied request, or one proxied websocket."""

    def initialize(self, absolute: bool, pattern: re.Pattern) -> None:
        self.absolute = absolute
        self.pattern = pattern
        self.upstream: websocket.WebSocketClientConnection | None = None
        self.client_gone = False
        self.headers_sent = False

    # -- where to -----------------------------------------------------------------

    async def target(self, name: str, port: str) -> str:
        return await self.call(lambda: target_address(self.client.containers.get(name).attrs, int(port)))

    def upstream_url(self, scheme: str, host: str, port: str) -> str:
        # The path as the browser sent it (tornado's path arguments are
        # decoded, which would turn %2F into /).
        match = self.pattern.match(self.request.path)
        path = self.request.path if self.absolute else (match.group(3) or "/")
        query = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k != "token"]
        return f"{scheme}://{host}:{port}{path}" + (f"?{urlencode(query)}" if query else "")

    def public_prefix(self) -> str:
        match = self.pattern.match(self.request.path)
        return self.request.path[:match.start(3)] if match.group(3) else self.request.path.rstrip("/")

    def upstream_headers(self, skip=frozenset()) -> httputil.HTTPHeaders:
        headers = httputil.HTTPHeaders()
        for key, value in self.request.headers.get_all():
            lower = key.lower()
            if lower in HOP_BY_HOP or lower in skip:
                continue
            if lower == "authorization" and value.lower().startswith("token "):
                continue  # Jupyter's token
            if lower == "cookie":
                value = self.without_jupyter_cookies(value)
                if not value:
                    continue
            headers.add(key, value)
        headers["X-Forwarded-For"] = self.request.remote_ip or ""
        headers["X-Forwarded-Proto"] = self.request.protocol
        headers["X-Forwarded-Host"] = self.request.host
        headers["X-Forwarded-Prefix"] = self.public_prefix()
        return headers

    def without_jupyter_cookies(self, header: str) -> str:
        private = {self.identity_provider.get_cookie_name(self), self.settings.get("xsrf_cookie_name", "_xsrf")}
        try:
            cookies = SimpleCookie(header)
        except CookieError:
            return header
        return "; ".join(f"{key}={morsel.coded_value}" for key, morsel in cookies.items() if key not in private)

    # -- HTTP -------------------------------------------------------------------------

    def check_xsrf_cookie(self) -> None:
        """Left to the proxied app; cross-origin writes are refused in
        :meth:`forward`."""

    def compute_etag(self):
        return None  # caching is the proxied app's business

    @web.authenticated
    async def forward(self, name: str, port: str, _path=None) -> None:
        action = "read" if self.request.method in SAFE_METHODS else "write"
        await self.require(action)
        if action == "write" and not self.check_origin():
            raise ApiError(403, "cross-origin request refused by the container proxy")
        host = await self.target(name, port)
        self.upstream_netloc = f"{host}:{port}"
        body = self.request.body if (self.request.body or self.request.method in ("POST", "PUT", "PATCH")) else None
        request = HTTPRequest(
            self.upstream_url("http", host, port), method=self.request.method, headers=self.upstream_headers(),
            body=body, follow_redirects=False, decompress_response=False, allow_nonstandard_methods=True,
            connect_timeout=CONNECT_TIMEOUT, request_timeout=0,
            header_callback=self.on_upstream_header_line, streaming_callback=self.on_upstream_chunk)
        self.upstream_status = None
        self.upstream_header_lines = httputil.HTTPHeaders()
        try:
            await self.backend.http_client().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as error:
            if self.headers_sent:
                return  # the browser already has part of the answer: just end it
            raise ApiError(502, f"cannot reach port {port} of container '{name}': {error}") from None
        if self.client_gone:
            return
        if not self.headers_sent:
            self.send_upstream_headers()
        self.finish()

    def on_upstream_header_line(self, line: str) -> None:
        if line.startswith("HTTP/"):
            # A new status line: an interim 1xx answer is replaced by the final one.
            self.upstream_status = httputil.parse_response_start_line(line.strip())
            self.upstream_header_lines = httputil.HTTPHeaders()
        elif line.strip():
            self.upstream_header_lines.parse_line(line)

    def send_upstream_headers(self) -> None:
        start = self.upstream_status
        self.set_status(start.code, start.reason)
        self.clear_header("Content-Type")
        for key in {k for k, _ in self.upstream_header_lines.get_all()}:
            self.clear_header(key)
        for key, value in self.upstream_header_lines.get_all():
            if key.lower() == "location":
                value = self.public_location(value)
            if key.lower() not in HOP_BY_HOP:
                self.add_header(key, value)
        self.headers_sent = True

    def public_location(self, location: str) -> str:
        """A redirect to a path of the app itself (``/login``, or its own
        address) is sent back through the proxy; others are left alone."""
        parts = urlsplit(location)
        if (parts.scheme or parts.netloc) and parts.netloc != self.upstream_netloc:
            return location
        if not parts.path.startswith("/"):
            return location  # relative: the browser resolves it below the prefix already
        path = parts.path if self.absolute else self.public_prefix() + parts.path
        return urlunsplit(("", "", path, parts.query, parts.fragment))

    def on_upstream_chunk(self, chunk: bytes) -> None:
        if self.client_gone:
            raise ConnectionAbortedError("the browser went away")  # ends the upstream request
        if not self.headers_sent:
            self.send_upstream_headers()
        self.write(chunk)
        self.flush()

    # -- websockets ----------------------------------------------------------------------

    def is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    async def open_websocket(self, name: str, port: str, path=None) -> None:
        await self.require("execute")
        host = await self.target(name, port)
        offered = self.request.headers.get("Sec-WebSocket-Protocol")
        request = HTTPRequest(self.upstream_url("ws", host, port), headers=self.upstream_headers(WEBSOCKET_HANDSHAKE),
                              connect_timeout=CONNECT_TIMEOUT, request_timeout=0)
        try:
            self.upstream = await websocket.websocket_connect(
                request, subprotocols=[p.strip() for p in offered.split(",")] if offered else None,
                max_message_size=MAX_MESSAGE_SIZE)
        except (OSError, HTTPClientError) as error:
            raise ApiError(502, f"cannot open a websocket to port {port} of container '{name}': {error}") from None
        await websocket.WebSocketHandler.get(self, name, port, path)
        if self.ws_connection is None:  # the browser's handshake was refused
            self.upstream.close()

    def select_subprotocol(self, subprotocols):
        return self.upstream.selected_subprotocol if self.upstream is not None else None

    def open(self, *args) -> None:
        super().open(*args)
        asyncio.ensure_future(self.relay_from_upstream())

    async def relay_from_upstream(self) -> None:
        while True:
            message = await self.upstream.read_message()
            if message is None:
                self.close(self.upstream.close_code, self.upstream.close_reason)
                return
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                self.upstream.close()
                return

    async def on_message(self, message) -> None:
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        self.client_gone = True
        if self.upstream is not None:
            self.upstream.close()

    # -- methods -------------------------------------------------------------------------

    @web.authenticated
    async def get(self, name: str, port: str, path=None) -> None:
        if self.is_websocket():
            await self.open_websocket(name, port, path)
        else:
            await self.forward(name, port)

    head = options = post = put = patch = delete = forward
