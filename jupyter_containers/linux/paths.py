"""Paths inside a root that never lead out of it.

Every path that names something inside an image or a container's root (a
layer entry, a ``cp`` source or destination, a volume or mount target, the
root's ``/etc/passwd``) is resolved here, as if the root were ``/``: symlinks
are followed relative to the root, absolute link targets start at the root,
and ``..`` stops at the root. The kernel does this with
``openat2(RESOLVE_IN_ROOT)``; kernels without openat2 (before 5.6) get a walk
component by component over directory file descriptors that does the same
(as crun's ``chroot_realpath``). Either way nothing is done through a path
string a concurrent writer could swap: files are opened and created with
``*at`` calls on directory file descriptors, and the last component is never
followed outside the walk.

With ``follow=False`` no symlink may appear anywhere on the path (``ELOOP``):
the rule for unpacking layers, whose entries never legitimately pass through a
symlink.

Only the standard library is used: the container start path imports this in
a ``python -I -S`` interpreter. Errors are ``OSError`` with the errno of the
failing step.
"""

from __future__ import annotations

import errno
import os
import stat

from . import syscalls

#: Symlinks followed in one resolution before giving up, as the kernel does.
MAX_SYMLINKS = 40

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# None: not tried yet; then whether openat2 works on this kernel.
_openat2_works: bool | None = None


def components(path: str | bytes | os.PathLike) -> list[str]:
    """The names of ``path`` without empty and ``.`` components (``..`` kept)."""
    return [name for name in os.fsdecode(path).split("/") if name and name != "."]


