"""Capabilities applied to a real process by the runtime's code, checked in
/proc/self/status after exec, and against crun and runc set up as dockerd
sets up runc."""

import os

import pytest

from jupyter_containers.linux import caps
from tests.fixtures.security_probe import run_with_runtime

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probe's syscall numbers are x86_64's"),
]

DOCKER_MASK = "00000000a80425fb"
NONE = "0000000000000000"


def test_root_gets_docker_s_14_in_every_set_but_inheritable_and_ambient():
    status = run_with_runtime(caps.DOCKER_DEFAULT, None).status
    assert (status["CapEff"], status["CapPrm"], status["CapBnd"]) == (DOCKER_MASK,) * 3
    assert (status["CapInh"], status["CapAmb"]) == (NONE, NONE)
    assert status["Uid"] == "0 0 0 0"


def test_other_users_get_them_only_as_the_bounding_set_as_in_docker():
    status = run_with_runtime(caps.DOCKER_DEFAULT, None, uid=1000, gid=1001, groups=[1000, 27]).status
    assert status["Uid"] == "1000 1000 1000 1000"
    assert status["Gid"] == "1001 1001 1001 1001"
    assert status["Groups"] == "27 1000"
    assert (status["CapEff"], status["CapPrm"], status["CapInh"], status["CapAmb"]) == (NONE,) * 4
    assert status["CapBnd"] == DOCKER_MASK


def test_drop_all_add_one():
    wanted = caps.resolve(["NET_ADMIN"], ["ALL"])
    status = run_with_runtime(wanted, None).status
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 1 << caps.NUMBERS["NET_ADMIN"]


def test_privileged_gets_every_capability_the_host_allows():
    status = run_with_runtime(caps.resolve(privileged=True), None).status
    host = caps.mask(caps.host_capabilities())
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == host


@pytest.mark.parametrize("uid", [0, 1000])
def test_same_sets_as_the_reference_runtimes(reference_probe, uid):
    ours = run_with_runtime(caps.DOCKER_DEFAULT, None, uid=uid, gid=uid).status
    theirs = reference_probe(caps.DOCKER_DEFAULT, None, uid=uid, gid=uid).status
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Uid", "Gid", "Groups", "NoNewPrivs"):
        assert ours[field] == theirs[field], f"{field} differs from {reference_probe.runtime}'s"
