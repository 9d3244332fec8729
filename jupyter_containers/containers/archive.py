"""Files in and out of a container: ``export``, ``cp`` (get/put archive).

All reading and writing inside a container happens in a helper process
confined to the container's root: for a running container it joins the
container's mount namespace (so ``/`` is the container's root and volumes are
seen as the container sees them); for a stopped one it mounts the
container's overlay in a private mount namespace and ``chroot``s into it.
A symlink inside the container therefore resolves inside the container,
whatever it points to: a copy can never be redirected onto the host (the
CVE-2018-15664 class), and no path is resolved on the host side at all.
"""

from __future__ import annotations

import io
import marshal
import os
import subprocess
import tarfile
from typing import Iterator

from ..errors import ContainersError, NotFound, RuntimeFailure, UserError

CHUNK = 1 << 20


# --- the helper's side (runs in lifecycle.py … archive) ---------------------------

def enter_root(spec: dict) -> None:
    """Make the container's root this process's ``/``."""
    from ..linux import mounts
    from ..linux import syscalls as sc

    if spec.get("pid"):
        fd = os.open(f"/proc/{spec['pid']}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.setns(fd, sc.CLONE_NEWNS)
        finally:
            os.close(fd)
        os.chdir("/")
        return
    sc.unshare(sc.CLONE_NEWNS)
    mounts.make_rslave()
    rootfs = spec["rootfs"]
    if spec.get("writable"):
        mounts.mount_overlay(rootfs, spec["lowers"], spec["upper"], spec["work"], base_dir=spec["snapshots_dir"])
    else:
        lowers = [spec["upper"]] + [os.path.join(spec["snapshots_dir"], l) for l in spec["lowers"]]
        mounts.mount_overlay(rootfs, lowers, None, None)
    for mount in spec.get("mounts", ()):
        mounts.bind_at(rootfs, mount["source"], mount["destination"], readonly=not spec.get("writable"))
    os.chroot(rootfs)
    os.chdir("/")


def _mount_points() -> set[str]:
    points = set()
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle:
            point = line.split()[4].decode("utf-8", "surrogateescape")
            points.add(point.encode().decode("unicode_escape") if "\\" in point else point)
    points.discard("/")
    return points


def run_helper(spec: dict) -> int:
    """The archive helper's work, after :func:`enter_root`; stdout/stdin
    carry the tar stream, errors go to stderr as one line."""
    import sys

    try:
        enter_root(spec)
        action = spec["action"]
        if action == "export":
            skip = _mount_points() if spec.get("pid") else set()
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                _add_tree(tar, "/", "", skip)
        elif action == "get":
            path = _container_path(spec["path"], spec.get("follow_link", False))
            with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                name = os.path.basename(path.rstrip("/")) or "/"
                if spec["path"].endswith("/.") and os.path.isdir(path):
                    _add_tree(tar, path, "", set(), include_root=False)
                else:
                    _add_tree(tar, path, name, set())
        elif action == "stat":
            path = _container_path(spec["path"], spec.get("follow_link", False))
            info = os.lstat(path)
            link = os.readlink(path) if os.path.islink(path) else ""
            sys.stdout.write(repr({"name": os.path.basename(path) or "/", "size": info.st_size,
                                   "mode": info.st_mode, "mtime": info.st_mtime, "linkTarget": link}))
        elif action == "put":
            target = spec["path"]
            if not os.path.isdir(target):
                raise UserError(f"could not find the directory {target} in the container",
                                hint="copy into an existing directory")
            with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
                for member in tar:
                    if not spec.get("archive_mode"):
                        member.uid = member.gid = 0
                        member.uname = member.gname = "root"
                    tar.extract(member, target, set_attrs=True, numeric_owner=True)
        return 0
    except (OSError, ContainersError) as error:
        message = str(error) if isinstance(error, ContainersError) else f"{error.strerror}: {spec.get('path', '')}"
        sys.stderr.write(message + "\n")
        return 2 if isinstance(error, FileNotFoundError) else 1


def _container_path(path: str, follow_link: bool) -> str:
    path = os.path.normpath("/" + path)
    if follow_link:
        path = os.path.realpath(path)
    os.lstat(path)
    return path


def _add_tree(tar, source: str, arcname: str, skip: set[str], include_root: bool = True) -> None:
    """Add ``source`` under ``arcname``, not following symlinks; below a
    mount point in ``skip`` only the mount point itself is added."""
    if include_root and arcname:
        tar.add(source, arcname, recursive=False)
    if not os.path.isdir(source) or os.path.islink(source) or source in skip:
        return
    for entry in sorted(os.listdir(source)):
        child = os.path.join(source, entry)
        name = f"{arcname}/{entry}" if arcname else entry
        _add_tree(tar, child, name, skip)


# --- the client's side --------------------------------------------------------------

def _helper_spec(runtime, name_or_id: str, action: str, **extra) -> tuple[str, dict]:
    container_id = runtime.store.resolve(name_or_id)
    record = runtime.store.read_config(container_id)
    state = runtime.store.load_state(container_id)
    directory = runtime.store.dir(container_id)
    spec = {"action": action, **extra}
    if state["Status"] in ("running", "paused"):
        spec["pid"] = state["Pid"]
    else:
        scratch = runtime.store.run_dir(container_id) / "archive-root"
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.update(
            rootfs=str(scratch),
            snapshots_dir=str(runtime.layout.snapshots),
            lowers=[f"{d.split(':', 1)[-1]}/fs" for d in reversed(record["Snapshots"])],
            upper=str(directory / "upper"),
            work=str(directory / "work"),
            writable=action == "put",
            mounts=[] if action == "export" else
            [{"source": m["Source"], "destination": m["Destination"]} for m in record["Mounts"]],
        )
    return container_id, spec


def _start_helper(runtime, container_id: str, spec: dict, *, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    from .runtime import hook_argv

    argv = hook_argv(str(runtime.store.dir(container_id))) + ["archive", marshal.dumps(spec).hex()]
    return subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(process: subprocess.Popen, what: str) -> None:
    error = process.stderr.read().decode("utf-8", "replace").strip()
    code = process.wait()
    if code == 2:
        raise NotFound(f"no such file or directory in the container: {error.split(': ', 1)[-1]}")
    if code:
        raise RuntimeFailure(f"{what} failed: {error or f'helper exit status {code}'}")


def _stream(process: subprocess.Popen, what: str, chunk_size: int) -> Iterator[bytes]:
    try:
        while True:
            chunk = process.stdout.read(chunk_size)
            if not chunk:
                break
            yield chunk
    finally:
        process.stdout.close()
        _finish(process, what)


def export(runtime, name_or_id: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
    container_id, spec = _helper_spec(runtime, name_or_id, "export")
    return _stream(_start_helper(runtime, container_id, spec), "export", chunk_size)


def stat_path(runtime, name_or_id: str, path: str, follow_link: bool = False) -> dict:
    import ast

    container_id, spec = _helper_spec(runtime, name_or_id, "stat", path=path, follow_link=follow_link)
    process = _start_helper(runtime, container_id, spec)
    output = process.stdout.read()
    _finish(process, "stat")
    return ast.literal_eval(output.decode())


def get_archive(runtime, name_or_id: str, path: str, chunk_size: int = CHUNK, follow_link: bool = False):
    stat = stat_path(runtime, name_or_id, path, follow_link)
    container_id, spec = _helper_spec(runtime, name_or_id, "get", path=path, follow_link=follow_link)
    return _stream(_start_helper(runtime, container_id, spec), "copy", chunk_size), stat


def put_archive(runtime, name_or_id: str, path: str, data, archive_mode: bool = False) -> None:
    container_id, spec = _helper_spec(runtime, name_or_id, "put", path=path, archive_mode=archive_mode)
    process = _start_helper(runtime, container_id, spec, stdin=subprocess.PIPE)
    try:
        if isinstance(data, (bytes, bytearray)):
            process.stdin.write(data)
        else:
            while True:
                chunk = data.read(CHUNK)
                if not chunk:
                    break
                process.stdin.write(chunk)
        process.stdin.close()
    except BrokenPipeError:
        pass
    process.stdout.read()
    _finish(process, "copy")


# --- docker cp --------------------------------------------------------------------

def copy_to(runtime, name_or_id: str, dest: str, source: str, *, follow_link: bool = False,
            archive_mode: bool = False) -> None:
    """``cp SOURCE CONTAINER:DEST`` with docker's rules: into ``DEST`` when
    it is a directory, else as ``DEST`` (its parent must exist)."""
    if not os.path.lexists(source):
        raise UserError(f"no such file or directory: {source}")
    if follow_link:
        source = os.path.realpath(source)
    try:
        target = stat_path(runtime, name_or_id, dest)
    except NotFound:
        target = None
    if target is not None and _is_dir(target["mode"]):
        directory, name = dest, os.path.basename(os.path.normpath(source))
    elif dest.endswith("/"):
        raise UserError(f"no such directory in the container: {dest}", hint="copy into an existing directory")
    elif target is not None and os.path.isdir(source):
        raise UserError(f"cannot copy a directory onto the file {dest}")
    else:
        directory, name = os.path.dirname(os.path.normpath("/" + dest)), os.path.basename(os.path.normpath(dest))
    import tempfile

    with tempfile.TemporaryFile() as staged:
        with tarfile.open(fileobj=staged, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(source, name)
        staged.seek(0)
        put_archive(runtime, name_or_id, directory, staged, archive_mode=archive_mode)


def copy_from(runtime, name_or_id: str, source: str, dest: str, *, follow_link: bool = False) -> None:
    """``cp CONTAINER:SOURCE DEST``: into ``DEST`` when it is a directory,
    else as ``DEST``. The container's tar is untrusted: extracted with
    tarfile's ``data`` filter (no absolute or escaping paths or links, no
    devices, no setuid), files owned by the caller, as docker does."""
    if not hasattr(tarfile, "data_filter"):
        raise UserError("cp out of a container needs Python 3.10.12, 3.11.4 or later (tarfile filters)")
    if os.path.isdir(dest):
        directory, rename = dest, None
    elif dest.endswith("/") or not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
        raise UserError(f"no such directory: {os.path.dirname(os.path.abspath(dest)) if not dest.endswith('/') else dest}")
    else:
        directory, rename = os.path.dirname(os.path.abspath(dest)), os.path.basename(dest)
    chunks, stat = get_archive(runtime, name_or_id, source, follow_link=follow_link)
    top = stat["name"]
    with tarfile.open(fileobj=_ChunkReader(chunks), mode="r|") as tar:
        for member in tar:
            if rename and (member.name == top or member.name.startswith(top + "/")):
                member.name = rename + member.name[len(top):]
            try:
                tar.extract(member, directory, filter="data")
            except tarfile.FilterError as error:
                raise UserError(f"refusing to copy {member.name} out of the container: {error}") from None


def _is_dir(mode: int) -> bool:
    import stat

    return stat.S_ISDIR(mode)


class _ChunkReader(io.RawIOBase):
    """A file object reading an iterator of byte chunks."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self.pending))
        buffer[:size] = self.pending[:size]
        self.pending = self.pending[size:]
        return size
