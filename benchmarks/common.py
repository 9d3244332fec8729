"""What the side-by-side benchmarks share: timing summaries and tables, a
loopback registry holding the lesson images, a private jupyter-containers
environment, podman on a private root, and crun in a mount namespace of its
own.

Everything here is private to one benchmark run: its own storage roots,
cgroup parent, bridge name and subnet, podman root, crun state directory,
and a registry on a free loopback port; ``close()`` removes all of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKTREE = Path(__file__).resolve().parents[1]
if str(WORKTREE) not in sys.path:
    sys.path.insert(0, str(WORKTREE))

from jupyter_containers import config as config_module  # noqa: E402
from jupyter_containers import lessons  # noqa: E402
from jupyter_containers.client import Client  # noqa: E402
from jupyter_containers.containers.cgroups import CgroupTree  # noqa: E402
from jupyter_containers.containers.monitor import running_monitor  # noqa: E402,F401 - for the benchmarks
from tests.fixtures.containers import sweep_root  # noqa: E402
from tests.fixtures.network import free_subnet  # noqa: E402
from tests.fixtures.podman import Podman, _mounts_below  # noqa: E402
from tests.fixtures.registry import RegistryServer  # noqa: E402

#: Where the benchmarks' containers' cgroups go (one subdirectory per root).
CGROUP_PARENT = "jupyter-containers-bench"
BENCH_POOL = "10.215.0.0/16"
DISK_TMP = Path(tempfile.gettempdir())
TMPFS_TMP = Path("/dev/shm")


# --- figures ------------------------------------------------------------------

def p90(values) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


#: unit -> (factor from the stored value, decimals, the best of several figures)
UNITS = {"ms": (1000, 1, min), "s": (1, 2, min), "MiB": (1, 2, min), "MiB/s": (1, 0, max)}


class Table:
    """Rows of figures (times in seconds, shown in ``unit``; other units
    as stored), with ratio and difference lines, printed under a title."""

    def __init__(self, title: str, unit: str = "ms"):
        self.title = title
        self.unit = unit
        self.rows: dict[str, list[float]] = {}
        self.lines: list[str] = []

    def add(self, label: str, values) -> None:
        self.rows[label] = list(values)

    def median(self, label: str) -> float:
        return statistics.median(self.rows[label])

    def show(self, value: float) -> str:
        factor, decimals, _ = UNITS[self.unit]
        return f"{value * factor:.{decimals}f} {self.unit}"

    def compare(self, ours: str, peer: str, target: float | None = None) -> None:
        """A line: median of ``ours`` / median of ``peer`` (against ``target``),
        and the ratio of the best runs, the least disturbed by other load."""
        best = UNITS[self.unit][2]
        ratio = self.median(ours) / self.median(peer)
        self.lines.append(f"ratio {ours} / {peer}: {ratio:.2f}x (best runs "
                          f"{best(self.rows[ours]) / best(self.rows[peer]):.2f}x){_verdict(ratio, target, 'x')}")

    def difference(self, label: str, minus: str, target: float | None = None) -> None:
        """A line: median of ``label`` - median of ``minus`` (against ``target``, in ``unit``)."""
        factor, _, best = UNITS[self.unit]
        delta = self.median(label) - self.median(minus)
        self.lines.append(f"{label} - {minus}: {self.show(delta)} (best runs "
                          f"{self.show(best(self.rows[label]) - best(self.rows[minus]))})"
                          f"{_verdict(delta * factor, target, ' ' + self.unit)}")

    def note(self, text: str) -> None:
        self.lines.append(f"note: {text}")

    def render(self) -> str:
        width = max(len(label) for label in self.rows)
        lines = [f"== {self.title}", f"   {'':{width}}  {'median':>12}  {'p90':>12}  {'min':>12}  {'max':>12}  n"]
        for label, values in self.rows.items():
            figures = (statistics.median(values), p90(values), min(values), max(values))
            lines.append(f"   {label:{width}}  " + "  ".join(f"{self.show(v):>12}" for v in figures)
                         + f"  {len(values)}")
        return "\n".join(lines + [f"   {line}" for line in self.lines])

    def print(self) -> None:
        print(self.render(), flush=True)


def _verdict(value: float, target: float | None, unit: str) -> str:
    if target is None:
        return ""
    return f"  (target <= {target:g}{unit}: {'met' if value <= target else 'MISSED'})"


def alternate(tools: dict, runs: int) -> dict[str, list[float]]:
    """Run each of ``tools`` (label -> callable returning seconds) ``runs``
    times, one of each in turn, the order rotating every round so that no
    tool always follows the same one."""
    results: dict[str, list[float]] = {label: [] for label in tools}
    labels = list(tools)
    for round_number in range(runs):
        shift = round_number % len(labels)
        for label in labels[shift:] + labels[:shift]:
            results[label].append(tools[label]())
    return results


def measure(title: str, contenders: dict, runs: int, unit: str = "ms", *, warm_up: bool = True) -> Table:
    """A table of ``contenders`` (label -> callable returning one figure)
    run ``runs`` times each by ``alternate``, after one untimed round
    (page cache, compiled filters, imports) unless not ``warm_up``."""
    if warm_up:
        for contender in contenders.values():
            contender()
    table = Table(f"{title} ({runs} runs each, alternated)", unit)
    for label, values in alternate(contenders, runs).items():
        table.add(label, values)
    return table


def timed_call(work) -> float:
    """Wall seconds of ``work()``."""
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def timed_command(argv: list[str], env: dict | None = None, *, check: bool = True) -> float:
    """Wall seconds of one command, output discarded; a failure is fatal."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {done.returncode}: {done.stderr.decode()[-800:]}")
    return elapsed


