"""Docker seccomp profiles: checking, choosing the rules for a container, and
compiling them with libseccomp (no root needed: nothing is loaded here)."""

import json
import os
import struct

import pytest

from jupyter_containers import errors
from jupyter_containers.linux import caps, seccomp

SYS_ADMIN = caps.NUMBERS["SYS_ADMIN"]
X86_64 = os.uname().machine == "x86_64"


@pytest.fixture(scope="module")
def default_profile():
    with open(seccomp.DEFAULT_PROFILE, "rb") as handle:
        return seccomp.parse_profile(handle.read(), seccomp.DEFAULT_PROFILE)


def rules_for(section, name):
    return [rule for rule in section["syscalls"] if name in rule["names"]]


def test_default_profile_is_docker_s_allow_list(default_profile):
    assert default_profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert default_profile["defaultErrnoRet"] == 1
    allowed = set(default_profile["syscalls"][0]["names"])
    assert {"read", "openat", "execve", "futex_requeue", "map_shadow_stack"} <= allowed
    assert "io_uring_setup" not in allowed  # blocked since docker 25
    assert {"keyctl", "add_key", "request_key", "pivot_root", "userfaultfd"}.isdisjoint(allowed)
    assert {"mount", "unshare", "setns", "bpf"}.isdisjoint(allowed)


def test_default_caps_choose_docker_s_rules(default_profile):
    section = seccomp.oci_seccomp(default_profile, caps.DOCKER_DEFAULT)
    if X86_64:
        assert section["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        assert rules_for(section, "arch_prctl") and rules_for(section, "modify_ldt")
    assert not rules_for(section, "mount")
    assert not rules_for(section, "s390_runtime_instr")
    # clone only without namespace flags, clone3 answered ENOSYS so libc falls back to clone
    [clone] = rules_for(section, "clone")
    assert clone["args"] == [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    [clone3] = rules_for(section, "clone3")
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38
    assert {rule["args"][0]["value"] for rule in rules_for(section, "personality")} == {
        0, 8, 0x20000, 0x20008, 0xFFFFFFFF}
    [socket] = rules_for(section, "socket")
    assert socket["args"] == [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]
    # ptrace needs no capability from kernel 4.8 on; kcmp needs CAP_SYS_PTRACE
    assert rules_for(section, "ptrace") and not rules_for(section, "kcmp")
    assert rules_for(section, "chroot")  # CAP_SYS_CHROOT is a default


def test_sys_admin_unlocks_mounts_and_namespaces(default_profile):
    section = seccomp.oci_seccomp(default_profile, caps.DOCKER_DEFAULT | {SYS_ADMIN})
    [admin] = [rule for rule in section["syscalls"] if "mount" in rule["names"]]
    assert {"umount2", "unshare", "setns", "clone", "clone3", "bpf"} <= set(admin["names"])
    assert rules_for(section, "clone") == [admin]  # the flag-checking clone rule is excluded
    assert rules_for(section, "clone3") == [admin]


def test_includes_need_every_cap_and_a_recent_enough_kernel():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["acct"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PACCT", "SYS_ADMIN"]}},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.1"}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "3.0"}},
        {"name": "reboot", "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["cap_sys_boot", "CAP_KILL"]}},
        {"name": "vhangup", "action": "SCMP_ACT_ALLOW"},
    ]}
    chosen = seccomp.oci_seccomp(profile, {caps.NUMBERS["SYS_PACCT"]})["syscalls"]
    assert chosen == [{"names": ["reboot"], "action": "SCMP_ACT_ALLOW"},
                      {"names": ["vhangup"], "action": "SCMP_ACT_ALLOW"}]
    both = {caps.NUMBERS["SYS_PACCT"], SYS_ADMIN, caps.NUMBERS["KILL"]}
    assert [rule["names"] for rule in seccomp.oci_seccomp(profile, both)["syscalls"]] == [["acct"], ["vhangup"]]


def test_plain_architectures_list_is_kept():
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}
    assert seccomp.oci_seccomp(profile, ())["architectures"] == ["SCMP_ARCH_X86_64"]


