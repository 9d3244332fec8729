"""What the notebook interface costs, measured with a real kernel.

1. First output of ``%%container exec NAME python`` on a running container:
   from the cell's start (the kernel's ``execute_input`` message) to its
   first ``stream`` message, both stamped by the kernel. Target ≤ 50 ms.
2. A container printing 10 MB/s for 10 s into ``%container logs -f`` (the
   log widget): how long a trivial cell takes to run meanwhile (request to
   reply, seen by the client; target ≤ 100 ms) and the kernel's RSS
   (target: bounded), each against the same measurement with no firehose.

Run as root from the worktree:  python3 benchmarks/bench_notebook.py
Options: --runs N (exec runs, default 30), --rate MB/s (default 10),
--seconds N (firehose duration, default 10).

Everything happens on a private storage root removed at the end; the images
(busybox, python:3.11) are built by the test fixtures and served by a
private docker-registry on loopback set as the Docker Hub mirror.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

WORKTREE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(WORKTREE))

from jupyter_client import KernelManager  # noqa: E402

from jupyter_containers import lessons  # noqa: E402
from tests.fixtures.containers import sweep_root, write_test_config  # noqa: E402
from tests.fixtures.registry import RegistryServer  # noqa: E402


def summary(values, unit="ms", scale=1000.0) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (f"median {statistics.median(ordered) * scale:7.1f} {unit}  p90 {p90 * scale:7.1f} {unit}  "
            f"max {ordered[-1] * scale:7.1f} {unit}  (n={len(ordered)})")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Kernel:
    def __init__(self, env: dict):
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.pid = self.manager.provisioner.process.pid

    def messages_of(self, msg_id: str, timeout: float = 120) -> list[dict]:
        """The iopub messages of one execution, up to its idle status."""
        found = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            found.append(message)
            if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
                return found

    def run(self, code: str, timeout: float = 120) -> list[dict]:
        messages = self.messages_of(self.client.execute(code), timeout)
        errors = [m for m in messages if m["msg_type"] == "error"]
        if errors:
            raise RuntimeError(f"{code!r} failed: {errors[0]['content']['evalue']}")
        return messages

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def bench_exec_first_output(kernel: Kernel, runs: int) -> list[float]:
    kernel.run("%container run -d --name bench-python python:3.11 sleep 3600")
    latencies = []
    for _ in range(runs + 1):
        messages = kernel.run("%%container exec bench-python python3\nprint('first')\n")
        started = next(m["header"]["date"] for m in messages if m["msg_type"] == "execute_input")
        output = next(m["header"]["date"] for m in messages if m["msg_type"] == "stream")
        latencies.append((output - started).total_seconds())
    kernel.run("%container rm -f bench-python")
    return latencies[1:]          # the first pays for imports


def firehose_command(rate_mb: float, seconds: float) -> str:
    """A busybox shell writing 100-byte lines at ``rate_mb`` MB/s: a 1 MB
    block every 1/rate s. (The block is made by a loop rather than
    ``yes | head``: see the SIGPIPE note in the report.)"""
    period_us = int(1_000_000 / rate_mb)
    blocks = int(rate_mb * seconds)
    line = "0123456789" * 9 + "012345678"
    return (f"sh -c 'j=0; while [ $j -lt 10000 ]; do echo {line}; j=$((j+1)); done > /tmp/block; i=0; "
            f"while [ $i -lt {blocks} ]; do cat /tmp/block; usleep {period_us}; i=$((i+1)); done'")


def probe(kernel: Kernel, seconds: float, interval: float = 0.2) -> tuple[list[float], list[float]]:
    """Run ``pass`` every ``interval`` for ``seconds``: the reply latencies
    and the kernel's RSS meanwhile."""
    latencies, memory = [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sent = time.monotonic()
        msg_id = kernel.client.execute("pass")
        while True:
            reply = kernel.client.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        latencies.append(time.monotonic() - sent)
        memory.append(rss_mib(kernel.pid))
        time.sleep(max(0.0, interval - (time.monotonic() - sent)))
    return latencies, memory


def bench_log_firehose(kernel: Kernel, rate_mb: float, seconds: float) -> None:
    # The kernel's iopub socket drops what a slow reader leaves, so nothing
    # here needs to read it while probing.
    idle_latencies, idle_memory = probe(kernel, 3)
    kernel.run(f"%container run -d --name bench-firehose busybox {firehose_command(rate_mb, seconds)}")
    kernel.run("%container logs -f --tail 100 bench-firehose")
    busy_latencies, busy_memory = probe(kernel, seconds)
    kernel.run("%container wait bench-firehose")
    after_latencies, after_memory = probe(kernel, 2)
    viewer = _text_of(kernel, "from ipywidgets.widgets.widget import _instances\n"
                              "viewer = [w for w in _instances.values() if type(w).__name__ == 'LogViewer'][-1]\n"
                              "print(viewer.received, viewer.skips, len(viewer.lines), len(viewer.view.value))")
    received, skips, kept, html_size = map(int, viewer.split())
    written, elapsed = _firehose_output(rate_mb, seconds)
    print(f"firehose: the container wrote {written / 1e6:.0f} MB in {elapsed:.1f} s ({written / 1e6 / elapsed:.1f} MB/s)")
    print(f"  the log widget took {received} lines ({skips} skips ahead), kept {kept}, view {html_size / 1e3:.0f} kB")
    print(f"  cell latency, idle:      {summary(idle_latencies)}")
    print(f"  cell latency, firehose:  {summary(busy_latencies)}")
    print(f"  cell latency, after:     {summary(after_latencies)}")
    print(f"  kernel RSS: idle {max(idle_memory):.0f} MiB, during the firehose at most {max(busy_memory):.0f} MiB, "
          f"after {after_memory[-1]:.0f} MiB")


def _text_of(kernel: Kernel, code: str) -> str:
    return "".join(m["content"]["text"] for m in kernel.run(code) if m["msg_type"] == "stream")


def _firehose_output(rate_mb: float, seconds: float) -> tuple[int, float]:
    """Bytes the firehose wrote and how long it ran (from its state)."""
    from jupyter_containers.commands.format import parse_time
    from jupyter_containers.client import Client

    state = Client().containers.get("bench-firehose").attrs["State"]
    return int(rate_mb * seconds) * 1_000_000, parse_time(state["FinishedAt"]) - parse_time(state["StartedAt"])


@contextlib.contextmanager
def serve_images(scratch: Path, env: dict):
    """busybox and python:3.11 (the fixture images) in a loopback registry
    set as Docker Hub's mirror in ``env``'s Jupyter config directory."""
    registry = RegistryServer(scratch / "registry").start()
    try:
        registry.push_layout(lessons.build_image("busybox"), "latest", "library/busybox", "latest")
        registry.push_layout(lessons.build_image("python"), "latest", "library/python", "3.11")
        config_dir = scratch / "jupyter-config"
        config_dir.mkdir()
        write_test_config(config_dir, registry.url)
        env["JUPYTER_CONFIG_DIR"] = str(config_dir)
        yield
    finally:
        registry.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: containers need namespaces and cgroups")
    scratch = Path(tempfile.mkdtemp(prefix="bench-notebook-"))
    env = dict(os.environ, JUPYTER_CONTAINERS_ROOT=str(scratch / "root"),
               JUPYTER_CONTAINERS_RUN_ROOT=str(scratch / "run"), PYTHONPATH=str(WORKTREE))
    with serve_images(scratch, env):
        os.environ.update(env)
        kernel = Kernel(env)
        try:
            kernel.run("%load_ext jupyter_containers")
            kernel.run("%container pull -q busybox\n%container pull -q python:3.11")
            print(f"%%container exec NAME python, first output: {summary(bench_exec_first_output(kernel, options.runs))}")
            bench_log_firehose(kernel, options.rate, options.seconds)
        finally:
            kernel.close()
            sweep_root(scratch / "root", scratch / "run")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
