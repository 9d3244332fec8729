"""Pure parts of the cgroup code: docker's units, mountinfo parsing, the
stats display."""

import pytest

from jupyter_containers import units
from jupyter_containers.containers.cgroups import Hierarchies
from jupyter_containers.containers.stats import ContainerStats
from jupyter_containers.errors import UserError


@pytest.mark.parametrize("text, expected", [
    ("4096", 4096), ("100k", 100 << 10), ("100K", 100 << 10), ("512m", 512 << 20), ("512mb", 512 << 20),
    ("1g", 1 << 30), ("1.5GiB", 3 << 29), ("2t", 2 << 40), ("10b", 10), ("7 m", 7 << 20), (123, 123),
])
def test_parse_size(text, expected):
    assert units.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "m", "ib", "-1", "12x", "1..5m", "nan", "inf", "1e3", "--5", "١٢"])
def test_parse_size_refuses_with_one_line(text):
    with pytest.raises(UserError) as caught:
        units.parse_size(text, "--memory")
    assert str(caught.value).startswith(f"invalid --memory '{text}': give bytes")
    assert "\n" not in str(caught.value)


def test_parse_swap_takes_minus_one():
    assert units.parse_swap("-1") == -1
    assert units.parse_swap("1g") == 1 << 30
    with pytest.raises(UserError, match="invalid --memory-swap '-2'"):
        units.parse_swap("-2")


@pytest.mark.parametrize("text, expected", [
    ("0.5", 500_000_000), ("2", 2_000_000_000), (".25", 250_000_000), ("1.000000001", 1_000_000_001),
])
def test_parse_cpus(text, expected):
    assert units.parse_cpus(text) == expected


@pytest.mark.parametrize("text, message", [
    ("abc", "invalid --cpus 'abc'"), ("-1", "invalid --cpus '-1'"), ("", "invalid --cpus ''"),
    ("0.0000000001", "value is too precise"),
])
def test_parse_cpus_refuses(text, message):
    with pytest.raises(UserError, match=message):
        units.parse_cpus(text)


def test_formats_like_docker():
    assert units.format_binary(0) == "0B"
    assert units.format_binary(1536 * 1024) == "1.5MiB"
    assert units.format_binary(25276514304) == "23.54GiB"
    assert units.format_decimal(1500) == "1.5kB"
    assert units.format_decimal(4206592) == "4.207MB"


HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

SYSTEMD_V1 = """\
25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:12 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
"""

# A container's view: its own subtree mounted, a bind mount of the same
# hierarchy later, and a mount point with a space in it.
NESTED_V2 = """\
612 600 0:30 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate
700 600 0:30 /docker/abc /mnt/other\\040place rw - cgroup2 cgroup rw
"""

ESCAPED_V2 = "700 600 0:30 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n"


def test_hybrid_layout():
    hierarchies = Hierarchies.parse(HYBRID)
    assert hierarchies.v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                              "memory": "/sys/fs/cgroup/memory"}
    assert hierarchies.unified == "/sys/fs/cgroup/unified"
    assert hierarchies.mode == "hybrid"


def test_comounted_v1_controllers_share_a_directory():
    hierarchies = Hierarchies.parse(SYSTEMD_V1)
    assert hierarchies.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                              "pids": "/sys/fs/cgroup/pids"}
    assert hierarchies.mode == "v1"


def test_first_cgroup2_mount_wins_and_escapes_are_decoded():
    assert Hierarchies.parse(NESTED_V2).unified == "/sys/fs/cgroup"
    assert Hierarchies.parse(NESTED_V2).mode == "v2"
    assert Hierarchies.parse(ESCAPED_V2).unified == "/mnt/my cgroups"
    assert Hierarchies.parse("").mode == "none"


def test_stats_display():
    item = ContainerStats("0123456789abcdef", 0.0, cpu_percent=49.876, memory_usage=1536 * 1024,
                          memory_limit=64 << 20, memory_percent=2.34375, pids=3, block_read=4206592,
                          block_write=0, net_rx=None, net_tx=None)
    assert item.display() == {
        "CONTAINER ID": "0123456789ab", "CPU %": "49.88%", "MEM USAGE / LIMIT": "1.5MiB / 64MiB",
        "MEM %": "2.34%", "NET I/O": "--", "BLOCK I/O": "4.207MB / 0B", "PIDS": "3",
    }
    assert item.to_dict()["memory_limit"] == 64 << 20
