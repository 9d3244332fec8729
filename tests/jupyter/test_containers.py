"""Containers through the server extension, against real containers: run,
list, inspect, stop, restart, remove, logs and stats over websockets, exec;
networks and volumes; the errors of each."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from tornado.httpclient import HTTPClientError

from .conftest import ReadOnlyAuthorizer, server_config


def stream_threads(path_part: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("jupyter-containers /") and path_part in t.name]


async def wait_for(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await condition()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_run_list_stop_restart_remove(api, client, busybox):
    status, created = await api("POST", "containers", body={
        "image": busybox, "command": ["sleep", "600"], "name": "web", "labels": {"purpose": "lab-test"}})
    assert status == 201, created
    assert created["State"]["Status"] == "running"
    assert created["Config"]["Labels"]["purpose"] == "lab-test"
    assert client.containers.get("web").status == "running"  # the same container the CLI sees

    status, listed = await api("GET", "containers")
    assert status == 200
    [web] = [c for c in listed if c["Name"] == "/web"]
    assert web["Id"] == created["Id"] and web["Status"].startswith("Up")

    status, inspected = await api("GET", "containers", "web")
    assert (status, inspected["Id"]) == (200, created["Id"])

    status, stopped = await api("POST", "containers", "web", "stop", body={"timeout": 1})
    assert status == 200 and stopped["State"]["Status"] == "exited"
    assert [c for c in (await api("GET", "containers"))[1] if c["Name"] == "/web"] == []
    [web] = [c for c in (await api("GET", "containers", params={"all": "true"}))[1] if c["Name"] == "/web"]
    assert web["Status"].startswith("Exited (")

    status, restarted = await api("POST", "containers", "web", "restart", body={"timeout": 1})
    assert status == 200 and restarted["State"]["Status"] == "running"

    status, error = await api("DELETE", "containers", "web")
    assert status == 409 and "running container" in error["message"]
    status, _ = await api("DELETE", "containers", "web", params={"force": "true"})
    assert status == 204
    status, error = await api("GET", "containers", "web")
    assert status == 404 and "web" in error["message"]


async def test_run_refuses_bad_requests(api, client, busybox, registry):
    assert (await api("POST", "containers", body={"command": ["true"]}))[0] == 400
    status, error = await api("POST", "containers", body={"image": busybox, "detach_keys": "ctrl-p"})
    assert status == 400 and "unknown option 'detach_keys'" in error["message"]
    status, error = await api("POST", "containers", body={"image": busybox, "mem_limit": "lots"})
    assert status == 400 and "memory" in error["message"]
    status, error = await api("POST", "containers", body={"image": f"{registry.host}/jc-lab/absent:1"})
    assert status == 404 and "absent" in error["message"]

    assert (await api("POST", "containers", body={"image": busybox, "command": ["sleep", "60"], "name": "twin"}))[0] == 201
    status, error = await api("POST", "containers", body={"image": busybox, "command": ["sleep", "60"], "name": "twin"})
    assert status == 409 and "twin" in error["message"]
    status, error = await api("POST", "containers", "twin", "stop", body={"timeout": "soon"})
    assert status == 400 and "timeout" in error["message"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "ghost"), ("DELETE", "ghost"), ("POST", "ghost/stop"), ("POST", "ghost/restart"),
    ("GET", "ghost/stats"), ("POST", "ghost/exec"),
])
async def test_unknown_containers_are_404(api, client, method, path):
    status, error = await api(method, "containers", *path.split("/"),
                              body={"cmd": ["true"]} if path.endswith("exec") else None)
    assert status == 404
    assert "ghost" in error["message"]


@pytest.mark.parametrize("path", ["logs", "stats/stream"])
async def test_websockets_of_unknown_containers_are_404_before_the_upgrade(jp_ws_fetch, client, path):
    with pytest.raises(HTTPClientError) as error:
        await jp_ws_fetch("containers", "api", "containers", "ghost", *path.split("/"))
    assert error.value.code == 404


async def test_logs_websocket_tail_and_follow(api, ws_messages, client, busybox):
    script = "echo one; echo two >&2; sleep 1; printf 'three\\n'"
    status, _ = await api("POST", "containers", body={"image": busybox, "command": ["sh", "-c", script],
                                                      "name": "talker"})
    assert status == 201

    followed = await asyncio.wait_for(ws_messages("containers", "talker", "logs", params={"follow": "true"}), 30)
    assert [(m["type"], m["stream"], m["data"]) for m in followed] == [
        ("log", "stdout", "one\n"), ("log", "stderr", "two\n"), ("log", "stdout", "three\n")]
    assert all(m["time"] for m in followed)
    assert client.containers.get("talker").status == "exited"  # the socket ended with the container

    last = await ws_messages("containers", "talker", "logs", params={"tail": "1"})
    assert [m["data"] for m in last] == ["three\n"]
    stamped = await ws_messages("containers", "talker", "logs", params={"tail": "1", "timestamps": "true"})
    assert stamped[0]["data"].endswith(" three\n") and stamped[0]["data"][:4].isdigit()

    with pytest.raises(HTTPClientError) as error:
        await ws_messages("containers", "talker", "logs", params={"tail": "-3"})
    assert error.value.code == 400


async def test_closing_a_following_socket_stops_its_thread(api, jp_ws_fetch, client, busybox):
    await api("POST", "containers", body={"image": busybox, "name": "quiet",
                                          "command": ["sh", "-c", "echo hello; exec sleep 600"]})
    connection = await jp_ws_fetch("containers", "api", "containers", "quiet", "logs", params={"follow": "true"})
    first = json.loads(await connection.read_message())
    assert first["data"] == "hello\n"
    assert stream_threads("/quiet/logs")
    connection.close()

    async def gone():
        return not stream_threads("/quiet/logs")

    await wait_for(gone, timeout=5, what="the log thread to end after the socket closed")
    assert client.containers.get("quiet").status == "running"


async def test_stats_one_shot_all_and_streamed(api, jp_ws_fetch, client, busybox):
    await api("POST", "containers", body={"image": busybox, "name": "busy", "command": ["sleep", "600"]})
    await api("POST", "containers", body={"image": busybox, "name": "spinner",
                                          "command": ["sh", "-c", "while :; do :; done"]})

    status, sample = await api("GET", "containers", "busy", "stats")
    assert status == 200
    assert sample["id"] == client.containers.get("busy").id
    assert sample["memory_usage"] > 0 and sample["pids"] == 1

    status, samples = await api("GET", "stats")
    assert status == 200
    by_name = {client.containers.get(s["id"]).name: s for s in samples}
    assert set(by_name) == {"busy", "spinner"}
    # A busy loop against a sleeper (a loaded 2-core machine may give the
    # loop much less than a whole CPU).
    assert by_name["spinner"]["cpu_percent"] > max(10.0, 5 * by_name["busy"]["cpu_percent"])

    connection = await jp_ws_fetch("containers", "api", "containers", "busy", "stats", "stream",
                                   params={"interval": "0.2"})
    streamed = [json.loads(await connection.read_message()) for _ in range(3)]
    assert [m["type"] for m in streamed] == ["stats"] * 3
    assert all(m["memory_usage"] > 0 for m in streamed)
    # The stream ends by itself once the container stops.
    client.containers.get("busy").stop(timeout=1)
    while (message := await asyncio.wait_for(connection.read_message(), 10)) is not None:
        assert json.loads(message)["type"] == "stats"

    status, error = await api("GET", "containers", "busy", "stats")
    assert status == 409 and "busy" in error["message"]


async def test_exec_returns_exit_code_and_both_streams(api, client, busybox):
    await api("POST", "containers", body={"image": busybox, "name": "box", "command": ["sleep", "600"]})

    status, result = await api("POST", "containers", "box", "exec", body={
        "cmd": ["sh", "-c", "echo out; echo err >&2; echo $GREETING in $(pwd); exit 3"],
        "environment": {"GREETING": "hi"}, "workdir": "/tmp"})
    assert status == 200
    assert result == {"exit_code": 3, "stdout": "out\nhi in /tmp\n", "stderr": "err\n"}

    status, error = await api("POST", "containers", "box", "exec", body={"cmd": ""})
    assert status == 400 and "'cmd'" in error["message"]
    status, error = await api("POST", "containers", "box", "exec", body={"cmd": ["true"], "privileged": True})
    assert status == 400 and "privileged" in error["message"]

    client.containers.get("box").stop(timeout=1)
    status, error = await api("POST", "containers", "box", "exec", body={"cmd": ["true"]})
    assert status == 409 and "box" in error["message"]


async def test_networks_and_volumes_are_listed(api, client):
    client.volumes.create("lab-data")
    status, volumes = await api("GET", "volumes")
    assert status == 200 and "lab-data" in [v["Name"] for v in volumes]
    status, networks = await api("GET", "networks")
    assert status == 200 and "bridge" in [n["Name"] for n in networks]


class TestReadOnlyUser:
    @pytest.fixture
    def jp_server_config(self, project_config):
        return server_config(project_config, authorizer_class=ReadOnlyAuthorizer)

    async def test_sees_containers_and_their_logs_but_cannot_touch_them(self, api, ws_messages, client, busybox):
        client.containers.run(busybox, ["sh", "-c", "echo visible; exec sleep 600"], name="watched", detach=True)

        assert "/watched" in [c["Name"] for c in (await api("GET", "containers"))[1]]
        logs = await ws_messages("containers", "watched", "logs", params={"tail": "5"})
        assert [m["data"] for m in logs] == ["visible\n"]
        for method, path, body in [("POST", "watched/stop", {}), ("POST", "watched/restart", {}),
                                   ("DELETE", "watched", None), ("POST", "watched/exec", {"cmd": ["true"]})]:
            status, _ = await api(method, "containers", *path.split("/"), body=body)
            assert status == 403, path
        assert client.containers.get("watched").status == "running"
