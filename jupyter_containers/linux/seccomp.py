"""Seccomp filters: Docker's default allow-list, or a user's own profile in
docker's JSON format, compiled with libseccomp and cached as raw BPF.

The work is split as docker splits it between dockerd and runc:

- :func:`oci_seccomp` picks the rules of a docker profile that apply to a
  container (its capabilities, this machine's architecture and kernel),
  giving the OCI ``linux.seccomp`` section dockerd hands to runc;
- :func:`compile_bpf` turns that into a BPF program with libseccomp;
- :func:`prepare` does both for a container and caches the program under
  ``<storage root>/cache/seccomp/<key>.bpf``, so a container start normally
  compiles nothing;
- :func:`load` installs a program: one seccomp(2) call in the container's
  init, just before exec.

:func:`load` runs in a fresh ``python -I -S`` interpreter on the start path,
so this module imports at the top only what :mod:`.syscalls` loads anyway
(ctypes, os, struct); json, hashlib, libseccomp and the storage
helpers are loaded by the compile side only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from .. import errors
from . import caps as capabilities
from . import syscalls

TYPE_CHECKING = False  # typing costs 4 ms of import time on the start path
if TYPE_CHECKING:
    from typing import Iterable

    from ..storage import Layout

UNCONFINED = "unconfined"
DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")

# Bump when the compiler's output changes for the same inputs, to retire cached programs.
_COMPILER_REVISION = b"1"
_LIBRARY = "libseccomp.so.2"
_BPF_MAXINSNS = 4096  # the kernel's limit on one classic BPF program

# platform.machine() -> (libseccomp's name for it, docker's name in "arches")
_MACHINES = {
    "x86_64": ("SCMP_ARCH_X86_64", "amd64"),
    "aarch64": ("SCMP_ARCH_AARCH64", "arm64"),
    "armv7l": ("SCMP_ARCH_ARM", "arm"),
    "i686": ("SCMP_ARCH_X86", "x86"),
    "ppc64le": ("SCMP_ARCH_PPC64LE", "ppc64le"),
    "s390x": ("SCMP_ARCH_S390X", "s390x"),
    "riscv64": ("SCMP_ARCH_RISCV64", "riscv64"),
}

_ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}
_NR_SCMP_ERROR = -1
_SCMP_FLTATR_CTL_OPTIMIZE = 8


def load(program: bytes) -> None:
    """Install a compiled filter on this process. no_new_privs must be set
    already, or CAP_SYS_ADMIN still held.

    The container's init reads the program (the file :func:`prepare` names)
    before pivot_root and the user switch, while the host path is still
    reachable and readable, and loads it last, just before exec.
    """
    syscalls.seccomp_set_filter(program)


# --- docker profiles --------------------------------------------------------

def parse_profile(raw: bytes, source: str) -> dict:
    """A docker seccomp profile, checked; ``source`` names it in errors."""
    import json

    try:
        profile = json.loads(raw)
        _check_profile(profile)
    except ValueError as error:  # also JSONDecodeError and UnicodeDecodeError
        raise errors.UserError(
            f"seccomp profile {source} is invalid: {error}",
            hint="fix it (docker's seccomp profile format) or use --security-opt seccomp=unconfined",
        ) from None
    return profile


def _check_profile(profile) -> None:
    if not isinstance(profile, dict):
        raise ValueError("the top level is not a JSON object")
    _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"), "defaultAction")
    if profile.get("listenerPath"):
        raise ValueError("listenerPath (SCMP_ACT_NOTIFY) is not supported")
    if profile.get("flags"):
        raise ValueError(f"flags {profile['flags']} are not supported")
    if profile.get("architectures") and profile.get("archMap"):
        raise ValueError("use either 'architectures' or 'archMap', not both")
    _strings(profile.get("architectures"), "architectures")
    for index, entry in enumerate(_list(profile.get("archMap"), "archMap")):
        where = f"archMap[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("architecture"), str):
            raise ValueError(f"{where} needs an 'architecture' name")
        _strings(entry.get("subArchitectures"), f"{where}.subArchitectures")
    for index, rule in enumerate(_list(profile.get("syscalls"), "syscalls")):
        where = f"syscalls[{index}]"
        if not isinstance(rule, dict):
            raise ValueError(f"{where} is not a JSON object")
        if rule.get("name") and rule.get("names"):
            raise ValueError(f"{where} has both 'name' and 'names'; use one")
        if not isinstance(rule.get("name", ""), str):
            raise ValueError(f"{where}.name is not a string")
        _strings(rule.get("names"), f"{where}.names")
        _action(rule.get("action"), rule.get("errnoRet"), f"{where}.action")
        for position, arg in enumerate(_list(rule.get("args"), f"{where}.args")):
            _check_arg(arg, f"{where}.args[{position}]")
        for key in ("includes", "excludes"):
            _check_condition(rule.get(key), f"{where}.{key}")


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where} is not a list")
    return value


def _strings(value, where: str) -> list:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{where} must hold strings only")
    return items


def _action(name, errno_ret, where: str) -> int:
    """The libseccomp action value for a docker action name."""
    if name not in _ACTIONS:
        raise ValueError(f"{where}: unknown action {name!r} (one of {', '.join(_ACTIONS)})")
    value = _ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        data = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(data, int) or isinstance(data, bool) or not 0 <= data <= 0xFFFF:
            raise ValueError(f"{where}: errnoRet {errno_ret!r} is not a number from 0 to 65535")
        value |= data
    return value


def _check_arg(arg, where: str) -> None:
    if not isinstance(arg, dict):
        raise ValueError(f"{where} is not a JSON object")
    index = arg.get("index")
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise ValueError(f"{where}.index must be an argument number from 0 to 5")
    for key in ("value", "valueTwo"):
        value = arg.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
            raise ValueError(f"{where}.{key} must be an unsigned 64-bit number")
    if arg.get("op") not in _OPERATORS:
        raise ValueError(f"{where}: unknown op {arg.get('op')!r} (one of {', '.join(_OPERATORS)})")


def _check_condition(condition, where: str) -> None:
    if condition is None:
        return
    if not isinstance(condition, dict):
        raise ValueError(f"{where} is not a JSON object")
    _strings(condition.get("arches"), f"{where}.arches")
    _strings(condition.get("caps"), f"{where}.caps")
    if condition.get("minKernel") is not None:
        _version(condition["minKernel"], f"{where}.minKernel")


def _version(text, where: str) -> tuple[int, int]:
    parts = text.split(".") if isinstance(text, str) else []
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError):
        raise ValueError(f"{where}: {text!r} is not a kernel version like \"4.8\"") from None


def _kernel_version() -> tuple[int, int]:
    return _version(os.uname().release.split("-")[0], "the running kernel")


def _machine() -> tuple[str, str]:
    machine = os.uname().machine
    try:
        return _MACHINES[machine]
    except KeyError:
        raise errors.HostUnsupported(
            f"seccomp profiles are not supported on {machine}",
            hint="use --security-opt seccomp=unconfined",
        ) from None


def oci_seccomp(profile: dict, caps: Iterable[int]) -> dict:
    """The OCI ``linux.seccomp`` section for a container with capability set
    ``caps``, chosen from a docker profile as dockerd chooses it:

    - architectures: this machine's and the sub-architectures its ``archMap``
      entry lists (or the profile's plain ``architectures``);
    - a rule applies unless its ``excludes`` names this architecture, any of
      the container's capabilities, or a ``minKernel`` the running kernel
      reaches; and only if its ``includes`` names this architecture, all of
      the capabilities it lists, and a ``minKernel`` the kernel reaches.
    """
    native, docker_arch = _machine()
    cap_names = {capabilities.name(cap) for cap in caps}
    kernel = _kernel_version()

    def matches(condition: dict, every_cap: bool) -> list[bool]:
        listed = [name.upper() if name.upper().startswith("CAP_") else "CAP_" + name.upper()
                  for name in condition.get("caps") or ()]
        held = [name in cap_names for name in listed]
        tests = []
        if condition.get("arches"):
            tests.append(docker_arch in condition["arches"])
        if listed:
            tests.append(all(held) if every_cap else any(held))
        if condition.get("minKernel") is not None:
            tests.append(kernel >= _version(condition["minKernel"], "minKernel"))
        return tests

    if profile.get("archMap"):
        architectures = []
        for entry in profile["archMap"]:
            if entry["architecture"] == native:
                architectures = [native, *(entry.get("subArchitectures") or ())]
    else:
        architectures = list(profile.get("architectures") or ())

    rules = []
    for rule in profile.get("syscalls") or ():
        if any(matches(rule.get("excludes") or {}, every_cap=False)):
            continue
        if not all(matches(rule.get("includes") or {}, every_cap=True)):
            continue
        chosen = {"names": rule.get("names") or [rule["name"]], "action": rule["action"]}
        if rule.get("errnoRet") is not None:
            chosen["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            chosen["args"] = rule["args"]
        rules.append(chosen)

    section = {"defaultAction": profile["defaultAction"], "architectures": architectures,
               "syscalls": rules}
    if profile.get("defaultErrnoRet") is not None:
        section["defaultErrnoRet"] = profile["defaultErrnoRet"]
    return section


# --- libseccomp ----------------------------------------------------------------

class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_library = None


def _libseccomp():
    global _library
    if _library is not None:
        return _library
    try:
        lib = ctypes.CDLL(_LIBRARY, use_errno=True)
    except OSError:
        raise errors.HostUnsupported(
            f"{_LIBRARY} (libseccomp) is not installed, so no seccomp profile can be compiled",
            hint="install libseccomp2 (apt-get install libseccomp2) or run with "
                 "--security-opt seccomp=unconfined",
        ) from None
    context = ctypes.c_void_p
    signatures = {
        "seccomp_init": (context, [ctypes.c_uint32]),
        "seccomp_release": (None, [context]),
        "seccomp_attr_set": (ctypes.c_int, [context, ctypes.c_int, ctypes.c_uint32]),
        "seccomp_arch_add": (ctypes.c_int, [context, ctypes.c_uint32]),
        "seccomp_arch_resolve_name": (ctypes.c_uint32, [ctypes.c_char_p]),
        "seccomp_syscall_resolve_name": (ctypes.c_int, [ctypes.c_char_p]),
        "seccomp_syscall_resolve_name_arch": (ctypes.c_int, [ctypes.c_uint32, ctypes.c_char_p]),
        "seccomp_rule_add_array": (ctypes.c_int, [context, ctypes.c_uint32, ctypes.c_int,
                                                  ctypes.c_uint, ctypes.POINTER(_ArgCmp)]),
        "seccomp_export_bpf": (ctypes.c_int, [context, ctypes.c_int]),
        "seccomp_version": (ctypes.POINTER(_Version), []),
    }
    for function, (restype, argtypes) in signatures.items():
        getattr(lib, function).restype = restype
        getattr(lib, function).argtypes = argtypes
    _library = lib
    return lib


def libseccomp_version() -> str:
    version = _libseccomp().seccomp_version().contents
    return f"{version.major}.{version.minor}.{version.micro}"


def _arch_token(lib, name: str, source: str) -> int:
    # docker spells them SCMP_ARCH_X86_64, libseccomp x86_64
    token = lib.seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode())
    if not token:
        raise errors.UserError(f"seccomp profile {source}: unknown architecture {name!r}")
    return token


def _condition_groups(args: list[dict]) -> list:
    """The argument comparisons of one rule as arrays for
    ``seccomp_rule_add_array``: one array (all must hold), or, when an
    argument is compared twice, one rule per comparison (any may hold), as
    runc does — libseccomp cannot compare one argument twice in a rule."""
    comparisons = [_ArgCmp(arg["index"], _OPERATORS[arg["op"]], arg.get("value", 0),
                           arg.get("valueTwo", 0)) for arg in args]
    indexes = [arg["index"] for arg in args]
    groups = [[c] for c in comparisons] if len(set(indexes)) < len(indexes) else [comparisons]
    return [(ctypes.c_uint(len(group)), (_ArgCmp * len(group))(*group) if group else None)
            for group in groups]


def compile_bpf(section: dict, source: str = "seccomp profile") -> bytes:
    """A BPF program (``struct sock_filter[]``) for an OCI seccomp section.

    Syscall names libseccomp does not know are skipped, as docker does. When
    the default action returns an errno, syscalls numbered above the highest
    one the profile names get ENOSYS instead (see :func:`_enosys_prologue`).
    """
    lib = _libseccomp()
    default = _action(section["defaultAction"], section.get("defaultErrnoRet"), "defaultAction")
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise errors.RuntimeFailure("libseccomp could not create a filter")
    try:
        # A binary search tree of syscall numbers rather than a list: the same
        # decisions, but the kernel prepares it twice as fast at load time (it
        # runs the filter for every syscall number to build its action cache).
        # libseccomp before 2.5 lacks the option and keeps the list.
        lib.seccomp_attr_set(ctx, _SCMP_FLTATR_CTL_OPTIMIZE, 2)
        native = _arch_token(lib, _machine()[0], source)
        tokens = [native] + [_arch_token(lib, name, source) for name in section["architectures"]]
        for token in tokens:
            result = lib.seccomp_arch_add(ctx, token)
            if result < 0 and result != -errno.EEXIST:
                raise errors.HostUnsupported(f"libseccomp cannot add architecture {token:#x}: "
                                             f"{os.strerror(-result)}")
        highest = dict.fromkeys(tokens, -1)
        for rule in section["syscalls"]:
            action = _action(rule["action"], rule.get("errnoRet"), "action")
            groups = _condition_groups(rule.get("args") or [])
            for name in rule["names"]:
                encoded = name.encode()
                for token in highest:
                    highest[token] = max(highest[token],
                                         lib.seccomp_syscall_resolve_name_arch(token, encoded))
                number = lib.seccomp_syscall_resolve_name(encoded)
                if number == _NR_SCMP_ERROR or action == default:
                    continue
                for count, array in groups:
                    result = lib.seccomp_rule_add_array(ctx, action, number, count, array)
                    if result < 0:
                        raise errors.UserError(
                            f"seccomp profile {source}: the rule for {name} is rejected by "
                            f"libseccomp: {os.strerror(-result)}")
        program = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    if section["defaultAction"] == "SCMP_ACT_ERRNO":
        program = _enosys_prologue(highest) + program
    if len(program) // 8 > _BPF_MAXINSNS:
        raise errors.UserError(
            f"seccomp profile {source} compiles to {len(program) // 8} BPF instructions, "
            f"more than the kernel's limit of {_BPF_MAXINSNS}", hint="simplify the profile")
    return program


def _export(lib, ctx) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        result = lib.seccomp_export_bpf(ctx, fd)
        if result < 0:
            raise errors.RuntimeFailure(f"libseccomp could not export the filter: {os.strerror(-result)}")
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGT_K, _BPF_JGE_K, _BPF_JA = 0x20, 0x15, 0x25, 0x35, 0x05
_BPF_RET_K = 0x06
_SECCOMP_DATA_NR, _SECCOMP_DATA_ARCH = 0, 4
_SECCOMP_RET_ERRNO = 0x00050000
_AUDIT_ARCH_X86_64 = 0xC000003E
# libseccomp's token for x32; the kernel reports x32 calls as x86_64 ones
# with this bit set in the number.
_SCMP_ARCH_X32 = 0x4000003E
_X32_SYSCALL_BIT = 0x40000000


def _enosys_prologue(highest: dict[int, int]) -> bytes:
    """BPF to run before libseccomp's program: a syscall numbered above the
    highest one the profile names for its architecture fails with ENOSYS.

    A syscall newer than the profile (or than libseccomp) would otherwise get
    the default EPERM, and the C library only falls back to an older call
    (fchmodat2 to fchmodat, clone3 to clone) on ENOSYS. runc does the same.
    libseccomp's program starts by loading the architecture again, so control
    can fall into it from anywhere here.
    """
    code = [(_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARCH)]
    for token, top in highest.items():
        if token == _SCMP_ARCH_X32 or top < 0:
            continue
        body = [(_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_NR)]
        if token == _AUDIT_ARCH_X86_64:
            x32_top = highest.get(_SCMP_ARCH_X32, -1)
            if x32_top < 0:
                body.append((_BPF_JGE_K, "filter", 0, _X32_SYSCALL_BIT))
            else:
                body += [(_BPF_JGE_K, 0, 1, _X32_SYSCALL_BIT),
                         (_BPF_JGT_K, "enosys", "filter", x32_top)]
        body.append((_BPF_JGT_K, "enosys", "filter", top))
        code.append((_BPF_JEQ_K, 0, len(body), token))
        code += body
    code.append((_BPF_JA, 0, 0, 1))
    labels = {"enosys": len(code), "filter": len(code) + 1}
    code.append((_BPF_RET_K, 0, 0, _SECCOMP_RET_ERRNO | errno.ENOSYS))
    return b"".join(
        struct.pack("=HBBI", op, labels[jt] - i - 1 if jt in labels else jt,
                    labels[jf] - i - 1 if jf in labels else jf, k)
        for i, (op, jt, jf, k) in enumerate(code))


# --- per container -------------------------------------------------------------

def prepare(profile: str | None, caps: Iterable[int], layout: Layout, *,
            privileged: bool = False) -> str | None:
    """The seccomp filter for a container, as the path of its compiled BPF
    program in ``layout``'s cache, compiled on first use; None when the
    container runs without one (``profile`` "unconfined", or ``privileged``:
    docker runs privileged containers unconfined).

    ``profile`` is the path of a docker-format profile; None or "" means the
    built-in copy of Docker's default. The cache key covers everything the
    program depends on: the profile's bytes, the capability set, the machine,
    the kernel version (``minKernel``) and libseccomp's version.
    """
    if privileged or profile == UNCONFINED:
        return None
    import hashlib

    source = profile or DEFAULT_PROFILE
    try:
        with open(source, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise errors.UserError(f"cannot read seccomp profile {source}: {error.strerror}",
                               hint="give the path of a JSON profile, or unconfined") from None
    caps = frozenset(caps)
    key = hashlib.sha256(b"\0".join([
        _COMPILER_REVISION, raw, b"%x" % capabilities.mask(caps), _machine()[0].encode(),
        libseccomp_version().encode(), b"%d.%d" % _kernel_version(),
    ])).hexdigest()
    cache = layout.cache / "seccomp"
    path = cache / f"{key}.bpf"
    if not path.exists():
        from ..storage import write_atomic

        program = compile_bpf(oci_seccomp(parse_profile(raw, source), caps), source)
        cache.mkdir(parents=True, exist_ok=True)
        write_atomic(path, program)
    return str(path)
