"""A cache of built image layouts, keyed by everything that makes them.

An entry is ``<cache>/<name>-<16 hex of the key's hash>/``, a complete OCI
image layout. It is built in a temporary directory beside it and renamed
into place only when whole, so an entry that exists is always usable and a
build killed half-way leaves only a temporary directory, removed by the next
build of the same key. A lock per key makes a second process wait for the
first one's build instead of repeating it. Using an entry marks it used;
entries of the same image unused for a week are removed by the next build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from ..storage import FileLock, fsync_dir

DEFAULT_ROOT_CACHE = "/var/cache/jupyter-containers/images"
# Entries of an image that no build has used for this long are removed.
UNUSED_DAYS = 7


def cache_root(cache_dir: os.PathLike | str | None = None) -> Path:
    """``cache_dir``, else ``$JUPYTER_CONTAINERS_IMAGE_CACHE``, else
    /var/cache/jupyter-containers/images for root and
    ``$XDG_CACHE_HOME/jupyter-containers/images`` for others."""
    if cache_dir is None:
        cache_dir = os.environ.get("JUPYTER_CONTAINERS_IMAGE_CACHE")
    if cache_dir is None:
        if os.geteuid() == 0:
            cache_dir = DEFAULT_ROOT_CACHE
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
            cache_dir = os.path.join(base, "jupyter-containers", "images")
    path = Path(cache_dir).absolute()
    path.mkdir(parents=True, exist_ok=True)
    return path


def key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cached_layout(cache: Path, name: str, key: dict, build: Callable[[Path, Path], None]) -> Path:
    """The layout cached for ``name`` and ``key``. When there is none yet,
    ``build(layout_dir, work_dir)`` writes it into ``layout_dir``, using the
    empty ``work_dir`` for anything else (both are removed afterwards)."""
    entry_name = f"{name}-{key_digest(key)}"
    entry = cache / entry_name
    if entry.is_dir():
        return _touch(entry)
    with FileLock(cache / f".{entry_name}.lock"):
        if entry.is_dir():
            return _touch(entry)
        for leftover in cache.glob(f".{entry_name}.*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)  # a build that was killed
        temporary = Path(tempfile.mkdtemp(prefix=f".{entry_name}.", suffix=".tmp", dir=cache))
        try:
            layout, work = temporary / "layout", temporary / "work"
            work.mkdir()
            build(layout, work)
            (layout / "build-key.json").write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
            os.rename(layout, entry)
            fsync_dir(cache)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    _remove_unused_entries(cache, name, keep=entry)
    return entry


def _touch(entry: Path) -> Path:
    os.utime(entry)  # "last used", for pruning
    return entry


def _remove_unused_entries(cache: Path, name: str, keep: Path) -> None:
    """Entries of the same name with other keys come from other recipe code
    or package versions. Another checkout or process may still use them, so
    only those unused for UNUSED_DAYS go, and never while being built."""
    cutoff = time.time() - UNUSED_DAYS * 86400
    for other in cache.glob(f"{name}-" + "?" * 16):
        if other == keep or not other.is_dir() or other.stat().st_mtime > cutoff:
            continue
        lock = FileLock(cache / f".{other.name}.lock", blocking=False)
        if lock.acquire():
            try:
                shutil.rmtree(other, ignore_errors=True)
                os.unlink(lock.path)
            finally:
                lock.release()
