"""Named and anonymous volumes: ``volumes/<name>/_data`` plus a record.

A volume mounted for the first time over a path that has content in the
image is filled with that content first (docker's copy-up); the start hook
does the copy, inside the container's root, and marks the volume
``initialized``.
"""

from __future__ import annotations

import os
import re
import shutil

from .. import storage
from ..errors import Conflict, UserError, VolumeNotFound
from .filters import labels_match
from .lifecycle import timestamp

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class VolumeStore:
    def __init__(self, layout: storage.Layout):
        self.layout = layout

    def _dir(self, name: str):
        return self.layout.volumes / name

    def _lock(self):
        return self.layout.lock("volumes")

    def create(self, name: str | None = None, *, labels: dict | None = None, driver: str = "local",
               driver_opts: dict | None = None, anonymous: bool = False) -> dict:
        if driver != "local":
            raise UserError(f"volume driver '{driver}' is not supported", hint="use the local driver")
        if driver_opts:
            raise UserError("volume driver options are not supported by the local driver here")
        with self._lock():
            return self._create_locked(name, labels or {}, anonymous)

    def _create_locked(self, name, labels, anonymous) -> dict:
        if not name:
            import secrets  # not at the top: the exit hook imports this module

            name = secrets.token_hex(32)
        if not NAME_RE.match(name):
            raise UserError(f"invalid volume name '{name}'", hint="use [a-zA-Z0-9][a-zA-Z0-9_.-]+")
        directory = self._dir(name)
        existing = storage.read_json(directory / "volume.json", default=None)
        if existing is not None:
            return existing
        (directory / "_data").mkdir(parents=True, exist_ok=True, mode=0o755)
        record = {
            "Name": name, "Driver": "local", "Mountpoint": str(directory / "_data"),
            "CreatedAt": timestamp(), "Labels": dict(labels), "Scope": "local", "Options": {},
            "Anonymous": anonymous,
        }
        if anonymous:
            record["Labels"]["com.docker.volume.anonymous"] = ""
        storage.write_json(directory / "volume.json", record)
        return record

    def ensure(self, name: str | None, *, anonymous: bool = False, container_id: str = "") -> dict:
        with self._lock():
            return self._create_locked(name, {}, anonymous)

    def get(self, name: str) -> dict:
        record = storage.read_json(self._dir(name) / "volume.json", default=None)
        if record is None:
            raise VolumeNotFound(f"no such volume: {name}", hint="list volumes with `volume ls`")
        return record

    def list(self, filters: dict | None = None) -> list[dict]:
        filters = filters or {}
        result = []
        try:
            names = sorted(os.listdir(self.layout.volumes))
        except FileNotFoundError:
            return []
        users = self._users() if "dangling" in filters else {}
        for name in names:
            record = storage.read_json(self._dir(name) / "volume.json", default=None)
            if record is None:
                continue
            if "name" in filters and not any(f in name for f in filters["name"]):
                continue
            if "label" in filters and not labels_match(record.get("Labels") or {}, filters["label"]):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][0].lower() in ("true", "1")
                if (name not in users) != dangling:
                    continue
            result.append(record)
        return result

    def _users(self) -> dict[str, list[str]]:
        """volume name → IDs of containers that mount it."""
        users: dict[str, list[str]] = {}
        containers = self.layout.containers
        try:
            ids = os.listdir(containers)
        except FileNotFoundError:
            return users
        for container_id in ids:
            record = storage.read_json(containers / container_id / "config.json", default=None)
            for mount in (record or {}).get("Mounts", []):
                if mount.get("Type") == "volume" and mount.get("Name"):
                    users.setdefault(mount["Name"], []).append(container_id)
        return users

    def remove(self, name: str, *, force: bool = False) -> None:
        with self._lock():
            self.get(name)
            users = self._users().get(name)
            if users and not force:
                raise Conflict(f"volume {name} is in use by container(s) {', '.join(u[:12] for u in users)}",
                               hint="remove the containers first")
            self._delete(name)

    def _delete(self, name: str) -> None:
        directory = self._dir(name)
        trash = self.layout.volumes / f".removing-{name}"
        os.rename(directory, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def prune(self, *, all_volumes: bool = False, filters: dict | None = None) -> dict:
        """Remove unused volumes: anonymous ones, or all with ``all_volumes``
        (docker 23+ semantics)."""
        deleted, reclaimed = [], 0
        with self._lock():
            users = self._users()
            for record in self.list(filters):
                name = record["Name"]
                if name in users or (not all_volumes and not record.get("Anonymous")):
                    continue
                reclaimed += storage.tree_size(self._dir(name))
                self._delete(name)
                deleted.append(name)
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def remove_anonymous(self, container_record: dict) -> None:
        """``rm -v``/``--rm``: the container's anonymous volumes, unless
        another container uses them too."""
        with self._lock():
            users = self._users()
            for mount in container_record.get("Mounts", []):
                name = mount.get("Name")
                if mount.get("Type") != "volume" or not name:
                    continue
                record = storage.read_json(self._dir(name) / "volume.json", default=None)
                if record and record.get("Anonymous") and set(users.get(name, [])) <= {container_record["Id"]}:
                    self._delete(name)


