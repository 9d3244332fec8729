"""Images of one storage root: pull, list, inspect, remove, tag, prune,
save, load — what ``client.images`` calls."""

from __future__ import annotations

import os
import re

from .. import events, storage
from ..errors import Conflict, ImageNotFound, InvalidReference, UserError
from . import reference as references
from .snapshots import Snapshots
from .store import REF_NAME, REPO_DIGEST, ContentStore, repository_of

_ID_RE = re.compile(r"(sha256:)?[0-9a-f]{4,64}")


class ImageInfo:
    """One image as the runtime needs it. (A plain class: dataclasses
    compile their methods at import, which the CLI pays on every run.)"""

    def __init__(self, id: str, name: str, manifest_digest: str, config: dict, diff_ids: list,
                 names=None, repo_digests=None, size: int = 0, requested: str = ""):
        self.id = id  # the config digest, as docker's image ID
        self.name = name  # the full name it was found under
        self.manifest_digest = manifest_digest
        self.config = config
        self.diff_ids = diff_ids
        self.names = list(names or [])  # every name pointing at it
        self.repo_digests = list(repo_digests or [])
        self.size = size
        self.requested = requested

    @property
    def familiar(self) -> str:
        try:
            return references.parse(self.name, default_tag=False).familiar
        except InvalidReference:
            return self.name

    def __repr__(self) -> str:
        return f"<ImageInfo {self.name} {self.id[:19]}>"


class PullInfo(ImageInfo):
    """An image just pulled: with docker's status line and the digest the
    registry served."""

    status = ""
    repo_digest = ""