def open_subdir(dirfd: int, name: str, *, create: bool = False, mode: int = 0o755) -> int:
    """Open the directory ``name`` in ``dirfd`` without following a symlink,
    creating it with ``mode`` when ``create`` is set and it is missing.
    A symlink gives ``ELOOP``, any other non-directory ``ENOTDIR``."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dirfd)
    except FileNotFoundError:
        if not create:
            raise
    try:
        os.mkdir(name, mode, dir_fd=dirfd)
    except FileExistsError:
        pass  # made by someone else meanwhile: open what is there
    return os.open(name, _DIR_FLAGS, dir_fd=dirfd)


def _open_root(root) -> tuple[int, bool]:
    """``(fd, owned)`` for a root given as a path or an open directory fd."""
    if isinstance(root, int):
        return root, False
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), True


def _walk(root_fd: int, path, *, follow: bool, follow_last: bool) -> tuple[int, list[str], list[str]]:
    """Resolve ``path`` in the root the way the kernel's RESOLVE_IN_ROOT does.

    Returns ``(dirfd, rest, resolved)``: an ``O_PATH`` fd of the deepest
    existing directory reached (the caller closes it), the names below it
    still to open or create (missing ones, or the last component when it is
    not a directory or not followed), and all resolved names from the root.
    """
    pending = list(reversed(components(path)))
    resolved: list[str] = []
    fds = [os.open(".", _PATH_FLAGS, dir_fd=root_fd)]
    links = 0
    try:
        while pending:
            name = pending.pop()
            existing = len(fds) - 1
            if name == "..":
                if len(resolved) > existing:
                    resolved.pop()
                elif resolved:
                    resolved.pop()
                    os.close(fds.pop())
                continue
            if len(resolved) > existing:
                resolved.append(name)  # below a missing component: lexical
                continue
            try:
                st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                resolved.append(name)
                continue
            if stat.S_ISLNK(st.st_mode) and (pending or follow_last):
                if not follow:
                    raise OSError(errno.ELOOP, f"{name} is a symlink", "/".join(resolved + [name]))
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", os.fsdecode(path))
                target = os.readlink(name, dir_fd=fds[-1])
                if target.startswith("/"):
                    while len(fds) > 1:
                        os.close(fds.pop())
                    resolved.clear()
                pending.extend(reversed([n for n in target.split("/") if n and n != "."]))
                continue
            resolved.append(name)
            if stat.S_ISDIR(st.st_mode):
                fds.append(os.open(name, _PATH_FLAGS, dir_fd=fds[-1]))
            elif pending:
                raise OSError(errno.ENOTDIR, "not a directory", "/".join(resolved))
        deepest = fds.pop()
        return deepest, resolved[len(fds):], resolved
    finally:
        for fd in fds:
            os.close(fd)


def _resolve_flags(follow: bool) -> int:
    flags = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
    if not follow:
        flags |= syscalls.RESOLVE_NO_SYMLINKS
    return flags


def _openat2(root_fd: int, path, flags: int, mode: int, follow: bool) -> int | None:
    """openat2 in the root, or None when this kernel has no openat2."""
    global _openat2_works
    if _openat2_works is False:
        return None
    if not flags & (os.O_CREAT | os.O_TMPFILE):
        mode = 0  # openat2 refuses a mode it would not use
    for _ in range(16):
        try:
            fd = syscalls.openat2(root_fd, os.fsdecode(path) or ".", flags | os.O_CLOEXEC, mode,
                                  _resolve_flags(follow))
        except OSError as error:
            if error.errno == errno.ENOSYS:
                _openat2_works = False
                return None
            _openat2_works = True
            if error.errno == errno.EAGAIN:
                continue  # a rename raced with the lookup: the kernel asks to retry
            raise OSError(error.errno, os.strerror(error.errno), os.fsdecode(path)) from None
        _openat2_works = True
        return fd
    raise OSError(errno.EAGAIN, "path kept changing during lookup", os.fsdecode(path))


def open_in_root(root, path, flags: int, mode: int = 0, *, follow: bool = True) -> int:
    """Open ``path`` inside ``root`` (a path or a directory fd) with
    ``os.open`` ``flags``; ``O_CREAT`` creates the file inside the root.
    ``O_NOFOLLOW`` keeps a symlink as the last component from being followed."""
    root_fd, owned = _open_root(root)
    try:
        fd = _openat2(root_fd, path, flags, mode, follow)
        if fd is not None:
            return fd
        dirfd, rest, _ = _walk(root_fd, path, follow=follow,
                               follow_last=not flags & os.O_NOFOLLOW)
        try:
            if len(rest) > 1:
                raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), os.fsdecode(path))
            # O_NOFOLLOW: a symlink put there after the walk fails instead of being followed.
            return os.open(rest[0] if rest else ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                           dir_fd=dirfd)
        finally:
            os.close(dirfd)
    finally:
        if owned:
            os.close(root_fd)


def open_dir_in_root(root, path, *, create: bool = False, mode: int = 0o755, follow: bool = True) -> int:
    """Open the directory ``path`` inside ``root`` (``O_RDONLY|O_DIRECTORY``),
    creating missing directories with ``mode`` when ``create`` is set."""
    root_fd, owned = _open_root(root)
    try:
        try:
            fd = _openat2(root_fd, path, os.O_RDONLY | os.O_DIRECTORY, 0, follow)
        except FileNotFoundError:
            if not create:
                raise
            fd = None
        if fd is not None:
            return fd
        dirfd, rest, _ = _walk(root_fd, path, follow=follow, follow_last=True)
        try:
            fd = os.open(".", _DIR_FLAGS, dir_fd=dirfd)
        finally:
            os.close(dirfd)
        for name in rest:
            try:
                child = open_subdir(fd, name, create=create, mode=mode)
            finally:
                os.close(fd)
            fd = child
        return fd
    finally:
        if owned:
            os.close(root_fd)


def open_parent(root, path, *, create: bool = False, follow: bool = True) -> tuple[int, str]:
    """``(dirfd, name)`` for creating or removing the entry ``path`` with
    ``*at`` calls: the directory holding it, resolved inside ``root``, and the
    entry's own name (not resolved). ``EINVAL`` when ``path`` names the root
    or ends in ``..``."""
    names = components(path)
    if not names or names[-1] == "..":
        raise OSError(errno.EINVAL, "path names no entry of its own", os.fsdecode(path))
    return open_dir_in_root(root, "/".join(names[:-1]), create=create, follow=follow), names[-1]


def resolve_in_root(root, path) -> str:
    """The host path of ``path`` inside ``root``, symlinks resolved inside the
    root; missing trailing components are kept as they are. The answer is a
    string and so may be stale by the time it is used: prefer the ``open_*``
    functions wherever something is opened or created."""
    root_fd, owned = _open_root(root)
    try:
        dirfd, _, resolved = _walk(root_fd, path, follow=True, follow_last=True)
        os.close(dirfd)
    finally:
        if owned:
            os.close(root_fd)
    base = os.fsdecode(root) if not isinstance(root, int) else os.readlink(f"/proc/self/fd/{root}")
    return os.path.join(base, *resolved) if resolved else base


def remove_at(dirfd: int, name: str) -> None:
    """Remove the entry ``name`` of ``dirfd`` and, for a directory, all it
    holds, never following a symlink. Iterative, so depth is bounded by open
    file descriptors rather than Python's recursion limit."""
    try:
        os.unlink(name, dir_fd=dirfd)
        return
    except IsADirectoryError:
        pass
    # Frames: [parent fd, name, fd, subdirectories still to remove or None].
    stack = [[dirfd, name, open_subdir(dirfd, name), None]]
    try:
        while stack:
            frame = stack[-1]
            parent, current, fd, subdirs = frame
            if subdirs is None:
                with os.scandir(fd) as entries:
                    listed = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
                subdirs = frame[3] = [child for child, is_dir in listed if is_dir]
                for child, is_dir in listed:
                    if not is_dir:
                        os.unlink(child, dir_fd=fd)
            if subdirs:
                child = subdirs.pop()
                stack.append([fd, child, open_subdir(fd, child), None])
                continue
            stack.pop()
            os.close(fd)
            os.rmdir(current, dir_fd=parent)
    finally:
        for frame in stack:
            os.close(frame[2])
