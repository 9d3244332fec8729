"""What networking costs: attach+detach time, pyroute2's import time, and TCP
throughput host -> container through a port published on 127.0.0.1, side by
side with podman's published port in the same run.

Run as root from the worktree:  python3 benchmarks/bench_network.py
Options: --rounds N (attach/detach rounds, default 40), --megabytes N
(per throughput transfer, default 1024), --transfers N (per tool, default 3),
--no-podman.

Everything is made on a private storage root with its own bridge name and
subnet, and removed at the end; podman runs on a private --root/--runroot
with a busybox image imported from /bin/busybox (and runc; see PODMAN_RUN).
The sink is the same for both tools: a Python socket bound inside the
container's network namespace. Traffic goes to loopback
and to the benchmark's own namespaces only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jupyter_containers import config  # noqa: E402
from jupyter_containers.network import NetworkManager, netns  # noqa: E402
from jupyter_containers.storage import Layout  # noqa: E402
from tests.fixtures.network import free_subnet, host_links, state_of  # noqa: E402

# See ../shared/PEERS.md: podman's default ulimits exceed this host's hard
# limits, and crun refuses the hybrid cgroup layout; runc does not (the
# published-port path is the same whichever OCI runtime starts the container).
PODMAN_RUN = ["--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


def milliseconds(values) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered) * 1000:6.2f} ms  p90 {p90 * 1000:6.2f} ms"


def bench_import(runs: int = 5) -> None:
    code = "import time; t = time.perf_counter(); from pyroute2 import IPRoute; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                  check=True).stdout) for _ in range(runs)]
    print(f"pyroute2 import (fresh interpreter, {runs} runs): {milliseconds(times)}")


def new_container(manager: NetworkManager) -> str:
    container_id = secrets.token_hex(32)
    (manager.layout.containers / container_id).mkdir(parents=True)
    return container_id


def bench_attach_detach(manager: NetworkManager, rounds: int, label: str, **options) -> None:
    attach, detach, gone = [], [], []
    for _ in range(rounds):
        container_id = new_container(manager)
        started = time.perf_counter()
        settings = manager.attach(container_id, "bench", **options)
        attached = time.perf_counter()
        for sock in settings.sockets:
            sock.close()
        veths = {e["host_veth"] for e in state_of(manager)["containers"][container_id]["endpoints"]}
        detach_start = time.perf_counter()
        manager.detach(container_id)
        detached = time.perf_counter()
        attach.append(attached - started)
        detach.append(detached - detach_start)
        if veths:
            while veths & host_links():
                time.sleep(0.001)
            gone.append(time.perf_counter() - detach_start)
        shutil.rmtree(manager.layout.containers / container_id)
    total = [a + d for a, d in zip(attach, detach)]
    print(f"{label:34} attach {milliseconds(attach)} | detach {milliseconds(detach)} | "
          f"sum {milliseconds(total)}")
    if gone:
        print(f"{'':34} (veth removed by the kernel {milliseconds(gone)} after detach began)")


class Sink:
    """Reads and discards one connection at a time, from a socket bound in
    a container's network namespace (given as a namespace file)."""

    def __init__(self, netns_path: str, port: int):
        def make():
            netns.enter(netns_path)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            sock.listen(4)
            return sock

        self.sock = netns.in_thread(make)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        buffer = bytearray(1 << 20)
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while conn.recv_into(buffer):
                    pass

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=5)


def transfer(port: int, megabytes: int) -> float:
    """MB/s sending ``megabytes`` MiB to 127.0.0.1:port."""
    chunk = b"\0" * (1 << 20)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    with sock:
        started = time.perf_counter()
        for _ in range(megabytes):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # EOF once the sink has read everything
        return megabytes / (time.perf_counter() - started)


