"""Control groups of containers: limits, device rules, freezing, killing,
OOM reports and removal, on cgroup v1, v2 and the hybrid of both.

The start hook (a fresh ``python -I -S`` interpreter) creates a container's
cgroup with its limits, writes its own pid into it, unshares the cgroup
namespace and forks the container's init, so every process of the container
is in the cgroup from birth. This module is on that path: standard library
only, no directory walks there, a few file writes.

Where container cgroups live: ``<mount>/<parent>/<container id>`` in every
hierarchy the runtime uses, ``parent`` being ``jupyter-containers`` unless
configured otherwise (docker's cgroupfs driver does the same with
``docker``). ``<mount>`` is where the hierarchy is mounted, which inside a
container or a cgroup namespace is that namespace's own subtree. The
hierarchies:

- v1: one mount per controller (or group of controllers): cpu, cpuacct,
  cpuset, memory, devices, freezer, blkio, pids. A container joins each.
- v2: the single cgroup2 mount. Controllers (cpu, cpuset, memory, io, pids)
  are enabled in ``cgroup.subtree_control`` of every level above the
  container; v2 allows processes only in leaves, so ``<parent>`` holds no
  processes of its own. Freezing, killing and device rules are part of the
  v2 core (``cgroup.freeze``, ``cgroup.kill``, an eBPF device program).
- hybrid (systemd's layout, and this project's CI machines): v1 controllers
  plus a cgroup2 mount (``/sys/fs/cgroup/unified``) with few or no
  controllers. Each controller is used where it is bound (v1 here); the
  container also joins the cgroup2 tree, which gives ``cgroup.kill`` and
  ``populated`` events.

Limits are taken in the shape of docker's ``HostConfig``: ``Memory``,
``MemorySwap``, ``NanoCpus``, ``CpuShares``, ``PidsLimit``, ``CpusetCpus``,
``BlkioWeight``, ``Privileged`` (values as docker stores them: bytes,
nano-CPUs; ``units.parse_size``/``parse_cpus`` turn flags into them).

A limit the host cannot enforce raises ``HostUnsupported`` naming the flag
and the reason, with one exception taken from docker: the default swap limit
(twice ``--memory``) is dropped with a warning when the kernel has no swap
accounting, as docker does ("Memory limited without swap"). An explicit
``--memory-swap`` on such a host is an error.
"""

from __future__ import annotations

import errno
import os
import time

from ..errors import HostUnsupported, RuntimeFailure, UserError

DEFAULT_PARENT = "jupyter-containers"

#: v1 controllers a container joins (net_cls, perf_event, hugetlb, rdma and
#: misc are left as they are, as docker leaves them).
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
#: v2 controllers enabled below our parent when the host offers them.
V2_CONTROLLERS = ("cpu", "cpuset", "memory", "io", "pids")

#: docker's minimum for --memory.
MIN_MEMORY = 6 * 1024 * 1024
CFS_PERIOD_US = 100000
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144

#: Docker's default device rules: everything denied but creating nodes
#: (what is created is still checked on open) and these character devices.
DEFAULT_DEVICES = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),     # null
    ("c", 1, 5, "rwm"),     # zero
    ("c", 1, 7, "rwm"),     # full
    ("c", 1, 8, "rwm"),     # random
    ("c", 1, 9, "rwm"),     # urandom
    ("c", 5, 0, "rwm"),     # tty
    ("c", 5, 1, "rwm"),     # console
    ("c", 5, 2, "rwm"),     # ptmx
    ("c", 136, None, "rwm"),  # pts/*
)

# What a host lacks when a limit's file is missing although its controller
# is there.
_FEATURES = {
    "memory.memsw.limit_in_bytes": "swap accounting (boot with swapaccount=1)",
    "memory.swap.max": "swap accounting (CONFIG_MEMCG_SWAP; boot without cgroup.memory=noswap)",
    "cpu.cfs_quota_us": "CFS bandwidth control (CONFIG_CFS_BANDWIDTH)",
    "cpu.max": "CFS bandwidth control (CONFIG_CFS_BANDWIDTH)",
    "blkio.bfq.weight": "an I/O scheduler with weights (BFQ)",
    "io.weight": "I/O weights (CONFIG_BLK_CGROUP_IOCOST, or the BFQ scheduler)",
}


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read()


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def keyed_values(text: str) -> dict[str, int]:
    """``name value`` lines (memory.stat, cgroup.events, cpu.stat …) as a dict."""
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            values[key] = int(value)
        except ValueError:
            pass
    return values


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \ooo
    if "\\" not in field:
        return field
    parts = field.split("\\")
    return parts[0] + "".join(chr(int(part[:3], 8)) + part[3:] for part in parts[1:])


