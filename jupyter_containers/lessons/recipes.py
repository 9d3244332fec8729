"""The recipes of the lessons' images, built from Debian packages.

Each recipe resolves the exact package versions it would install, and the
image is rebuilt only when those, the recipe code, the architecture, the
mirror or ``SOURCE_DATE_EPOCH`` change (:mod:`.cache`). Images that extend
Debian (mysql, python) share the Debian layer: their first layer is the
Debian image's blob itself, their second the difference mmdebstrap's bigger
tree makes to it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import events
from ..images.build import (DEFAULT_PATH, Descriptor, Healthcheck, ImageConfig, LayoutWriter, TreeIndex, image_layers,
                            oci_platform, open_layer_blob, resolve_source_date_epoch)
from .cache import cached_layout
from ..errors import ImageBuildError
from .debian import MINBASE, DebianArchive, extract_deb, mmdebstrap

# Modification times in the images are clamped to this (2024-01-01) unless
# SOURCE_DATE_EPOCH says otherwise, so a rebuild gives the same digests.
DEFAULT_EPOCH = 1704067200
DEFAULT_SUITE = "bookworm"
# The python image carries one interpreter per suite: bookworm's 3.11 and,
# where the mirror has it, trixie's 3.13.
PYTHON_SUITES = ("bookworm", "trixie")
FILES = Path(__file__).parent / "files"
PACKAGE_ROOT = Path(__file__).parent.parent

BUSYBOX_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
BUSYBOX_GROUP = """\
root:x:0:
users:x:100:app
app:x:1000:
nogroup:x:65534:
"""


def files_hash(paths) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(str(path.relative_to(PACKAGE_ROOT)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


@functools.lru_cache(maxsize=None)
def source_hash() -> str:
    """A hash of the code that decides what goes into the images (the files
    a recipe copies into its image are hashed by that recipe)."""
    lessons = Path(__file__).parent
    return files_hash([PACKAGE_ROOT / "images" / "build.py", lessons / "debian.py", lessons / "recipes.py"])


@dataclass
class BuildContext:
    cache: Path
    architecture: str  # Debian's name: amd64, arm64…
    progress: events.ProgressCallback = events.ignore
    epoch: int = DEFAULT_EPOCH

    @classmethod
    def create(cls, cache: Path, architecture: str, progress: events.ProgressCallback | None = None):
        epoch = resolve_source_date_epoch()
        return cls(cache, architecture, progress or events.ignore,
                   DEFAULT_EPOCH if epoch is None else epoch)

    def archive(self, suite: str, architecture: str | None = None) -> DebianArchive:
        return DebianArchive(self.cache / "apt", suite, architecture or self.architecture)

    def key(self, **parts) -> dict:
        from .debian import mirror

        return dict(parts, source=source_hash(), architecture=self.architecture,
                    epoch=self.epoch, mirror=mirror())

    def status(self, name: str, message: str, status: str = "building") -> None:
        self.progress(events.Progress("status", name, status, message=message))

    def layout(self, directory: Path) -> LayoutWriter:
        return LayoutWriter(directory, source_date_epoch=self.epoch)

    @property
    def platform(self) -> dict:
        return oci_platform(self.architecture)


def labels(description: str) -> dict[str, str]:
    return {"org.opencontainers.image.description": description}


def package_version(packages: list[str], name: str) -> str:
    """``major.minor`` of package ``name`` among resolved ``name=version``s."""
    for entry in packages:
        package, _, version = entry.partition("=")
        if package == name:
            match = re.match(r"(?:\d+:)?(\d+\.\d+)", version)
            if match:
                return match.group(1)
    raise ImageBuildError(f"{name} is not among the packages apt resolved")


# -- busybox ---------------------------------------------------------------------

def busybox_tree(archive: DebianArchive, packages: list[str], work: Path,
                 applets: list[str] | None = None) -> tuple[Path, list[str]]:
    """A busybox root file system from Debian's busybox-static: the binary,
    a symlink per applet, users root, app (1000, also in group users) and
    nobody. ``applets`` defaults to what the binary lists (which needs it
    to run on this host)."""
    downloads, extracted, tree = work / "debs", work / "deb", work / "rootfs"
    for directory in (downloads, extracted, tree):
        directory.mkdir()
    for deb in archive.download(packages, downloads):
        extract_deb(deb, extracted)
    (tree / "bin").mkdir()
    shutil.copyfile(extracted / "bin" / "busybox", tree / "bin" / "busybox")
    os.chmod(tree / "bin" / "busybox", 0o755)
    if applets is None:
        listing = subprocess.run([str(tree / "bin" / "busybox"), "--list-full"], check=True,
                                 capture_output=True, text=True).stdout
        applets = sorted(line.strip() for line in listing.splitlines() if line.strip())
    for applet in applets:
        link = tree / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    for directory, mode, owner in (("etc", 0o755, 0), ("root", 0o700, 0), ("tmp", 0o1777, 0),
                                   ("home", 0o755, 0), ("home/app", 0o755, 1000)):
        path = tree / directory
        path.mkdir(exist_ok=True)
        os.chown(path, owner, owner)
        os.chmod(path, mode)
    (tree / "etc" / "passwd").write_text(BUSYBOX_PASSWD)
    (tree / "etc" / "group").write_text(BUSYBOX_GROUP)
    return tree, applets


def build_busybox(ctx: BuildContext) -> Path:
    archive = ctx.archive(DEFAULT_SUITE)
    packages = archive.resolve(["busybox-static"])

    def build(directory: Path, work: Path) -> None:
        ctx.status("busybox", f"busybox from {', '.join(packages)}")
        tree, _ = busybox_tree(archive, packages, work)
        with ctx.layout(directory) as layout:
            with layout.layer(created_by=f"busybox-static from Debian {DEFAULT_SUITE}") as layer:
                layer.add_tree(tree)
            config = ImageConfig(cmd=["sh"], labels=labels(RECIPES["busybox"].description))
            image = layout.add_image(config, [layer.layer], platform=ctx.platform)
            layout.tag(image, "latest")

    return cached_layout(ctx.cache, "busybox", ctx.key(suite=DEFAULT_SUITE, packages=packages), build)


# -- Debian and images on top of it ----------------------------------------------

def debian_base(ctx: BuildContext, suite: str) -> Path:
    """The one-layer Debian ``minbase`` image of ``suite`` (tag: the suite)."""
    packages = ctx.archive(suite).resolve(MINBASE)

    def build(directory: Path, work: Path) -> None:
        tree = work / "rootfs"
        ctx.status("debian", f"mmdebstrap --variant=minbase {suite} ({len(packages)} packages)")
        mmdebstrap(suite, tree, architecture=ctx.architecture, epoch=ctx.epoch,
                   on_line=lambda line: ctx.status("debian", line))
        ctx.status("debian", "writing the layer")
        with ctx.layout(directory) as layout:
            with layout.layer(created_by=f"mmdebstrap --variant=minbase {suite}") as layer:
                layer.add_tree(tree)
            config = ImageConfig(cmd=["bash"], labels=labels(f"Debian {suite} (minbase)"))
            image = layout.add_image(config, [layer.layer], platform=ctx.platform)
            layout.tag(image, suite)
            if suite == DEFAULT_SUITE:
                layout.tag(image, "latest")

    return cached_layout(ctx.cache, f"debian-{suite}", ctx.key(suite=suite, packages=packages), build)


def add_debian_image(ctx: BuildContext, layout: LayoutWriter, work: Path, name: str, suite: str,
                     include: list[str], config: ImageConfig,
                     customize: Callable[[Path], None] = lambda tree: None) -> Descriptor:
    """Add to ``layout`` a two-layer image: Debian ``suite`` and, above it,
    what installing ``include`` (then ``customize(tree)``) changes."""
    base = debian_base(ctx, suite)
    [base_layer] = image_layers(base, suite)
    layout.import_blob(base, base_layer.blob.digest)
    with open_layer_blob(layout.blob_path(base_layer.blob), base_layer.blob.media_type) as stream:
        below = TreeIndex().add_layer(stream)
    tree = work / f"rootfs-{name}-{suite}"
    ctx.status(name, f"mmdebstrap --variant=minbase --include={','.join(include)} {suite}")
    mmdebstrap(suite, tree, include=include, architecture=ctx.architecture, epoch=ctx.epoch,
               on_line=lambda line: ctx.status(name, line))
    customize(tree)
    ctx.status(name, "writing the layer of changes")
    with layout.layer(created_by=f"apt-get install {' '.join(include)}") as layer:
        layer.add_changes(below, tree)
    shutil.rmtree(tree)
    return layout.add_image(config, [base_layer, layer.layer], platform=ctx.platform)


def build_debian(ctx: BuildContext) -> Path:
    return debian_base(ctx, DEFAULT_SUITE)


def install_file(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    os.chmod(target, mode)


def mysql_customize(tree: Path) -> None:
    """The entrypoint, health check and server settings; an empty data
    directory (Debian's postinst filled it), so the first start initialises
    it with the container's passwords."""
    install_file(FILES / "mysql" / "docker-entrypoint.sh", tree / "usr/local/bin/docker-entrypoint.sh", 0o755)
    install_file(FILES / "mysql" / "healthcheck.sh", tree / "usr/local/bin/healthcheck.sh", 0o755)
    install_file(FILES / "mysql" / "99-docker.cnf", tree / "etc/mysql/mariadb.conf.d/99-docker.cnf", 0o644)
    (tree / "docker-entrypoint-initdb.d").mkdir(mode=0o755, exist_ok=True)
    data = tree / "var/lib/mysql"
    owner = data.stat()
    shutil.rmtree(data)
    data.mkdir(mode=0o755)
    os.chown(data, owner.st_uid, owner.st_gid)
    run_dir = tree / "run/mysqld"
    run_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(run_dir, owner.st_uid, owner.st_gid)


def build_mysql(ctx: BuildContext) -> Path:
    include = ["mariadb-server", "mariadb-client"]
    packages = ctx.archive(DEFAULT_SUITE).resolve([*MINBASE, *include])
    version = package_version(packages, "mariadb-server")

    def build(directory: Path, work: Path) -> None:
        config = ImageConfig(
            entrypoint=["docker-entrypoint.sh"], cmd=["mariadbd"],
            exposed_ports=["3306/tcp"], volumes=["/var/lib/mysql"], stop_signal="SIGTERM",
            healthcheck=Healthcheck(["CMD", "healthcheck.sh"], interval=2, timeout=5,
                                    start_period=60, retries=30),
            labels=labels(RECIPES["mysql"].description))
        with ctx.layout(directory) as layout:
            image = add_debian_image(ctx, layout, work, "mysql", DEFAULT_SUITE, include, config,
                                     mysql_customize)
            for tag in ("latest", version):
                layout.tag(image, tag)

    key = ctx.key(suite=DEFAULT_SUITE, packages=packages,
                  files=files_hash(sorted((FILES / "mysql").iterdir())))
    return cached_layout(ctx.cache, "mysql", key, build)


def build_python(ctx: BuildContext) -> Path:
    # The whole standard library (json, http.server…) and a `python`
    # command, as Docker Hub's python images have.
    include = ["python3", "python-is-python3"]
    resolved: dict[str, list[str]] = {}
    for suite in PYTHON_SUITES:
        try:
            resolved[suite] = ctx.archive(suite).resolve([*MINBASE, *include])
        except ImageBuildError as error:
            if suite == DEFAULT_SUITE:
                raise
            ctx.status("python", f"leaving out Debian {suite}'s interpreter: {error}", "waiting")

    def build(directory: Path, work: Path) -> None:
        with ctx.layout(directory) as layout:
            for suite, packages in resolved.items():
                version = package_version(packages, "python3-minimal")  # python3's own version
                config = ImageConfig(cmd=["python3"], env=[f"PATH={DEFAULT_PATH}", "LANG=C.UTF-8"],
                                     labels=labels(f"Python {version} (Debian {suite})"))
                image = add_debian_image(ctx, layout, work, "python", suite, include, config)
                layout.tag(image, version)
                if suite == DEFAULT_SUITE:
                    layout.tag(image, "latest")

    return cached_layout(ctx.cache, "python", ctx.key(suites=resolved), build)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[BuildContext], Path]


RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("busybox", "BusyBox from Debian's busybox-static: a shell and the basic tools (1 MiB)",
           build_busybox),
    Recipe("debian", f"Debian {DEFAULT_SUITE} minbase", build_debian),
    Recipe("mysql", "A MySQL-compatible server: Debian's MariaDB with the official images' "
                    "MYSQL_*/MARIADB_* environment variables", build_mysql),
    Recipe("python", "Python from Debian: 3.11 (bookworm) and 3.13 (trixie), tagged by version",
           build_python),
)}
