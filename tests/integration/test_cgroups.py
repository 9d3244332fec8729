"""Container cgroups on this host's real hierarchies, with real processes.

`make_cgroup` uses every hierarchy the host has (v1 controllers plus the
cgroup2 mount on a hybrid host); `make_v2_cgroup` uses the cgroup2 mount
alone, as a pure v2 host would, for what v2 can do without controllers.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jupyter_containers.containers import cgroups
from jupyter_containers.errors import HostUnsupported, RuntimeFailure, UserError

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

BUSY = "while True: pass"
# Ahead of everything else on a shared machine, so that a capped loop
# really reaches its quota; the quota bounds what it takes.
EAGER_BUSY = "import os\nos.nice(-20)\nwhile True: pass"
MiB = 1 << 20


def read(cgroup, controller, name):
    with open(os.path.join(cgroup.path(controller), name)) as handle:
        return handle.read().strip()


def cpu_seconds(cgroup):
    if "cpuacct" in cgroup.tree.hierarchies.v1:
        return int(read(cgroup, "cpuacct", "cpuacct.usage")) / 1e9
    return cgroups.keyed_values(read(cgroup, "cpu", "cpu.stat"))["usage_usec"] / 1e6


def cpu_share_over(cgroup, seconds):
    """CPUs used by the cgroup over ``seconds`` of wall time."""
    before, start = cpu_seconds(cgroup), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(cgroup) - before) / (time.monotonic() - start)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def require_v1(*controllers):
    missing = [name for name in controllers if name not in cgroups.detect().v1]
    if missing:
        pytest.skip(f"this host binds no v1 {', '.join(missing)} controller")


def test_detection_matches_our_own_membership():
    hierarchies = cgroups.detect()
    assert hierarchies.mode in ("v1", "v2", "hybrid")
    with open("/proc/self/cgroup") as handle:
        lines = [line.split(":", 2) for line in handle.read().splitlines()]
    listed = {name for _, names, _ in lines for name in names.split(",") if name}
    assert set(hierarchies.v1) <= listed
    assert (hierarchies.unified is not None) == any(number == "0" for number, _, _ in lines)


def test_limits_appear_in_the_files(make_cgroup):
    require_v1("memory", "cpu", "pids", "cpuset", "devices", "blkio")
    cgroup = make_cgroup.create({"Memory": 64 * MiB, "NanoCpus": 1_500_000_000, "CpuShares": 512,
                                 "PidsLimit": 50, "CpusetCpus": "0", "BlkioWeight": 300})
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(64 * MiB)
    assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == str(128 * MiB)  # docker's 2x default
    assert read(cgroup, "cpu", "cpu.cfs_period_us") == "100000"
    assert read(cgroup, "cpu", "cpu.cfs_quota_us") == "150000"
    assert read(cgroup, "cpu", "cpu.shares") == "512"
    assert read(cgroup, "pids", "pids.max") == "50"
    assert read(cgroup, "cpuset", "cpuset.cpus") == "0"
    weight = next(name for name in ("blkio.weight", "blkio.bfq.weight")
                  if os.path.exists(os.path.join(cgroup.path("blkio"), name)))
    assert read(cgroup, "blkio", weight) == "300"
    assert read(cgroup, "devices", "devices.list").splitlines() == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
        "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"]
    assert cgroup.warnings == []


def test_swap_follows_docker(make_cgroup):
    require_v1("memory")
    if not os.path.exists(os.path.join(cgroups.detect().v1["memory"], "memory.memsw.limit_in_bytes")):
        with pytest.raises(HostUnsupported, match="--memory-swap needs swap accounting"):
            make_cgroup.create({"Memory": 64 * MiB, "MemorySwap": 128 * MiB})
        assert "Memory limited without swap" in make_cgroup.create({"Memory": 64 * MiB}).warnings[0]
        return
    no_swap = make_cgroup.create({"Memory": 64 * MiB, "MemorySwap": 64 * MiB})
    assert read(no_swap, "memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
    unlimited = make_cgroup.create({"Memory": 64 * MiB, "MemorySwap": -1})
    assert int(read(unlimited, "memory", "memory.memsw.limit_in_bytes")) > 1 << 60


def test_update_changes_limits(make_cgroup):
    require_v1("memory", "cpu", "pids")
    cgroup = make_cgroup.create({"Memory": 64 * MiB, "NanoCpus": 500_000_000, "PidsLimit": 10})
    with pytest.raises(UserError, match="smaller than already set memoryswap"):
        cgroup.update({"Memory": 256 * MiB})  # above memory+swap (128m): docker refuses too
    cgroup.update({"Memory": 256 * MiB, "MemorySwap": 512 * MiB})  # swap raised first
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(256 * MiB)
    assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == str(512 * MiB)
    cgroup.update({"PidsLimit": 0, "NanoCpus": 0})
    assert read(cgroup, "pids", "pids.max") == "max"
    assert read(cgroup, "cpu", "cpu.cfs_quota_us") == "-1"


@pytest.mark.parametrize("limits, message", [
    ({"Memory": MiB}, "minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MiB, "MemorySwap": 32 * MiB}, "--memory-swap must be at least --memory"),
    ({"MemorySwap": 64 * MiB}, "--memory-swap needs --memory"),
    ({"NanoCpus": 1000 * 10**9}, "range of CPUs is from 0.01"),
    ({"NanoCpus": 1_000_000}, "range of CPUs is from 0.01"),
    ({"BlkioWeight": 5}, "range of blkio weight is from 10 to 1000"),
    ({"CpuShares": -5}, "invalid --cpu-shares"),
])
def test_bad_limits_are_refused_before_anything_runs(cgroup_tree, limits, message):
    with pytest.raises(UserError, match=message):
        cgroups.check(limits, parent=cgroup_tree.parent)


def test_check_warns_like_docker(cgroup_tree):
    assert cgroups.check({"CpuShares": 1}, parent=cgroup_tree.parent) == [
        "Changing requested CPUShares of 1 to minimum allowed of 2"]
    assert cgroups.check({"Memory": 64 * MiB, "PidsLimit": 5}, parent=cgroup_tree.parent) == []


def test_a_failed_create_leaves_nothing(make_cgroup):
    require_v1("cpuset")
    with pytest.raises(UserError, match="requested CPUs are not available"):
        make_cgroup.create({"CpusetCpus": "1000-1001"}, container_id="bad-cpuset")
    assert not any(os.path.exists(path) for path in make_cgroup.tree.paths("bad-cpuset"))


def test_memory_limit_ends_in_an_oom_kill(make_cgroup):
    require_v1("memory")
    cgroup = make_cgroup.create({"Memory": 32 * MiB})
    calm = make_cgroup.create({"Memory": 32 * MiB})
    # a shell in the container reports its child's fate the way docker does
    process = make_cgroup.run_in(
        cgroup, ["sh", "-c", '"$PY" -c "$CODE"; echo status=$?'],
        env={"PY": sys.executable, "PATH": os.environ["PATH"],
             "CODE": "chunks = [bytearray(1 << 20) for _ in range(512)]\nprint('survived')"},
        stdout=subprocess.PIPE, text=True)
    output, _ = process.communicate(timeout=60)
    assert output.strip() == f"status={128 + signal.SIGKILL}" == "status=137"
    assert cgroup.oom_killed()
    assert not calm.oom_killed()


def test_pids_limit_stops_a_fork_bomb(make_cgroup):
    require_v1("pids")
    cgroup = make_cgroup.create({"PidsLimit": 16})
    bomb = """
