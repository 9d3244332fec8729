"""What cgroups cost on the container start path, and one-shot stats for
many containers. Run as root from the project root:

    python3 benchmarks/cgroups.py [--runs 50] [--containers 20]

Figures:
- import: ``import jupyter_containers.containers.cgroups`` in a fresh
  ``python -I -S`` interpreter, as the start hook does (``-X importtime``);
- create+join: creating one container's cgroup in every hierarchy with
  memory, swap, CPU quota, shares and pids limits and the device rules,
  then moving a process into it (the tree exists already, as after the
  first container);
- stats: ``stats.one_shot`` for N containers, each a cgroup with a sleeping
  process (docker takes about two seconds per container).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from jupyter_containers.containers import cgroups, stats  # noqa: E402

LIMITS = {"Memory": 256 << 20, "NanoCpus": 1_000_000_000, "CpuShares": 512, "PidsLimit": 100}


def import_cost() -> float:
    """Milliseconds, cumulative (with os and errors), of one import."""
    output = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c",
         f"import sys; sys.path.insert(0, {os.getcwd()!r}); import jupyter_containers.containers.cgroups"],
        capture_output=True, text=True, check=True).stderr
    for line in output.splitlines():
        if line.rstrip().endswith("| jupyter_containers.containers.cgroups"):
            return int(line.split("|")[1]) / 1000
    raise RuntimeError("no import time reported")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--containers", type=int, default=20)
    options = parser.parse_args()

    tree = cgroups.CgroupTree(f"jupyter-containers-bench-{os.getpid()}")
    sleeper = subprocess.Popen(["sleep", "600"])
    sleepers = []
    try:
        tree.ensure()
        timings = []
        for run in range(options.runs):
            started = time.perf_counter()
            cgroup = cgroups.create(f"bench-{run}", LIMITS, parent=tree.parent)
            cgroup.join(sleeper.pid)
            timings.append(time.perf_counter() - started)
        imports = [import_cost() for _ in range(7)]
        print(f"cgroups import (python -I -S, cumulative), median of 7: {statistics.median(imports):.2f} ms")
        print(f"create+join+limits, median of {options.runs}: {statistics.median(timings) * 1000:.2f} ms "
              f"(min {min(timings) * 1000:.2f}, max {max(timings) * 1000:.2f}); "
              f"mode {tree.hierarchies.mode}")

        ids = []
        for index in range(options.containers):
            cgroup = cgroups.create(f"stats-{index}", LIMITS, parent=tree.parent)
            sleepers.append(subprocess.Popen(["sleep", "600"], preexec_fn=lambda cgroup=cgroup: cgroup.join(os.getpid())))
            ids.append(cgroup.id)
        totals = []
        for _ in range(5):
            started = time.perf_counter()
            figures = stats.one_shot(ids, parent=tree.parent)
            totals.append(time.perf_counter() - started)
            assert len(figures) == options.containers
        print(f"one-shot stats for {options.containers} containers, median of 5: "
              f"{statistics.median(totals) * 1000:.0f} ms in total (sampling interval 250 ms)")
    finally:
        for process in [sleeper, *sleepers]:
            process.kill()
            process.wait()
        tree.remove()


if __name__ == "__main__":
    main()