class ImageService:
    def __init__(self, layout: storage.Layout, config=None):
        from .. import config as config_module

        self.layout = layout
        self.config = config if config is not None else config_module.get_config()
        self.settings = config_module.Registry(config=self.config)
        self.store = ContentStore(layout)
        self.snapshots = Snapshots(layout)
        self._registry = None
        #: Names of the images run through this service, in order (what
        #: ``lock`` pins when given no names).
        self.used: list[str] = []

    @property
    def registry(self):
        if self._registry is None:
            from .registry import RegistryClient

            self._registry = RegistryClient(self.settings)
        return self._registry

    # --- looking images up ------------------------------------------------------

    def _entries(self) -> list[dict]:
        return self.store.images()

    def _lookup(self, name: str, *, with_kind: bool = False):
        """(name, index entry) for an image name, repository@digest, full
        image ID or unique ID prefix (names first, as docker); None if
        absent. ``with_kind`` adds whether it matched by ID."""
        text = name.strip()
        found, by_id = None, False
        if _ID_RE.fullmatch(text) and len(text.split(":")[-1]) == 64:
            found, by_id = self._by_id(text), True
        else:
            try:
                found = self._by_name(references.parse(text))
            except InvalidReference:
                if not _ID_RE.fullmatch(text):
                    raise
            if found is None and _ID_RE.fullmatch(text):
                found, by_id = self._by_id(text), True
        if with_kind:
            return (found, by_id) if found is not None else None
        return found

    def _by_name(self, ref) -> tuple[str, dict] | None:
        candidates = [str(ref)] if ref.tag and not ref.digest else []
        if ref.digest:
            candidates.append(f"{ref.repository}@{ref.digest}")
        for entry in self._entries():
            entry_name = entry["annotations"][REF_NAME]
            if entry_name in candidates:
                return entry_name, entry
            if ref.digest and repository_of(entry_name) == ref.repository and \
                    ref.digest in (entry["digest"], entry["annotations"].get(REPO_DIGEST)):
                return entry_name, entry
        return None

    def _by_id(self, text: str) -> tuple[str, dict] | None:
        wanted = text if text.startswith("sha256:") else "sha256:" + text
        matches: dict[str, tuple[str, dict]] = {}
        for entry in self._entries():
            image_id = self._config_digest(entry)
            if image_id.startswith(wanted):
                matches.setdefault(image_id, (entry["annotations"][REF_NAME], entry))
        if len(matches) > 1:
            raise UserError(f"image ID prefix '{text}' is ambiguous", hint="give more characters")
        return next(iter(matches.values()), None)

    def _config_digest(self, entry: dict) -> str:
        return self.store.read_json(entry["digest"])["config"]["digest"]

    def exists(self, name: str, platform: str | None = None) -> bool:
        pin = self.pinned(name)
        return self._lookup(str(pin) if pin is not None else name) is not None

    def get(self, name: str) -> ImageInfo:
        found = self._lookup(name)
        if found is None:
            raise ImageNotFound(f"no such image: {name}",
                                hint=f"pull it first (jupyter-containers pull {name})")
        return self._info(*found)

    def _info(self, name: str, entry: dict) -> ImageInfo:
        manifest = self.store.read_json(entry["digest"])
        config_digest = manifest["config"]["digest"]
        config = self.store.read_json(config_digest)
        names, repo_digests = [], []
        for other in self._entries():
            if other["digest"] != entry["digest"]:
                continue
            other_name = other["annotations"][REF_NAME]
            repo_digest = other["annotations"].get(REPO_DIGEST)
            repository = repository_of(other_name)
            if "@" not in other_name:
                names.append(other_name)
            if repo_digest and f"{repository}@{repo_digest}" not in repo_digests:
                repo_digests.append(f"{repository}@{repo_digest}")
        size = sum(layer.get("size", 0) for layer in manifest.get("layers", []))
        return ImageInfo(config_digest, name, entry["digest"], config,
                         list((config.get("rootfs") or {}).get("diff_ids") or []),
                         names=names, repo_digests=repo_digests, size=size)

    def inspect(self, name: str) -> dict:
        """docker's ``image inspect``."""
        info = self.get(name)
        config = info.config
        return {
            "Id": info.id,
            "RepoTags": [references.parse(n).familiar for n in info.names],
            "RepoDigests": [_familiar_digest(d) for d in info.repo_digests],
            "Created": config.get("created", ""),
            "Author": config.get("author", ""),
            "Config": config.get("config") or {},
            "Architecture": config.get("architecture", ""),
            "Variant": config.get("variant", ""),
            "Os": config.get("os", ""),
            "Size": info.size,
            "RootFS": {"Type": "layers", "Layers": info.diff_ids},
            "Metadata": {"ManifestDigest": info.manifest_digest},
        }

    def list(self, name: str | None = None, filters=None) -> list[dict]:
        """``images``: one entry per image ID, newest first."""
        from ..containers.filters import labels_match, parse_filters

        filters = parse_filters(filters)
        wanted = None
        if name:
            wanted = references.parse(name, default_tag=False)
        seen: dict[str, dict] = {}
        for entry in self._entries():
            image_id = self._config_digest(entry)
            if image_id in seen:
                continue
            attrs = self.inspect(image_id)
            seen[image_id] = attrs
        result = []
        for attrs in seen.values():
            if wanted is not None:
                repos = [t.rsplit(":", 1)[0] for t in attrs["RepoTags"]] + \
                        [d.split("@")[0] for d in attrs["RepoDigests"]]
                if wanted.familiar_repository not in repos:
                    continue
                if wanted.tag and f"{wanted.familiar_repository}:{wanted.tag}" not in attrs["RepoTags"]:
                    continue
            if "label" in filters and not labels_match(attrs["Config"].get("Labels") or {}, filters["label"]):
                continue
            if "dangling" in filters:
                dangling = filters["dangling"][0].lower() in ("true", "1")
                if bool(attrs["RepoTags"]) == dangling:
                    continue
            if "reference" in filters:
                import fnmatch

                if not any(fnmatch.fnmatch(tag, pattern) or fnmatch.fnmatch(tag.rsplit(":", 1)[0], pattern)
                           for tag in attrs["RepoTags"] for pattern in filters["reference"]):
                    continue
            result.append(attrs)
        result.sort(key=lambda a: a.get("Created") or "", reverse=True)
        return result

    def history(self, name: str) -> list[dict]:
        info = self.get(name)
        history = list(reversed(info.config.get("history") or []))
        sizes = []
        manifest = self.store.read_json(info.manifest_digest)
        layers = list(reversed(manifest.get("layers", [])))
        for item in history:
            sizes.append(0 if item.get("empty_layer") else (layers.pop(0).get("size", 0) if layers else 0))
        return [{"Id": info.id if i == 0 else "<missing>", "Created": item.get("created", ""),
                 "CreatedBy": item.get("created_by", ""), "Size": size, "Comment": item.get("comment", "")}
                for i, (item, size) in enumerate(zip(history, sizes))]

    # --- pull -----------------------------------------------------------------------

    def pinned(self, name: str):
        """The reference ``name`` resolves to under the lock file in effect
        (``containers.lock``), or None."""
        from . import lock

        return lock.pinned(name)

    def pull(self, name: str, *, platform: str | None = None,
             progress: events.ProgressCallback | None = None) -> PullInfo:
        from ..errors import ManifestUnknown
        from .pull import pull

        ref = references.parse(name)
        pin = self.pinned(name)
        if self.settings.offline:
            return self._offline_pull(name, pin, progress or events.ignore)
        if pin is not None:
            (progress or events.ignore)(events.Progress(
                "status", name, "pinned", message=f"{name}: using {pin.familiar} pinned by containers.lock"))
            try:
                result = pull(pin, self.registry, self.store, self.snapshots, platform=platform,
                              progress=progress or events.ignore,
                              max_concurrent=self.settings.max_concurrent_downloads)
            except ManifestUnknown:
                raise ManifestUnknown(
                    f"{name} is pinned by containers.lock to {pin.digest}, which {pin.domain} no longer has",
                    hint="remove its entry from containers.lock, then pull the image and lock it again") from None
            return self._pull_info(result)
        result = pull(ref, self.registry, self.store, self.snapshots, platform=platform,
                      progress=progress or events.ignore, max_concurrent=self.settings.max_concurrent_downloads)
        return self._pull_info(result)

    def _offline_pull(self, name: str, pin, progress: events.ProgressCallback) -> PullInfo:
        """Registry.offline: the image on this computer stands for a pull."""
        wanted = str(pin) if pin is not None else name
        found = self._lookup(wanted)
        if found is None:
            raise ImageNotFound(f"image '{name}' is not on this computer, and Registry.offline forbids pulling it",
                                hint="build the lessons' images (jupyter-containers lesson-images), load a saved "
                                     "archive (load -i FILE), or turn Registry.offline off")
        info = self._info(*found)
        message = f"{name}: offline: using the image on this computer"
        progress(events.Progress("status", name, "offline", message=message))
        return _pulled(info, "Offline: using the image on this computer",
                       self._registry_digest(info, references.parse(wanted)) or info.manifest_digest)

    @staticmethod
    def _registry_digest(info: ImageInfo, ref) -> str | None:
        """The digest a registry served the image under ``ref``'s repository."""
        for repo_digest in info.repo_digests:
            repository, _, digest = repo_digest.partition("@")
            if repository == ref.repository:
                return digest
        return None

    def _pull_info(self, result) -> PullInfo:
        return _pulled(self.get(result.name), result.status, result.repo_digest)

    def resolve_for_run(self, name: str, *, pull: str = "missing", platform: str | None = None,
                        progress: events.ProgressCallback | None = None) -> ImageInfo:
        """The image to run: pulled first with ``pull="always"``, or when
        missing with ``"missing"``; ``"never"`` only looks locally. Its
        snapshots are made sure to exist."""
        if pull not in ("always", "missing", "never"):
            raise UserError(f"invalid --pull '{pull}'", hint="use always, missing or never")
        pin = self.pinned(name)
        if pull == "always":
            info = self.pull(name, platform=platform, progress=progress)
        else:
            found = self._lookup(str(pin) if pin is not None else name)
            if found is None:
                if pull == "never":
                    pinned_note = f" (pinned by containers.lock to {pin.digest[:19]}…)" if pin is not None else ""
                    raise ImageNotFound(f"image '{name}'{pinned_note} is not present locally and --pull=never forbids pulling it",
                                        hint=f"pull it first (jupyter-containers pull {name}) or use --pull=missing")
                info = self.pull(name, platform=platform, progress=progress)
            else:
                info = self._info(*found)
        self._ensure_snapshots(info)
        info.requested = name
        if name not in self.used:
            self.used.append(name)
        return info

    def _ensure_snapshots(self, info: ImageInfo) -> None:
        """Unpack any layer whose snapshot is missing (pruned, or never made
        by a load) from its blob."""
        manifest = self.store.read_json(info.manifest_digest)
        for index, (layer, diff_id) in enumerate(zip(manifest.get("layers", []), info.diff_ids)):
            if self.snapshots.exists(diff_id):
                continue
            lowers = [self.snapshots.path(d) for d in reversed(info.diff_ids[:index])]
            with self.store.open(layer["digest"]) as handle:
                self.snapshots.unpack(diff_id, handle, layer["mediaType"], lowers)

    def lock(self, names: list[str], *, path: str | None = None) -> dict:
        """Record the digest of each image (present locally) in the lock
        file; returns its entries."""
        from . import lock

        if not names:
            raise UserError("name the images to lock", hint="e.g. lock mysql busybox")
        pins = {}
        for name in names:
            info = self.get(name)
            ref = references.parse(name)
            digest = self._registry_digest(info, ref)
            if digest is None:
                raise UserError(f"cannot lock {name}: it was not pulled from a registry, so it has no registry digest",
                                hint="push it to a registry, or pull it, then lock")
            pins[name] = (str(ref.with_tag(ref.tag)) if ref.tag else ref.repository, digest)
        return lock.write(path or lock.lock_path(), pins)

    # --- tag, remove, prune ---------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        found = self._lookup(source)
        if found is None:
            raise ImageNotFound(f"no such image: {source}")
        ref = references.parse(target)
        if ref.digest:
            raise InvalidReference(f"refusing to create a tag with a digest reference: {target}")
        _, entry = found
        annotations = {k: v for k, v in entry["annotations"].items() if k != REF_NAME}
        if repository_of(entry["annotations"][REF_NAME]) != ref.repository:
            annotations.pop(REPO_DIGEST, None)    # no registry served it under the new name
        self.store.set(str(ref), {k: v for k, v in entry.items() if k != "annotations"}, annotations)

    def remove(self, name: str, *, force: bool = False, noprune: bool = False) -> list[dict]:
        """``rmi``: untag ``name``; delete the image when no name is left.
        An image ID removes every name (only with ``force`` if it has
        several, as docker)."""
        found = self._lookup(name, with_kind=True)
        if found is None:
            raise ImageNotFound(f"no such image: {name}")
        (entry_name, entry), by_id = found
        info = self._info(entry_name, entry)
        names = [e["annotations"][REF_NAME] for e in self._entries() if e["digest"] == entry["digest"]]
        if by_id and len(names) > 1 and not force:
            raise Conflict(f"unable to delete {info.id[7:19]} (must be forced): the image is referenced in multiple repositories")
        users = self._containers_using(info.id)
        targets = names if by_id else [entry_name]
        keep_untagged = bool(users) and len(targets) == len(names)
        if keep_untagged:
            if not force:
                raise Conflict(f"unable to remove {name}: the image is used by container(s) "
                               f"{', '.join(u[:12] for u in users)}",
                               hint="remove the container(s) first, or untag it with rmi -f")
            # As docker: forcing untags it; the image stays, untagged, for
            # its containers (listed as <none>, removed by image prune).
            untagged = f"{references.parse(entry_name).repository}@" \
                       f"{entry['annotations'].get(REPO_DIGEST) or entry['digest']}"
            self.store.set(untagged, {k: v for k, v in entry.items() if k != "annotations"},
                           {k: v for k, v in entry["annotations"].items() if k != REF_NAME})
            targets = [t for t in targets if t != untagged]
        result = []
        for target in targets:
            self.store.remove(target)
            if "@" not in target:
                result.append({"Untagged": references.parse(target).familiar})
        if len(targets) == len(names) and not keep_untagged:
            result.append({"Deleted": info.id})
            if not noprune:
                self._collect()
        return result

    def _containers_using(self, image_id: str) -> list[str]:
        users = []
        try:
            entries = os.listdir(self.layout.containers)
        except FileNotFoundError:
            return users
        for container_id in entries:
            record = storage.read_json(self.layout.containers / container_id / "config.json", default=None)
            if record and record.get("Image") == image_id:
                users.append(container_id)
        return users

    def _container_layers(self) -> set[str]:
        layers: set[str] = set()
        try:
            entries = os.listdir(self.layout.containers)
        except FileNotFoundError:
            return layers
        for container_id in entries:
            record = storage.read_json(self.layout.containers / container_id / "config.json", default=None)
            layers.update((record or {}).get("Snapshots") or [])
        return layers

    def _collect(self) -> dict:
        return self.store.gc(self.snapshots, keep_snapshots_for=self._container_layers())

    def prune(self, *, all: bool = False, filters=None) -> dict:
        """Remove images no container uses: those with no tag, or all of
        them with ``all``."""
        from ..containers.filters import labels_match, parse_filters

        filters = parse_filters(filters)
        deleted = []
        used = set()
        for container_id in os.listdir(self.layout.containers) if self.layout.containers.exists() else []:
            record = storage.read_json(self.layout.containers / container_id / "config.json", default=None)
            if record:
                used.add(record.get("Image"))
        for attrs in self.list():
            if attrs["Id"] in used or (attrs["RepoTags"] and not all):
                continue
            if "label" in filters and not labels_match(attrs["Config"].get("Labels") or {}, filters["label"]):
                continue
            for entry in self._entries():
                if self._config_digest(entry) == attrs["Id"]:
                    name = entry["annotations"][REF_NAME]
                    self.store.remove(name)
                    if "@" not in name:
                        deleted.append({"Untagged": references.parse(name).familiar})
            deleted.append({"Deleted": attrs["Id"]})
        collected = self._collect()
        return {"ImagesDeleted": deleted, "SpaceReclaimed": collected.get("bytes", 0)}

    # --- login ------------------------------------------------------------------------

    def login(self, registry: str, username: str, password: str) -> dict:
        self.registry.login(registry, username, password)
        return {"Status": "Login Succeeded"}

    def logout(self, registry: str) -> None:
        self.registry.logout(registry)

    # --- save, load ------------------------------------------------------------------

    def save(self, names: list[str], fileobj, *, format: str = "docker-archive") -> None:
        from .archive import save

        images = []
        for name in names:
            found = self._lookup(name)
            if found is None:
                raise ImageNotFound(f"no such image: {name}")
            images.append(found)
        save(self.store, images, fileobj, format=format)

    def import_layout(self, layout, *, repository: str | None = None,
                      progress: events.ProgressCallback | None = None) -> list[str]:
        """Take the images of an OCI layout directory into the store (the
        offline lesson kit); see :func:`.archive.import_layout`."""
        from .archive import import_layout

        names = import_layout(self.store, layout, repository=repository, progress=progress or events.ignore)
        for name in names:
            self._ensure_snapshots(self.get(name))
        return names

    def load(self, fileobj, *, progress: events.ProgressCallback | None = None) -> list[str]:
        from .archive import load

        names = load(self.store, fileobj, progress=progress or events.ignore)
        for name in names:
            self._ensure_snapshots(self.get(name))
        return names


def _pulled(info: ImageInfo, status: str, repo_digest: str) -> PullInfo:
    pulled = PullInfo(info.id, info.name, info.manifest_digest, info.config, info.diff_ids, info.names,
                      info.repo_digests, info.size, info.requested)
    pulled.status = status
    pulled.repo_digest = repo_digest
    return pulled


def _familiar_digest(repo_digest: str) -> str:
    repository, _, digest = repo_digest.partition("@")
    try:
        return f"{references.parse(repository, default_tag=False).familiar_repository}@{digest}"
    except InvalidReference:
        return repo_digest

