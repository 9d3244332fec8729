"""Health checks, as docker has them, and waiting for a service to be ready.

A container with a health check (the image's HEALTHCHECK or ``--health-*``)
has its monitor run ``lifecycle.py STATE_DIR health`` every interval; that
runs the check as an exec in the container and records the result in
``health.json`` (docker's State.Health: Status starting → healthy /
unhealthy, FailingStreak, the last five results). ``wait_healthy`` and
``wait_port`` let notebooks wait for a service instead of sleeping and
hoping.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from .. import storage
from ..errors import ContainersError, UserError

HEALTH_FILE = "health.json"
DEFAULTS = {"Interval": 30_000_000_000, "Timeout": 30_000_000_000, "Retries": 3, "StartPeriod": 0}
MAX_OUTPUT = 4096
KEEP_RESULTS = 5


class NotReady(ContainersError):
    """A service did not become ready in time, or its container ended."""

    http_status = 504


def settings(check: dict | None) -> dict | None:
    """The check with docker's defaults filled in; None when there is none."""
    if not check or not check.get("Test") or check["Test"][0] == "NONE":
        return None
    result = dict(DEFAULTS)
    result.update({k: v for k, v in check.items() if v})
    return result


def command(check: dict) -> list[str]:
    test = check["Test"]
    kind, rest = test[0], list(test[1:])
    if kind == "CMD":
        return rest
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    raise UserError(f"invalid health check test {test!r}", hint="use CMD, CMD-SHELL or NONE")


def _timestamp() -> str:
    from .lifecycle import timestamp

    return timestamp()


def run_check(state_dir: str, spec: dict) -> int:
    """One check (the ``health`` hook): exec the test, record the result."""
    from .exec import ExecProcess, NotRunning, spawn_helper
    from .users import UserNotFound

    check = spec.get("health")
    state = storage.read_json(os.path.join(state_dir, "state.json"), default={}) or {}
    if not check or state.get("Status") != "running":
        return 0
    exec_spec = dict(spec["health_exec"], pid=state["Pid"], pid_start_ticks=state.get("PidStartTicks"),
                     args=command(check))
    started = _timestamp()
    timeout = check["Timeout"] / 1e9
    deadline = time.monotonic() + timeout
    try:
        process, report = spawn_helper(exec_spec, binary=spec["health_exec"].get("binary"), deadline=deadline,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, start_new_session=True)
    except NotRunning:
        return 0
    except UserNotFound as error:
        record(state_dir, check, state, started, 126, f"{error}\n".encode())
        return 0
    # "pid N" once the test runs; "error CODE MESSAGE" when it could not be
    # run: then the message is the check's output.
    test = ExecProcess(process, int(report.split()[1]), exec_spec["id"]) if report.startswith("pid ") else None
    try:
        output, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        code = process.returncode
    except subprocess.TimeoutExpired:
        # Kill the test's process group (a shell test and what it started),
        # then the helper.
        if test is not None:
            test.signal(signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # something the test started holds its output
            process.kill()
            process.wait()
        code = -1
        output = f"Health check exceeded timeout ({timeout:g}s)".encode()
    if report.startswith("error "):
        output = report.split(" ", 2)[-1].encode()
    record(state_dir, check, state, started, code, output)
    return 0


def record(state_dir: str, check: dict, state: dict, started: str, code: int, output: bytes) -> dict:
    """Fold one result into health.json with docker's rules."""
    path = os.path.join(state_dir, HEALTH_FILE)
    health = storage.read_json(path, default=None)
    if not health or health.get("StartedAt") != state.get("StartedAt"):
        health = {"Status": "starting", "FailingStreak": 0, "Log": [], "StartedAt": state.get("StartedAt")}
    text = output[:MAX_OUTPUT].decode("utf-8", "replace")
    health["Log"] = (health["Log"] + [{"Start": started, "End": _timestamp(), "ExitCode": code, "Output": text}])[-KEEP_RESULTS:]
    if code == 0:
        health["Status"] = "healthy"
        health["FailingStreak"] = 0
    else:
        from ..commands.format import parse_time

        began = parse_time(state.get("StartedAt", "")) or 0
        in_start_period = time.time() - began < check.get("StartPeriod", 0) / 1e9
        if not in_start_period or health["Status"] != "starting":
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= check.get("Retries", 3):
                health["Status"] = "unhealthy"
    storage.write_json(path, health, durable=False)
    return health


def current(state_dir, state: dict) -> dict | None:
    """State.Health for ``inspect``: the container's current run only."""
    health = storage.read_json(os.path.join(state_dir, HEALTH_FILE), default=None)
    if health is None or health.get("StartedAt") != state.get("StartedAt"):
        return {"Status": "starting", "FailingStreak": 0, "Log": []} if state.get("Status") == "running" else None
    result = {k: v for k, v in health.items() if k != "StartedAt"}
    if state.get("Status") != "running" and result["Status"] == "starting":
        result["Status"] = "unhealthy"
    return result


def wait_healthy(runtime, name_or_id: str, timeout: float = 60.0, interval: float = 0.1) -> dict:
    """Block until the container reports healthy; raise NotReady (one line,
    with the last check's output) if it turns unhealthy, exits, or the time
    runs out."""
    container_id = runtime.store.resolve(name_or_id)
    attrs = runtime.inspect(container_id)
    name = attrs["Name"].lstrip("/")
    if settings(attrs["Config"].get("Healthcheck")) is None:
        raise UserError(f"container {name} has no health check",
                        hint="give --health-cmd, or wait for a port with --port")
    deadline = time.monotonic() + timeout
    while True:
        attrs = runtime.inspect(container_id)
        state = attrs["State"]
        health = state.get("Health") or {}
        if state["Status"] != "running":
            raise NotReady(f"container {name} exited (code {state.get('ExitCode')}) before it became healthy",
                           hint=f"see its logs: logs {name}")
        if health.get("Status") == "healthy":
            return health
        if health.get("Status") == "unhealthy":
            raise NotReady(f"container {name} is unhealthy{_last_output(health)}", hint=f"see its logs: logs {name}")
        if time.monotonic() > deadline:
            raise NotReady(f"container {name} did not become healthy within {timeout:g}s{_last_output(health)}",
                           hint="wait longer (--timeout) or check its logs")
        time.sleep(interval)


def _last_output(health: dict) -> str:
    log = health.get("Log") or []
    if not log:
        return ""
    last = log[-1]
    output = " ".join(last.get("Output", "").split())[:200]
    return f" (last check: exit {last.get('ExitCode')}{': ' + output if output else ''})"


def container_address(attrs: dict) -> str | None:
    """The address the host reaches a running container at: 127.0.0.1
    with ``--network host``, else its address on its first network (None
    with ``--network none``)."""
    if (attrs.get("HostConfig") or {}).get("NetworkMode") == "host":
        return "127.0.0.1"
    for details in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).values():
        if details.get("IPAddress"):
            return details["IPAddress"]
    return None


