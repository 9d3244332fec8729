"""Device access control for cgroup v2: an eBPF ``BPF_PROG_TYPE_CGROUP_DEVICE``
program built from allow rules, loaded with ``bpf(2)`` and attached to a
cgroup directory.

cgroup v2 has no ``devices.allow``/``devices.deny`` files; the kernel instead
runs the device programs attached to a process's cgroup (and, with
``BPF_F_ALLOW_MULTI``, to its ancestors) on every open and mknod of a device
node. Standard library only: imported on the container start path.
"""

from __future__ import annotations

import ctypes
import os
import struct

from .syscalls import syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
# Ancestors' programs keep running too (a device must pass all of them), so a
# host policy on a parent cgroup still applies and a container can only narrow
# its own access further.
BPF_F_ALLOW_MULTI = 2

# struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type, major, minor
_CTX_ACCESS_TYPE, _CTX_MAJOR, _CTX_MINOR = 0, 4, 8
DEVICE_TYPES = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}

# Instruction opcodes (class | operation | source).
_LDX_MEM_W = 0x61
_ALU32_MOV_X = 0xBC
_ALU32_AND_K = 0x54
_ALU32_RSH_K = 0x74
_ALU64_MOV_K = 0xB7
_JNE_K = 0x55
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def device_filter(allowed) -> bytes:
    """The program text for a default-deny device policy.

    ``allowed`` holds ``(type, major, minor, access)`` rules: type ``"b"``,
    ``"c"`` or ``"a"`` (any), major/minor a number or ``None`` for any,
    access a combination of ``"r"``, ``"w"``, ``"m"``. A request is allowed
    when some rule covers its type, numbers and every access bit it asks for.
    """
    # r2 = device type, r3 = requested access, r4 = major, r5 = minor
    head = [
        _insn(_LDX_MEM_W, dst=2, src=1, off=_CTX_ACCESS_TYPE),
        _insn(_ALU32_MOV_X, dst=3, src=2),
        _insn(_ALU32_AND_K, dst=2, imm=0xFFFF),
        _insn(_ALU32_RSH_K, dst=3, imm=16),
        _insn(_LDX_MEM_W, dst=4, src=1, off=_CTX_MAJOR),
        _insn(_LDX_MEM_W, dst=5, src=1, off=_CTX_MINOR),
    ]
    body = []
    for kind, major, minor, access in allowed:
        mask = 0
        for letter in access:
            mask |= ACCESS_BITS[letter]
        # Each check jumps past the rest of this rule when it does not match.
        checks = []
        if kind != "a":
            checks.append((2, DEVICE_TYPES[kind], None))
        if mask != 7:
            # r1 (the context) is no longer needed: reuse it for access & ~mask
            checks.append((1, 0, [_insn(_ALU32_MOV_X, dst=1, src=3),
                                  _insn(_ALU32_AND_K, dst=1, imm=~mask & 0xFFFF)]))
        if major is not None:
            checks.append((4, major, None))
        if minor is not None:
            checks.append((5, minor, None))
        accept = [_insn(_ALU64_MOV_K, dst=0, imm=1), _insn(_EXIT)]
        block: list[bytes] = accept
        for register, value, prelude in reversed(checks):
            block = (prelude or []) + [_insn(_JNE_K, dst=register, off=len(block), imm=value)] + block
        body += block
    deny = [_insn(_ALU64_MOV_K, dst=0, imm=0), _insn(_EXIT)]
    return b"".join(head + body + deny)


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [
        ("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32), ("prog_name", ctypes.c_char * 16),
        ("prog_ifindex", ctypes.c_uint32), ("expected_attach_type", ctypes.c_uint32),
    ]


class _ProgAttachAttr(ctypes.Structure):
    _fields_ = [
        ("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
        ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
        ("replace_bpf_fd", ctypes.c_uint32),
    ]


def _bpf(command: int, attr: ctypes.Structure) -> int:
    return syscall("bpf", ctypes.c_int(command), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))


def load_device_program(program: bytes) -> int:
    """Load a device program; returns its file descriptor. A program the
    verifier refuses raises OSError carrying the verifier's log."""
    text = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"BSD")
    attr = _ProgLoadAttr(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(program) // 8,
        insns=ctypes.addressof(text), license=ctypes.addressof(license),
        prog_name=b"jc_devices", expected_attach_type=BPF_CGROUP_DEVICE,
    )
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as error:
        if error.errno != 22:  # EINVAL: rerun with a log to say why
            raise
        log = ctypes.create_string_buffer(65536)
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError as again:
            raise OSError(again.errno, f"bpf: device program refused: {log.value.decode(errors='replace')}") from None


def attach_device_filter(cgroup_dir: str, allowed) -> None:
    """Restrict the processes of the cgroup v2 directory ``cgroup_dir`` (and
    its descendants) to the devices in ``allowed`` (see :func:`device_filter`).
    The attachment keeps the program alive; it goes away with the cgroup."""
    program = load_device_program(device_filter(allowed))
    try:
        target = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _bpf(BPF_PROG_ATTACH, _ProgAttachAttr(
                target_fd=target, attach_bpf_fd=program,
                attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI))
        finally:
            os.close(target)
    finally:
        os.close(program)
