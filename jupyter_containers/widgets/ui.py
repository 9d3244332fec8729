"""The notebook's :class:`~jupyter_containers.commands.ui.UI`: what the verbs
show, as cell output and widgets.

Output of attached containers and execs is written to the cell's stdout and
stderr as it arrives (ANSI colours reach the frontend unchanged). A kernel
interrupt (KeyboardInterrupt in the kernel's main thread) sends SIGINT to
what is running; if it has not ended within the container's stop timeout
(``--stop-timeout``, else ``Runtime.stop_timeout``, 10 s) — or on a second
interrupt — it is killed.
"""

from __future__ import annotations

import codecs
import html
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from ..commands.format import stats_table
from ..commands.ui import UI, ProgressPrinter, text_table
from ..errors import ContainersError, UserError

_FLUSH_INTERVAL = 0.05
_YELLOW, _RED, _RESET = "\x1b[33m", "\x1b[31m", "\x1b[0m"


def widget_frontend() -> bool:
    """Whether output goes to a kernel whose frontend may render widgets
    (rather than a terminal IPython or plain Python)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class NotebookUI(UI):
    """``widgets``: show widgets (default: when running in a kernel).
    ``stdin_data``: bytes given to an attached run or exec as its stdin
    (then closed) — a ``%%container`` cell's body."""

    def __init__(self, *, widgets: bool | None = None, stdin_data: bytes | None = None):
        self.widgets = widget_frontend() if widgets is None else widgets
        self.stdin_data = stdin_data
        #: Set when a kernel interrupt stopped an attached run or exec.
        self.interrupted = False
        #: The widgets this UI displayed, in order.
        self.shown: list = []
        self._decoders: dict[str, codecs.IncrementalDecoder] = {}
        self._handles: list = []

    # --- text -------------------------------------------------------------

    def print(self, text: str = "") -> None:
        sys.stdout.write(text + "\n")

    def warn(self, text: str) -> None:
        sys.stderr.write(f"{_YELLOW}WARNING: {text}{_RESET}\n")

    def error(self, text: str) -> None:
        sys.stderr.write(f"{_RED}{text}{_RESET}\n")

    def output(self, stream: str, data: bytes) -> None:
        decoder = self._decoders.get(stream)
        if decoder is None:
            decoder = self._decoders[stream] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text = decoder.decode(data)
        if text:
            (sys.stderr if stream == "stderr" else sys.stdout).write(text)

    def binary_output(self):
        raise UserError("a notebook cell cannot take an archive as output", hint="write it to a file with -o FILE")

    def binary_input(self):
        raise UserError("a notebook cell has no input to read an archive from", hint="read it from a file with -i FILE")

    def prompt(self, text: str, *, secret: bool = False, hint: str = "") -> str:
        """Asks through the frontend (ipykernel's input and getpass)."""
        import getpass

        try:
            return getpass.getpass(text) if secret else input(text)
        except (NotImplementedError, EOFError):       # StdinNotImplementedError: no frontend input
            raise UserError("cannot ask for input: this frontend does not take any", hint=hint) from None

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()

    # --- rich output ------------------------------------------------------

    def show(self, widget, *, refresh_at_end: bool = False):
        """Display ``widget``; with ``refresh_at_end`` its text/plain form
        is displayed again by :meth:`finish` (so a notebook saved or
        converted to text keeps its final state)."""
        from IPython.display import display

        handle = display(widget, display_id=True)
        self.shown.append(widget)
        if refresh_at_end and handle is not None:
            self._handles.append((handle, widget))
        return widget

    def finish(self) -> None:
        """The verb is over: flush output, refresh final widget states."""
        self.flush()
        for handle, widget in self._handles:
            handle.update(widget)
        self._handles.clear()

    def table(self, headers, rows, *, kind=None, objects=None) -> None:
        if self.widgets and kind == "containers" and objects:
            from .table import ContainerTable

            self.show(ContainerTable(objects))
            return
        from IPython.display import display

        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row)
                       + "</tr>" for row in rows)
        display({"text/html": f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
                 "text/plain": "\n".join(text_table(headers, rows))}, raw=True)

    def json(self, value) -> None:
        from IPython.display import display

        display({"application/json": value, "text/plain": json.dumps(value, indent=4)}, raw=True)

    def progress(self, title: str = "", *, to_stderr: bool = False):
        # A notebook has one output area: the progress shows there either way.
        if not self.widgets:
            return ProgressPrinter(self.print)
        from .progress import PullProgress

        return self.show(PullProgress(title), refresh_at_end=True)

    def detached(self, container) -> None:
        self.print(container.name)

    def stats(self, samples, *, stream: bool, names: dict) -> None:
        if self.widgets:
            from .stats import ResourceMonitor

            self.show(ResourceMonitor(samples=samples, names=names, follow=stream))
            return
        try:
            for number, batch in enumerate(samples):
                headers, rows = stats_table(batch, names)
                self.lines(([""] if number else []) + text_table(headers, rows))
                self.flush()
        except KeyboardInterrupt:
            pass

    def logs(self, container, *, follow: bool, **options) -> None:
        if self.widgets and follow:
            from .logs import LogViewer

            options.pop("until", None)
            self.show(LogViewer(container, follow=True, **options))
            return
        try:
            for stream, data, _time in container.log_entries(follow=follow, **options):
                self.output(stream, data)
                self.flush()
        except KeyboardInterrupt:
            pass

    # --- attached runs and execs -------------------------------------------

    def attach(self, attachment, *, stdin: bool, tty: bool):
        container = attachment.container
        live = LiveOutput(self)
        live.read_pairs(attachment)
        if stdin:
            live.feed(self.stdin_data, attachment.send, attachment.close_stdin)
        try:
            self.interrupted = live.run(interrupt=lambda: _quietly(container.kill, "SIGINT"),
                                        kill=lambda: _quietly(container.kill, "SIGKILL"),
                                        grace=_grace(container), what=container.name)
        finally:
            attachment.close()
        if attachment.exit_code is not None:
            return attachment.exit_code
        return container.wait()["StatusCode"]

    def exec(self, container, command, *, environment, user, workdir, tty, interactive, privileged,
             detach) -> int | None:
        options = dict(environment=environment, user=user, workdir=workdir, tty=tty, privileged=privileged)
        if detach:
            container.exec(command, detach=True, **options)
            return None
        live = LiveOutput(self)
        wants_stdin = interactive and self.stdin_data is not None
        if tty:
            master, slave = os.openpty()
            try:
                process = container.exec(command, stdin=slave, stdout=slave, stderr=slave, **options)
            finally:
                os.close(slave)
            live.read_fd("stdout", master)
            if wants_stdin:
                live.feed(self.stdin_data, lambda data: os.write(master, data), lambda: os.write(master, b"\x04"))
        else:
            process = container.exec(command, stdin=subprocess.PIPE if wants_stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
            live.read_fd("stdout", process.stdout.fileno())
            live.read_fd("stderr", process.stderr.fileno())
            if wants_stdin:
                live.feed(self.stdin_data, process.stdin.write, process.stdin.close)
        try:
            self.interrupted = live.run(interrupt=lambda: process.signal(signal.SIGINT),
                                        kill=lambda: process.signal(signal.SIGKILL),
                                        grace=_grace(container), what=f"the exec in {container.name}")
            code = process.wait()
        finally:
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            if tty:
                os.close(master)
        return code


def _grace(container) -> float:
    return float(container.client.runtime.stop_timeout_of(container.attrs))


def _quietly(action, *args) -> None:
    """Signal something that may have just ended on its own."""
    try:
        action(*args)
    except ContainersError:
        pass


class LiveOutput:
    """Output from reader threads, shown in the cell by the calling (main)
    thread as it arrives, so a kernel interrupt lands here and can be turned
    into signals for whatever produces the output."""

    def __init__(self, ui: NotebookUI):
        self.ui = ui
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._sources = 0

    def _start(self, target, *args) -> None:
        self._sources += 1
        threading.Thread(target=self._guard, args=(target, *args), daemon=True).start()

    def _guard(self, target, *args) -> None:
        try:
            target(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            self._queue.put(("error", error))
        finally:
            self._queue.put((None, None))

    def read_pairs(self, pairs) -> None:
        """A source of ``(stream, data)`` pairs (an attachment)."""
        def pump():
            for stream, data in pairs:
                self._queue.put((stream, data))

        self._start(pump)

    def read_fd(self, stream: str, fd: int) -> None:
        def pump():
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:          # EIO: a pty whose other side closed
                    return
                if not data:
                    return
                self._queue.put((stream, data))

        self._start(pump)

    def feed(self, data: bytes | None, write, close) -> None:
        """Write ``data`` (if any) with ``write``, then ``close``, in a
        thread (so a process that does not read cannot block the cell)."""
        def pump():
            try:
                if data:
                    write(data)
                close()
            except (OSError, ValueError, ContainersError):
                pass                      # it ended without reading it all

        threading.Thread(target=pump, daemon=True).start()

    def run(self, *, interrupt, kill, grace: float, what: str) -> bool:
        """Show output until every source has ended. The first interrupt
        calls ``interrupt`` and gives ``grace`` seconds before ``kill``;
        a second calls ``kill`` at once. Returns whether interrupted."""
        interrupted = False
        deadline = None
        last_flush = 0.0
        while self._sources:
            try:
                try:
                    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                    stream, data = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self.ui.error(f"{what} did not stop within {grace:g} s: killing it")
                    deadline = None
                    kill()
                    continue
                if stream is None:
                    self._sources -= 1
                elif stream == "error":
                    raise data
                else:
                    self.ui.output(stream, data)
                now = time.monotonic()
                if self._queue.empty() or now - last_flush >= _FLUSH_INTERVAL:
                    self.ui.flush()
                    last_flush = now
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    deadline = time.monotonic() + grace
                    self.ui.error(f"Interrupted: sent SIGINT to {what}; it is killed if still running in "
                                  f"{grace:g} s (interrupt again to kill it now)")
                    interrupt()
                else:
                    deadline = None
                    kill()
        self.ui.flush()
        return interrupted