class Ours:
    name = "jupyter-containers"

    def __init__(self, manager: NetworkManager):
        self.manager = manager
        self.container_id = new_container(manager)
        settings = manager.attach(self.container_id, "sink", ports=["127.0.0.1::80"])
        self.sockets = settings.sockets
        self.port = int(settings.inspect()["Ports"]["80/tcp"][0]["HostPort"])
        self.sink = Sink(settings.sandbox_key, 80)

    def close(self):
        self.sink.close()
        for sock in self.sockets:
            sock.close()
        self.manager.detach(self.container_id)


class Podman:
    name = "podman"

    def __init__(self, workdir: Path):
        self.base = ["podman", "--root", str(workdir / "root"), "--runroot", str(workdir / "runroot")]
        rootfs = workdir / "busybox.tar"
        with tarfile.open(rootfs, "w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
            for applet in ("sh", "sleep"):
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        subprocess.run(self.base + ["import", str(rootfs), "localhost/jc-bench-busybox:latest"],
                       check=True, capture_output=True)
        self.port = _free_port()
        self.name_ = "jc-bench-" + secrets.token_hex(4)
        subprocess.run(self.base + ["run", "-d", "--name", self.name_, *PODMAN_RUN, "-p",
                                    f"127.0.0.1:{self.port}:80", "localhost/jc-bench-busybox:latest",
                                    "sleep", "3600"], check=True, capture_output=True)
        pid = subprocess.run(self.base + ["inspect", "-f", "{{.State.Pid}}", self.name_], check=True,
                             capture_output=True, text=True).stdout.strip()
        self.sink = Sink(f"/proc/{pid}/ns/net", 80)

    def close(self):
        self.sink.close()
        subprocess.run(self.base + ["rm", "-f", "-t", "0", self.name_], capture_output=True)
        subprocess.run(self.base + ["rmi", "-f", "localhost/jc-bench-busybox:latest"], capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_throughput(manager: NetworkManager, megabytes: int, transfers: int, podman: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="jc-bench-podman-") as workdir:
        tools = [Ours(manager)]
        try:
            if podman:
                tools.append(Podman(Path(workdir)))
            results = {tool.name: [] for tool in tools}
            for _ in range(transfers):  # alternate the tools, run by run
                for tool in tools:
                    results[tool.name].append(transfer(tool.port, megabytes))
        finally:
            for tool in tools:
                tool.close()
            if podman:
                # podman's storage may hold mounts under the private root
                subprocess.run(["podman", "--root", f"{workdir}/root", "--runroot", f"{workdir}/runroot",
                                "system", "reset", "-f"], capture_output=True)
    for name, values in results.items():
        print(f"TCP host -> container via 127.0.0.1 published port, {name:18}: median "
              f"{statistics.median(values):7.0f} MiB/s  ({', '.join(f'{v:.0f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--transfers", type=int, default=3)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")

    bench_import()
    with tempfile.TemporaryDirectory(prefix="jc-bench-network-") as tmp:
        layout = Layout(Path(tmp) / "root", Path(tmp) / "run").ensure()
        settings = config.Network(bridge_name="jcb" + secrets.token_hex(4), bridge_subnet=free_subnet("10.215.0.0/16"),
                                  user_subnet_pool="10.215.0.0/16")
        manager = NetworkManager(layout, settings)
        try:
            started = time.perf_counter()
            manager.create("benchnet")
            print(f"network create (bridge, rules, pyroute2 already imported: "
                  f"{'pyroute2' in sys.modules}): {(time.perf_counter() - started) * 1000:.1f} ms")
            bench_attach_detach(manager, 3, "warm-up (default bridge comes up)")
            bench_attach_detach(manager, args.rounds, "--network none", networks=["none"])
            bench_attach_detach(manager, args.rounds, "default bridge")
            bench_attach_detach(manager, args.rounds, "user network", networks=["benchnet"])
            bench_attach_detach(manager, args.rounds, "default bridge + -p 127.0.0.1::80",
                                ports=["127.0.0.1::80"])
            bench_throughput(manager, args.megabytes, args.transfers, not args.no_podman)
        finally:
            manager.sweep([])
            manager.prune()


if __name__ == "__main__":
    main()
