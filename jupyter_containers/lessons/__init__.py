"""The lessons' images, built locally from Debian packages.

The same recipes make the test suite's fixture images and the offline
classroom kit: ``build_image("mysql")`` gives an OCI image layout holding
the lessons' ``mysql`` image, built with mmdebstrap from Debian's
mariadb-server, or taken from the cache when nothing it is made of has
changed. Building needs root (mmdebstrap, file owners) and a Debian mirror.

Recipes (:data:`RECIPES`): ``busybox`` (tag ``latest``), ``debian``
(``bookworm``, ``latest``), ``mysql`` (``latest`` and MariaDB's version),
``python`` (one tag per interpreter version, e.g. ``3.11`` and ``3.13``,
and ``latest``). The layout's ``index.json`` names each image by its tag
(``org.opencontainers.image.ref.name``); the image's repository is the
recipe's name (``mysql`` → ``docker.io/library/mysql``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import events
from ..errors import ImageBuildError, UserError
from ..images.build import LayoutWriter, read_index
from .cache import cache_root
from .debian import host_architecture
from .recipes import RECIPES, BuildContext, Recipe

__all__ = ["RECIPES", "Recipe", "ImageBuildError", "recipe_names", "build_image", "image_tags"]


def recipe_names() -> list[str]:
    """The names of the images that can be built."""
    return list(RECIPES)


def build_image(name: str, dest_dir: os.PathLike | str | None = None,
                progress: events.ProgressCallback | None = None, *,
                cache_dir: os.PathLike | str | None = None) -> Path:
    """Build the lesson image ``name`` (or take it from the cache) and
    return the path of an OCI image layout holding it.

    Without ``dest_dir`` that is the cache entry itself (read it, don't
    change it). With ``dest_dir`` the image's blobs and tags are added to the
    layout there (created if missing; blobs are hardlinked when possible),
    so several images can go into one layout. ``progress`` receives
    ``events.Progress`` status events (``id`` is the recipe name).
    """
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise UserError(f"there is no lesson image named {name!r}",
                        hint=f"choose one of {', '.join(RECIPES)}") from None
    if os.geteuid() != 0:
        raise UserError(f"building the {name} image needs root (mmdebstrap, file owners)",
                        hint="run it as root, or load the images from a saved tarball")
    progress = progress or events.ignore
    cache = cache_root(cache_dir)
    context = BuildContext.create(cache, host_architecture(), progress)
    layout = recipe.build(context)
    progress(events.Progress("status", name, events.DONE, message=str(layout)))
    if dest_dir is None:
        return layout
    return copy_layout(layout, Path(dest_dir))


def copy_layout(source: Path, destination: Path) -> Path:
    """Add every blob and tag of the layout ``source`` to ``destination``."""
    writer = LayoutWriter(destination)
    for path in sorted((source / "blobs" / "sha256").iterdir()):
        writer.import_blob(source, "sha256:" + path.name)
    for ref, descriptor in read_index(source).items():
        writer.tag(descriptor, ref)
    writer.save()
    return destination


def image_tags(layout: os.PathLike | str) -> list[str]:
    """The ref names (tags) of the images in a layout."""
    return list(read_index(layout))