def machine_load() -> str:
    with open("/proc/loadavg") as handle:
        load = " ".join(handle.read().split()[:3])
    return f"load average {load} on {os.cpu_count()} CPUs"


def heading(text: str) -> None:
    print(f"\n# {text}  [{time.strftime('%Y-%m-%d %H:%M:%S')}, {machine_load()}]", flush=True)


# --- the registry ---------------------------------------------------------------

class Registry:
    """Debian's docker-registry on a free loopback port, holding lesson
    images (built from Debian packages, cached) under Docker Hub's names."""

    def __init__(self, base: Path):
        self.server = RegistryServer(base / "registry").start()
        self.pushed: set[str] = set()

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    def push(self, name: str, tag: str = "latest") -> str:
        """Push lesson image ``name`` as ``library/NAME:TAG``; its full name."""
        if name not in self.pushed:
            self.server.push_layout(lessons.build_image(name), tag, f"library/{name}", tag)
            self.pushed.add(name)
        return f"{self.host}/library/{name}:{tag}"

    def close(self) -> None:
        self.server.stop()


# --- our runtime, on a private root ----------------------------------------------

class OurRoot:
    """A private storage root, run root and Jupyter config directory whose
    registry mirror for docker.io is ``registry_url``, with a bridge, subnet
    and cgroup parent of its own. While open, this process's environment
    points at it, so ``Client()`` and the CLI (``cli(...)``) use it."""

    def __init__(self, base: Path, registry_url: str):
        self.base = Path(tempfile.mkdtemp(prefix="jc-bench-", dir=base))
        self.root, self.run_root, self.config_dir = (self.base / name for name in ("root", "run", "config"))
        self.config_dir.mkdir()
        self.bridge_name = "jcb" + secrets.token_hex(4)
        (self.config_dir / "jupyter_containers_config.json").write_text(json.dumps({
            "Registry": {"mirrors": {"docker.io": [registry_url]}, "mirrors_only": True},
            "Network": {"bridge_name": self.bridge_name, "bridge_subnet": free_subnet(BENCH_POOL),
                        "user_subnet_pool": BENCH_POOL},
            "Runtime": {"cgroup_parent": CGROUP_PARENT},
        }))
        self.env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.config_dir),
                        JUPYTER_CONTAINERS_ROOT=str(self.root), JUPYTER_CONTAINERS_RUN_ROOT=str(self.run_root),
                        PYTHONPATH=os.pathsep.join(filter(None, [str(WORKTREE), os.environ.get("PYTHONPATH")])))
        # The CLI runs as installed from a wheel, with its modules' bytecode
        # cached: an environment that forbids writing it (CI sets
        # PYTHONDONTWRITEBYTECODE) would time compiling every module.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self._saved = {key: os.environ.get(key) for key in
                       ("JUPYTER_CONFIG_DIR", "JUPYTER_CONTAINERS_ROOT", "JUPYTER_CONTAINERS_RUN_ROOT")}
        os.environ.update({key: self.env[key] for key in self._saved})
        config_module.reset()
        self.client = Client()

    def cli(self, *args: str) -> list[str]:
        """argv of ``jupyter-containers ARGS`` as a fresh process."""
        return [sys.executable, "-m", "jupyter_containers", *args]

    def close(self) -> None:
        try:
            sweep_root(self.root, self.run_root)
        finally:
            for key, value in self._saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            config_module.reset()
            remove_tree(self.base)