@pytest.mark.parametrize("text, problem", [
    (b"{", "Expecting property name"),
    (b"[]", "not a JSON object"),
    (b'{"syscalls": []}', "unknown action None"),
    (b'{"defaultAction": "SCMP_ACT_DENY"}', "unknown action 'SCMP_ACT_DENY'"),
    (b'{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}', "errnoRet -1"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {}}', "syscalls is not a list"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], '
     b'"action": "SCMP_ACT_ERRNO"}]}', "both 'name' and 'names'"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", '
     b'"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "syscalls[0].args[0].index"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", '
     b'"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SOMETIMES"}]}]}', "unknown op"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", '
     b'"includes": {"minKernel": "four"}}]}', "'four' is not a kernel version"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}', "SCMP_ACT_NOTIFY"),
    (b'{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}', "not supported"),
    (b"\xff\xfe", "invalid"),
])
def test_invalid_profile_is_a_one_line_user_error_naming_the_file(text, problem):
    with pytest.raises(errors.UserError) as raised:
        seccomp.parse_profile(text, "/profiles/mine.json")
    message = str(raised.value)
    assert message.startswith("seccomp profile /profiles/mine.json is invalid: ")
    assert problem in message
    assert "\n" not in message


RET_ENOSYS = (0x06, 0, 0, 0x50000 | 38)


def unpack(program: bytes):
    return [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


def libseccomp_part(program: bytes):
    """The instructions after the ENOSYS prologue."""
    code = unpack(program)
    return code[code.index(RET_ENOSYS) + 1:]


def test_compiled_program_starts_with_the_enosys_prologue(default_profile):
    program = seccomp.compile_bpf(seccomp.oci_seccomp(default_profile, caps.DOCKER_DEFAULT))
    assert len(program) % 8 == 0 and 100 < len(program) // 8 <= 4096
    code = unpack(program)
    assert code[0] == (0x20, 0, 0, 4)  # load the architecture
    enosys = code.index(RET_ENOSYS)
    assert code[enosys + 1] == (0x20, 0, 0, 4)  # libseccomp's own program reloads it
    if X86_64:
        # x86_64 and i386 numbers above futex_requeue (456, the newest this
        # profile and libseccomp know) jump to ENOSYS, the others on into
        # libseccomp's part
        checks = [(i, insn) for i, insn in enumerate(code[:enosys]) if insn[0] == 0x25 and insn[3] == 456]
        assert len(checks) == 2
        for index, (_op, true, false, _k) in checks:
            assert index + 1 + true == enosys and index + 1 + false == enosys + 1


def test_unknown_syscall_names_are_skipped_as_docker_does():
    base = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": [],
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}
    with_unknown = json.loads(json.dumps(base))
    with_unknown["syscalls"][0]["names"].append("no_such_syscall")
    assert seccomp.compile_bpf(with_unknown) == seccomp.compile_bpf(base)


def test_allow_by_default_has_no_prologue():
    section = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": [],
               "syscalls": [{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO"}]}
    assert RET_ENOSYS not in unpack(seccomp.compile_bpf(section))


def test_rule_matching_the_default_action_is_skipped():
    section = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": [], "syscalls": []}
    redundant = dict(section, syscalls=[{"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])
    assert libseccomp_part(seccomp.compile_bpf(redundant)) == libseccomp_part(seccomp.compile_bpf(section))


def test_unknown_architecture_names_the_profile():
    section = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"], "syscalls": []}
    with pytest.raises(errors.UserError, match="mine.json: unknown architecture 'SCMP_ARCH_VAX'"):
        seccomp.compile_bpf(section, "mine.json")


def test_missing_libseccomp_says_what_to_install(monkeypatch):
    monkeypatch.setattr(seccomp, "_LIBRARY", "libseccomp-not-installed.so.2")
    monkeypatch.setattr(seccomp, "_library", None)
    with pytest.raises(errors.HostUnsupported) as raised:
        seccomp.compile_bpf({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [], "syscalls": []})
    assert "install libseccomp2" in str(raised.value)
    assert "--security-opt seccomp=unconfined" in str(raised.value)
