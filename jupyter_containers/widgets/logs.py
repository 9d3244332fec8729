"""A container's logs as a live widget: follow with a tail, stdout and stderr
told apart, ANSI colours rendered, pause and clear.

It stays cheap however fast the container writes: every ``interval`` it
reads only the newest lines (at most ``max_lines``, read backwards from the
end of the log) since the last one it has, so the work per update is bounded
by what it shows, not by what the container wrote; the buffer holds at most
``max_lines`` lines and the view is redrawn at most once per ``interval``.
When more than ``max_lines`` lines arrive within one interval the older ones
are skipped, and a marker line says so.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque

import ipywidgets as w

from ..errors import ContainerNotFound
from .ansi import ansi_to_html, overwrite_carriage_returns, strip_ansi
from .live import LiveWidget

_LINE_LIMIT = 8192           # characters of one line kept for display
_RUNNING = ("running", "paused", "restarting")
SKIPPED = "skipped"          # the stream name of a marker line


class LogLine:
    __slots__ = ("stream", "text", "_html")

    def __init__(self, stream: str, text: str):
        self.stream = stream
        self.text = text
        self._html = None

    def html(self) -> str:
        if self._html is None:
            body = ansi_to_html(overwrite_carriage_returns(self.text))
            self._html = f'<div class="jc-log-{self.stream}">{body or "&nbsp;"}</div>'
        return self._html


_STYLE = """<style>
.jc-log {font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 13px);
  line-height: 1.35; white-space: pre-wrap; word-break: break-all; overflow-y: auto;
  display: flex; flex-direction: column-reverse; border: 1px solid var(--jp-border-color2, #ddd);
  padding: 2px 6px; background: var(--jp-layout-color0, white)}
