"""exec: round trip of ``exec true`` in a running ``sleep`` container:
ours through the API (``container.exec_run(["true"])`` in a warm process)
and the CLI (``jupyter-containers exec NAME true``, a fresh process),
against ``crun exec`` in a container crun runs from the equivalent bundle
(docker's settings), and ``podman exec`` for scale.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402


def run(session: common.Session, runs: int = 20) -> common.Table:
    common.heading("exec: round trip of `exec true` in a running container")
    ours, podman, crun = session.ours, session.podman, session.crun
    name = f"bench-exec-{os.getpid()}"
    container = ours.client.containers.run("busybox", ["sleep", "3600"], name=name, detach=True, network="none")
    try:
        crun.run(crun.bundle("sleep", ["sleep", "3600"]), name, "--detach")
        podman.timed("run", "-d", "--name", name, "--network", "none", session.busybox, "sleep", "3600")

        def api() -> float:
            result = None

            def call():
                nonlocal result
                result = container.exec_run(["true"])
            elapsed = common.timed_call(call)
            if result.exit_code != 0:
                raise RuntimeError(f"exec true exited {result.exit_code}: {result.output!r}")
            return elapsed

        contenders = {
            "ours API exec_run(['true'])": api,
            "ours CLI exec NAME true": lambda: common.timed_command(ours.cli("exec", name, "true"), ours.env),
            "crun exec NAME true": lambda: crun.timed("exec", name, "true"),
            "podman exec NAME true": lambda: podman.timed("exec", name, "true"),
        }
        table = common.measure("exec: round trip of `exec true`", contenders, runs)
    finally:
        container.remove(force=True)
        crun.timed("delete", "--force", name, check=False)
        podman("rm", "--force", "--time", "0", name, check=False)
    table.compare("ours API exec_run(['true'])", "crun exec NAME true", 2)
    table.compare("ours CLI exec NAME true", "crun exec NAME true")
    table.compare("ours CLI exec NAME true", "podman exec NAME true")
    table.print()
    return table
