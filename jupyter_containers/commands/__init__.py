"""One argument parser per verb, shared by the CLI and the magics.

Each verb is a function ``run(client, args, ui)`` that makes one ``client``
call and hands the result to ``ui`` — a :class:`~.ui.TerminalUI` for the
CLI, the notebook's UI for the magics — and returns the client object (a
``Container``, an ``Image``, a list…) so ``x = %container run -d …`` works.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
from typing import Callable

from .. import storage
from ..errors import UserError


class ArgumentError(UserError):
    """A bad flag or argument; the message ends with where to get help."""

    exit_code = 125


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so the magics can show one
    line and the CLI can choose its exit code."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        # docker's -h is --hostname; help is --help only.
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("--help", action="help", help="Print usage")

    def error(self, message):
        raise ArgumentError(f"{self.prog}: {message}", hint=f"see '{self.prog} --help'")

    def exit(self, status=0, message=None):
        if status:
            raise ArgumentError(message or f"{self.prog} failed")
        raise HelpShown(message or "")


class HelpShown(Exception):
    """--help was given; argparse already printed the text."""


class Verb:
    def __init__(self, name: str, help: str, configure: Callable, run: Callable):
        self.name, self.help, self.configure, self.run = name, help, configure, run


#: top-level verbs (``ps``, ``run``…) and grouped ones (``container ls``…).
VERBS: dict[str, Verb] = {}
GROUPS: dict[str, dict[str, Verb]] = {}


def verb(name: str, help: str, *, configure: Callable, group: str | None = None, also=()):
    """Decorator registering ``run(client, args, ui)`` as the verb ``name``
    (in ``group`` if given), with ``configure(parser)`` adding its flags.
    ``also`` lists other ``(group or None, name)`` places it answers to:
    ``docker ps`` is ``docker container ls``."""

    def register(run):
        entry = Verb(name, help, configure, run)
        for place_group, place_name in ((group, name), *also):
            (GROUPS.setdefault(place_group, {}) if place_group else VERBS)[place_name] = entry
        return run

    return register


def _load() -> None:
    from . import containers, images, networks, system, volumes  # noqa: F401


GROUP_HELP = {
    "container": "Manage containers",
    "image": "Manage images",
    "network": "Manage networks",
    "volume": "Manage volumes",
}


@functools.lru_cache(maxsize=None)
def build_parser(prog: str = "jupyter-containers", only: str | None = None) -> Parser:
    """The parser of every verb, or with ``only`` of that one verb or group
    (built once per ``prog`` and ``only``: building all ninety subparsers
    takes 15-40 ms, which a CLI run would pay at every start)."""
    _load()
    parser = Parser(prog=prog, description="Docker-style containers, with no daemon.")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=Parser)
    for name, entry in sorted(VERBS.items()):
        if only in (None, name):
            p = sub.add_parser(name, help=entry.help, prog=f"{prog} {name}")
            entry.configure(p)
            p.set_defaults(_run=entry.run)
    for group, members in sorted(GROUPS.items()):
        if only not in (None, group):
            continue
        gp = sub.add_parser(group, help=GROUP_HELP.get(group, ""), prog=f"{prog} {group}")
        gsub = gp.add_subparsers(dest="subverb", metavar="COMMAND", parser_class=Parser)
        gp.set_defaults(_run=None, _group=gp)
        for name, entry in sorted(members.items()):
            p = gsub.add_parser(name, help=entry.help, prog=f"{prog} {group} {name}")
            entry.configure(p)
            p.set_defaults(_run=entry.run)
    return parser


def parse(argv: list[str], prog: str = "jupyter-containers") -> argparse.Namespace:
    _load()
    _check_command(argv, prog)
    # A known command first: only its parser is built (the full one lists
    # every command, for the top-level --help and for errors).
    first = argv[0] if argv else None
    parser = build_parser(prog, first if first in VERBS or first in GROUPS else None)
    args, extras = parser.parse_known_args(argv)
    if extras:
        where = " ".join(w for w in (getattr(args, "verb", None), getattr(args, "subverb", None)) if w)
        raise ArgumentError(f"unknown flag or argument: {extras[0]}", hint=f"see '{prog} {where} --help'".replace("  ", " "))
    if getattr(args, "_run", None) is None:
        group = getattr(args, "_group", None)
        target = group or parser
        raise ArgumentError(f"{target.prog}: a command is required", hint=f"see '{target.prog} --help'")
    return args


def _check_command(argv: list[str], prog: str) -> None:
    """An unknown command is a plain error (exit 1), as docker's; only bad
    flags and arguments of a known one are usage errors (125)."""
    words = [word for word in argv[:2] if not word.startswith("-")]
    if words and words[0] not in VERBS and words[0] not in GROUPS:
        raise UserError(f"'{words[0]}' is not a {prog} command", hint=f"see '{prog} --help'")
    if len(words) == 2 and words[0] in GROUPS and argv[1] == words[1] and words[1] not in GROUPS[words[0]]:
        raise UserError(f"'{words[0]} {words[1]}' is not a {prog} command", hint=f"see '{prog} {words[0]} --help'")


def input_file(path: str):
    """A file the user named to read (``-i``), or a one-line error."""
    try:
        return open(path, "rb")
    except OSError as error:
        raise UserError(f"cannot open {path}: {error.strerror}") from None


@contextlib.contextmanager
def output_file(path: str):
    """A file the user named to write (``-o``): it appears whole or not at
    all, as docker's CLI writes a temporary file and renames it."""
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(storage.atomic_writer(path, durable=False))
        except OSError as error:
            raise UserError(f"cannot write {path}: {error.strerror}") from None
        yield handle