.jc-log-stderr {background: var(--jp-rendermime-error-background, #fdd)}
.jc-log-skipped {color: var(--jp-ui-font-color2, #888); font-style: italic}
</style>"""


class LogViewer(LiveWidget, w.VBox):
    """Follow ``container``'s logs (a client ``Container``, or a name with
    ``client``): the last ``tail`` lines, then new ones as they come, until
    the container stops or is removed, or the widget is closed.

    ``since``/``timestamps`` are ``docker logs``'s. ``paused`` (the Pause
    button) stops redrawing while lines are still collected; ``clear()``
    (the Clear button) empties the view.
    """

    def __init__(self, container, *, client=None, tail: int | str | None = 100, follow: bool = True,
                 since=None, timestamps: bool = False, max_lines: int = 1000, interval: float = 0.25,
                 height: str = "320px", **kwargs):
        if isinstance(container, str):
            from ..client import Client

            container = (client or Client()).containers.get(container)
        self.container = container
        self.follow = follow
        self.max_lines = max_lines
        self.interval = interval
        self.timestamps = timestamps
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.received = 0
        #: How many times lines were skipped to keep up.
        self.skips = 0
        self.ended = False
        self.removed = False
        self._tail = None if tail in (None, "all") else int(tail)
        self._started = False
        self._next_since = since
        # The newest log time taken, and how many entries carry exactly that
        # time, so the next read (from that time on) skips what was taken.
        self._last_time: str | None = None
        self._taken_at_last_time = 0
        self._partial: dict[str, str] = {}
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._height = height
        self.pause_button = w.ToggleButton(description="Pause", icon="pause", tooltip="Stop redrawing; lines are still collected",
                                           layout=w.Layout(width="90px"))
        self.clear_button = w.Button(description="Clear", icon="eraser", layout=w.Layout(width="90px"))
        self.status = w.Label()
        self.view = w.HTML()
        self.pause_button.observe(self._pause_toggled, "value")
        self.clear_button.on_click(lambda _button: self.clear())
        header = w.HBox([w.HTML(f"<b>{html.escape(container.name)}</b>"), self.pause_button, self.clear_button,
                         self.status], layout=w.Layout(align_items="center", grid_gap="8px"))
        super().__init__([header, self.view], **kwargs)
        self._render()
        self._start_live()

    @property
    def paused(self) -> bool:
        return self.pause_button.value

    @paused.setter
    def paused(self, value: bool) -> None:
        self.pause_button.value = bool(value)

    def clear(self) -> None:
        with self._lock:
            self.lines.clear()
        self._render()

    def _pause_toggled(self, change) -> None:
        self.pause_button.description = "Resume" if change["new"] else "Pause"
        self.pause_button.icon = "play" if change["new"] else "pause"
        if not change["new"]:
            self._render()
        else:
            self._show_status()

    def _restartable(self) -> bool:
        return self.follow and not self.ended

    # --- reading ----------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            # Sampled before reading: once it says stopped, the log is complete.
            running = self._container_running()
            self._read_new()
            if self._dirty.is_set() and not self.paused:
                self._render()
            if not self.follow or not running:
                self.ended = True
                self._flush_partial()
                self._render()
                return
            stop.wait(self.interval)

    def _container_running(self) -> bool:
        try:
            return self.container.reload().status in _RUNNING
        except ContainerNotFound:
            self.removed = True
            return False

    def _read_new(self) -> None:
        """Take the lines written since the last read (at most
        ``max_lines``; the first read takes the tail)."""
        first = not self._started
        limit = self._tail if first else self.max_lines
        skip = self._taken_at_last_time
        read_at = time.time()
        try:
            # One more than shown tells whether lines were skipped.
            entries = list(self.container.log_entries(
                tail=None if limit is None else limit + skip + 1, since=self._next_since,
                timestamps=self.timestamps))
        except ContainerNotFound:
            return
        self._started = True
        new = []
        for entry in entries:
            if skip and entry.time == self._last_time:
                skip -= 1
            else:
                new.append(entry)
        for entry in new:
            if entry.time == self._last_time:
                self._taken_at_last_time += 1
            else:
                self._last_time, self._taken_at_last_time = entry.time, 1
        # Nothing written yet: what comes next is written from now on.
        self._next_since = self._last_time if self._last_time is not None else read_at
        if limit is not None and len(new) > limit:
            new = new[len(new) - limit:]
            if not first:
                self.skips += 1
                self._add(SKIPPED, "… earlier lines skipped: the container writes faster than they can be shown\n")
        for entry in new:
            self._add(entry.stream, entry.data.decode("utf-8", "replace"))

    def _add(self, stream: str, text: str) -> None:
        """Append ``text``, completing the stream's unfinished line."""
        with self._lock:
            pieces = (self._partial.pop(stream, "") + text).split("\n")
            for piece in pieces[:-1]:
                self.lines.append(LogLine(stream, piece[:_LINE_LIMIT]))
                self.received += 1
            if pieces[-1]:
                self._partial[stream] = pieces[-1][:_LINE_LIMIT]
        self._dirty.set()

    def _flush_partial(self) -> None:
        with self._lock:
            for stream, text in self._partial.items():
                self.lines.append(LogLine(stream, text))
                self.received += 1
            self._partial.clear()

    # --- drawing ----------------------------------------------------------

    def _render(self) -> None:
        self._dirty.clear()
        with self._lock:
            body = "".join(line.html() for line in self.lines)
            body += "".join(LogLine(stream, text).html() for stream, text in self._partial.items())
        # column-reverse keeps the view scrolled to the newest line.
        self.view.value = (f'{_STYLE}<div class="jc-log" style="height:{self._height}"><div>{body}</div></div>')
        self._show_status()

    def _show_status(self) -> None:
        if self.removed:
            text = "removed"
        elif self.ended:
            text = self.container.status + (f" ({self.container.exit_code})" if self.container.status == "exited" else "")
        elif self.paused:
            text = "paused"
        elif self.running:
            text = "following"
        else:
            text = "stopped following"
        self.status.value = f"{text} · {len(self.lines)} of {self.received} lines"

    def text(self) -> str:
        with self._lock:
            shown = [strip_ansi(overwrite_carriage_returns(line.text)) for line in self.lines]
        return f"{self.container.name} logs:\n" + "\n".join(shown)
