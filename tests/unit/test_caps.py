"""Capability names and docker's --cap-add/--cap-drop/--privileged rules."""

import pytest

from jupyter_containers import errors
from jupyter_containers.linux import caps

EVERY = frozenset(range(len(caps.NAMES)))
WITHOUT_SYS_RESOURCE = EVERY - {caps.NUMBERS["SYS_RESOURCE"]}


def test_numbers_follow_the_kernel():
    assert caps.NUMBERS["CHOWN"] == 0
    assert caps.NUMBERS["SYS_ADMIN"] == 21
    assert caps.NUMBERS["SYS_RESOURCE"] == 24
    assert caps.NUMBERS["CHECKPOINT_RESTORE"] == 40
    assert caps.name(40) == "CAP_CHECKPOINT_RESTORE"
    assert caps.name(41) == "CAP_41"  # newer than the table, still nameable


def test_docker_default_is_docker_s_14():
    assert len(caps.DOCKER_DEFAULT) == 14
    assert caps.mask(caps.DOCKER_DEFAULT) == 0x00000000A80425FB


def test_default_set():
    assert caps.resolve(available=EVERY) == caps.DOCKER_DEFAULT


@pytest.mark.parametrize("spelling", ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_Net_Admin", " net_admin "])
def test_spellings_docker_accepts(spelling):
    assert caps.resolve([spelling], available=EVERY) == caps.DOCKER_DEFAULT | {caps.NUMBERS["NET_ADMIN"]}


def test_drop_then_add():
    resolved = caps.resolve(["SYS_ADMIN"], ["chown", "CAP_KILL"], available=EVERY)
    assert resolved == (caps.DOCKER_DEFAULT - {0, caps.NUMBERS["KILL"]}) | {caps.NUMBERS["SYS_ADMIN"]}


def test_drop_all_keeps_only_the_added():
    assert caps.resolve(["NET_BIND_SERVICE"], ["ALL"], available=EVERY) == {caps.NUMBERS["NET_BIND_SERVICE"]}
    assert caps.resolve([], ["all"], available=EVERY) == frozenset()


def test_add_all_takes_every_available_but_the_dropped():
    resolved = caps.resolve(["all"], ["SYS_ADMIN"], available=WITHOUT_SYS_RESOURCE)
    assert resolved == WITHOUT_SYS_RESOURCE - {caps.NUMBERS["SYS_ADMIN"]}


def test_privileged_gets_what_the_host_allows_and_ignores_the_lists():
    assert caps.resolve(["NET_ADMIN"], ["ALL"], privileged=True,
                        available=WITHOUT_SYS_RESOURCE) == WITHOUT_SYS_RESOURCE


def test_unknown_name_is_a_one_line_user_error():
    with pytest.raises(errors.UserError) as raised:
        caps.resolve(["NET_ADMIN", "CAP_FLY"], available=EVERY)
    message = str(raised.value)
    assert "'CAP_FLY'" in message and "--cap-add" in message and "\n" not in message
    with pytest.raises(errors.UserError, match="'bogus' in --cap-drop"):
        caps.resolve([], ["bogus"], available=EVERY)


def test_adding_a_capability_the_host_withholds_says_so():
    with pytest.raises(errors.HostUnsupported, match="CAP_SYS_RESOURCE is not available"):
        caps.resolve(["sys_resource"], available=WITHOUT_SYS_RESOURCE)


def test_a_default_the_host_withholds_is_left_out():
    available = EVERY - {caps.NUMBERS["AUDIT_WRITE"]}
    assert caps.resolve(available=available) == caps.DOCKER_DEFAULT - {caps.NUMBERS["AUDIT_WRITE"]}


def _status_mask(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(f"{field} missing from /proc/self/status")


def test_last_cap_matches_the_kernel():
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        assert caps.last_cap() == int(handle.read())


def test_host_capabilities_are_this_process_permitted_within_its_bounding_set():
    expected = _status_mask("CapPrm") & _status_mask("CapBnd")
    assert caps.mask(caps.host_capabilities()) == expected
