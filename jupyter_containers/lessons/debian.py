"""Debian packages as the source of the lessons' images.

:class:`DebianArchive` is a private apt state for one suite and
architecture, kept in the image cache and never touching the host's apt or
dpkg configuration: it resolves which package versions an install would
take (the cache key of an image) and downloads .deb files, also of a
foreign architecture. :func:`mmdebstrap` builds a root file system tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable

from ..errors import ImageBuildError, UserError
from ..storage import FileLock, write_atomic

DEFAULT_MIRROR = "http://deb.debian.org/debian"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# How long downloaded package lists are trusted before `apt-get update`.
LIST_MAX_AGE = 24 * 3600
# What minbase installs (mmdebstrap(1), VARIANTS), as apt patterns.
MINBASE = ("?essential", "?priority(required)", "apt")
# dpkg leaves these out of every image: documentation and translations
# nobody reads in a container (copyright files stay, for the licences).
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
# Copied from the build host by mmdebstrap; a container gets its own.
HOST_FILES = ("etc/resolv.conf", "etc/hostname")


def mirror() -> str:
    """The Debian mirror: ``$JUPYTER_CONTAINERS_DEBIAN_MIRROR`` or deb.debian.org."""
    return os.environ.get("JUPYTER_CONTAINERS_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/")


def host_architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], check=True, capture_output=True,
                          text=True).stdout.strip()


def run(command: list[str], what: str, *, cwd: os.PathLike | str | None = None,
        env: dict | None = None, on_line: Callable[[str], None] | None = None) -> str:
    """Run a build tool; its output goes to ``on_line`` line by line and is
    returned. A failure raises :class:`ImageBuildError` quoting its error."""
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   errors="replace")
    except FileNotFoundError:
        raise ImageBuildError(f"{what}: {command[0]} is not installed",
                              hint=f"install it (apt-get install {command[0]})") from None
    lines = []
    with process:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if on_line:
                on_line(lines[-1])
    if process.returncode != 0:
        # apt and mmdebstrap say what went wrong on their first "E:" line.
        said = [line for line in lines if line.startswith("E:")] or [line for line in lines if line.strip()]
        detail = said[0] if said else "no output"
        raise ImageBuildError(f"{what} failed ({command[0]} exited {process.returncode}): {detail}",
                              hint="check that the Debian mirror is reachable "
                                   "(JUPYTER_CONTAINERS_DEBIAN_MIRROR chooses another)")
    return "\n".join(lines)


class DebianArchive:
    """One suite and architecture of the Debian archive, seen through a
    private apt state in ``state_dir``."""

    def __init__(self, state_dir: os.PathLike | str, suite: str, architecture: str):
        if not re.fullmatch(r"[a-z][a-z0-9-]*", suite):
            raise UserError(f"invalid Debian suite name {suite!r}", hint="use e.g. bookworm or trixie")
        self.suite = suite
        self.architecture = architecture
        self.mirror = mirror()
        mirror_tag = hashlib.sha256(self.mirror.encode()).hexdigest()[:8]
        self.state = Path(state_dir) / f"{suite}-{architecture}-{mirror_tag}"
        for directory in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (self.state / directory).mkdir(parents=True, exist_ok=True)
        (self.state / "status").touch()
        self.sources_line = f"deb {self.mirror} {suite} main"
        (self.state / "sources.list").write_text(
            f"deb [signed-by={KEYRING}] {self.mirror} {suite} main\n")

    def apt_options(self) -> list[str]:
        state = self.state
        options = {
            "Dir::State": state, "Dir::State::Lists": state / "lists",
            "Dir::State::status": state / "status", "Dir::Cache": state / "cache",
            "Dir::Etc::SourceList": state / "sources.list",
            "Dir::Etc::SourceParts": state / "sources.list.d",
            "Dir::Etc::Preferences": state / "preferences",
            "Dir::Etc::PreferencesParts": state / "preferences.d",
            "APT::Architecture": self.architecture, "APT::Architectures": self.architecture,
            "APT::Install-Recommends": "false", "Debug::NoLocking": "true",
        }
        return [argument for key, value in options.items() for argument in ("-o", f"{key}={value}")]

    def _lock(self) -> FileLock:
        return FileLock(self.state / "lock")

    def _release_file(self) -> Path | None:
        found = sorted((self.state / "lists").glob("*_InRelease"))
        return found[0] if found else None

    def update(self, max_age: float = LIST_MAX_AGE) -> None:
        """Fetch the package lists unless they are younger than ``max_age``."""
        stamp = self.state / "updated"
        with self._lock():
            if stamp.exists() and time.time() - stamp.stat().st_mtime < max_age \
                    and self._release_file():
                return
            run(["apt-get", "-q", *self.apt_options(), "update", "--error-on=any"],
                f"fetching the {self.suite}/{self.architecture} package lists")
            stamp.touch()

    def resolve(self, packages: Iterable[str]) -> list[str]:
        """``name=version`` of every package apt would install for
        ``packages`` (with their dependencies) into an empty system, sorted.
        Remembered per package list version, so a repeat costs nothing."""
        self.update()
        packages = list(packages)
        release = self._release_file()
        memo_key = hashlib.sha256(release.read_bytes() + json.dumps(packages).encode()).hexdigest()[:16]
        memo = self.state / f"resolved-{memo_key}.json"
        if memo.exists():
            return json.loads(memo.read_text())
        with self._lock():
            output = run(["apt-get", *self.apt_options(), "-s", "install", *packages],
                         f"resolving {' '.join(packages)} in {self.suite}")
        resolved = sorted(f"{name}={version}"
                          for name, version in re.findall(r"^Inst (\S+) \((\S+)", output, re.M))
        if not resolved:
            raise ImageBuildError(f"apt found nothing to install for {' '.join(packages)} in {self.suite}")
        for old in self.state.glob("resolved-*.json"):
            if time.time() - old.stat().st_mtime > LIST_MAX_AGE:
                old.unlink()
        write_atomic(memo, json.dumps(resolved).encode(), durable=False)
        return resolved

    def download(self, packages: Iterable[str], directory: os.PathLike | str) -> list[Path]:
        """Download the .deb files of ``packages`` (``name=version``) into
        ``directory``."""
        self.update()
        directory = Path(directory)
        run(["apt-get", "-q", *self.apt_options(), "download", *packages],
            f"downloading {' '.join(packages)}", cwd=directory)
        return sorted(directory.glob("*.deb"))


def extract_deb(deb: os.PathLike | str, directory: os.PathLike | str) -> None:
    run(["dpkg-deb", "-x", str(deb), str(directory)], f"extracting {Path(deb).name}")


def mmdebstrap(suite: str, target: os.PathLike | str, *, include: Iterable[str] = (),
               architecture: str, epoch: int, on_line: Callable[[str], None] | None = None) -> None:
    """Build a ``minbase`` root file system of ``suite`` (plus ``include``)
    into the directory ``target``, which must not exist yet."""
    include = list(include)
    command = ["mmdebstrap", "--mode=root", "--variant=minbase", "--format=directory",
               f"--architectures={architecture}", '--aptopt=APT::Install-Recommends "false"',
               *(f"--dpkgopt={option}" for option in DPKG_EXCLUDES)]
    if include:
        command.append("--include=" + ",".join(include))
    command += [suite, str(target), f"deb {mirror()} {suite} main"]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    run(command, f"building a {suite} root file system with mmdebstrap", env=env, on_line=on_line)
    for name in HOST_FILES:
        path = Path(target) / name
        if path.is_file() or path.is_symlink():
            path.unlink()
    # The runtime gives every container its own /dev, as docker's images
    # expect: device nodes in the image would only be hidden.
    dev = Path(target) / "dev"
    for entry in dev.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
