"""The service proxy against real servers in real containers: busybox's
httpd, and a small Python server that echoes requests and websocket
messages; and everything the proxy must refuse."""

from __future__ import annotations

import ast
import socket
import time
from http.cookies import SimpleCookie

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import ReadOnlyAuthorizer, server_config
from .fixtures import pulled

#: A server for the python fixture image (Debian's python3-minimal: no json,
#: no http.server): answers each request with what it received (method,
#: path, headers, body) as a Python literal; /slow streams two chunks a
#: second and a half apart; a websocket upgrade gets an echo ("echo: …").
ECHO_SERVER = r'''
import base64, hashlib, socket, struct, sys, threading, time

def websocket(conn, reader, headers):
    key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
    protocol = headers.get("sec-websocket-protocol", "").split(",")[-1].strip()
    conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n"
                  + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "") + "\r\n").encode())
    while True:
        head = reader.read(2)
        if len(head) < 2:
            return
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack(">H", reader.read(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", reader.read(8))[0]
        mask = reader.read(4)
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(reader.read(length)))
        if opcode == 8:
            conn.sendall(b"\x88\x00")
            return
        reply = b"echo: " + data
        size = bytes([len(reply)]) if len(reply) < 126 else bytes([126]) + struct.pack(">H", len(reply))
        conn.sendall(bytes([0x80 | opcode]) + size + reply)

def serve(conn):
    reader = conn.makefile("rb")
    try:
        while True:
            request_line = reader.readline()
            if not request_line:
                return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            headers = {}
            while (line := reader.readline().decode("latin-1").rstrip("\r\n")):
                name, _, value = line.partition(":")
                headers[name.strip()] = value.strip()
            lower = {name.lower(): value for name, value in headers.items()}
            body = reader.read(int(lower.get("content-length", "0")))
            if lower.get("upgrade", "").lower() == "websocket":
                return websocket(conn, reader, lower)
            if path.endswith(("/redirect", "/redirect-own")):
                target = f"http://{headers['Host']}/elsewhere" if path.endswith("-own") else "/login?next=%2F"
                conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\n\r\n".encode())
                continue
            if path == "/slow":
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
                time.sleep(1.5)
                conn.sendall(b"7\r\nsecond\n\r\n0\r\n\r\n")
                continue
            reply = repr({"method": method, "path": path, "headers": headers, "body": body.decode()}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                         b"Set-Cookie: session=app; Path=/\r\nX-Served-By: echo\r\n\r\n" % len(reply) + reply)
    finally:
        conn.close()

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", int(sys.argv[1])))
listener.listen(16)
while True:
    threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()
'''

HTTPD_SCRIPT = (
    "mkdir -p /www/sub '/www/a@b/containers/absolute/site/8080' && echo hello > /www/index.html && "
    "echo deep > /www/sub/page.txt && echo full > '/www/a@b/containers/absolute/site/8080/page.txt' && "
    "exec httpd -f -p 8080 -h /www"
)


def wait_listening(client, name: str, port: int, timeout: float = 20) -> None:
    """Until ``port`` of the container accepts connections (a container's
    server starts a moment after the container)."""
    deadline = time.monotonic() + timeout
    container = client.containers.get(name)
    settings = container.attrs["NetworkSettings"]
    host = "127.0.0.1" if container.attrs["HostConfig"].get("NetworkMode") == "host" else \
        next(n["IPAddress"] for n in settings["Networks"].values() if n.get("IPAddress"))
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"port {port} of {name} never accepted connections: {container.logs()!r}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def echo(hub, client) -> str:
    """A running container ``echo`` serving ECHO_SERVER on its port 8000."""
    python = pulled(hub, client, "python_image", "library/python")
    client.containers.run(python, ["python3", "-c", ECHO_SERVER, "8000"], name="echo", expose=[8000], detach=True)
    wait_listening(client, "echo", 8000)
    return "echo"


async def proxied(jp_fetch, *parts: str, kind: str = "proxy", **kwargs):
    try:
        return await jp_fetch("containers", kind, *parts, follow_redirects=False, **kwargs)
    except HTTPClientError as error:
        if error.response is None:
            raise
        return error.response


