"""Container records on disk, shared by every process.

``containers/<id>/config.json`` holds what ``create`` decided (docker's
inspect layout: Config, HostConfig, Mounts…); ``state.json`` the State
(Status, Pid, ExitCode…), written by the runtime and by the container's
hooks; ``exit.json`` is written by the monitor the moment the container's
process ends. :func:`load_state` merges them and corrects for what a crash or
a reboot left behind, so every process sees the same truth.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from .. import storage
from ..errors import Conflict, ContainerNotFound, UserError
from .lifecycle import boot_id, process_start_ticks, timestamp

#: A file in the container's directory: the stop was asked for, so the
#: restart policy does not apply (docker's "manually stopped").
STOP_REQUESTED = "stop-requested"
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
ZERO_TIME = "0001-01-01T00:00:00Z"
LIVE_STATUSES = ("running", "paused", "restarting")

_ADJECTIVES = (
    "admiring", "bold", "brave", "busy", "calm", "clever", "cool", "eager", "elated",
    "focused", "gallant", "gifted", "happy", "jolly", "keen", "kind", "lucid", "modest",
    "nice", "optimistic", "patient", "quirky", "relaxed", "serene", "sharp", "sleepy",
    "stoic", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
)
_SURNAMES = (
    "babbage", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "faraday",
    "fermi", "feynman", "franklin", "gauss", "goodall", "hopper", "hypatia", "johnson",
    "kepler", "knuth", "lamarr", "lovelace", "meitner", "newton", "noether", "pascal",
    "ritchie", "shannon", "tesla", "thompson", "torvalds", "turing", "wozniak", "yonath",
)


# random, secrets and shutil are imported where they are used: the exit hook,
# a fresh interpreter after every container, imports this module (they cost
# it about 12 ms).

def new_id() -> str:
    import secrets

    return secrets.token_hex(32)


def generate_name(taken: set[str]) -> str:
    import random

    for _ in range(100):
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
        if name not in taken:
            return name
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}{random.randint(1, 9999)}"
        if name not in taken:
            return name


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise UserError(f"invalid container name '{name}'",
                        hint="only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


class ContainerStore:
    """The containers of one storage root."""

    def __init__(self, layout: storage.Layout):
        self.layout = layout

    def dir(self, container_id: str) -> Path:
        return self.layout.containers / container_id

    def run_dir(self, container_id: str) -> Path:
        return self.layout.run / container_id

    def lock(self, container_id: str, *, shared: bool = False, blocking: bool = True) -> storage.FileLock:
        return self.layout.lock(f"container-{container_id}", shared=shared, blocking=blocking)

    def index_lock(self) -> storage.FileLock:
        """Held while names are checked and taken (create, rename, remove)."""
        return self.layout.lock("containers")

    # --- records ---------------------------------------------------------

    def ids(self) -> list[str]:
        try:
            entries = os.listdir(self.layout.containers)
        except FileNotFoundError:
            return []
        return [e for e in entries if len(e) == 64 and (self.layout.containers / e / "config.json").exists()]

    def read_config(self, container_id: str) -> dict:
        try:
            return storage.read_json(self.dir(container_id) / "config.json")
        except FileNotFoundError:
            raise ContainerNotFound(f"no such container: {container_id[:12]}") from None

    def write_config(self, container_id: str, record: dict) -> None:
        storage.write_json(self.dir(container_id) / "config.json", record)

    def names(self) -> dict[str, str]:
        """name → id for every container."""
        result = {}
        for container_id in self.ids():
            try:
                result[self.read_config(container_id)["Name"].lstrip("/")] = container_id
            except (ContainerNotFound, KeyError, ValueError):
                continue
        return result

    def resolve(self, name_or_id: str) -> str:
        """A container's full ID from its name, full ID or unique ID prefix."""
        if not name_or_id:
            raise UserError("a container name or ID is required")
        key = name_or_id.lstrip("/")
        ids = self.ids()
        if key in ids:
            return key
        names = self.names()
        if key in names:
            return names[key]
        matches = [i for i in ids if i.startswith(key)] if re.fullmatch(r"[0-9a-f]{1,64}", key) else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"container ID prefix '{key}' is ambiguous",
                            hint="give more characters or the name")
        raise ContainerNotFound(f"no such container: {name_or_id}")

    def reserve_name(self, name: str | None, container_id: str) -> str:
        """Under the index lock: check ``name`` is free (or make one up)."""
        names = self.names()
        if name:
            name = validate_name(name)
            if name in names and names[name] != container_id:
                raise Conflict(
                    f'the container name "/{name}" is already in use by container "{names[name][:12]}"',
                    hint="remove or rename that container, or choose another name")
            return name
        return generate_name(set(names))

    # --- state -----------------------------------------------------------

    def write_state(self, container_id: str, state: dict) -> None:
        storage.write_json(self.dir(container_id) / "state.json", state)

    def load_state(self, container_id: str) -> dict:
        """The container's State, corrected for what crashes and reboots
        left behind (see module docstring)."""
        directory = self.dir(container_id)
        state = storage.read_json(directory / "state.json", default=None) or initial_state()
        if state.get("Status") not in LIVE_STATUSES:
            return state
        if state.get("BootId") and state["BootId"] != boot_id():
            return _ended(state, 255, "the host restarted while the container was running")
        exit_record = storage.read_json(directory / "exit.json", default=None)
        if exit_record and exit_record.get("pid") == state.get("Pid"):
            ended = _ended(state, exit_record.get("exit_code", 255), "", finished=exit_record.get("finished_at"))
            if exit_record.get("oom_killed"):
                ended.update(OOMKilled=True, ExitCode=137)
            return ended
        if state.get("Status") == "restarting":
            if _alive(state.get("MonitorPid")):
                return state
            return _ended(state, state.get("ExitCode", 255), "its monitor ended during a restart")
        if not _process_matches(state.get("Pid"), state.get("PidStartTicks")):
            if _alive(state.get("MonitorPid")):
                return state  # the monitor is about to record the exit, with its code
            return _ended(state, 255, "the container's monitor ended without recording its exit")
        return state

    def remove_files(self, container_id: str) -> None:
        import shutil

        shutil.rmtree(self.run_dir(container_id), ignore_errors=True)
        directory = self.dir(container_id)
        if directory.exists():
            # Rename first so a half-removed container never shows in `ps`.
            trash = self.layout.containers / f".removing-{container_id}"
            os.rename(directory, trash)
            shutil.rmtree(trash, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.locks / f"container-{container_id}.lock")


    def remove_debris(self) -> None:
        """Under the index lock: remove what a process killed in ``create``
        (a directory without config.json) or in ``remove`` (a directory
        renamed for removal) left."""
        import shutil

        try:
            entries = os.listdir(self.layout.containers)
        except FileNotFoundError:
            return
        for entry in entries:
            path = self.layout.containers / entry
            if entry.startswith(".removing-") or (len(entry) == 64 and not (path / "config.json").exists()):
                shutil.rmtree(path, ignore_errors=True)


def initial_state() -> dict:
    return {
        "Status": "created", "Running": False, "Paused": False, "Restarting": False,
        "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
        "StartedAt": ZERO_TIME, "FinishedAt": ZERO_TIME, "RestartCount": 0,
    }


def _ended(state: dict, code: int, error: str, finished: str | None = ZERO_TIME) -> dict:
    state = dict(state)
    state.update(Status="exited", Running=False, Paused=False, Restarting=False, Pid=0,
                 ExitCode=code)
    if error:
        state["Error"] = error
    state["FinishedAt"] = finished or timestamp()
    return state


def _alive(pid) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_matches(pid, start_ticks) -> bool:
    if not pid:
        return False
    try:
        return start_ticks is None or process_start_ticks(pid) == start_ticks
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False