def _check_component(name: str, what: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UserError(f"invalid cgroup {what} '{name}'", hint="use a plain directory name")


def _is_container_id(name: str) -> bool:
    """Container cgroups are named by the 64 hex digits of the container's
    ID; anything else below the parent (another storage root's tree) is not
    ours to sweep."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class Hierarchies:
    """Where the host mounts its cgroup hierarchies: ``v1`` maps each v1
    controller to its mount point; ``unified`` is the cgroup2 mount point."""

    def __init__(self, v1: dict[str, str] | None = None, unified: str | None = None):
        self.v1 = dict(v1 or {})
        self.unified = unified

    @classmethod
    def parse(cls, mountinfo: str) -> "Hierarchies":
        """From the text of ``/proc/self/mountinfo``. The first mount of each
        hierarchy wins (later ones are bind mounts of it)."""
        v1: dict[str, str] = {}
        unified = None
        for line in mountinfo.splitlines():
            mount, separator, tail = line.partition(" - ")
            fields, tail_fields = mount.split(" "), tail.split(" ")
            if not separator or len(fields) < 5 or len(tail_fields) < 3:
                continue
            if tail_fields[0] == "cgroup2" and unified is None:
                unified = _unescape(fields[4])
            elif tail_fields[0] == "cgroup":
                for option in tail_fields[2].split(","):
                    if option in V1_CONTROLLERS:
                        v1.setdefault(option, _unescape(fields[4]))
        return cls(v1, unified)

    @property
    def mode(self) -> str:
        """``"v1"``, ``"v2"``, ``"hybrid"`` or ``"none"``."""
        if self.v1:
            return "hybrid" if self.unified else "v1"
        return "v2" if self.unified else "none"

    def __repr__(self) -> str:
        return f"Hierarchies(v1={self.v1!r}, unified={self.unified!r})"


_detected: Hierarchies | None = None


def detect() -> Hierarchies:
    """This host's hierarchies, read from /proc/self/mountinfo once per process."""
    global _detected
    if _detected is None:
        _detected = Hierarchies.parse(_read("/proc/self/mountinfo"))
    return _detected


class CgroupTree:
    """The directories, one per hierarchy, below which container cgroups
    live: ``<mount>/<parent>``."""

    def __init__(self, parent: str = DEFAULT_PARENT, hierarchies: Hierarchies | None = None):
        for part in parent.split("/"):
            _check_component(part, "parent")
        self.parent = parent
        self.hierarchies = hierarchies or detect()

    def path(self, controller: str, container_id: str = "") -> str | None:
        """The directory holding ``controller``'s files for a container (or
        for the tree itself): its v1 hierarchy if bound there, else the
        cgroup2 one; None when the host has neither."""
        mount = self.hierarchies.v1.get(controller) or self.hierarchies.unified
        if mount is None:
            return None
        return os.path.join(mount, self.parent, container_id) if container_id else os.path.join(mount, self.parent)

    def paths(self, container_id: str = "") -> list[str]:
        """Every directory of a container (or of the tree), once each."""
        mounts = list(self.hierarchies.v1.values())
        if self.hierarchies.unified:
            mounts.append(self.hierarchies.unified)
        return [os.path.join(mount, self.parent, container_id) if container_id else os.path.join(mount, self.parent)
                for mount in dict.fromkeys(mounts)]

    def ensure(self) -> None:
        """Create the tree's directories where missing and prepare them: v1
        cpuset values for children to inherit, v2 controllers enabled."""
        for mount in dict.fromkeys(self.hierarchies.v1.values()):
            self._makedirs(mount, cpuset=mount == self.hierarchies.v1.get("cpuset"))
        if "blkio" in self.hierarchies.v1:
            count_block_io(self.path("blkio"))
        if self.hierarchies.unified:
            self._makedirs(self.hierarchies.unified, cpuset=False)
            for controller in V2_CONTROLLERS:
                if controller not in self.hierarchies.v1:
                    try:
                        self.enable(controller, controller)
                    except HostUnsupported:
                        pass  # only a limit that needs it fails, with the reason

    def _makedirs(self, mount: str, cpuset: bool) -> None:
        current = mount
        for part in self.parent.split("/"):
            above, current = current, os.path.join(current, part)
            try:
                os.mkdir(current, 0o755)
            except FileExistsError:
                continue
            except OSError as error:
                raise _creation_error(current, error) from None
            if cpuset:
                inherit_cpuset(above, current)

    def enable(self, controller: str, flag: str) -> None:
        """Enable a v2 controller in ``cgroup.subtree_control`` of every
        level from the mount down to the tree, so container cgroups get it."""
        unified = self.hierarchies.unified
        levels = [unified] + [os.path.join(unified, *self.parent.split("/")[: depth + 1])
                              for depth in range(self.parent.count("/") + 1)]
        for level in levels:
            if controller in _read(os.path.join(level, "cgroup.subtree_control")).split():
                continue
            offered = _read(os.path.join(level, "cgroup.controllers")).split()
            if controller not in offered:
                raise HostUnsupported(
                    f"{flag} needs the {controller} cgroup controller, which cgroup v2 does not "
                    f"delegate to {level} (it offers: {' '.join(offered) or 'nothing'})",
                    hint="enable it in cgroup.subtree_control of the levels above, "
                         "or bind it to a cgroup v1 hierarchy")
            try:
                _write(os.path.join(level, "cgroup.subtree_control"), "+" + controller)
            except OSError as error:
                if error.errno == errno.EBUSY:
                    raise HostUnsupported(
                        f"{flag} needs the {controller} controller enabled below {level}, which "
                        f"cgroup v2 refuses while {level} has processes of its own",
                        hint="move those processes into a child cgroup first (as docker-in-docker "
                             "does), or set a cgroup parent in a delegated subtree") from None
                raise HostUnsupported(f"{flag}: cannot enable the {controller} controller in {level}: "
                                      f"{error.strerror}") from None

    def container_ids(self) -> set[str]:
        """The names of every container cgroup in the tree (any hierarchy)."""
        ids: set[str] = set()
        for directory in self.paths():
            try:
                ids.update(entry.name for entry in os.scandir(directory)
                           if entry.is_dir() and _is_container_id(entry.name))
            except FileNotFoundError:
                pass
        return ids

    def remove(self, timeout: float = 10.0) -> None:
        """Kill and remove every container cgroup of the tree, then the
        tree's own directories (not the levels above a nested parent, which
        others may use). For tests and uninstalling."""
        sweep((), parent=self.parent, hierarchies=self.hierarchies, timeout=timeout)
        for directory in self.paths():
            if not _remove_dir(directory):
                raise RuntimeFailure(f"cannot remove cgroup {directory}: it is busy")


#: A read rate no device reaches: a rule that never throttles.
UNREACHABLE_BPS = 1 << 60


def count_block_io(directory: str) -> None:
    """Make v1 blkio count the I/O of every cgroup on each disk.

    Recent kernels (seen on 6.18) set blk-throttle up on a disk only once a
    throttle rule is configured for it, and v1's io_service_bytes count
    nothing before (docker shows 0B / 0B there). A rule no device can reach, on
    the tree, sets it up without ever throttling anything."""
    for disk in os.listdir("/sys/block"):
        try:
            number = _read(f"/sys/block/{disk}/dev").strip()
            _write(os.path.join(directory, "blkio.throttle.read_bps_device"), f"{number} {UNREACHABLE_BPS}")
        except OSError:
            pass  # an empty or vanished disk: nothing to count there


def inherit_cpuset(above: str, directory: str) -> None:
    """Give a v1 cpuset cgroup its parent's CPUs and memory nodes (a new one
    has none, and no process can join it until it has both) and make its own
    children inherit theirs."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        _write(os.path.join(directory, name), _read(os.path.join(above, name)).strip() or "\n")
    _write(os.path.join(directory, "cgroup.clone_children"), "1")


def _creation_error(path: str, error: OSError) -> Exception:
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return HostUnsupported(f"cannot create cgroup {path}: {error.strerror}",
                               hint="run as root with a writable cgroup filesystem (inside a container, "
                                    "mount /sys/fs/cgroup read-write or use a cgroup namespace)")
    return RuntimeFailure(f"cannot create cgroup {path}: {error.strerror}")


def _remove_dir(path: str) -> bool:
    """rmdir a cgroup and any child cgroups a container made inside it;
    False while a process is still in one of them."""
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError as error:
        if error.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise RuntimeFailure(f"cannot remove cgroup {path}: {error.strerror}") from None
    try:
        children = [entry.path for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return True
    if not children or not all([_remove_dir(child) for child in children]):
        return False
    return _remove_dir(path)


class Cgroup:
    """One container's cgroup, in every hierarchy."""

    def __init__(self, container_id: str, tree: CgroupTree | None = None):
        _check_component(container_id, "name")
        self.id = container_id
        self.tree = tree or CgroupTree()
        self.dirs = self.tree.paths(container_id)
        self.unified = (os.path.join(self.tree.hierarchies.unified, self.tree.parent, container_id)
                        if self.tree.hierarchies.unified else None)
        #: Warnings for the user about limits that were adjusted or dropped.
        self.warnings: list[str] = []

    @classmethod
    def open(cls, container_id: str, *, parent: str = DEFAULT_PARENT,
             hierarchies: Hierarchies | None = None) -> "Cgroup":
        """The cgroup of an existing container, from any process. Nothing is
        created; :attr:`exists` says whether it is there."""
        return cls(container_id, CgroupTree(parent, hierarchies))

    def path(self, controller: str) -> str | None:
        """Directory of ``controller``'s files for this container."""
        return self.tree.path(controller, self.id)

    @property
    def exists(self) -> bool:
        return os.path.isdir(self.dirs[0]) if self.dirs else False

    def __repr__(self) -> str:
        return f"Cgroup({self.id!r}, {self.dirs!r})"

    # --- creation and limits ---------------------------------------------

    def _create(self, limits: dict, *, replace_stale: bool = True) -> None:
        if not self.dirs:
            raise HostUnsupported("this host has no cgroup filesystem mounted",
                                  hint="mount cgroup2 on /sys/fs/cgroup (or the v1 controllers)")
        created = []
        try:
            for directory in self.dirs:
                try:
                    try:
                        os.mkdir(directory, 0o755)
                    except FileNotFoundError:
                        self.tree.ensure()
                        os.mkdir(directory, 0o755)
                except FileExistsError:
                    if not replace_stale:
                        raise RuntimeFailure(f"cannot create the cgroup of container {self.id}: "
                                             f"{directory} keeps reappearing") from None
                    break
                except OSError as error:
                    raise _creation_error(directory, error) from None
                created.append(directory)
            else:
                self._apply(self.plan(limits))
                if not limits.get("Privileged"):
                    self._restrict_devices()
                return
        except BaseException:
            self._discard(created)
            raise
        # left over from a run whose cleanup never happened (a crash)
        self._discard(created)
        if self.pids():
            raise RuntimeFailure(f"container {self.id} still has processes in its cgroup from an earlier run",
                                 hint="kill them (rm -f the container) and start again")
        self.remove(timeout=1.0)
        self._create(limits, replace_stale=False)

    @staticmethod
    def _discard(created: list[str]) -> None:
        for directory in created:
            try:
                os.rmdir(directory)
            except OSError:
                pass

    def _require(self, flag: str, controller: str, filename: str, leaf: bool) -> str:
        """The path of a limit's file in the container's cgroup (``leaf``) or
        in the tree (which has the same files: v1 copies them, v2 once the
        controller is enabled for the tree), or HostUnsupported saying why the
        host has none."""
        directory = self.path(controller) if leaf else self.tree.path(controller)
        if directory is None:
            raise HostUnsupported(f"{flag} needs the {controller} cgroup controller, which this host does not mount")
        path = os.path.join(directory, filename)
        if os.path.exists(path):
            return path
        if controller not in self.tree.hierarchies.v1:
            self.tree.enable("io" if controller == "blkio" else controller, flag)
            if os.path.exists(path):
                return path
        feature = _FEATURES.get(filename)
        if feature:
            raise HostUnsupported(f"{flag} needs {feature}: this host has no {filename}")
        raise HostUnsupported(f"{flag} needs {filename} in {directory}, which this host does not provide")

    def _has(self, controller: str, filename: str, leaf: bool) -> bool:
        try:
            self._require("", controller, filename, leaf)
            return True
        except HostUnsupported:
            return False

    def plan(self, limits: dict, *, leaf: bool = True, updating: bool = False) -> list[tuple[str, str, str]]:
        """Check ``limits`` (docker HostConfig keys) and return the writes
        that set them, as ``(flag, path, value)``; adds to :attr:`warnings`.
        With ``leaf`` false the files are looked up in the tree, for checking
        limits before the container's cgroup exists. When ``updating``, a key
        given as 0 (-1 for swap) lifts its limit and absent keys stay."""
        v1 = self.tree.hierarchies.v1
        writes: list[tuple[str, str, str]] = []

        def add(flag, controller, filename, value):
            writes.append((flag, self._require(flag, controller, filename, leaf), value))

        memory = limits.get("Memory") or 0
        swap = limits.get("MemorySwap") or 0
        if memory < 0:
            raise UserError(f"invalid --memory {memory}", hint="give a positive size such as 512m")
        if swap < -1:
            raise UserError(f"invalid --memory-swap {swap}", hint="give a size, or -1 for unlimited swap")
        if 0 < memory < MIN_MEMORY:
            raise UserError("--memory: minimum memory limit allowed is 6MB")
        if swap > 0 and memory and swap < memory:
            raise UserError("--memory-swap must be at least --memory",
                            hint="--memory-swap is memory plus swap; use -1 for unlimited swap")
        if memory or (updating and "Memory" in limits):
            if "memory" in v1:
                add("--memory", "memory", "memory.limit_in_bytes", str(memory or -1))
            else:
                add("--memory", "memory", "memory.max", str(memory or "max"))
        swap_file = "memory.memsw.limit_in_bytes" if "memory" in v1 else "memory.swap.max"
        if memory and not swap and not updating:
            # docker's default: as much swap as memory (memory+swap = 2x)
            if self._has("memory", swap_file, leaf):
                swap = 2 * memory
            else:
                self.warnings.append("Your kernel does not support swap limit capabilities or the "
                                     "cgroup is not mounted. Memory limited without swap.")
        if swap > 0 or (updating and swap == -1):  # on creation, unlimited is the default
            if swap > 0 and not memory:
                memory = self._current_memory() if updating else 0
                if not memory:
                    raise UserError("--memory-swap needs --memory", hint="set both (docker's rule)")
            if "memory" in v1:
                add("--memory-swap", "memory", swap_file, str(swap))
            else:
                add("--memory-swap", "memory", swap_file, "max" if swap == -1 else str(max(swap - memory, 0)))

        nano_cpus = limits.get("NanoCpus") or 0
        if nano_cpus or (updating and "NanoCpus" in limits):
            available = len(os.sched_getaffinity(0))
            quota = nano_cpus * CFS_PERIOD_US // 10**9
            if nano_cpus < 0 or nano_cpus > available * 10**9 or 0 < quota < 1000:
                raise UserError(f"--cpus {nano_cpus / 1e9:g}: range of CPUs is from 0.01 to {available}.00, "
                                f"as there are only {available} CPUs available")
            if "cpu" in v1:
                add("--cpus", "cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US))
                add("--cpus", "cpu", "cpu.cfs_quota_us", str(quota or -1))
            else:
                add("--cpus", "cpu", "cpu.max", f"{quota or 'max'} {CFS_PERIOD_US}")

        shares = limits.get("CpuShares") or 0
        if shares < 0:
            raise UserError(f"invalid --cpu-shares {shares}", hint="give a positive relative weight (default 1024)")
        if shares or (updating and "CpuShares" in limits):
            shares = shares or 1024
            clamped = min(max(shares, MIN_CPU_SHARES), MAX_CPU_SHARES)
            if clamped != shares:
                bound = "minimum" if shares < clamped else "maximum"
                self.warnings.append(f"Changing requested CPUShares of {shares} to {bound} allowed of {clamped}")
            if "cpu" in v1:
                add("--cpu-shares", "cpu", "cpu.shares", str(clamped))
            else:
                # runc's mapping of shares [2, 262144] onto weights [1, 10000]
                add("--cpu-shares", "cpu", "cpu.weight", str(1 + (clamped - 2) * 9999 // 262142))

        pids = limits.get("PidsLimit") or 0
        if pids > 0 or (updating and "PidsLimit" in limits):
            add("--pids-limit", "pids", "pids.max", str(pids) if pids > 0 else "max")

        cpus = (limits.get("CpusetCpus") or "").strip()
        if cpus:
            add("--cpuset-cpus", "cpuset", "cpuset.cpus", cpus)

        weight = limits.get("BlkioWeight") or 0
        if weight:
            if not 10 <= weight <= 1000:
                raise UserError(f"--blkio-weight {weight}: range of blkio weight is from 10 to 1000")
            if "blkio" in v1:
                candidates = (("blkio.weight", str(weight)), ("blkio.bfq.weight", str(weight)))
            else:
                candidates = (("io.bfq.weight", f"default {weight}"),
                              ("io.weight", f"default {1 + (weight - 10) * 9999 // 990}"))
            name, value = next((item for item in candidates if self._has("blkio", item[0], leaf)), candidates[-1])
            add("--blkio-weight", "blkio", name, value)
        return writes

    def _current_memory(self) -> int:
        name = "memory.limit_in_bytes" if "memory" in self.tree.hierarchies.v1 else "memory.max"
        try:
            value = _read(os.path.join(self.path("memory"), name)).strip()
        except (FileNotFoundError, TypeError):
            return 0
        return int(value) if value.isdigit() and int(value) < 1 << 62 else 0

    def _apply(self, writes: list[tuple[str, str, str]]) -> None:
        pending = list(writes)
        while pending:
            flag, path, value = pending.pop(0)
            try:
                _write(path, value)
            except OSError as error:
                following = [item for item in pending if item[0] == "--memory-swap"]
                if error.errno == errno.EINVAL and flag == "--memory" and following:
                    # v1 keeps memory <= memory+swap at every step: raise the
                    # swap limit first when the memory limit goes up
                    pending.remove(following[0])
                    pending[:0] = [following[0], (flag, path, value)]
                    continue
                raise self._write_error(flag, path, value, error) from None

    def _write_error(self, flag: str, path: str, value: str, error: OSError) -> Exception:
        name = os.path.basename(path)
        if error.errno in (errno.EINVAL, errno.ERANGE) and name == "cpuset.cpus":
            tree = os.path.dirname(os.path.dirname(path))
            v1 = "cpuset" in self.tree.hierarchies.v1
            available = _read(os.path.join(tree, "cpuset.effective_cpus" if v1 else "cpuset.cpus.effective"))
            return UserError(f"--cpuset-cpus {value}: requested CPUs are not available",
                             hint=f"give a list such as 0-1,3 of the CPUs this host has: {available.strip()}")
        if error.errno == errno.EINVAL and flag == "--memory":
            return UserError(f"--memory {value}: memory limit should be smaller than already set memoryswap limit",
                             hint="update --memory-swap at the same time")
        if error.errno == errno.EINVAL and flag == "--memory-swap":
            return UserError(f"--memory-swap {value} is below the container's memory limit",
                             hint="--memory-swap is memory plus swap: give at least --memory")
        if error.errno == errno.EBUSY and flag == "--memory":
            return RuntimeFailure(f"--memory {value}: the container uses more memory than that and none of it "
                                  "could be reclaimed")
        return RuntimeFailure(f"cannot set {flag} ({name} = {value}) for container {self.id}: {error.strerror}")

    def _restrict_devices(self) -> None:
        if "devices" in self.tree.hierarchies.v1:
            directory = self.path("devices")
            try:
                _write(os.path.join(directory, "devices.deny"), "a")
                for kind, major, minor, access in DEFAULT_DEVICES:
                    rule = f"{kind} {'*' if major is None else major}:{'*' if minor is None else minor} {access}"
                    _write(os.path.join(directory, "devices.allow"), rule)
            except OSError as error:
                raise RuntimeFailure(f"cannot set the device rules of container {self.id}: {error.strerror}") from None
        elif self.unified:
            from ..linux import bpf

            try:
                bpf.attach_device_filter(self.unified, DEFAULT_DEVICES)
            except OSError as error:
                raise HostUnsupported(f"cannot restrict the container's devices: {error.strerror or error}",
                                      hint="cgroup v2 device control needs bpf(2) with "
                                           "BPF_PROG_TYPE_CGROUP_DEVICE (or run --privileged)") from None
        else:
            raise HostUnsupported("this host offers no device access control (no v1 devices controller, "
                                  "no cgroup v2)", hint="run --privileged to start without it")

    def update(self, limits: dict) -> list[str]:
        """Change limits of a running container (``docker update``): only the
        keys given change; 0 (-1 for swap) lifts a limit. Returns warnings."""
        self.warnings = []
        self._apply(self.plan(limits, updating=True))
        return self.warnings

    # --- processes -------------------------------------------------------

    def join(self, pid: int) -> None:
        """Move process ``pid`` (and its threads) into the container's cgroup
        in every hierarchy."""
        cpuset = self.path("cpuset") if "cpuset" in self.tree.hierarchies.v1 else None
        for directory in self.dirs:
            path = os.path.join(directory, "cgroup.procs")
            try:
                _write(path, str(pid))
            except OSError as error:
                if error.errno == errno.ENOSPC and directory == cpuset:
                    # another process created the tree and has not yet given
                    # it CPUs and memory nodes to inherit
                    inherit_cpuset(os.path.dirname(os.path.dirname(directory)), os.path.dirname(directory))
                    inherit_cpuset(os.path.dirname(directory), directory)
                    _write(path, str(pid))
                else:
                    raise RuntimeFailure(f"cannot move process {pid} into {directory}: {error.strerror}") from None

    def pids(self) -> list[int]:
        """Every process in the container's cgroup and in cgroups it made."""
        directory = self.unified or self.path("pids") or (self.dirs[0] if self.dirs else None)
        found: set[int] = set()
        stack = [directory] if directory else []
        while stack:
            current = stack.pop()
            try:
                found.update(int(line) for line in _read(os.path.join(current, "cgroup.procs")).split())
                stack.extend(entry.path for entry in os.scandir(current) if entry.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                pass
        return sorted(found)

    def _freezer(self) -> tuple[str, str, str, str] | None:
        """(file, freeze value, thaw value, file to watch) of the freezer in use."""
        if "freezer" in self.tree.hierarchies.v1:
            path = os.path.join(self.path("freezer"), "freezer.state")
            return path, "FROZEN", "THAWED", path
        if self.unified:
            return (os.path.join(self.unified, "cgroup.freeze"), "1", "0",
                    os.path.join(self.unified, "cgroup.events"))
        return None

    @property
    def frozen(self) -> bool:
        freezer = self._freezer()
        if freezer is None:
            return False
        try:
            text = _read(freezer[3])
        except FileNotFoundError:
            return False
        return text.strip() == "FROZEN" if freezer[1] == "FROZEN" else keyed_values(text).get("frozen") == 1

    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every process of the container (``docker pause``) and return
        once all of them are stopped."""
        freezer = self._freezer()
        if freezer is None:
            raise HostUnsupported("pause needs the freezer: this host has no v1 freezer controller and no cgroup v2")
        path, value, thaw, _ = freezer
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            # v1: writing FROZEN again nudges tasks that forked while freezing
            self._set_freezer(path, value)
            if self.frozen:
                return
            if time.monotonic() > deadline:
                self._set_freezer(path, thaw)
                raise RuntimeFailure(f"container {self.id} could not be frozen within {timeout:g} s",
                                     hint="a process may be stuck in the kernel (state D); try again")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self) -> None:
        """Resume the container's processes (``docker unpause``)."""
        freezer = self._freezer()
        if freezer is not None:
            self._set_freezer(freezer[0], freezer[2])

    def _set_freezer(self, path: str, value: str) -> None:
        try:
            _write(path, value)
        except FileNotFoundError:
            raise RuntimeFailure(f"container {self.id} has no cgroup", hint="is it running?") from None

    def kill_all(self, signal: int = 9) -> None:
        """Send ``signal`` (default SIGKILL) to every process of the
        container. SIGKILL uses v2's atomic ``cgroup.kill`` when there is
        one; otherwise the cgroup is frozen while the signals go out, so no
        process forks a child that escapes them."""
        if not self.exists:
            return
        freezer = self._freezer()
        if signal == 9 and self.unified:
            try:
                _write(os.path.join(self.unified, "cgroup.kill"), "1")
            except FileNotFoundError:
                pass  # kernel before 5.14
            else:
                if freezer is not None:
                    self.thaw()  # a v1-frozen process dies only once thawed
                return
        was_frozen = self.frozen
        if freezer is not None:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, signal)
                except ProcessLookupError:
                    pass
        finally:
            if freezer is not None and (signal == 9 or not was_frozen):
                self.thaw()

    def oom_counter(self) -> str | None:
        """The file whose ``oom_kill`` counts the container's OOM kills
        (None without a memory controller)."""
        directory = self.path("memory")
        if directory is None:
            return None
        return os.path.join(directory, "memory.oom_control" if "memory" in self.tree.hierarchies.v1 else "memory.events")

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer has killed a process of the
        container (docker's State.OOMKilled)."""
        counter = self.oom_counter()
        try:
            return counter is not None and keyed_values(_read(counter)).get("oom_kill", 0) > 0
        except FileNotFoundError:
            return False

    def remove(self, timeout: float = 10.0) -> None:
        """Wait for the cgroup to be empty, then remove it from every
        hierarchy. Removing a removed cgroup does nothing."""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            remaining = self.pids()
            if not remaining and all([_remove_dir(directory) for directory in self.dirs]):
                return
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"cannot remove the cgroup of container {self.id}: processes "
                                     f"{' '.join(map(str, remaining)) or '(exiting)'} are still in it",
                                     hint="stop or kill the container first")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def create(container_id: str, limits: dict | None = None, *, parent: str = DEFAULT_PARENT,
           hierarchies: Hierarchies | None = None) -> Cgroup:
    """Create a container's cgroup in every hierarchy with its limits and
    device rules; ``limits`` uses docker's HostConfig keys. Nothing is left
    behind on error. Warnings for the user are in the result's ``warnings``."""
    cgroup = Cgroup(container_id, CgroupTree(parent, hierarchies))
    cgroup._create(dict(limits or {}))
    return cgroup


def check(limits: dict, *, parent: str = DEFAULT_PARENT, hierarchies: Hierarchies | None = None) -> list[str]:
    """Validate limits against docker's rules and this host without creating
    a container's cgroup (for ``create``, before anything runs): raises
    UserError or HostUnsupported, returns the warnings ``create`` would give."""
    cgroup = Cgroup("check", CgroupTree(parent, hierarchies))
    cgroup.tree.ensure()
    cgroup.plan(dict(limits), leaf=False)
    return cgroup.warnings


def sweep(existing_ids, *, parent: str = DEFAULT_PARENT, hierarchies: Hierarchies | None = None,
          timeout: float = 10.0) -> list[str]:
    """Remove the cgroups under our parent that belong to no container in
    ``existing_ids`` (the ids of every container on record, read under the
    containers lock: a container's record exists before its cgroup). Their
    processes, if any survive, are killed. Returns the removed ids."""
    tree = CgroupTree(parent, hierarchies)
    keep = set(existing_ids)
    removed = []
    for container_id in sorted(tree.container_ids() - keep):
        cgroup = Cgroup(container_id, tree)
        cgroup.kill_all()
        cgroup.remove(timeout)
        removed.append(container_id)
    return removed