import errno, os, time
made, failure = 0, None
for _ in range(64):  # bounded even without a limit
    try:
        pid = os.fork()
    except OSError as error:
        failure = errno.errorcode[error.errno]
        break
    if pid == 0:
        os.close(1)
        time.sleep(30)
        os._exit(0)
    made += 1
print(made, failure, flush=True)
"""
    process = make_cgroup.spawn(cgroup, bomb, stdout=subprocess.PIPE, text=True)
    made, failure = process.stdout.readline().split()
    process.wait(timeout=30)
    assert (int(made), failure) == (15, "EAGAIN")
    assert int(read(cgroup, "pids", "pids.current")) == 15
    cgroup.kill_all()
    wait_for(lambda: not cgroup.pids())


def test_cpus_throttles_a_busy_loop(make_cgroup):
    require_v1("cpu")
    cgroup = make_cgroup.create({"NanoCpus": 500_000_000})
    make_cgroup.spawn(cgroup, EAGER_BUSY)
    time.sleep(0.3)
    used = cpu_share_over(cgroup, 1.0)
    assert 0.2 < used < 0.7
    assert cgroups.keyed_values(read(cgroup, "cpu", "cpu.stat"))["nr_throttled"] > 0


def check_freeze_and_thaw(factory):
    cgroup = factory.create()
    factory.spawn(cgroup, BUSY)
    time.sleep(0.2)
    cgroup.freeze()
    assert cgroup.frozen
    assert cpu_share_over(cgroup, 0.3) < 0.02
    cgroup.thaw()
    assert not cgroup.frozen
    assert cpu_share_over(cgroup, 0.3) > 0.1
    return cgroup


def test_freeze_stops_progress_and_thaw_resumes(make_cgroup):
    cgroup = check_freeze_and_thaw(make_cgroup)
    if "freezer" in cgroup.tree.hierarchies.v1:
        assert read(cgroup, "freezer", "freezer.state") == "THAWED"


def test_v2_freeze_stops_progress_and_thaw_resumes(make_v2_cgroup):
    cgroup = check_freeze_and_thaw(make_v2_cgroup)
    assert "frozen 0" in read(cgroup, "freezer", "cgroup.events")


def check_kill_all(factory):
    cgroup = factory.create()
    family = factory.spawn(cgroup, "import os, time\nfor _ in range(3):\n    os.fork()\ntime.sleep(60)")
    wait_for(lambda: len(cgroup.pids()) == 8)
    cgroup.kill_all(signal.SIGTERM)
    assert family.wait(timeout=10) == -signal.SIGTERM
    wait_for(lambda: not cgroup.pids())
    sleeper = factory.spawn(cgroup, "import time; time.sleep(60)")
    wait_for(lambda: cgroup.pids() == [sleeper.pid])
    cgroup.kill_all()
    assert sleeper.wait(timeout=10) == -signal.SIGKILL


def test_kill_all_reaches_every_process(make_cgroup):
    check_kill_all(make_cgroup)


def test_v2_kill_all(make_v2_cgroup):
    check_kill_all(make_v2_cgroup)


def test_v1_only_kill_all_freezes_and_signals(make_v1_cgroup):
    check_kill_all(make_v1_cgroup)


def test_kill_all_of_a_paused_container(make_cgroup):
    cgroup = make_cgroup.create()
    process = make_cgroup.spawn(cgroup, "import time; time.sleep(60)")
    wait_for(lambda: cgroup.pids() == [process.pid])
    cgroup.freeze()
    cgroup.kill_all()
    assert process.wait(timeout=10) == -signal.SIGKILL


def test_remove_waits_for_processes_and_is_idempotent(make_cgroup):
    cgroup = make_cgroup.create()
    process = make_cgroup.spawn(cgroup, "import time; time.sleep(60)")
    wait_for(lambda: cgroup.pids() == [process.pid])
    with pytest.raises(RuntimeFailure, match=f"processes {process.pid} are still in it"):
        cgroup.remove(timeout=0.2)
    # a cgroup the container made for itself does not block removal
    os.mkdir(os.path.join(cgroup.dirs[0], "nested"))
    process.kill()
    process.wait()
    cgroup.remove()
    assert not any(os.path.exists(path) for path in cgroup.dirs)
    cgroup.remove()
    assert not cgroups.Cgroup.open(cgroup.id, parent=cgroup.tree.parent).exists


def test_open_from_another_process_sees_the_same_cgroup(make_cgroup):
    cgroup = make_cgroup.create({"PidsLimit": 7})
    process = make_cgroup.spawn(cgroup, "import time; time.sleep(60)")  # joined before exec
    cgroup.freeze()
    # a fresh interpreter as on the start path: -I -S, the project on sys.path
    code = (f"import sys; sys.path.insert(0, {os.getcwd()!r})\n"
            f"from jupyter_containers.containers.cgroups import Cgroup\n"
            f"cgroup = Cgroup.open({cgroup.id!r}, parent={cgroup.tree.parent!r})\n"
            f"print(cgroup.pids(), cgroup.frozen)")
    output = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.split("\n")[0] == f"[{process.pid}] True"


def test_a_stale_cgroup_is_replaced_unless_it_has_processes(make_cgroup):
    first = make_cgroup.create({"PidsLimit": 5}, container_id="stale-one")
    second = make_cgroup.create({"PidsLimit": 9}, container_id="stale-one")
    assert second.pids() == [] and first.dirs == second.dirs
    if "pids" in cgroups.detect().v1:
        assert read(second, "pids", "pids.max") == "9"
    process = make_cgroup.spawn(second, "import time; time.sleep(60)")
    wait_for(lambda: second.pids() == [process.pid])
    with pytest.raises(RuntimeFailure, match="still has processes"):
        cgroups.create("stale-one", parent=make_cgroup.tree.parent)


def test_sweep_removes_only_cgroups_without_a_container(make_cgroup):
    keep_id, orphan_id, empty_id = "a" * 64, "b" * 64, "c" * 64
    keep = make_cgroup.create(container_id=keep_id)
    orphan = make_cgroup.create(container_id=orphan_id)
    empty = make_cgroup.create(container_id=empty_id)
    # Not a container's cgroup (another storage root's tree): never swept.
    foreign = make_cgroup.create(container_id="another-root")
    process = make_cgroup.spawn(orphan, "import time; time.sleep(60)")
    wait_for(lambda: orphan.pids() == [process.pid])
    others = make_cgroup.tree.container_ids() - {keep_id, orphan_id, empty_id}
    removed = cgroups.sweep({keep_id} | others, parent=make_cgroup.tree.parent)
    assert removed == sorted([orphan_id, empty_id])
    assert process.wait(timeout=10) == -signal.SIGKILL
    assert keep.exists and foreign.exists and not orphan.exists and not empty.exists


def test_join_fills_an_uninitialised_cpuset(make_cgroup):
    """The tree was made by another process that has not yet given it CPUs
    to inherit: joining still works."""
    require_v1("cpuset")
    tree = cgroups.CgroupTree(make_cgroup.tree.parent + "-cpuset")
    try:
        os.makedirs(tree.path("cpuset"))  # as a racing process left it: no cpus, no mems
        cgroup = cgroups.create("fresh", parent=tree.parent)
        assert read(cgroup, "cpuset", "cpuset.mems") == ""
        process = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: cgroup.join(os.getpid()))
        try:
            wait_for(lambda: cgroup.pids() == [process.pid])
            assert read(cgroup, "cpuset", "cpuset.mems") != ""
        finally:
            process.kill()
            process.wait()
    finally:
        tree.remove()


DEVICE_PROBE = """
import errno, json, os, stat, sys
directory, block = sys.argv[1], sys.argv[2]
major, minor = map(int, block.split(":"))

