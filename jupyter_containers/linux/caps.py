"""Linux capabilities: names, Docker's defaults, ``--cap-add``/``--cap-drop``/
``--privileged``, and switching the container's process to its user.

:func:`resolve` runs in the client before a container starts; :func:`apply`
runs in the container's init between fork and exec, in a ``python -I -S``
interpreter, so this module imports only the standard library.

Capability sets are ``frozenset``\\ s of capability numbers (``CAP_CHOWN`` is 0).
"""

from __future__ import annotations

import errno
import os

from .. import errors
from . import syscalls

TYPE_CHECKING = False  # typing costs 4 ms of import time on the start path
if TYPE_CHECKING:
    from typing import Iterable

#: Capability names without the ``CAP_`` prefix, indexed by number
#: (capabilities(7), up to CAP_CHECKPOINT_RESTORE of Linux 5.9).
NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}

#: The 14 capabilities docker gives a container (moby's oci/caps defaults).
DOCKER_DEFAULT = frozenset(NUMBERS[name] for name in (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
))

ALL = "ALL"


def name(number: int) -> str:
    """``CAP_<NAME>``; a capability newer than this table is ``CAP_<number>``."""
    return f"CAP_{NAMES[number]}" if number < len(NAMES) else f"CAP_{number}"


def mask(caps: Iterable[int]) -> int:
    """The 64-bit mask the kernel uses (and /proc/PID/status shows)."""
    result = 0
    for cap in caps:
        result |= 1 << cap
    return result


def normalize(raw: str, flag: str) -> str:
    """Docker's spelling rules: any case, with or without ``CAP_``; ``ALL``."""
    upper = raw.strip().upper()
    if upper == ALL:
        return ALL
    bare = upper[4:] if upper.startswith("CAP_") else upper
    if bare not in NUMBERS:
        raise errors.UserError(
            f"unknown capability {raw!r} in {flag}",
            hint="use a name from capabilities(7) such as NET_ADMIN or CAP_NET_ADMIN, or ALL",
        )
    return bare


def _known_to_kernel(cap: int) -> bool:
    try:
        syscalls.prctl(syscalls.PR_CAPBSET_READ, cap)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    return True


def last_cap() -> int:
    """The kernel's highest capability number (its ``cap_last_cap``), found
    by bisecting PR_CAPBSET_READ, which works before /proc is mounted and
    costs six calls."""
    low, high = 0, 63
    while low < high:
        middle = (low + high + 1) // 2
        if _known_to_kernel(middle):
            low = middle
        else:
            high = middle - 1
    return low


def host_capabilities() -> frozenset[int]:
    """What this process can hand to a container: its permitted set within its
    bounding set. Hosts and sandboxes often withhold some (CAP_SYS_RESOURCE on
    the project's test machines)."""
    _effective, permitted, _inheritable = syscalls.capget()
    return frozenset(cap for cap in range(last_cap() + 1)
                     if permitted >> cap & 1 and syscalls.prctl(syscalls.PR_CAPBSET_READ, cap))


def resolve(cap_add: Iterable[str] = (), cap_drop: Iterable[str] = (), privileged: bool = False,
            available: Iterable[int] | None = None) -> frozenset[int]:
    """The container's capability set, by docker's rules (moby's
    ``TweakCapabilities``):

    - ``privileged``: every capability (``cap_add``/``cap_drop`` are ignored);
    - ``cap_add`` holding ``ALL``: every capability but those in ``cap_drop``;
    - ``cap_drop`` holding ``ALL``: exactly ``cap_add``;
    - otherwise docker's 14 defaults, minus ``cap_drop``, plus ``cap_add``.

    "Every capability" means every one ``available`` (default: this host's,
    :func:`host_capabilities`), so ``--privileged`` works on a host that
    withholds some. A capability named in ``cap_add`` that the host withholds
    is an error rather than a silent omission; a default the host withholds is
    left out.
    """
    available = host_capabilities() if available is None else frozenset(available)
    adds = [normalize(raw, "--cap-add") for raw in cap_add]
    drops = [normalize(raw, "--cap-drop") for raw in cap_drop]
    if privileged:
        return available
    if ALL in adds:
        return available - {NUMBERS[cap] for cap in drops if cap != ALL}
    named = {NUMBERS[cap] for cap in adds}
    missing = sorted(named - available)
    if missing:
        raise errors.HostUnsupported(
            f"capability {', '.join(name(cap) for cap in missing)} is not available on this host "
            "(the runtime itself does not hold it)",
            hint="remove it from --cap-add",
        )
    if ALL in drops:
        return frozenset(named)
    return frozenset((DOCKER_DEFAULT & available) - {NUMBERS[cap] for cap in drops}) | named


def apply(caps: Iterable[int], uid: int, gid: int, groups: Iterable[int] = ()) -> None:
    """Become the container's user with the capability set ``caps``, in the
    order runc uses:

    1. drop every other capability from the bounding set (needs CAP_SETPCAP,
       so before anything else);
    2. PR_SET_KEEPCAPS, so the permitted set survives a change from uid 0;
    3. setgroups, setresgid, setresuid;
    4. clear PR_SET_KEEPCAPS, then capset and clear the ambient set.

    As docker does, a container running as uid 0 gets ``caps`` as its
    effective and permitted sets; any other user gets them only as the
    bounding set, with empty effective, permitted, inheritable and ambient
    sets — what execve would leave a non-root user anyway. Such a process
    gains capabilities only from file capabilities of a binary it executes,
    and not even then under no_new_privs, our default.

    Call this after the last step that needs privilege (mounts, pivot_root),
    then set no_new_privs, load the seccomp filter and exec. Without
    no_new_privs, load the seccomp filter *before* this (installing a filter
    needs CAP_SYS_ADMIN or no_new_privs); Docker's profile allows every call
    made here.
    """
    keep = mask(caps)
    for cap in range(last_cap() + 1):
        if not keep >> cap & 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(groups))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)
    granted = keep if uid == 0 else 0
    syscalls.capset(granted, granted, 0)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