def port_address(attrs: dict, port: str) -> tuple[str, int]:
    """Where the host reaches a container port: its published binding on
    the host, else the container's address on its network."""
    key = port if "/" in port else f"{port}/tcp"
    number = int(key.split("/")[0])
    network = attrs.get("NetworkSettings") or {}
    for binding in (network.get("Ports") or {}).get(key) or []:
        host = binding.get("HostIp") or "127.0.0.1"
        return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), int(binding["HostPort"])
    address = container_address(attrs)
    if address is not None:
        return address, number
    raise UserError(f"port {key} of container {attrs['Name'].lstrip('/')} is not reachable from the host",
                    hint="publish it (-p) or attach the container to a network")


def wait_port(runtime, name_or_id: str, port, timeout: float = 60.0, interval: float = 0.1) -> tuple[str, int]:
    """Block until a TCP connection to the container's ``port`` succeeds."""
    container_id = runtime.store.resolve(name_or_id)
    deadline = time.monotonic() + timeout
    name = container_id[:12]
    while True:
        attrs = runtime.inspect(container_id)
        name = attrs["Name"].lstrip("/")
        if attrs["State"]["Status"] != "running":
            raise NotReady(f"container {name} exited (code {attrs['State'].get('ExitCode')}) before port {port} "
                           "accepted connections", hint=f"see its logs: logs {name}")
        address = port_address(attrs, str(port))
        try:
            with socket.create_connection(address, timeout=max(0.05, min(1.0, deadline - time.monotonic()))):
                return address
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise NotReady(f"port {port} of container {name} did not accept connections within {timeout:g}s",
                           hint="wait longer (--timeout) or check its logs")
        time.sleep(interval)

