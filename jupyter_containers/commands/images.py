"""Image verbs: pull, images, rmi, tag, save, load, image prune/inspect/history."""

from __future__ import annotations

import contextlib

from ..errors import UserError
from ..units import format_decimal
from . import format as fmt
from . import input_file, output_file, verb
from .containers import _append, report_prune


def _pull_args(p):
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", help="Set platform if server is multi-platform capable (e.g. linux/arm64)")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images in the repository")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")


@verb("pull", "Download an image from a registry", configure=_pull_args, also=[("image", "pull")])
def pull(client, args, ui):
    if args.all_tags:
        raise UserError("--all-tags is not supported", hint="pull the tags you need one by one")
    info = client.image_service.pull(args.name, platform=args.platform,
                                     progress=None if args.quiet else ui.progress(args.name))
    ui.print(info.name if args.quiet else f"Digest: {info.repo_digest}\nStatus: {info.status} for {info.familiar}\n{info.name}")
    return client.images.get(info.id)


def _images_args(p):
    p.add_argument("-a", "--all", action="store_true", help="Show all images (default hides intermediate images)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--digests", action="store_true", help="Show digests")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    _append(p, "-f", "--filter", metavar="FILTER", help="Filter output based on conditions provided")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")


@verb("images", "List images", configure=_images_args, also=[("image", "ls"), ("image", "list")])
def images(client, args, ui):
    found = client.images.list(name=args.repository, filters=args.filter)
    if args.quiet:
        seen = []
        for image in found:
            shown = image.id if args.no_trunc else image.short_id
            if shown not in seen:
                seen.append(shown)
        ui.lines(seen)
    else:
        headers, rows = fmt.images_table(found, digests=args.digests, no_trunc=args.no_trunc)
        ui.table(headers, rows, kind="images", objects=found)
    return found


def _rmi_args(p):
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    p.add_argument("images", nargs="+", metavar="IMAGE")


@verb("rmi", "Remove one or more images", configure=_rmi_args, also=[("image", "rm"), ("image", "remove")])
def rmi(client, args, ui):
    results = []
    for name in args.images:
        for entry in client.images.remove(name, force=args.force, noprune=args.no_prune):
            for key, value in entry.items():
                ui.print(f"{key}: {value}")
            results.append(entry)
    return results


def _tag_args(p):
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")


@verb("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", configure=_tag_args, also=[("image", "tag")])
def tag(client, args, ui):
    client.images.tag(args.source, args.target)
    return client.images.get(args.target)


def _history_args(p):
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("image", metavar="IMAGE")


@verb("history", "Show the history of an image", configure=_history_args, also=[("image", "history")])
def history(client, args, ui):
    entries = client.images.get(args.image).history()
    rows = [[e["Id"] if args.no_trunc or e["Id"] == "<missing>" else e["Id"].split(":", 1)[-1][:12], fmt.ago(e["Created"]),
             e["CreatedBy"] if args.no_trunc else e["CreatedBy"][:45], format_decimal(e["Size"]), e.get("Comment", "")]
            for e in entries]
    ui.table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
    return entries


def _save_args(p):
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument("--format", choices=("docker-archive", "oci-archive"), default="docker-archive",
                   help="Archive format: docker-archive (docker load) or oci-archive (OCI image layout)")
    p.add_argument("images", nargs="+", metavar="IMAGE")


@verb("save", "Save one or more images to a tar archive", configure=_save_args, also=[("image", "save")])
def save(client, args, ui):
    with output_file(args.output) if args.output else contextlib.nullcontext(ui.binary_output()) as handle:
        client.images.save(args.images, handle, format=args.format)
    return None


def _load_args(p):
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")


@verb("load", "Load images from a tar archive (docker-archive or OCI)", configure=_load_args, also=[("image", "load")])
def load(client, args, ui):
    source = None if args.input else ui.binary_input()
    progress = None if args.quiet else ui.progress("load")
    with input_file(args.input) if args.input else contextlib.nullcontext(source) as handle:
        loaded = client.images.load(handle, progress=progress)
    for image in loaded:
        ui.print(f"Loaded image: {image.tags[0] if image.tags else image.id}")
    return loaded


def _prune_args(p):
    p.add_argument("-a", "--all", action="store_true", help="Remove all unused images, not just dangling ones")
    _append(p, "--filter", metavar="FILTER", help="Provide filter values (e.g. 'label=<key>=<value>')")
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")


@verb("prune", "Remove unused images", configure=_prune_args, group="image")
def image_prune(client, args, ui):
    result = client.images.prune(filters=args.filter, all=args.all)
    lines = [f"{key.lower()}: {value}" for entry in result.get("ImagesDeleted") or [] for key, value in entry.items()]
    report_prune(ui, "Images", lines, result.get("SpaceReclaimed", 0))
    return result



def _lock_args(p):
    p.add_argument("--file", help="Lock file to write (default: containers.lock in the working directory)")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="Images to pin (default: every image run in this session)")


@verb("lock", "Pin images to their current digests in containers.lock", configure=_lock_args)
def lock(client, args, ui):
    names = args.images or list(client.image_service.used)
    entries = client.image_service.lock(names, path=args.file)
    for name in names:
        ui.print(f"{name}: {entries[name]['reference']}@{entries[name]['digest']}")
    return entries


def _lesson_images_args(p):
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="Load them from a tarball made by `save` instead of building them")
    p.add_argument("names", nargs="*", metavar="IMAGE",
                   help="Which lesson images (default: all of busybox, debian, mysql, python)")


@verb("lesson-images", "Build the lessons' images from Debian packages (the offline classroom kit)",
      configure=_lesson_images_args)
def lesson_images(client, args, ui):
    """The images the lesson notebooks use, made without Docker Hub: built
    locally with the same recipes the tests use (or loaded from a saved
    tarball), stored under the names the lessons use (``mysql``,
    ``python:3.11``…)."""
    from .. import lessons

    if args.source:
        with open(args.source, "rb") as handle:
            names = client.image_service.load(handle, progress=ui.progress("load"))
    else:
        wanted = args.names or lessons.recipe_names()
        unknown = sorted(set(wanted) - set(lessons.recipe_names()))
        if unknown:
            raise UserError(f"no lesson image named {', '.join(unknown)}",
                            hint=f"choose from {', '.join(lessons.recipe_names())}")
        names = []
        for name in wanted:
            ui.print(f"Building {name} from Debian packages (cached after the first time)…")
            layout = lessons.build_image(name, progress=ui.progress(name))
            names += client.image_service.import_layout(layout, repository=f"docker.io/library/{name}",
                                                        progress=ui.progress(name))
    for name in names:
        ui.print(f"Ready: {name}")
    return names