def remove_tree(path: Path) -> None:
    """rm -rf, after unmounting whatever is mounted below ``path``."""
    for mount in reversed(_mounts_below(path)):
        subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


# --- peers, run from helper processes in namespaces of their own -----------------

# A Python loop that runs one command per input line (a JSON [argv, env])
# and answers [exit status, wall seconds, stderr tail]: the peer's figures
# then carry no unshare or shell start-up of their own.
# (stderr goes to a file, not a pipe: a detached container keeps what it
# inherits open, and reading a pipe to its end would wait for it.)
_SHELL = r"""
import json, subprocess, sys, tempfile, time
for line in sys.stdin:
    argv, env = json.loads(line)
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        code = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=stderr).returncode
        elapsed = time.perf_counter() - started
        stderr.seek(0)
        print(json.dumps([code, elapsed, stderr.read().decode(errors="replace")[-800:]]), flush=True)
"""


class Shell:
    """A helper process in new namespaces (``unshare`` flags), prepared by
    ``setup`` (a shell command run there first), that runs commands on
    request and times them."""

    def __init__(self, unshare_flags: list[str], setup: str):
        self.process = subprocess.Popen(
            ["unshare", *unshare_flags, "sh", "-c", f'{setup} && exec "$@"', "sh",
             sys.executable, "-I", "-c", _SHELL],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    @property
    def netns(self) -> str:
        return f"/proc/{self.process.pid}/ns/net"

    def timed(self, argv: list[str], env: dict | None = None, *, check: bool = True) -> float:
        self.process.stdin.write(json.dumps([argv, env or dict(os.environ)]) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the helper shell died running {' '.join(argv)}")
        code, elapsed, stderr = json.loads(answer)
        if check and code != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {code}: {stderr}")
        return elapsed

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


class PrivatePodman(Podman):
    """podman on a private root (the tests' configuration: runc, cgroupfs,
    ulimits within this host's hard limits), pulling from a loopback
    registry over plain HTTP (``--tls-verify=false``). Every podman command
    runs in a network namespace of the benchmark's own (loopback up), so
    podman's bridge, veths, firewall rules and sysctls never touch the
    host's; ``netns`` is that namespace's file."""

    def __init__(self, base: Path):
        super().__init__(Path(tempfile.mkdtemp(prefix="jc-bench-podman-", dir=base)))
        self.shell = Shell(["--net"], "ip link set lo up")
        self.netns = self.shell.netns

    def command(self, *args: str) -> list[str]:
        return ["nsenter", f"--net={self.netns}", *super().command(*args)]

    def timed(self, *args: str, check: bool = True) -> float:
        """Wall seconds of ``podman ARGS``, started from inside the namespace."""
        return self.shell.timed(super().command(*args), self.env, check=check)

    def host_command(self, *args: str) -> list[str]:
        """``podman ARGS`` in the host's network namespace (to reach the
        loopback registry: pulls only)."""
        return super().command(*args)

    def pull(self, image: str) -> None:
        timed_command(self.host_command("pull", "--quiet", "--tls-verify=false", image), self.env)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.shell.close()


class Crun:
    """crun with a private state directory and cgroups under a private
    parent, run from a helper process in a mount namespace of its own
    without the cgroup2 mount: crun 1.8 refuses this host's hybrid layout
    ("cgroups in hybrid mode not supported") while /sys/fs/cgroup/unified
    is mounted. It still makes v1 cgroups, as for any container."""

    def __init__(self, base: Path):
        self.base = Path(tempfile.mkdtemp(prefix="jc-bench-crun-", dir=base))
        self.cgroup_parent = f"jc-bench-crun-{os.getpid()}"
        self.names: set[str] = set()
        self.shell = Shell(["--mount", "--propagation", "private"], "umount /sys/fs/cgroup/unified")

    def timed(self, *args: str, check: bool = True) -> float:
        return self.shell.timed(["crun", "--root", str(self.base / "state"), *args], check=check)

    def bundle(self, name: str, args: list[str], *, seccomp_filter: bool = True) -> Path:
        """A bundle of the busybox lesson image set up as docker sets a
        container up: its 14 capabilities, seccomp profile (unless not
        ``seccomp_filter``), masked and read-only paths, no_new_privs,
        pid/mount/ipc/uts/network/cgroup namespaces and a cgroup under the
        private parent."""
        from jupyter_containers.linux import caps, seccomp
        from jupyter_containers.linux.mounts import MASKED_PATHS, READONLY_PATHS

        bundle = self.base / name
        subprocess.run(["umoci", "unpack", "--image", f"{lessons.build_image('busybox')}:latest", str(bundle)],
                       check=True, capture_output=True)
        config_path = bundle / "config.json"
        spec = json.loads(config_path.read_text())
        cap_names = sorted(caps.name(cap) for cap in caps.DOCKER_DEFAULT)
        with open(seccomp.DEFAULT_PROFILE, "rb") as handle:
            profile = seccomp.parse_profile(handle.read(), "default")
        spec["process"].update(args=args, terminal=False, noNewPrivileges=True,
                               capabilities={kind: cap_names for kind in ("bounding", "effective", "permitted")})
        spec["process"].pop("rlimits", None)
        spec["linux"].update(
            seccomp=seccomp.oci_seccomp(profile, caps.DOCKER_DEFAULT),
            maskedPaths=list(MASKED_PATHS), readonlyPaths=list(READONLY_PATHS),
            namespaces=[{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            cgroupsPath=f"/{self.cgroup_parent}/{name}")
        spec["linux"].pop("resources", None)
        if not seccomp_filter:
            del spec["linux"]["seccomp"]
        config_path.write_text(json.dumps(spec))
        return bundle

    def run(self, bundle: Path, name: str, *flags: str) -> float:
        self.names.add(name)
        return self.timed("run", *flags, "--bundle", str(bundle), name)

    def close(self) -> None:
        for name in self.names:
            self.timed("delete", "--force", name, check=False)
        self.shell.close()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (hierarchy / self.cgroup_parent).rmdir()
        remove_tree(self.base)


# --- one benchmark session ------------------------------------------------------

class Session:
    """What the benchmarks of one run share, made on first use and removed
    by ``close()``: the registry, our private root (on disk, busybox
    pulled), podman (on disk, busybox pulled) and crun."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="jc-bench-session-", dir=DISK_TMP))
        self._registry = self._ours = self._podman = self._crun = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.base)
        return self._registry

    @property
    def ours(self) -> OurRoot:
        if self._ours is None:
            self.registry.push("busybox")
            self._ours = OurRoot(DISK_TMP, self.registry.url)
            self._ours.client.images.pull("busybox")
            # the first start compiles the monitor and the seccomp filter, and makes the cgroup tree
            self._ours.client.containers.run("busybox", "true", network="none", remove=True)
        return self._ours

    @property
    def podman(self) -> PrivatePodman:
        if self._podman is None:
            self._podman = PrivatePodman(DISK_TMP)
            self._podman.pull(self.busybox)
            self._podman.timed("run", "--rm", "--network", "none", self.busybox, "true")
        return self._podman

    @property
    def busybox(self) -> str:
        """The busybox image's full name in the registry (for the peers)."""
        return self.registry.push("busybox")

    @property
    def crun(self) -> Crun:
        if self._crun is None:
            self._crun = Crun(DISK_TMP)
        return self._crun

    def close(self) -> None:
        for part in (self._ours, self._podman, self._crun, self._registry):
            if part is not None:
                try:
                    part.close()
                except Exception as error:  # noqa: BLE001 - clean the rest, then say what was left
                    print(f"cleanup of {type(part).__name__} failed: {error}", file=sys.stderr)
        with contextlib.suppress(Exception):  # busy while another benchmark run uses it
            CgroupTree(CGROUP_PARENT).remove()
        remove_tree(self.base)


# --- memory -----------------------------------------------------------------------

def pss_kib(pid: int) -> int:
    """Proportional set size of a process, from /proc/PID/smaps_rollup."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError(f"no Pss line for pid {pid}")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    data = handle.read()
                parent = int(data[data.rindex(b")") + 2:].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, ()))
    return found
