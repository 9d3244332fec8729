"""What a verb needs from its frontend, and the terminal's implementation.

Verbs never print: they call a :class:`UI`. The CLI passes a
:class:`TerminalUI`; the magics pass the notebook's UI (widgets and rich
output); the two show the same results.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
import time

from .. import events
from ..errors import UserError


class UI:
    """The interface; every method has a plain-text meaning."""

    interactive = False

    def print(self, text: str = "") -> None:
        raise NotImplementedError

    def warn(self, text: str) -> None:
        self.print(f"WARNING: {text}")

    def lines(self, items) -> None:
        for item in items:
            self.print(str(item))

    def table(self, headers: list[str], rows: list[list[str]], *, kind: str | None = None, objects=None) -> None:
        """A table; ``kind`` ("containers", "images", …) and ``objects`` (the
        client objects behind the rows) let a richer UI show more."""
        self.lines(text_table(headers, rows))

    def json(self, value) -> None:
        self.print(json.dumps(value, indent=4))

    def progress(self, title: str = "", *, to_stderr: bool = False):
        """A callback for :class:`events.Progress` events (pull, load);
        ``to_stderr``: a side show of another verb's output (docker run's
        pull), kept off its stdout."""
        return ProgressPrinter(self.print)

    def output(self, stream: str, data: bytes) -> None:
        """Bytes a container wrote to ``stream`` ("stdout"/"stderr")."""
        raise NotImplementedError

    def binary_output(self):
        """Where an archive goes when no file is named (docker's stdout)."""
        if sys.stdout.isatty():
            raise UserError("cowardly refusing to write an archive to a terminal", hint="use the -o flag or redirect")
        return sys.stdout.buffer

    def binary_input(self):
        """Where an archive comes from when no file is named (stdin)."""
        if sys.stdin.isatty():
            raise UserError("requested load from stdin, but stdin is empty", hint="use -i FILE or redirect a file")
        return sys.stdin.buffer

    def prompt(self, text: str, *, secret: bool = False, hint: str = "") -> str:
        """Ask the user for a value (without echo with ``secret``)."""
        if not sys.stdin.isatty():
            raise UserError("cannot ask for input: stdin is not a terminal", hint=hint)
        return getpass.getpass(text) if secret else input(text)

    def detached(self, container) -> None:
        """A container started in the background (``run -d``)."""
        self.print(container.id)

    def logs(self, container, *, follow: bool, **options) -> None:
        """Show a container's logs; ``options`` as ``Container.log_entries``."""
        for stream, data, _time in container.log_entries(follow=follow, **options):
            self.output(stream, data)

    def attach(self, attachment, *, stdin: bool, tty: bool):
        """Show an attached container's output live and feed it stdin;
        return its exit code."""
        for stream, data in attachment:
            self.output(stream, data)
        return attachment.exit_code

    def stats(self, samples, *, stream: bool, names: dict) -> None:
        """Show lists of ``stats.ContainerStats`` as they come; ``names``
        maps container ids to names."""
        raise NotImplementedError

    def exec(self, container, command, **options) -> int:
        """Run ``command`` in ``container`` showing its output; return the
        exit code."""
        raise NotImplementedError


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """docker's column layout: each column as wide as its widest cell."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))
    spacing = "   "
    return [spacing.join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]


class TerminalUI(UI):
    """stdout/stderr of a terminal or a pipe."""

    def __init__(self, stdout=None, stderr=None, stdin=None):
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdin = stdin or sys.stdin
        self.interactive = self.stdout.isatty()

    def print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def warn(self, text: str) -> None:
        self.stderr.write(f"WARNING: {text}\n")
        self.stderr.flush()

    def progress(self, title: str = "", *, to_stderr: bool = False):
        out = self.stderr if to_stderr else self.stdout
        if out.isatty():
            return BarPrinter(out)
        return ProgressPrinter(lambda text="": (out.write(text + "\n"), out.flush()))

    def output(self, stream: str, data: bytes) -> None:
        target = self.stderr if stream == "stderr" else self.stdout
        target.flush()
        os.write(target.fileno(), data)

    def attach(self, attachment, *, stdin: bool, tty: bool):
        from .terminal import attach_terminal

        return attach_terminal(attachment, self, stdin=stdin, tty=tty)

    def exec(self, container, command, **options) -> int:
        from .terminal import exec_terminal

        return exec_terminal(container, command, stdin=self.stdin, stdout=self.stdout, stderr=self.stderr,
                             **options)

    def stats(self, samples, *, stream: bool, names: dict) -> None:
        from .format import stats_table

        first = True
        for batch in samples:
            headers, rows = stats_table(batch, names)
            if stream and self.interactive:
                self.stdout.write("\x1b[2J\x1b[H")
            elif not first:
                self.print()
            self.table(headers, rows)
            first = False


class ProgressPrinter:
    """Plain lines, one per state change of a layer (for pipes and logs)."""

    def __init__(self, print_line):
        self.print_line = print_line
        self.last: dict[str, str] = {}

    def __call__(self, event: events.Progress) -> None:
        if event.kind == "status":
            self.print_line(event.message)
            return
        if self.last.get(event.id) == event.status:
            return
        self.last[event.id] = event.status
        self.print_line(f"{event.id}: {layer_status_text(event)}")


def layer_status_text(event: events.Progress) -> str:
    if event.message and event.status == events.DONE:
        return event.message
    return {
        events.WAITING: "Waiting",
        events.DOWNLOADING: "Downloading",
        events.VERIFYING: "Verifying Checksum",
        events.EXTRACTING: "Extracting",
        events.DONE: "Pull complete",
        events.EXISTS: "Already exists",
        events.ERROR: f"Error: {event.message}",
    }.get(event.status, event.status)


class BarPrinter:
    """docker pull's live per-layer bars on a terminal, redrawn at most
    ten times a second."""

    WIDTH = 50

    def __init__(self, out):
        self.out = out
        self.order: list[str] = []
        self.events: dict[str, events.Progress] = {}
        self.drawn = 0
        self.last_draw = 0.0
        self.lock = threading.Lock()

    def __call__(self, event: events.Progress) -> None:
        with self.lock:
            if event.kind == "status":
                self._draw(force=True)
                self.out.write(event.message + "\n")
                self.drawn = 0
                self.out.flush()
                return
            if event.id not in self.events:
                self.order.append(event.id)
            self.events[event.id] = event
            final = event.status in (events.DONE, events.EXISTS, events.ERROR)
            self._draw(force=final)

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}A")
        for layer in self.order:
            event = self.events[layer]
            line = f"{layer}: {layer_status_text(event)}"
            if event.status in (events.DOWNLOADING, events.EXTRACTING) and event.total:
                done = int(self.WIDTH * min(event.current, event.total) / event.total)
                bar = "=" * max(done - 1, 0) + (">" if done else "") + " " * (self.WIDTH - done)
                line += f" [{bar}] {_size(event.current)}/{_size(event.total)}"
            self.out.write("\x1b[2K" + line + "\n")
        self.drawn = len(self.order)
        self.out.flush()


def _size(value: int) -> str:
    from ..units import format_decimal

    return format_decimal(value)
