"""Resolving ``-u user[:group]`` from the image's own /etc/passwd and
/etc/group.

Runs inside the container's root (after pivot_root), reading the files
directly: never through the ``pwd``/``grp`` modules, which would go through
the host's NSS configuration and could load libraries from the image into a
privileged process. Standard library only (start path).
"""

from __future__ import annotations

import os


class UserNotFound(Exception):
    pass


class ExecUser:
    """The uid, gid, supplementary groups and home a process runs with.
    (Not a dataclass: importing dataclasses costs 14 ms on the start path.)"""

    __slots__ = ("uid", "gid", "groups", "home", "name")

    def __init__(self, uid: int = 0, gid: int = 0, groups=None, home: str = "/", name: str = ""):
        self.uid, self.gid, self.home, self.name = uid, gid, home, name
        self.groups = list(groups or [])

    def __repr__(self) -> str:
        return f"ExecUser(uid={self.uid}, gid={self.gid}, groups={self.groups}, home={self.home!r})"


def _read_file(path: str, root: str | None) -> bytes:
    """The first 4 MiB of ``path``; inside ``root`` when given. There the
    container controls what the path is: symlinks resolve as if ``root``
    were ``/``, and only a regular file is opened for reading — found with
    ``O_PATH``, checked, then reopened — so a FIFO cannot block the runtime
    and a terminal cannot become a host process's controlling terminal."""
    if root is None:
        with open(path, "rb") as handle:
            return handle.read(4 << 20)
    import stat

    from ..linux import paths

    located = paths.open_in_root(root, path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(located).st_mode):
            raise PermissionError(f"{path} is not a regular file")
        fd = os.open(f"/proc/self/fd/{located}", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    finally:
        os.close(located)
    with os.fdopen(fd, "rb") as handle:
        return handle.read(4 << 20)


def _read_entries(path: str, fields: int, root: str | None = None) -> list[list[str]]:
    try:
        data = _read_file(path, root)
    except OSError:  # missing, not a file, a symlink loop…: no entries, as runc
        return []
    entries = []
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) < fields:
            parts += [""] * (fields - len(parts))
        entries.append(parts)
    return entries


#: The largest uid or gid a process can take ((uid_t)-1 means "unchanged").
MAX_ID = 0xFFFFFFFE


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and text.isascii() else None


def resolve(spec: str, passwd: str = "/etc/passwd", group: str = "/etc/group",
            additional_groups: tuple = (), root: str | None = None) -> ExecUser:
    """Resolve a docker ``--user`` value as runc does: a name must exist in
    passwd; a numeric uid need not (its gid is then 0 and home ``/``).
    ``root``: read the files inside that directory (``exec`` reads them
    through ``/proc/PID/root`` of the container's process)."""
    user_part, _, group_part = (spec or "").partition(":")
    result = ExecUser()
    users = _read_entries(passwd, 7, root)
    if user_part:
        wanted_uid = _int(user_part)
        match = None
        for entry in users:
            if entry[0] == user_part or (wanted_uid is not None and _int(entry[2]) == wanted_uid):
                match = entry
                break
        if match is None:
            if wanted_uid is None:
                raise UserNotFound(f"unable to find user {user_part}: no matching entries in passwd file")
            result.uid = wanted_uid
        else:
            result.name = match[0]
            result.uid = _int(match[2]) or 0
            result.gid = _int(match[3]) or 0
            result.home = match[5] or "/"
    else:
        for entry in users:
            if _int(entry[2]) == 0:
                result.name, result.home = entry[0], entry[5] or "/"
                break

    groups = _read_entries(group, 4, root)
    if group_part:
        wanted_gid = _int(group_part)
        for entry in groups:
            if entry[0] == group_part or (wanted_gid is not None and _int(entry[2]) == wanted_gid):
                result.gid = _int(entry[2]) or 0
                break
        else:
            if wanted_gid is None:
                raise UserNotFound(f"unable to find group {group_part}: no matching entries in group file")
            result.gid = wanted_gid
    # Supplementary groups: those listing the user, unless a group was
    # given explicitly (docker's behaviour for user:group).
    supplementary: list[int] = []
    if result.name and not group_part:
        for entry in groups:
            members = [m.strip() for m in entry[3].split(",") if m.strip()]
            gid = _int(entry[2])
            if gid is not None and result.name in members and gid not in supplementary:
                supplementary.append(gid)
    for extra in additional_groups:
        gid = _int(str(extra))
        if gid is None:
            for entry in groups:
                if entry[0] == extra:
                    gid = _int(entry[2])
                    break
            if gid is None:
                raise UserNotFound(f"unable to find group {extra}: no matching entries in group file")
        if gid not in supplementary:
            supplementary.append(gid)
    if result.gid not in supplementary:
        supplementary.insert(0, result.gid)
    result.groups = supplementary
    for kind, value in (("user", result.uid), ("group", result.gid), *(("group", g) for g in supplementary)):
        if value > MAX_ID:
            raise UserNotFound(f"{kind} id {value} is out of range (at most {MAX_ID})")
    return result


def env_with_home(env, user: ExecUser) -> list[str]:
    """The environment with ``HOME`` set to the user's home unless it is
    set already, as docker does."""
    env = list(env)
    if not any(item.startswith("HOME=") for item in env):
        env.append(f"HOME={user.home}")
    return env
