"""The exit hook's work: record a container's exit, apply its restart
policy, release what it held, remove it if it was run with ``--rm``.

Run by ``lifecycle.py STATE_DIR exited`` after every container, in a fresh
interpreter: it imports little (no traitlets, no signal, no pyroute2 unless
the container had a network to take down).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import time
from pathlib import Path

from .. import storage
from ..errors import ContainerNotFound, ContainersError
from .lifecycle import RESTART, SPEC_FILE, timestamp
from .state import STOP_REQUESTED, ContainerStore, initial_state


def handle_exit(state_dir: str, spec: dict) -> int:
    """Run by ``lifecycle.py exited``: record the exit, apply the restart
    policy, release resources, auto-remove. Returns RESTART (75) to have the
    monitor start the container again. Imports little: it runs after every
    container, in a fresh interpreter."""
    from . import cgroups

    directory = Path(state_dir)
    layout = storage.Layout(directory.parent.parent, spec["run_root"])
    store = ContainerStore(layout)
    container_id = spec["id"]
    parent = spec["cgroup_parent"]
    try:
        record = store.read_config(container_id)
    except ContainerNotFound:
        return 0  # removed meanwhile
    with store.lock(container_id):
        exit_record = storage.read_json(directory / "exit.json", default={}) or {}
        state = storage.read_json(directory / "state.json", default=None) or initial_state()
        code = exit_record.get("exit_code", 255)
        oom = bool(exit_record.get("oom_killed"))
        if not oom:
            with contextlib.suppress(FileNotFoundError, OSError):
                oom = cgroups.Cgroup.open(container_id, parent=parent).oom_killed()
        if oom:
            code = 137
        state.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                     ExitCode=code, OOMKilled=oom, Error=exit_record.get("error") or "",
                     FinishedAt=exit_record.get("finished_at") or timestamp())
        stop_requested = (directory / STOP_REQUESTED).exists()
        policy = record["HostConfig"].get("RestartPolicy") or {"Name": "no"}
        restart = _should_restart(policy, code, state.get("RestartCount", 0), stop_requested)
        with contextlib.suppress(FileNotFoundError, OSError):
            cgroups.Cgroup.open(container_id, parent=parent).remove()
        if restart:
            count = state.get("RestartCount", 0) + 1
            state.update(Status="restarting", Restarting=True, RestartCount=count)
            store.write_state(container_id, state)
            spec = dict(spec)
            spec["state"] = dict(spec.get("state") or {}, RestartCount=count)
            storage.write_atomic(directory / SPEC_FILE, marshal.dumps(spec), 0o600, durable=False)
    if restart:
        time.sleep(_restart_delay(state))
        if (directory / STOP_REQUESTED).exists():
            with store.lock(container_id):
                state.update(Status="exited", Restarting=False)
                store.write_state(container_id, state)
        else:
            return RESTART
    with store.lock(container_id):
        store.write_state(container_id, state)
    if spec.get("network_settings"):
        from types import SimpleNamespace

        from ..network.manager import NetworkManager

        NetworkManager(layout, SimpleNamespace(**spec["network_settings"])).detach(container_id)
    with contextlib.suppress(OSError):
        os.rmdir(store.run_dir(container_id) / "rootfs")
    if record["HostConfig"].get("AutoRemove"):
        with contextlib.suppress(ContainersError):
            with store.index_lock(), store.lock(container_id):
                from .volumes import VolumeStore

                VolumeStore(layout).remove_anonymous(record)
                store.remove_files(container_id)
    return 0


def _should_restart(policy: dict, code: int, count: int, stop_requested: bool) -> bool:
    if stop_requested:
        return False
    name = policy.get("Name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and code != 0:
        limit = policy.get("MaximumRetryCount") or 0
        return limit == 0 or count < limit
    return False


def _restart_delay(state: dict) -> float:
    """docker: 100 ms, doubling per consecutive restart, at most a minute;
    a container that ran 10 s or more restarts at once."""
    count = state.get("RestartCount", 1)
    return min(0.1 * (2 ** max(0, count - 1)), 60.0)
