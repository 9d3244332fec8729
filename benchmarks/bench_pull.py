"""pull: cold pull + unpack of the two-layer Debian + MariaDB ``mysql``
lesson image from a loopback registry, into empty storage, on tmpfs and on
disk, side by side:

- ours: ``Client(...).images.pull(IMAGE)`` in this process, a new root each run;
- ``podman pull`` with a new private root each run;
- ``skopeo copy`` into an OCI layout + ``umoci unpack`` of it.

The tools take turns run by run (disk timing drifts: ../shared/PEERS.md);
on disk the median of the per-round ratios is quoted too. Then a second
pull of the image already present: ours through the API and through the CLI
(a fresh process), and podman's.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

OURS, PODMAN, SKOPEO_UMOCI = "ours API images.pull", "podman pull", "skopeo copy + umoci unpack"


def ours_cold(base: Path, image: str, registry_url: str) -> float:
    root = common.OurRoot(base, registry_url)
    try:
        return common.timed_call(lambda: root.client.images.pull(image))
    finally:
        root.close()


def podman_cold(base: Path, image: str) -> float:
    podman = common.Podman(Path(tempfile.mkdtemp(prefix="jc-bench-podman-", dir=base)))
    try:
        return common.timed_command(podman.command("pull", "--quiet", "--tls-verify=false", image), podman.env)
    finally:
        podman.close()


def skopeo_umoci_cold(base: Path, image: str, parts: dict) -> float:
    work = Path(tempfile.mkdtemp(prefix="jc-bench-umoci-", dir=base))
    try:
        copy = common.timed_command(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{image}",
                                     f"oci:{work}/layout:latest"])
        unpack = common.timed_command(["umoci", "unpack", "--image", f"{work}/layout:latest", str(work / "bundle")])
        parts.setdefault("skopeo copy", []).append(copy)
        parts.setdefault("umoci unpack", []).append(unpack)
        return copy + unpack
    finally:
        common.remove_tree(work)


def cold(session: common.Session, image: str, medium: str, base: Path, runs: int) -> common.Table:
    parts: dict[str, list[float]] = {}
    contenders = {
        OURS: lambda: ours_cold(base, image, session.registry.url),
        PODMAN: lambda: podman_cold(base, image),
        SKOPEO_UMOCI: lambda: skopeo_umoci_cold(base, image, parts),
    }
    table = common.measure(f"pull: cold pull + unpack of mysql (2 layers, 88 MiB compressed), storage on {medium}",
                           contenders, runs, "s", warm_up=False)
    for label, values in parts.items():
        table.add(f"  {label} alone", values)
    table.compare(OURS, PODMAN, 0.8)
    table.compare(OURS, SKOPEO_UMOCI)
    paired = statistics.median(o / p for o, p in zip(table.rows[OURS], table.rows[PODMAN]))
    table.note(f"median of the per-round ratios {OURS} / {PODMAN}: {paired:.2f}x")
    table.print()
    return table


def warm(session: common.Session, image: str, runs: int) -> common.Table:
    root = common.OurRoot(common.DISK_TMP, session.registry.url)
    podman = common.Podman(Path(tempfile.mkdtemp(prefix="jc-bench-podman-", dir=common.DISK_TMP)))
    podman_pull = podman.command("pull", "--quiet", "--tls-verify=false", image)
    try:
        root.client.images.pull(image)
        common.timed_command(podman_pull, podman.env)
        contenders = {
            "ours API images.pull (layers present)": lambda: common.timed_call(lambda: root.client.images.pull(image)),
            "ours CLI pull -q (layers present, fresh process)": lambda: common.timed_command(
                root.cli("pull", "-q", image), root.env),
            "podman pull (layers present)": lambda: common.timed_command(podman_pull, podman.env),
        }
        table = common.measure("pull: second pull of mysql, image present, storage on disk", contenders, runs,
                               warm_up=False)
    finally:
        podman.close()
        root.close()
    table.compare("ours API images.pull (layers present)", "podman pull (layers present)")
    table.compare("ours CLI pull -q (layers present, fresh process)", "podman pull (layers present)")
    table.note("target: well under 1 s")
    table.print()
    return table


def run(session: common.Session, runs: int = 3, warm_runs: int = 10) -> None:
    common.heading("pull: cold and warm pulls of mysql from a loopback registry")
    image = session.registry.push("mysql")
    for medium, base in (("tmpfs", common.TMPFS_TMP), ("disk", common.DISK_TMP)):
        cold(session, image, medium, base, runs)
    warm(session, image, warm_runs)


if __name__ == "__main__":
    sys.exit("run through benchmarks/run.py pull")
