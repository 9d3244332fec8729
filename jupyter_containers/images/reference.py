"""Image references, normalised as docker does.

``mysql`` → ``docker.io/library/mysql:latest``; ``user/app:tag`` →
``docker.io/user/app:tag``; ``host:port/ns/app``; ``name@sha256:…``;
``name:tag@sha256:…`` (the digest wins when pulling; the tag is kept for
display). The first path component is a registry host when it contains a
``.`` or ``:`` or is ``localhost``, as in docker's ``splitDockerDomain``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ..errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ID_RE = re.compile(r"^(?:sha256:)?[a-f0-9]{64}$")
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference."""

    domain: str
    path: str
    tag: Optional[str] = None
    digest: Optional[str] = None

    @property
    def repository(self) -> str:
        """``docker.io/library/mysql``."""
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        """The full name used as the store's key: ``repository:tag`` (or
        ``repository@digest`` when there is no tag)."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}"

    @property
    def pull_target(self) -> str:
        """What to ask the registry for: the digest if there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def familiar(self) -> str:
        """The short form docker shows: ``mysql:latest``, ``user/app:1``,
        ``host:5000/app:1``."""
        repo = self.familiar_repository
        if self.tag and self.digest:
            return f"{repo}:{self.tag}@{self.digest}"
        if self.tag:
            return f"{repo}:{self.tag}"
        return f"{repo}@{self.digest}"

    @property
    def familiar_repository(self) -> str:
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_NAMESPACE + "/") and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_NAMESPACE) + 1:]
            return self.path
        return self.repository

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest: str) -> "Reference":
        return Reference(self.domain, self.path, self.tag, digest)

    def __str__(self) -> str:
        if self.tag and self.digest:
            return f"{self.repository}:{self.tag}@{self.digest}"
        return self.name


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first == first.lower()):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_NAMESPACE}/{remainder}"
    return domain, remainder


def parse(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``. With ``default_tag`` a reference with
    neither tag nor digest gets ``:latest``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReference("invalid reference format: empty image name",
                               hint="give an image such as 'busybox' or 'mysql:8'")
    original = text
    text = text.strip()
    if "://" in text:
        raise InvalidReference(f"invalid reference format '{original}': a URL scheme is not part of an image name",
                               hint="drop the 'http://' or 'https://'")

    digest = None
    if "@" in text:
        text, _, digest = text.partition("@")
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(f"invalid reference '{original}': bad digest '{digest}'",
                                   hint="a digest looks like sha256: followed by 64 hex digits")
        algorithm, _, hex_part = digest.partition(":")
        if algorithm == "sha256" and not _SHA256_RE.match(digest):
            raise InvalidReference(f"invalid reference '{original}': bad digest '{digest}'",
                                   hint="a sha256 digest has exactly 64 lowercase hex digits")

    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidReference(f"invalid reference '{original}': bad tag '{tag}'",
                                   hint="a tag has at most 128 letters, digits, '_', '.' or '-' and does not start with '.' or '-'")

    if not text:
        raise InvalidReference(f"invalid reference format '{original}': the repository name is missing")
    domain, path = _split_domain(text)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReference(f"invalid reference '{original}': bad registry host '{domain}'")
    for component in path.split("/"):
        if not _PATH_COMPONENT_RE.match(component):
            if component.lower() != component and _PATH_COMPONENT_RE.match(component.lower()):
                raise InvalidReference(f"invalid reference '{original}': repository name '{component}' must be lowercase")
            raise InvalidReference(
                f"invalid reference '{original}': bad repository name component '{component or '(empty)'}'",
                hint="use lowercase letters, digits and single separators ('.', '_', '__', '-')")
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidReference(f"invalid reference '{original}': the repository name is longer than {MAX_NAME_LENGTH} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_image_id(text: str) -> bool:
    """True for a full image ID (``sha256:`` and 64 hex digits, or the bare hex)."""
    return bool(_ID_RE.match(text))


def is_digest(text: str) -> bool:
    return bool(_SHA256_RE.match(text))
