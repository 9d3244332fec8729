"""density: N idle ``sleep`` containers (default 50) of ours and of podman;
the host memory each runtime keeps per container: the PSS
(/proc/PID/smaps_rollup) of every process below our jc-monitor, or below
podman's conmon, that is not one of the container's own processes. The
``run -d`` time of each start is shown too.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

SLEEP = ["sleep", "3600"]


def kept_pss_kib(keeper: int, container_pid: int) -> tuple[int, int]:
    """(PSS in KiB, number of processes) of ``keeper`` and what runs below
    it, minus the container's own processes."""
    own = set(common.descendants(container_pid))
    kept = [pid for pid in common.descendants(keeper) if pid not in own]
    return sum(common.pss_kib(pid) for pid in kept), len(kept)


def run(session: common.Session, count: int = 50) -> common.Table:
    common.heading(f"density: {count} idle sleep containers")
    ours, podman = session.ours, session.podman
    client = ours.client
    names = [f"bench-density-{os.getpid()}-{index}" for index in range(count)]
    starts = {"ours API run -d --network none": [], "podman run -d --network none": []}
    started_ours, started_podman = [], []
    try:
        for name in names:  # alternate: one of ours, one of podman's
            starts["ours API run -d --network none"].append(common.timed_call(
                lambda: started_ours.append(client.containers.run("busybox", SLEEP, name=name, detach=True,
                                                                  network="none"))))
            starts["podman run -d --network none"].append(podman.timed(
                "run", "-d", "--name", name, "--network", "none", session.busybox, *SLEEP))
            started_podman.append(name)
        ours_kib, ours_processes = [], 0
        for container in started_ours:
            container.reload()
            monitor = common.running_monitor(client.runtime.store.run_dir(container.id))
            kib, processes = kept_pss_kib(monitor, container.attrs["State"]["Pid"])
            ours_kib.append(kib)
            ours_processes += processes
        podman_kib, podman_processes = [], 0
        for name in started_podman:
            conmon, pid = podman("inspect", "-f", "{{.State.ConmonPid}} {{.State.Pid}}", name).stdout.split()
            kib, processes = kept_pss_kib(int(conmon), int(pid))
            podman_kib.append(kib)
            podman_processes += processes
    finally:
        for container in started_ours:
            container.remove(force=True)
        for name in started_podman:
            podman("rm", "--force", "--time", "0", name, check=False)

    table = common.Table(f"density: host memory kept per idle container, {count} containers (PSS)", "MiB")
    table.add("ours: jc-monitor", [kib / 1024 for kib in ours_kib])
    table.add("podman: conmon", [kib / 1024 for kib in podman_kib])
    table.compare("ours: jc-monitor", "podman: conmon")
    table.note(f"total for {count} containers: ours {sum(ours_kib) / 1024:.1f} MiB "
               f"({ours_processes} processes), podman {sum(podman_kib) / 1024:.1f} MiB ({podman_processes}); "
               f"target <= 2 MiB per container: {'met' if max(ours_kib) <= 2048 else 'MISSED'}")
    table.print()
    start_table = common.Table(f"density: `run -d` of each of the {count} containers, alternated")
    for label, values in starts.items():
        start_table.add(label, values)
    start_table.compare("ours API run -d --network none", "podman run -d --network none")
    start_table.print()
    return table
