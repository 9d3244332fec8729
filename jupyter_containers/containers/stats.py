"""What ``docker stats`` shows, read from containers' cgroups.

CPU % follows docker's formula, ``Δcontainer CPU time / Δsystem CPU time ×
online CPUs × 100``, where docker's system CPU time is the sum of every
CPU's time in /proc/stat, i.e. wall-clock time × online CPUs. We take that
product from the monotonic clock instead of /proc/stat: the same quantity,
with nanosecond rather than 10 ms resolution, which lets a one-shot sample
last a fraction of a second. So the percentage is ``Δcontainer CPU time /
Δwall time × 100`` (200 % for two busy CPUs, as in docker).

One-shot stats sample every requested container, wait once, and sample them
all again, so stats for any number of containers take one interval (0.25 s
by default) in total, where docker waits about two seconds per container.

Memory usage is docker's: usage minus inactive file cache; the limit is the
host's memory when the container has none. Network counters come from a
callable the network layer passes in (``container id -> (rx bytes, tx
bytes)`` or None).
"""

from __future__ import annotations

import dataclasses
import errno
import os
import time
from typing import Callable, Iterable, Iterator

from .. import units
from .cgroups import DEFAULT_PARENT, Cgroup, CgroupTree, Hierarchies, keyed_values

NetworkCounters = Callable[[str], "tuple[int, int] | None"]


@dataclasses.dataclass
class ContainerStats:
    """One container's figures at one moment; None where the host's cgroups
    do not provide a figure."""

    id: str
    read: float  # time.time() of the sample
    cpu_percent: float | None
    memory_usage: int | None
    memory_limit: int | None
    memory_percent: float | None
    pids: int | None
    block_read: int | None
    block_write: int | None
    net_rx: int | None = None
    net_tx: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def display(self) -> dict[str, str]:
        """docker stats' columns as docker formats them."""

        def pair(first, second, formatter):
            if first is None or second is None:
                return "--"
            return f"{formatter(first)} / {formatter(second)}"

        def percent(value):
            return "--" if value is None else f"{value:.2f}%"

        return {
            "CONTAINER ID": self.id[:12],
            "CPU %": percent(self.cpu_percent),
            "MEM USAGE / LIMIT": pair(self.memory_usage, self.memory_limit, units.format_binary),
            "MEM %": percent(self.memory_percent),
            "NET I/O": pair(self.net_rx, self.net_tx, units.format_decimal),
            "BLOCK I/O": pair(self.block_read, self.block_write, units.format_decimal),
            "PIDS": "--" if self.pids is None else str(self.pids),
        }


@dataclasses.dataclass
class _Sample:
    monotonic_ns: int
    wall: float
    cpu_ns: int | None
    memory_usage: int | None
    memory_limit: int | None
    pids: int | None
    block_read: int | None
    block_write: int | None


