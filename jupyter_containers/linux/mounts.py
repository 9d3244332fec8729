"""Assembling a container's root filesystem: overlay, /proc, /dev, /sys,
binds, masked paths, pivot_root.

Runs in the container's first process (PID 1 of its new PID namespace, in a
new mount namespace) before it execs the entrypoint. Every mount target
inside the root is opened with ``openat2(RESOLVE_IN_ROOT)`` and mounted
through its ``/proc/self/fd/N`` path, so a symlink in the image can never
redirect a mount onto the host (the runc CVE-2021-30465 class).

Standard library only: this is on the start path.
"""

from __future__ import annotations

import errno
import os
import stat

from . import paths
from . import syscalls as sc

# Docker's default /dev (and the flags runc mounts it with).
DEV_NODES = (
    ("null", stat.S_IFCHR, 1, 3),
    ("zero", stat.S_IFCHR, 1, 5),
    ("full", stat.S_IFCHR, 1, 7),
    ("random", stat.S_IFCHR, 1, 8),
    ("urandom", stat.S_IFCHR, 1, 9),
    ("tty", stat.S_IFCHR, 5, 0),
)
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
    ("core", "/proc/kcore"),
)

# Docker's masked and read-only /proc and /sys paths.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)

NOSUID_NODEV_NOEXEC = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def make_rslave() -> None:
    """Stop mounts made in the container from propagating to the host, while
    still letting host unmounts propagate in (runc's default, rslave)."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_SLAVE)


def mount_overlay(target: str, lowers: list[str], upper: str | None, work: str | None,
                  *, base_dir: str | None = None) -> None:
    """Mount an overlay at ``target``. ``lowers`` are top layer first. With
    ``base_dir`` the layer paths are given relative to it (the mount option
    string is limited to a page, so long absolute paths cap the layer count)."""
    if base_dir is not None:
        previous = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        os.chdir(base_dir)
    try:
        options = "lowerdir=" + ":".join(lowers)
        if upper is not None:
            options += f",upperdir={upper},workdir={work}"
        if len(lowers) == 1 and upper is None:
            # overlayfs needs two lowers without an upper; bind instead.
            sc.mount(lowers[0], target, None, sc.MS_BIND | sc.MS_REC)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
            return
        sc.mount("overlay", target, "overlay", 0, options)
    finally:
        if base_dir is not None:
            os.fchdir(previous)
            os.close(previous)


def open_target(root: str, dest: str, *, directory: bool) -> int:
    """Open (creating if missing) the mount target ``dest`` inside ``root``
    and return an fd; the mount goes onto ``/proc/self/fd/N``. Symlinks on
    the way resolve inside the root, as for every path into a container."""
    if directory:
        return paths.open_dir_in_root(root, dest, create=True)
    try:
        return paths.open_in_root(root, dest, O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        dirfd, name = paths.open_parent(root, dest, create=True)
        try:
            os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=dirfd))
        finally:
            os.close(dirfd)
        return paths.open_in_root(root, dest, O_PATH | os.O_CLOEXEC)


O_PATH = getattr(os, "O_PATH", 0o10000000)


def mount_at(root: str, dest: str, source, fstype, flags: int = 0, data=None, *,
             directory: bool = True) -> None:
    fd = open_target(root, dest, directory=directory)
    try:
        sc.mount(source, fd_path(fd), fstype, flags, data)
    finally:
        os.close(fd)


def bind_at(root: str, source: str, dest: str, *, readonly: bool = False,
            recursive: bool = True, flags: int = 0) -> None:
    """Bind ``source`` (a host path or an fd path) onto ``dest`` inside root."""
    is_dir = os.path.isdir(source)
    fd = open_target(root, dest, directory=is_dir)
    try:
        sc.mount(source, fd_path(fd), None, sc.MS_BIND | (sc.MS_REC if recursive else 0))
    finally:
        os.close(fd)
    if readonly or flags:
        # A bind mount takes new flags only on a remount, of the new mount:
        # look the target up again (the old fd still names what is below).
        # The locked flags of the source (nosuid, nodev, noexec) are kept.
        fd = paths.open_in_root(root, dest, O_PATH | os.O_CLOEXEC)
        try:
            target = fd_path(fd)
            keep = _locked_flags(target)
            sc.mount(None, target, None,
                     sc.MS_BIND | sc.MS_REMOUNT | keep | flags | (sc.MS_RDONLY if readonly else 0))
        finally:
            os.close(fd)


def _locked_flags(path: str) -> int:
    st = os.statvfs(path)
    flags = 0
    if st.f_flag & os.ST_NOSUID:
        flags |= sc.MS_NOSUID
    if st.f_flag & os.ST_NODEV:
        flags |= sc.MS_NODEV
    if st.f_flag & os.ST_NOEXEC:
        flags |= sc.MS_NOEXEC
    if st.f_flag & os.ST_RDONLY:
        flags |= sc.MS_RDONLY
    return flags


def setup_dev(root: str, *, console: str | None = None, shm_size: int = 64 << 20,
              extra_devices: tuple = ()) -> None:
    """A minimal /dev: tmpfs with Docker's device nodes, devpts, shm, mqueue."""
    mount_at(root, "/dev", "tmpfs", "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    dev = paths.open_dir_in_root(root, "/dev")
    try:
        old_umask = os.umask(0)
        try:
            for name, kind, major, minor in DEV_NODES + tuple(extra_devices):
                os.mknod(name, kind | 0o666, os.makedev(major, minor), dir_fd=dev)
            for name, target in DEV_LINKS:
                os.symlink(target, name, dir_fd=dev)
            for name in ("pts", "shm", "mqueue"):
                os.mkdir(name, 0o755, dir_fd=dev)
        finally:
            os.umask(old_umask)
    finally:
        os.close(dev)
    mount_at(root, "/dev/pts", "devpts", "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    mount_at(root, "/dev/shm", "shm", "tmpfs", NOSUID_NODEV_NOEXEC, f"mode=1777,size={shm_size}")
    mount_at(root, "/dev/mqueue", "mqueue", "mqueue", NOSUID_NODEV_NOEXEC)
    if console:
        bind_at(root, console, "/dev/console", recursive=False)


def setup_sys(root: str, *, readonly: bool = True, cgroup_mounts: tuple = ()) -> None:
    """sysfs read-only, and the container's own cgroups read-only below it.

    ``cgroup_mounts`` is a tuple of ``(fstype, options, subdir)``: for cgroup
    v2 ``("cgroup2", None, "")``; for v1 one ``("cgroup", "memory", "memory")``
    per controller over a tmpfs."""
    flags = NOSUID_NODEV_NOEXEC | (sc.MS_RDONLY if readonly else 0)
    try:
        mount_at(root, "/sys", "sysfs", "sysfs", flags)
    except PermissionError:
        # Sharing the host's network namespace without owning it (rootless
        # --network host) forbids a new sysfs: bind the host's instead.
        bind_at(root, "/sys", "/sys", readonly=True)
    if not cgroup_mounts:
        return
    ro = sc.MS_RDONLY if readonly else 0
    if cgroup_mounts[0][0] == "cgroup2":
        mount_at(root, "/sys/fs/cgroup", "cgroup", "cgroup2", NOSUID_NODEV_NOEXEC | ro)
        return
    mount_at(root, "/sys/fs/cgroup", "tmpfs", "tmpfs", NOSUID_NODEV_NOEXEC, "mode=755")
    for fstype, options, subdir in cgroup_mounts:
        mount_at(root, "/sys/fs/cgroup/" + subdir, "cgroup", fstype, NOSUID_NODEV_NOEXEC | ro, options)
    sc.mount(None, os.path.join(root, "sys/fs/cgroup"), None,
             sc.MS_REMOUNT | sc.MS_BIND | NOSUID_NODEV_NOEXEC | ro)


def pivot(root: str) -> None:
    """Make ``root`` the process's ``/`` and drop the old root entirely
    (pivot_root(".", ".") then a lazy unmount of the old root, as runc
    does: no directory for the old root is needed inside the image)."""
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    new = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")
        os.fchdir(old)
        # The old root is stacked on top of the new one; make it slave so
        # the unmount does not propagate to the host, then detach it.
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount(".", sc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def mask_paths(masked=MASKED_PATHS) -> None:
    """Hide host information under /proc and /sys (after pivot_root)."""
    for path in masked:
        try:
            if os.path.isdir(path):
                sc.mount("tmpfs", path, "tmpfs", sc.MS_RDONLY, "size=0")
            else:
                sc.mount("/dev/null", path, None, sc.MS_BIND)
        except FileNotFoundError:
            continue
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise


def readonly_paths(readonly=READONLY_PATHS) -> None:
    for path in readonly:
        try:
            sc.mount(path, path, None, sc.MS_BIND | sc.MS_REC)
        except FileNotFoundError:
            continue
        keep = _locked_flags(path)
        sc.mount(None, path, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | keep)


def remount_root_readonly() -> None:
    sc.mount(None, "/", None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | _locked_flags("/"))