async def test_busybox_httpd_through_the_proxy(jp_fetch, client, busybox):
    client.containers.run(busybox, ["sh", "-c", HTTPD_SCRIPT], name="site", expose=[8080], detach=True)
    wait_listening(client, "site", 8080)

    index = await proxied(jp_fetch, "site", "8080", "")
    assert (index.code, index.body) == (200, b"hello\n")
    page = await proxied(jp_fetch, "site", "8080", "sub", "page.txt")
    assert (page.code, page.body) == (200, b"deep\n")
    assert (await proxied(jp_fetch, "site", "8080", "missing")).code == 404  # httpd's own 404

    # The absolute route forwards the full path, for apps serving under it.
    full = await proxied(jp_fetch, "site", "8080", "page.txt", kind="absolute")
    assert (full.code, full.body) == (200, b"full\n")


async def test_requests_reach_the_app_without_jupyter_credentials(jp_fetch, jp_base_url, echo):
    login = SimpleCookie()
    for header in (await jp_fetch("containers", "api", "images")).headers.get_list("Set-Cookie"):
        login.load(header)
    login_cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in login.items())

    response = await proxied(jp_fetch, echo, "8000", "api", "items", method="POST", body='{"n": 1}',
                             params={"token": "secret", "page": "2"},
                             headers={"Cookie": f"{login_cookie}; _xsrf=abc; app=keep", "X-Custom": "yes"})
    assert response.code == 200
    seen = ast.literal_eval(response.body.decode())
    assert seen["method"] == "POST" and seen["body"] == '{"n": 1}'
    assert seen["path"] == "/api/items?page=2"
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert "authorization" not in headers
    assert headers["cookie"] == "app=keep"
    assert headers["x-custom"] == "yes"
    assert headers["x-forwarded-prefix"] == f"{jp_base_url}containers/proxy/echo/8000"
    assert headers["x-forwarded-proto"] == "http"
    # The app's own answer comes back as it gave it.
    assert response.headers["X-Served-By"] == "echo"
    assert "session=app; Path=/" in response.headers.get_list("Set-Cookie")

    absolute = ast.literal_eval((await proxied(jp_fetch, echo, "8000", "x", kind="absolute")).body.decode())
    assert absolute["path"] == f"{jp_base_url}containers/absolute/echo/8000/x"


async def test_redirects_to_the_apps_own_paths_stay_behind_the_proxy(jp_fetch, jp_base_url, echo):
    prefix = f"{jp_base_url}containers/proxy/echo/8000"
    redirect = await proxied(jp_fetch, echo, "8000", "redirect")
    assert (redirect.code, redirect.headers["Location"]) == (302, f"{prefix}/login?next=%2F")
    own = await proxied(jp_fetch, echo, "8000", "redirect-own")
    assert own.headers["Location"] == f"{prefix}/elsewhere"
    absolute = await proxied(jp_fetch, echo, "8000", "redirect", kind="absolute")
    assert absolute.headers["Location"] == "/login?next=%2F"  # such an app redirects below its prefix itself

    head = await proxied(jp_fetch, echo, "8000", "page", method="HEAD")
    assert (head.code, head.body, head.headers["X-Served-By"]) == (200, b"", "echo")


async def test_answers_stream_through(jp_fetch, echo):
    arrivals = []
    await jp_fetch("containers", "proxy", echo, "8000", "slow",
                   streaming_callback=lambda chunk: arrivals.append((time.monotonic(), chunk)))
    assert b"".join(chunk for _, chunk in arrivals) == b"first\nsecond\n"
    assert arrivals[-1][0] - arrivals[0][0] > 1.0  # the first chunk was not held back


