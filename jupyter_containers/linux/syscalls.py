"""Thin ctypes wrappers over the Linux syscalls the runtime needs.

Each wrapper raises ``OSError`` with the errno and the call's name on
failure. Only the standard library is imported here: this module is on the
container start path, in a fresh ``python -I -S`` interpreter.
"""

from __future__ import annotations

import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)

_MACHINE = os.uname().machine  # platform.machine() without importing platform (7 ms)

# Syscall numbers for calls glibc 2.36 has no wrapper for (or wraps badly).
_NUMBERS = {
    "x86_64": {"pivot_root": 155, "setns": 308, "seccomp": 317, "openat2": 437,
               "close_range": 436, "pidfd_open": 434, "pidfd_send_signal": 424,
               "capget": 125, "capset": 126, "unshare": 272, "bpf": 321},
    "aarch64": {"pivot_root": 41, "setns": 268, "seccomp": 277, "openat2": 437,
                "close_range": 436, "pidfd_open": 434, "pidfd_send_signal": 424,
                "capget": 90, "capset": 91, "unshare": 97, "bpf": 280},
}
NR = _NUMBERS.get(_MACHINE, {})

_syscall = libc.syscall
_syscall.restype = ctypes.c_long


def _check(result: int, name: str, detail: str = "") -> int:
    if result == -1:
        err = ctypes.get_errno()
        message = f"{name}: {os.strerror(err)}"
        if detail:
            message += f" ({detail})"
        raise OSError(err, message)
    return result


def syscall(name: str, *args) -> int:
    """Call syscall ``name`` by number; arguments must be ctypes-compatible."""
    try:
        number = NR[name]
    except KeyError:
        raise OSError(38, f"{name}: not supported on {_MACHINE}") from None
    return _check(_syscall(ctypes.c_long(number), *args), name)


# --- namespaces -----------------------------------------------------------

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "mnt": CLONE_NEWNS, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID, "cgroup": CLONE_NEWCGROUP, "user": CLONE_NEWUSER,
}


def unshare(flags: int) -> None:
    _check(libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


# --- mounts ---------------------------------------------------------------

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2

libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _b(value):
    if value is None:
        return None
    return os.fsencode(value)


def mount(source, target, fstype=None, flags: int = 0, data=None) -> None:
    data_b = _b(data)
    result = libc.mount(_b(source) or b"none", _b(target), _b(fstype), flags,
                        ctypes.c_char_p(data_b) if data_b is not None else None)
    _check(result, "mount", f"{fstype or 'bind'} on {os.fsdecode(_b(target))}")


def umount(target, flags: int = 0) -> None:
    _check(libc.umount2(_b(target), flags), "umount2", os.fsdecode(_b(target)))


def pivot_root(new_root, put_old) -> None:
    syscall("pivot_root", ctypes.c_char_p(_b(new_root)), ctypes.c_char_p(_b(put_old)))


# --- processes ------------------------------------------------------------

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(libc.prctl(option, arg2, arg3, arg4, arg5), "prctl", str(option))


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(libc.sethostname(ctypes.c_char_p(raw), ctypes.c_size_t(len(raw))), "sethostname")


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags))


CLOSE_RANGE_CLOEXEC = 4


def pidfd_open(pid: int) -> int:
    return syscall("pidfd_open", ctypes.c_int(pid), ctypes.c_uint(0))


# --- capabilities and seccomp ---------------------------------------------

_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capget() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) sets as 64-bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    syscall("capget", ctypes.byref(header), data)
    low, high = data
    return (low.effective | high.effective << 32, low.permitted | high.permitted << 32,
            low.inheritable | high.inheritable << 32)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(
        _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
        _CapData(effective >> 32, permitted >> 32, inheritable >> 32),
    )
    syscall("capset", ctypes.byref(header), data)


SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_filter(program: bytes, flags: int = 0) -> None:
    """Install a classic BPF program (an array of 8-byte ``sock_filter``)."""
    code = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(code))
    syscall("seccomp", ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags), ctypes.byref(fprog))


# --- paths ----------------------------------------------------------------

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10


class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = OpenHow(flags, mode, resolve)
    return syscall("openat2", ctypes.c_int(dirfd), ctypes.c_char_p(_b(path)),
                   ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))


# --- files ----------------------------------------------------------------


def syncfs(fd: int) -> None:
    """Flush the whole filesystem holding ``fd`` (one call instead of an
    fsync per file, for a freshly unpacked layer)."""
    _check(libc.syncfs(ctypes.c_int(fd)), "syncfs")
