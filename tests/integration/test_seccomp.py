"""Seccomp filters compiled by the runtime, cached, and loaded into real
processes, which then try syscalls; checked against crun and runc given the
same rules as dockerd gives runc."""

import json
import os
import time
from pathlib import Path

import pytest

from jupyter_containers import errors
from jupyter_containers.linux import caps, seccomp
from tests.fixtures.security_probe import run_with_runtime

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe's syscall numbers are x86_64's"),
]

# What docker's default profile refuses a container with the default capabilities
REFUSED = {
    "mount", "umount2", "setns", "pivot_root", "keyctl", "add_key", "bpf", "perf_event_open",
    "kcmp", "personality_addr_no_randomize", "socket_vsock", "io_uring_setup", "userfaultfd",
    "sethostname", "unshare_newns", "unshare_newuser", "clone_newuser",
}
ALLOWED = {"getpid", "fork", "thread", "socket_unix", "personality_query", "process_vm_readv"}


@pytest.fixture
def default_filter(storage_root):
    return seccomp.prepare(None, caps.DOCKER_DEFAULT, storage_root)


def test_default_container(default_filter):
    result = run_with_runtime(caps.DOCKER_DEFAULT, default_filter)
    assert result.status["Seccomp"] == "2"
    assert result.status["NoNewPrivs"] == "1"
    assert result.status["CapEff"] == "00000000a80425fb"
    assert {name: result.calls[name] for name in REFUSED} == dict.fromkeys(REFUSED, "EPERM")
    assert {name: result.calls[name] for name in ALLOWED} == dict.fromkeys(ALLOWED, "ok")
    assert result.calls["ptrace"] == "ESRCH"  # allowed from kernel 4.8 on, as in docker
    assert result.calls["chroot"] == "ENOENT"  # CAP_SYS_CHROOT is a default
    assert result.calls["clone3"] == "ENOSYS"  # so that libc falls back to clone
    assert result.calls["listmount"] == "ENOSYS"  # newer than the profile: runc's answer


def test_the_filter_refuses_even_with_every_capability(default_filter):
    unfiltered = run_with_runtime(None, None)
    assert unfiltered.status["Seccomp"] == "0"
    assert unfiltered.calls["mount"] == "ENOENT"
    assert unfiltered.calls["setns"] == "EBADF"
    assert unfiltered.calls["unshare_newns"] == "ok"
    filtered = run_with_runtime(None, default_filter)
    assert {name: filtered.calls[name] for name in REFUSED} == dict.fromkeys(REFUSED, "EPERM")


def test_sys_admin_opens_the_mount_and_namespace_calls(storage_root):
    with_admin = caps.resolve(["SYS_ADMIN"])
    result = run_with_runtime(with_admin, seccomp.prepare(None, with_admin, storage_root))
    assert result.calls["mount"] == "ENOENT"
    assert result.calls["umount2"] == "ENOENT"
    assert result.calls["setns"] == "EBADF"
    assert result.calls["sethostname"] == "EINVAL"
    assert result.calls["clone3"] == "EINVAL"
    assert result.calls["unshare_newns"] == "ok"
    assert result.calls["clone_newuser"] == "ok"
    for name in ("keyctl", "add_key", "pivot_root", "kcmp", "io_uring_setup", "userfaultfd"):
        assert result.calls[name] == "EPERM", name


def test_a_user_profile(storage_root, tmp_path):
    profile = tmp_path / "mine.json"
    profile.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["kcmp", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},  # AF_UNIX only
        ],
    }))
    result = run_with_runtime(caps.DOCKER_DEFAULT, seccomp.prepare(str(profile), caps.DOCKER_DEFAULT, storage_root))
    assert result.status["Seccomp"] == "2"
    assert result.calls["kcmp"] == "EACCES"
    assert result.calls["socket_unix"] == "EPERM"
    assert result.calls["socket_vsock"] != "EPERM"
    assert result.calls["keyctl"] == "ok"
    assert result.calls["listmount"] == "EFAULT"  # allowed by default: no ENOSYS prologue


