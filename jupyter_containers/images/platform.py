"""Platforms (``os/arch[/variant]``) and choosing one image from an index.

Names are normalised as docker and containerd do, so ``x86_64``, ``amd64``
and ``linux/amd64/v1`` are the same platform, and ``arm64`` is
``arm64/v8``. A host (or a ``--platform``) with a higher variant of arm or
amd64 also runs images built for a lower one: ``linux/arm/v7`` accepts a
``linux/arm/v6`` image when there is no v7 one, as containerd does.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import ImageNotFound, UserError

_ARCH_ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "x86": "386", "386": "386",
    "armhf": "arm", "armel": "arm", "arm": "arm",
}
# Debian's names for arm carry the variant.
_ARCH_IMPLIED_VARIANT = {"armhf": "v7", "armel": "v6"}
_DEFAULT_VARIANT = {"arm": "v7", "arm64": "v8"}
# Variants that run the images of the lower ones, lowest first.
_VARIANT_LADDERS = {
    "arm": ("v5", "v6", "v7", "v8"),
    "amd64": ("v1", "v2", "v3", "v4"),
}
_COMPONENT = re.compile(r"^[a-z0-9._-]+$")


@dataclass(frozen=True)
class Platform:
    """A normalised platform; ``str()`` gives ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        if self.variant:
            return f"{self.os}/{self.architecture}/{self.variant}"
        return f"{self.os}/{self.architecture}"

    def compatible(self) -> list["Platform"]:
        """The platforms this one runs, best first: itself, then lower
        variants of the same architecture."""
        ladder = _VARIANT_LADDERS.get(self.architecture)
        if not ladder or (self.variant or "v1") not in ladder:
            return [self]
        lower = ladder[: ladder.index(self.variant or "v1")]
        return [self] + [normalize(self.os, self.architecture, v) for v in reversed(lower)]


def normalize(os_name: str, architecture: str, variant: str = "") -> Platform:
    os_name = os_name.lower()
    if os_name == "macos":
        os_name = "darwin"
    raw_arch = architecture.lower()
    arch = _ARCH_ALIASES.get(raw_arch, raw_arch)
    variant = (variant or _ARCH_IMPLIED_VARIANT.get(raw_arch, "")).lower()
    if variant and variant[0].isdigit():
        variant = "v" + variant
    if arch == "amd64" and variant == "v1":
        variant = ""  # amd64 without a variant is v1: the way indexes write it
    elif not variant:
        variant = _DEFAULT_VARIANT.get(arch, "")
    return Platform(os_name, arch, variant)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` or a bare ``arch`` (then the OS is linux)."""
    parts = text.strip().lower().split("/")
    if len(parts) == 1:
        parts = ["linux"] + parts
    if not 2 <= len(parts) <= 3 or not all(_COMPONENT.match(part) for part in parts):
        raise UserError(f"invalid platform '{text}'",
                        hint="use os/arch[/variant], for example linux/amd64 or linux/arm64/v8")
    return normalize(*parts)


def host_platform() -> Platform:
    """The platform of this machine, from ``uname``."""
    uname = os.uname()
    machine = uname.machine.lower()
    arm = re.match(r"^armv(\d+)", machine)
    if arm:
        return normalize(uname.sysname, "arm", "v" + arm.group(1))
    return normalize(uname.sysname, machine)


def _descriptor_platform(descriptor: dict) -> Optional[Platform]:
    platform = descriptor.get("platform")
    if not isinstance(platform, dict):
        return None
    os_name, arch = platform.get("os"), platform.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return None
    variant = platform.get("variant")
    return normalize(os_name, arch, variant if isinstance(variant, str) else "")


def select_platform(index: Union[dict, bytes, str], platform: Union[Platform, str, None] = None) -> dict:
    """The descriptor of the manifest for ``platform`` (default: the host's)
    from an image index or manifest list (parsed or raw JSON).

    Raises :class:`~jupyter_containers.errors.ImageNotFound` naming the
    platforms the index offers when none matches.
    """
    if isinstance(index, (bytes, str)):
        index = json.loads(index)
    if isinstance(platform, str) and platform:
        wanted = parse_platform(platform)
    elif isinstance(platform, Platform):
        wanted = platform
    else:
        wanted = host_platform()
    entries = [(entry, _descriptor_platform(entry)) for entry in index.get("manifests") or []
               if isinstance(entry, dict)]
    for candidate in wanted.compatible():
        for entry, offered in entries:
            if offered == candidate:
                return entry
    offered = sorted({str(p) for _, p in entries if p is not None and p.os != "unknown"})
    raise ImageNotFound(
        f"no image for {wanted} in this multi-platform image "
        f"(it offers {', '.join(offered) or 'no platforms'})",
        hint="choose one with --platform")