async def test_websockets_through_the_proxy(jp_ws_fetch, echo):
    connection = await jp_ws_fetch("containers", "proxy", echo, "8000", "socket", subprotocols=["v1", "chat"])
    try:
        assert connection.selected_subprotocol == "chat"
        await connection.write_message("ping")
        assert await connection.read_message() == "echo: ping"
        await connection.write_message(b"\x00\x01", binary=True)
        assert await connection.read_message() == b"echo: \x00\x01"
    finally:
        connection.close()

    with pytest.raises(HTTPClientError) as error:
        await jp_ws_fetch("containers", "proxy", echo, "8000", "socket", headers={"Authorization": ""})
    assert error.value.code == 302  # sent to the login page, like any unauthenticated GET


async def test_host_network_containers_are_reached_on_loopback(jp_fetch, client, busybox):
    port = free_port()
    client.containers.run(busybox, ["sh", "-c", f"mkdir /www && echo on-host > /www/index.html && "
                                                f"exec httpd -f -p 127.0.0.1:{port} -h /www"],
                          name="hosted", network="host", expose=[port], detach=True)
    wait_listening(client, "hosted", port)
    response = await proxied(jp_fetch, "hosted", str(port), "")
    assert (response.code, response.body) == (200, b"on-host\n")


async def test_nothing_but_offered_ports_of_running_managed_containers(jp_fetch, client, busybox):
    client.containers.run(busybox, ["sh", "-c", HTTPD_SCRIPT], name="site", expose=[8080], detach=True)
    client.containers.run(busybox, ["sleep", "600"], name="mute", expose=[8081], detach=True)
    client.containers.run(busybox, ["sleep", "600"], name="isolated", network="none", expose=[8080], detach=True)
    wait_listening(client, "site", 8080)

    refused = await proxied(jp_fetch, "site", "22", "")
    assert refused.code == 404 and b"not exposed or published" in refused.body
    assert (await proxied(jp_fetch, "ghost", "8080", "")).code == 404
    assert (await proxied(jp_fetch, "127.0.0.1", "8080", "")).code == 404  # no host names, only containers
    assert (await proxied(jp_fetch, "site", "http", "")).code == 404  # ports are numbers
    nothing_listening = await proxied(jp_fetch, "mute", "8081", "")
    assert nothing_listening.code == 502 and b"mute" in nothing_listening.body
    no_network = await proxied(jp_fetch, "isolated", "8080", "")
    assert no_network.code == 404 and b"network" in no_network.body

    client.containers.get("site").stop(timeout=1)
    stopped = await proxied(jp_fetch, "site", "8080", "")
    assert stopped.code == 503 and b"not running" in stopped.body


async def test_cross_origin_writes_are_refused(jp_fetch, jp_http_port, echo):
    # A browser's session cookie (token-authenticated requests skip origin
    # checks: no other site can make a browser send the token).
    login = SimpleCookie()
    for header in (await jp_fetch("containers", "api", "images")).headers.get_list("Set-Cookie"):
        login.load(header)
    session = {"Authorization": "", "Cookie": "; ".join(f"{k}={m.value}" for k, m in login.items())}

    response = await proxied(jp_fetch, echo, "8000", "form", method="POST", body="a=1",
                             headers={**session, "Origin": "http://evil.example"})
    assert response.code == 403
    same_origin = await proxied(jp_fetch, echo, "8000", "form", method="POST", body="a=1",
                                headers={**session, "Origin": f"http://127.0.0.1:{jp_http_port}"})
    assert same_origin.code == 200
    # A form post without an Origin header carries no Jupyter XSRF token: the app decides.
    assert (await proxied(jp_fetch, echo, "8000", "form", method="POST", body="a=1", headers=session)).code == 200


class TestReadOnlyUser:
    @pytest.fixture
    def jp_server_config(self, project_config):
        return server_config(project_config, authorizer_class=ReadOnlyAuthorizer)

    async def test_may_read_pages_but_not_post_or_open_websockets(self, jp_fetch, jp_ws_fetch, echo):
        assert (await proxied(jp_fetch, echo, "8000", "page")).code == 200
        assert (await proxied(jp_fetch, echo, "8000", "form", method="POST", body="a=1")).code == 403
        with pytest.raises(HTTPClientError) as error:
            await jp_ws_fetch("containers", "proxy", echo, "8000", "socket")
        assert error.value.code == 403