def test_a_broken_user_profile_names_the_file(storage_root, tmp_path):
    profile = tmp_path / "broken.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}')
    with pytest.raises(errors.UserError, match=rf"seccomp profile {profile} is invalid: "
                                                r"syscalls\[0\].action: unknown action None"):
        seccomp.prepare(str(profile), caps.DOCKER_DEFAULT, storage_root)
    with pytest.raises(errors.UserError, match="cannot read seccomp profile /no/such.json"):
        seccomp.prepare("/no/such.json", caps.DOCKER_DEFAULT, storage_root)
    cache = storage_root.cache / "seccomp"
    assert not cache.exists() or not any(cache.iterdir())  # nothing half-made is cached


def test_unconfined_and_privileged_run_without_a_filter(storage_root):
    assert seccomp.prepare(seccomp.UNCONFINED, caps.DOCKER_DEFAULT, storage_root) is None
    everything = caps.resolve(privileged=True)
    assert seccomp.prepare(None, everything, storage_root, privileged=True) is None
    result = run_with_runtime(everything, None)
    assert result.status["Seccomp"] == "0"
    assert result.calls["mount"] == "ENOENT"
    assert result.calls["keyctl"] == "ok"


def test_compiled_once_then_taken_from_the_cache(storage_root, monkeypatch):
    started = time.perf_counter()
    path = seccomp.prepare(None, caps.DOCKER_DEFAULT, storage_root)
    cold = time.perf_counter() - started
    cached = Path(path)
    assert cached.parent == storage_root.cache / "seccomp"
    assert len(cached.stem) == 64 and cached.suffix == ".bpf"
    assert [entry.name for entry in cached.parent.iterdir()] == [cached.name]  # no temporary left

    def compile_again(*args):
        raise AssertionError("compiled although the cache holds the program")

    with monkeypatch.context() as patch:
        patch.setattr(seccomp, "compile_bpf", compile_again)
        started = time.perf_counter()
        assert seccomp.prepare(None, caps.DOCKER_DEFAULT, storage_root) == path
        warm = time.perf_counter() - started
    assert warm < cold
    # another capability set is another program
    other = seccomp.prepare(None, caps.DOCKER_DEFAULT | {caps.NUMBERS["SYS_ADMIN"]}, storage_root)
    assert other != path and Path(other).read_bytes() != cached.read_bytes()
    print(f"\nseccomp: compile (cold prepare) {cold * 1000:.1f} ms, warm prepare {warm * 1000:.2f} ms, "
          f"cache key {cached.stem}")


def test_applying_a_cached_filter_takes_under_a_millisecond(default_filter):
    # the least of three runs, as the machine is shared
    runs = [run_with_runtime(caps.DOCKER_DEFAULT, default_filter).timing for _ in range(3)]
    best = min(runs, key=lambda timing: timing["read_ns"] + timing["seccomp_ns"])
    assert best["read_ns"] + best["seccomp_ns"] < 1_000_000, runs
    print(f"\nseccomp: read {best['read_ns'] / 1000:.0f} us, no_new_privs + load "
          f"{best['seccomp_ns'] / 1000:.0f} us; caps.apply {best['caps_ns'] / 1000:.0f} us")


def test_same_refusals_as_the_reference_runtimes(reference_probe, default_filter):
    with open(seccomp.DEFAULT_PROFILE, "rb") as handle:
        section = seccomp.oci_seccomp(seccomp.parse_profile(handle.read(), "default"), caps.DOCKER_DEFAULT)
    ours = run_with_runtime(caps.DOCKER_DEFAULT, default_filter)
    theirs = reference_probe(caps.DOCKER_DEFAULT, section)
    for field in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp"):
        assert ours.status[field] == theirs.status[field], field
    differing = {name: (ours.calls[name], theirs.calls[name])
                 for name in ours.calls if ours.calls[name] != theirs.calls[name]}
    if reference_probe.runtime == "crun":
        # crun 1.8 answers a syscall newer than the profile with the default
        # EPERM; runc (docker's runtime) and we answer ENOSYS
        assert differing == {"listmount": ("ENOSYS", "EPERM")}
    else:
        assert differing == {}