def attempt(name, kind, major, minor):
    path = os.path.join(directory, name)
    os.mknod(path, 0o600 | kind, os.makedev(major, minor))
    try:
        os.close(os.open(path, os.O_RDONLY))
        return "ok"
    except OSError as error:
        return errno.errorcode[error.errno]
    finally:
        os.unlink(path)

print(json.dumps({
    "null": attempt("null", stat.S_IFCHR, 1, 3),
    "urandom": attempt("urandom", stat.S_IFCHR, 1, 9),
    "kmsg": attempt("kmsg", stat.S_IFCHR, 1, 11),
    "block": attempt("block", stat.S_IFBLK, major, minor),
}))
"""


def run_device_probe(factory, cgroup, directory):
    block = sorted(os.listdir("/sys/dev/block"))[0]
    process = factory.run_in(cgroup, [sys.executable, "-c", DEVICE_PROBE, str(directory), block],
                             stdout=subprocess.PIPE, text=True)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return json.loads(output)


DENIED = {"null": "ok", "urandom": "ok", "kmsg": "EPERM", "block": "EPERM"}
ALLOWED = {"null": "ok", "urandom": "ok", "kmsg": "ok", "block": "ok"}


def test_default_device_rules(make_cgroup, tmp_path):
    assert run_device_probe(make_cgroup, make_cgroup.create(), tmp_path) == DENIED
    assert run_device_probe(make_cgroup, make_cgroup.create({"Privileged": True}), tmp_path) == ALLOWED


def test_v2_device_program(make_v2_cgroup, tmp_path):
    assert run_device_probe(make_v2_cgroup, make_v2_cgroup.create(), tmp_path) == DENIED
    assert run_device_probe(make_v2_cgroup, make_v2_cgroup.create({"Privileged": True}), tmp_path) == ALLOWED


def test_v2_without_controllers_says_which_limit_cannot_be_set(make_v2_cgroup):
    offered = open(os.path.join(make_v2_cgroup.tree.hierarchies.unified, "cgroup.controllers")).read().split()
    if "memory" in offered:
        pytest.skip("this host's cgroup2 hierarchy offers the memory controller")
    with pytest.raises(HostUnsupported, match=r"^--memory needs the memory cgroup controller, which cgroup v2 "
                                              r"does not delegate to /.*\(it offers: "):
        make_v2_cgroup.create({"Memory": 64 * MiB}, container_id="v2-memory")
    assert not any(os.path.exists(path) for path in make_v2_cgroup.tree.paths("v2-memory"))


def test_v2_procs_events_and_oom_report(make_v2_cgroup):
    cgroup = make_v2_cgroup.create()
    assert cgroups.keyed_values(read(cgroup, "freezer", "cgroup.events"))["populated"] == 0
    process = make_v2_cgroup.spawn(cgroup, "import time; time.sleep(60)")
    wait_for(lambda: cgroup.pids() == [process.pid])
    assert cgroups.keyed_values(read(cgroup, "freezer", "cgroup.events"))["populated"] == 1
    with open(f"/proc/{process.pid}/cgroup") as handle:
        assert f"0::/{cgroup.tree.parent}/{cgroup.id}\n" in handle.read()
    assert not cgroup.oom_killed()  # no memory controller: nothing to report


def test_missing_cgroup_operations_are_clear(cgroup_tree):
    ghost = cgroups.Cgroup.open("never-created", parent=cgroup_tree.parent)
    assert not ghost.exists and ghost.pids() == [] and not ghost.frozen and not ghost.oom_killed()
    ghost.kill_all()
    ghost.remove()
    with pytest.raises(RuntimeFailure, match="has no cgroup"):
        ghost.freeze()


def test_names_are_single_path_components():
    for bad in ("", ".", "..", "a/b"):
        with pytest.raises(UserError, match="invalid cgroup name"):
            cgroups.Cgroup.open(bad)
    with pytest.raises(UserError, match="invalid cgroup parent"):
        cgroups.CgroupTree("../escape")

