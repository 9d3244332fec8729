"""network: what bridge networking adds to ``run`` (bridge vs ``--network
none``, ours and podman's), and TCP throughput host -> container through a
port published on 127.0.0.1, ours against podman's, with real containers
and the same sink (``bench_network.Sink``: a socket bound in the
container's network namespace) and sender (``bench_network.transfer``).

podman runs in a network namespace of the benchmark's own (see
``common.PrivatePodman``), so its sender runs in a thread that entered that
namespace: the path (loopback, DNAT, bridge, veth) is the same kind.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_network  # noqa: E402
import bench_start  # noqa: E402
import common  # noqa: E402
from jupyter_containers.network import netns  # noqa: E402

PODMAN_PORT = 8080  # free: nothing else listens in podman's private namespace


def run_overhead(session: common.Session, runs: int) -> common.Table:
    client, podman = session.ours.client, session.podman
    contenders = {
        "ours API run --network none (no --rm)": bench_start.api_run(client, network="none"),
        "ours API run, bridge (no --rm)": bench_start.api_run(client),
        "ours API run --rm --network none": bench_start.api_run(client, network="none", remove=True),
        "ours API run --rm, bridge": bench_start.api_run(client, remove=True),
        "podman run --rm --network none": lambda: podman.timed("run", "--rm", "--network", "none",
                                                               session.busybox, "true"),
        "podman run --rm, bridge": lambda: podman.timed("run", "--rm", session.busybox, "true"),
    }
    table = common.measure("network: what the bridge adds to run-to-exit of `true`", contenders, runs)
    table.difference("ours API run, bridge (no --rm)", "ours API run --network none (no --rm)", 15)
    table.difference("ours API run --rm, bridge", "ours API run --rm --network none")
    table.difference("podman run --rm, bridge", "podman run --rm --network none")
    table.note("no --rm: up to the exit (attach: veth, netns, address, hosts file); "
               "--rm: also the detach in the exit hook, which run --rm waits for")
    table.print()
    return table


def in_namespace(path: str, work):
    def enter_and_work():
        netns.enter(path)
        return work()
    return netns.in_thread(enter_and_work)


def throughput(session: common.Session, megabytes: int, transfers: int) -> common.Table:
    client, podman = session.ours.client, session.podman
    name = f"bench-net-{os.getpid()}"
    container = client.containers.run("busybox", ["sleep", "3600"], name=name, detach=True,
                                      ports=["127.0.0.1::80"])
    sinks = []
    try:
        podman.timed("run", "-d", "--name", name, "-p", f"127.0.0.1:{PODMAN_PORT}:80", session.busybox,
                     "sleep", "3600")
        podman_pid = int(podman("inspect", "-f", "{{.State.Pid}}", name).stdout)
        our_port = int(container.ports["80/tcp"][0]["HostPort"])
        sinks = [bench_network.Sink(f"/proc/{container.attrs['State']['Pid']}/ns/net", 80),
                 bench_network.Sink(f"/proc/{podman_pid}/ns/net", 80)]
        contenders = {
            "ours, -p 127.0.0.1::80": lambda: bench_network.transfer(our_port, megabytes),
            "podman, -p 127.0.0.1:PORT:80": lambda: in_namespace(
                podman.netns, lambda: bench_network.transfer(PODMAN_PORT, megabytes)),
        }
        table = common.measure(f"network: TCP host -> container through a port published on 127.0.0.1, "
                               f"{megabytes} MiB per transfer", contenders, transfers, "MiB/s")
    finally:
        for sink in sinks:
            sink.close()
        container.remove(force=True)
        podman("rm", "--force", "--time", "0", name, check=False)
    table.compare("ours, -p 127.0.0.1::80", "podman, -p 127.0.0.1:PORT:80")
    table.note("higher is better; the sink is a Python socket in the container's network namespace")
    table.print()
    return table


def run(session: common.Session, runs: int = 20, megabytes: int = 1024, transfers: int = 5) -> None:
    common.heading("network: bridge cost on run, published-port throughput")
    run_overhead(session, runs)
    throughput(session, megabytes, transfers)
