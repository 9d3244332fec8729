"""Side-by-side benchmarks of jupyter-containers against the peer tools
(podman, crun, skopeo + umoci), in the same run, printing each time and the
ratios. Run as root from the worktree:

    python3 benchmarks/run.py [pull|start|density|exec|network|all] [options]

Everything is private to the run and removed at its end: a docker-registry
on a free loopback port, our storage roots (own cgroup parent, bridge name
and subnet), podman's root and network namespace, crun's state directory.
See benchmarks/README.md for what each benchmark measures.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_density  # noqa: E402
import bench_exec  # noqa: E402
import bench_net  # noqa: E402
import bench_pull  # noqa: E402
import bench_start  # noqa: E402
import common  # noqa: E402



def start(session: common.Session, options) -> None:
    bench_start.run(session, options.runs)
    if not options.no_breakdown:
        bench_start.breakdown(session)


BENCHMARKS = {
    "pull": lambda session, options: bench_pull.run(session, options.pull_runs, options.runs),
    "start": start,
    "density": lambda session, options: bench_density.run(session, options.containers),
    "exec": lambda session, options: bench_exec.run(session, options.runs),
    "network": lambda session, options: bench_net.run(session, options.runs, options.megabytes, options.transfers),
}


def versions() -> str:
    def first_line(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True)
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"
    return (f"kernel {platform.release()}, python {platform.python_version()}, {first_line('crun', '--version')}, "
            f"{first_line('podman', '--version')}, {first_line('runc', '--version')}, "
            f"{first_line('skopeo', '--version')}, {first_line('umoci', '--version')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="*", default=["all"], choices=[*BENCHMARKS, "all"],
                        metavar="{" + ",".join([*BENCHMARKS, "all"]) + "}")
    parser.add_argument("--runs", type=int, default=20,
                        help="runs per contender for start, exec, network and warm pulls (default 20)")
    parser.add_argument("--pull-runs", type=int, default=3, help="cold pulls per tool and medium (default 3)")
    parser.add_argument("--containers", type=int, default=50, help="idle containers for density (default 50)")
    parser.add_argument("--megabytes", type=int, default=1024, help="MiB per throughput transfer (default 1024)")
    parser.add_argument("--transfers", type=int, default=5, help="throughput transfers per tool (default 5)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the traced breakdown of start")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the benchmarks start containers", file=sys.stderr)
        return 2
    chosen = list(BENCHMARKS) if "all" in options.benchmarks else list(dict.fromkeys(options.benchmarks))
    print(f"jupyter-containers benchmarks {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: {', '.join(chosen)}")
    print(versions())
    print(common.machine_load(), flush=True)
    session = common.Session()
    try:
        for name in chosen:
            BENCHMARKS[name](session, options)
    finally:
        session.close()
    print(f"\ndone {time.strftime('%H:%M:%S')}, {common.machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
