"""Pinning images by digest: ``containers.lock``.

A lock file beside a notebook (the kernel's working directory) or in the
CLI's working directory maps the image names a lesson uses to the digests
they had when it was locked::

    {"version": 1,
     "images": {"mysql": {"reference": "docker.io/library/mysql:latest",
                          "digest": "sha256:…"}}}

While it exists, ``run mysql`` and ``pull mysql`` fetch and run exactly
``docker.io/library/mysql@sha256:…`` and say so, so thirty students today
and next year run the same bytes. The digest is the one the registry serves
for the name (for a multi-platform image, its index), so the lock holds on
every platform.
"""

from __future__ import annotations

import json
import os

from .. import storage
from ..errors import UserError
from . import reference as references

LOCK_FILE = "containers.lock"
VERSION = 1


def lock_path(directory: str | None = None) -> str:
    """The lock file in effect: ``$JUPYTER_CONTAINERS_LOCK`` or
    ``containers.lock`` in ``directory`` (default: the working directory)."""
    return os.environ.get("JUPYTER_CONTAINERS_LOCK") or os.path.join(directory or os.getcwd(), LOCK_FILE)


def read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the lock file {path}: {error}",
                        hint="fix or delete it, then lock again") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("images"), dict):
        raise UserError(f"{path} is not a jupyter-containers lock file (version {VERSION})",
                        hint="delete it and lock again")
    return data["images"]


def pinned(name: str, path: str | None = None) -> references.Reference | None:
    """The pinned reference for ``name`` if the lock file has it."""
    path = path or lock_path()
    entries = read(path)
    if not entries:
        return None
    try:
        ref = references.parse(name)
    except UserError:
        return None
    if ref.digest:
        return None  # already pinned by the user
    for key, entry in entries.items():
        if key == name or entry.get("reference") == str(ref):
            return references.parse(entry["reference"]).with_digest(entry["digest"])
    return None


def write(path: str, pins: dict[str, tuple[str, str]]) -> dict:
    """Add or replace ``{name: (full reference, digest)}`` entries."""
    entries = read(path)
    for name, (reference, digest) in pins.items():
        if not references.is_digest(digest):
            raise UserError(f"cannot lock {name}: '{digest}' is not a sha256 digest")
        entries[name] = {"reference": reference, "digest": digest}
    data = {"version": VERSION, "images": dict(sorted(entries.items()))}
    storage.write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    return data["images"]