def _read(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path) as handle:
            return handle.read()
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENODEV):  # ENODEV: removed while being read
            return None
        raise


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def host_memory() -> int:
    """The host's RAM (MemTotal), the memory limit shown for unlimited containers."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _join(directory: str | None, name: str) -> str | None:
    return os.path.join(directory, name) if directory else None


def sample(cgroup: Cgroup) -> _Sample | None:
    """Raw counters of one container; None once its cgroup is gone."""
    v1 = cgroup.tree.hierarchies.v1
    if not cgroup.exists:
        return None
    at = time.monotonic_ns()
    if "cpuacct" in v1:
        cpu_ns = _int(_read(_join(cgroup.path("cpuacct"), "cpuacct.usage")))
    else:
        usage = _read(_join(cgroup.unified, "cpu.stat"))
        cpu_ns = keyed_values(usage).get("usage_usec", 0) * 1000 if usage is not None else None

    memory_dir = cgroup.path("memory")
    if "memory" in v1:
        usage, limit, cache_key = "memory.usage_in_bytes", "memory.limit_in_bytes", "total_inactive_file"
    else:
        usage, limit, cache_key = "memory.current", "memory.max", "inactive_file"
    memory_usage = _int(_read(_join(memory_dir, usage)))
    if memory_usage is not None:
        inactive = keyed_values(_read(_join(memory_dir, "memory.stat")) or "").get(cache_key, 0)
        if inactive < memory_usage:
            memory_usage -= inactive
        memory_limit = min(_int(_read(_join(memory_dir, limit))) or host_memory(), host_memory())
    else:
        memory_limit = None

    pids = _int(_read(_join(cgroup.path("pids"), "pids.current")))

    block_read = block_write = None
    if "blkio" in v1:
        text = _read(_join(cgroup.path("blkio"), "blkio.throttle.io_service_bytes_recursive"))
        if text is not None:
            block_read = block_write = 0
            for line in text.splitlines():
                fields = line.split()
                if len(fields) == 3 and fields[1] == "Read":
                    block_read += int(fields[2])
                elif len(fields) == 3 and fields[1] == "Write":
                    block_write += int(fields[2])
    else:
        text = _read(_join(cgroup.unified, "io.stat"))
        if text is not None:
            block_read = block_write = 0
            for line in text.splitlines():
                counters = dict(field.split("=", 1) for field in line.split()[1:] if "=" in field)
                block_read += int(counters.get("rbytes", 0))
                block_write += int(counters.get("wbytes", 0))
    return _Sample(at, time.time(), cpu_ns, memory_usage, memory_limit, pids, block_read, block_write)


def _stats(container_id: str, before: _Sample | None, now: _Sample, network: NetworkCounters | None) -> ContainerStats:
    cpu_percent = None
    if before is not None and before.cpu_ns is not None and now.cpu_ns is not None:
        elapsed = now.monotonic_ns - before.monotonic_ns
        cpu_percent = max(now.cpu_ns - before.cpu_ns, 0) / elapsed * 100.0 if elapsed > 0 else 0.0
    memory_percent = None
    if now.memory_usage is not None and now.memory_limit:
        memory_percent = now.memory_usage / now.memory_limit * 100.0
    counters = network(container_id) if network else None
    rx, tx = counters if counters else (None, None)
    return ContainerStats(container_id, now.wall, cpu_percent, now.memory_usage, now.memory_limit,
                          memory_percent, now.pids, now.block_read, now.block_write, rx, tx)


def stream(containers: Iterable[str] | Callable[[], Iterable[str]], *, interval: float = 1.0,
           first_interval: float = 0.25, network: NetworkCounters | None = None,
           parent: str = DEFAULT_PARENT, hierarchies: Hierarchies | None = None) -> Iterator[list[ContainerStats]]:
    """Stats of the given containers, one list every ``interval`` seconds
    (the first after ``first_interval``). ``containers`` is a list of ids,
    or a callable giving the current ids each time (``docker stats`` with no
    arguments follows containers that start later; their first CPU figure is
    None). A container whose cgroup goes away drops out of the lists."""
    tree = CgroupTree(parent, hierarchies)
    cgroups: dict[str, Cgroup] = {}

    def sample_all() -> dict[str, _Sample]:
        ids = list(containers() if callable(containers) else containers)
        samples = {}
        for container_id in ids:
            cgroup = cgroups.get(container_id) or cgroups.setdefault(container_id, Cgroup(container_id, tree))
            taken = sample(cgroup)
            if taken is not None:
                samples[container_id] = taken
        for gone in set(cgroups) - set(ids):
            del cgroups[gone]
        return samples

    previous = sample_all()
    time.sleep(first_interval)
    while True:
        current = sample_all()
        yield [_stats(container_id, previous.get(container_id), taken, network)
               for container_id, taken in current.items()]
        previous = current
        time.sleep(interval)


def one_shot(containers: Iterable[str], *, interval: float = 0.25, network: NetworkCounters | None = None,
             parent: str = DEFAULT_PARENT, hierarchies: Hierarchies | None = None) -> list[ContainerStats]:
    """``docker stats --no-stream``: every container sampled together over
    one ``interval``."""
    frames = stream(list(containers), first_interval=interval, network=network, parent=parent,
                    hierarchies=hierarchies)
    try:
        return next(frames)
    finally:
        frames.close()
