"""start: run-to-exit of ``true`` in the busybox image, side by side.

- ours, Python API in a warm process: ``client.containers.run("busybox",
  "true", network="none", remove=True)`` (docker's ``--rm``: returns once
  the container is removed), the same without ``remove`` (returns at the
  exit; the container is removed untimed), and with the default bridge;
- ours, CLI as a fresh process: ``jupyter-containers run --rm --network none
  busybox true``;
- crun: ``crun run`` of an equivalent bundle (docker's capabilities,
  seccomp profile, masked paths, namespaces), and of the same bundle
  without a seccomp filter (crun compiles the profile at every start; we
  compile it once and cache the program);
- podman: ``run --rm --network none`` and ``run --rm`` (its bridge, in a
  network namespace of the benchmark's own).

``breakdown()`` runs ours under ``strace -f`` (only a few syscalls traced,
through seccomp-bpf) and says where the time goes, phase by phase.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def api_run(client, **options):
    """A timer of ``client.containers.run("busybox", "true", **options)``;
    a container kept (no ``remove``) is removed afterwards, untimed."""
    names = iter(range(1 << 30))

    def timed() -> float:
        name = f"bench-start-{os.getpid()}-{next(names)}"
        started = time.perf_counter()
        output = client.containers.run("busybox", "true", name=name, **options)
        elapsed = time.perf_counter() - started
        if output:
            raise RuntimeError(f"true printed {output!r}")
        if not options.get("remove"):
            client.containers.get(name).remove()
        return elapsed
    return timed


def tools(session: common.Session) -> dict:
    """label -> callable timing one run, for every contender."""
    ours, podman, crun = session.ours, session.podman, session.crun
    bundles = {"docker": crun.bundle("true", ["true"]),
               "plain": crun.bundle("true-plain", ["true"], seccomp_filter=False)}
    counter = iter(range(1 << 30))
    cli = ours.cli("run", "--rm", "--network", "none", "busybox", "true")
    return {
        "ours API run --rm --network none": api_run(ours.client, network="none", remove=True),
        "ours API run --network none (no --rm)": api_run(ours.client, network="none"),
        "ours API run --rm (bridge)": api_run(ours.client, remove=True),
        "ours CLI run --rm --network none": lambda: common.timed_command(cli, ours.env),
        "crun run (docker's seccomp profile)": lambda: crun.run(bundles["docker"], f"true-{next(counter)}"),
        "crun run (no seccomp filter)": lambda: crun.run(bundles["plain"], f"plain-{next(counter)}"),
        "podman run --rm --network none": lambda: podman.timed("run", "--rm", "--network", "none",
                                                               session.busybox, "true"),
        "podman run --rm (bridge)": lambda: podman.timed("run", "--rm", session.busybox, "true"),
    }


def python_baselines(runs: int) -> common.Table:
    table = common.Table("for scale: a bare interpreter here (fresh process)")
    for label, argv in (("python3 -c pass", [sys.executable, "-c", "pass"]),
                        ("python3 -I -S -c pass (the hooks' interpreter)", [sys.executable, "-I", "-S", "-c", "pass"])):
        table.add(label, [common.timed_command(argv) for _ in range(runs)])
    return table


def run(session: common.Session, runs: int = 20) -> common.Table:
    common.heading("start: run-to-exit of `true` in busybox")
    table = common.measure("start: run-to-exit of `true` in busybox", tools(session), runs)
    table.compare("ours API run --rm --network none", "crun run (docker's seccomp profile)", 1.5)
    table.compare("ours API run --rm --network none", "crun run (no seccomp filter)")
    table.compare("ours API run --network none (no --rm)", "crun run (docker's seccomp profile)")
    table.compare("ours CLI run --rm --network none", "podman run --rm --network none", 0.3)
    table.compare("ours CLI run --rm --network none", "podman run --rm (bridge)")
    table.note("crun runs in a mount namespace without /sys/fs/cgroup/unified (hybrid-cgroup workaround), "
               "cgroupfs, v1 cgroups; podman 4.3 with runc, cgroupfs, private root")
    table.print()
    python_baselines(10).print()
    return table


# --- where the time goes --------------------------------------------------------------

# No read/write/open: they are frequent, and each traced call stops the process.
TRACED = "execve,clone,clone3,vfork,unshare,pivot_root,exit_group,fsync,sendto,access,mkdir,rmdir,flock"
MARK = "/jc-bench-mark-"

# Run as `bench_start.py --traced-api N` under strace, with the environment
# of an OurRoot: N runs, each phase of the client marked by an access() of
# a path that does not exist (cheap, and rare enough to find in the trace).
def traced_api(runs: int) -> None:
    from jupyter_containers.client import Client

    client = Client()
    client.containers.run("busybox", "true", network="none", remove=True)
    for _ in range(runs):
        os.access(MARK + "begin", os.F_OK)
        container = client.containers.create("busybox", "true", network="none", auto_remove=True)
        os.access(MARK + "created", os.F_OK)
        raw = client.runtime.start(container.id, attach=True)
        os.access(MARK + "started", os.F_OK)
        for _ in raw.output():
            pass
        os.access(MARK + "exit-frame", os.F_OK)
        while raw.read_frame() is not None:
            pass
        raw.close()
        os.access(MARK + "end", os.F_OK)


LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")

#: (phase, event it starts at, event it ends at): events found in the trace by ``events()``.
PHASES = [
    ("client: create (image lookup, record, state files)", "begin", "created"),
    ("client: start until the monitor is exec'd (spec, files, fork)", "created", "monitor exec"),
    ("monitor: lock, socket, detach, fork the start hook", "monitor exec", "hook exec"),
    ("start hook: python start-up + imports", "hook exec", "hook cgroup"),
    ("start hook: cgroup create + join (every hierarchy)", "hook cgroup", "hook unshare pid"),
    ("init: fork, imports, unshare namespaces", "hook unshare pid", "init unshare"),
    ("init: mounts (overlay, proc, dev, sys, cgroups, binds)", "init unshare", "init pivot_root"),
    ("init: pivot_root, masked paths, caps, seccomp, exec", "init pivot_root", "init exec"),
    ("start hook: write state.json, report the pid, exit", "init exec", "hook exit"),
    ("monitor: reap the hook, say ok; client returns from start", "hook exit", "started"),
    ("monitor: container exits, exit.json written, exit frame", "started", "exit frame"),
    ("monitor: fsync the log and directory, fork + exec the exit hook", "exit frame", "exit hook exec"),
    ("exit hook: python start-up + imports", "exit hook exec", "exit hook work"),
    ("exit hook: release cgroup, state, remove the container", "exit hook work", "exit hook exit"),
    ("monitor ends; client sees the socket close", "exit hook exit", "end"),
]


def events(lines: list[str]) -> list[dict]:
    """One dict (event -> time) per traced run, from ``strace -f -ttt``."""
    runs, current = [], None
    roles: dict[str, str] = {}  # pid -> role
    for line in lines:
        match = LINE.match(line)
        if not match:
            continue
        pid, when, call = match.group(1), float(match.group(2)), match.group(3)

        def mark(name):
            if current is not None:
                current.setdefault(name, when)

        if call.startswith(f'access("{MARK}'):
            name = call[len(f'access("{MARK}'):].split('"')[0]
            if name == "begin":
                current, roles = {"begin": when}, {}
                runs.append(current)
            else:
                mark(name)
        elif call.startswith("execve(") and "jc-monitor" in call.split(",")[0]:
            mark("monitor exec")
        elif call.startswith("execve(") and "lifecycle.py" in call:
            role = "hook" if '"start"' in call else "exit hook" if '"exited"' in call else "other hook"
            roles[pid] = role
            mark("hook exec" if role == "hook" else "exit hook exec")
        elif call.startswith("mkdir(\"/sys/fs/cgroup/") and roles.get(pid) == "hook":
            mark("hook cgroup")
        elif call.startswith("unshare(CLONE_NEWPID)") and roles.get(pid) == "hook":
            mark("hook unshare pid")
        elif call.startswith("clone(") and roles.get(pid) == "hook":
            child = call.rsplit("=", 1)[-1].strip()
            roles[child] = "init"
        elif call.startswith("unshare(") and roles.get(pid) == "init":
            mark("init unshare")
        elif call.startswith("pivot_root(") and roles.get(pid) == "init":
            mark("init pivot_root")
        elif call.startswith("execve(") and roles.get(pid) == "init" and call.endswith("= 0"):
            mark("init exec")
        elif call.startswith("exit_group(") and roles.get(pid) == "hook":
            mark("hook exit")
        elif call.startswith("sendto(") and '"\\3\\0\\0\\0' in call:
            mark("exit frame")
        elif roles.get(pid) == "exit hook" and call.startswith(("mkdir(", "rmdir(", "flock(")):
            mark("exit hook work")
        elif roles.get(pid) == "exit hook" and call.startswith("exit_group("):
            mark("exit hook exit")
    return [run for run in runs if "end" in run]


def breakdown(session: common.Session, runs: int = 7) -> None:
    common.heading("start: where the time goes (API run --rm --network none, traced)")
    ours = session.ours
    with tempfile.TemporaryDirectory(prefix="jc-bench-trace-") as scratch:
        trace = Path(scratch) / "trace"
        subprocess.run(["strace", "-f", "-ttt", "-s", "200", "--seccomp-bpf", "-o", str(trace), "-e",
                        f"trace={TRACED}", sys.executable, os.path.abspath(__file__), "--traced-api", str(runs)],
                       env=ours.env, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        traced = events(trace.read_text().splitlines())
    if not traced:
        raise RuntimeError("no traced run found in the strace output")
    print(f"   median of {len(traced)} runs under strace -f (seccomp-bpf: only "
          f"{TRACED.count(',') + 1} syscalls stop); ms")
    total = []
    for label, start, end in PHASES:
        spans = [run[end] - run[start] for run in traced if start in run and end in run]
        if spans:
            print(f"   {label:66} {statistics.median(spans) * 1000:7.1f}")
    total = [run["end"] - run["begin"] for run in traced]
    print(f"   {'total, traced':66} {statistics.median(total) * 1000:7.1f}")
    print(f"   {'of which after the exit frame (what --rm waits for)':66} "
          f"{statistics.median(run['end'] - run['exit frame'] for run in traced) * 1000:7.1f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--traced-api"]:
        traced_api(int(sys.argv[2]))
    else:
        sys.exit("run through benchmarks/run.py start")
