"""Pull (and load) progress as widgets: one bar per layer and a total, with
sizes and speed, as ``docker pull`` shows them.

The widget is an :data:`events.ProgressCallback`::

    progress = PullProgress("busybox")
    display(progress)
    client.images.pull("busybox", progress=progress)
"""

from __future__ import annotations

import threading
import time
from html import escape as _escape

import ipywidgets as w

from .. import events
from ..commands.ui import layer_status_text
from ..units import format_decimal
from .live import TextFallback

_FINAL = (events.DONE, events.EXISTS, events.ERROR)
_BAR_STYLE = {events.DONE: "success", events.EXISTS: "info", events.ERROR: "danger",
              events.EXTRACTING: "info", events.VERIFYING: "info"}
_REDRAW_INTERVAL = 0.1


class LayerProgress:
    """What is known about one layer: its latest event and its speed."""

    def __init__(self, layer_id: str):
        self.id = layer_id
        self.status = events.WAITING
        self.current = 0
        self.total: int | None = None
        self.message = ""
        self.download_started: float | None = None
        self.download_ended: float | None = None
        self.downloaded = 0
        self.statuses: list[str] = []

    def update(self, event: events.Progress) -> None:
        if event.status == events.DOWNLOADING and self.download_started is None:
            self.download_started = event.time
        if self.status == events.DOWNLOADING and event.status != events.DOWNLOADING:
            self.download_ended = event.time
        if event.status == events.DOWNLOADING or (self.status == events.DOWNLOADING and event.current):
            self.downloaded = event.current
        if not self.statuses or self.statuses[-1] != event.status:
            self.statuses.append(event.status)
        self.status = event.status
        self.current = event.current
        self.total = event.total if event.total is not None else self.total
        self.message = event.message

    @property
    def cached(self) -> bool:
        return self.status == events.EXISTS

    @property
    def fraction(self) -> float:
        if self.status in (events.DONE, events.EXISTS):
            return 1.0
        if not self.total:
            return 0.0
        return min(self.current, self.total) / self.total

    def speed(self, now: float) -> float | None:
        """Bytes per second while downloading (the average over the download)."""
        if self.download_started is None:
            return None
        elapsed = (self.download_ended or now) - self.download_started
        return self.downloaded / elapsed if elapsed > 0.05 else None

    def size_text(self) -> str:
        if self.total is None:
            return format_decimal(self.current) if self.current else ""
        if self.status in (events.DONE, events.EXISTS):
            return format_decimal(self.total)
        return f"{format_decimal(min(self.current, self.total))} / {format_decimal(self.total)}"

    def as_dict(self) -> dict:
        return {"status": self.status, "current": self.current, "total": self.total, "cached": self.cached,
                "statuses": list(self.statuses), "message": self.message}


def _speed_text(speed: float | None) -> str:
    return f"{format_decimal(speed)}/s" if speed else ""


class _LayerRow:
    def __init__(self, label: str):
        self.label = w.Label(label, layout=w.Layout(width="110px"))
        self.status = w.Label(layout=w.Layout(width="150px"))
        self.bar = w.FloatProgress(min=0.0, max=1.0, layout=w.Layout(width="220px"))
        self.size = w.Label(layout=w.Layout(width="150px"))
        self.speed = w.Label(layout=w.Layout(width="90px"))
        self.box = w.HBox([self.label, self.status, self.bar, self.size, self.speed])

    def show(self, status: str, fraction: float, bar_style: str, size: str, speed: str) -> None:
        with self.box.hold_sync():
            self.status.value = status
            self.bar.value = fraction
            self.bar.bar_style = bar_style
            self.size.value = size
            self.speed.value = speed


class PullProgress(TextFallback, w.VBox):
    """Live progress of a pull: a row per layer (status, bar, size, speed;
    cached layers shown as "Already exists"), a total row and the pull's
    status lines. Safe to call from the pull's download threads; redraws at
    most ten times a second, and at once on every change of state."""

    def __init__(self, title: str = "", **kwargs):
        self.title = title
        self._heading = w.HTML(f"<b>Pulling {_escape(title)}</b>" if title else "")
        self._rows_box = w.VBox()
        self._total_row = _LayerRow("Total")
        self._messages = w.HTML()
        super().__init__([self._heading, self._rows_box, self._total_row.box, self._messages], **kwargs)
        self._lock = threading.Lock()
        self.layers: dict[str, LayerProgress] = {}
        self.messages: list[str] = []
        self._rows: dict[str, _LayerRow] = {}
        self._started = time.time()
        self._last_draw = 0.0
        self._dirty_layers: set[str] = set()

    def __call__(self, event: events.Progress) -> None:
        with self._lock:
            if event.kind == "status":
                self.messages.append(event.message)
                self._messages.value = "<br>".join(_escape(m) for m in self.messages)
                self._draw(time.time(), force=True)
                return
            layer = self.layers.get(event.id)
            if layer is None:
                layer = self.layers[event.id] = LayerProgress(event.id)
                self._rows[event.id] = _LayerRow(event.id)
                self._rows_box.children = [row.box for row in self._rows.values()]
            changed = layer.status != event.status
            layer.update(event)
            self._dirty_layers.add(event.id)
            self._draw(event.time, force=changed)

    @property
    def finished(self) -> bool:
        return bool(self.layers) and all(layer.status in _FINAL for layer in self.layers.values())

    def totals(self) -> tuple[int, int]:
        """(bytes done, bytes in all) over the layers whose size is known."""
        done = sum(min(l.current, l.total) if l.status not in (events.DONE, events.EXISTS) else l.total
                   for l in self.layers.values() if l.total)
        return done, sum(l.total for l in self.layers.values() if l.total)

    def _total_status(self) -> str:
        counts = {}
        for layer in self.layers.values():
            counts[layer.status] = counts.get(layer.status, 0) + 1
        if counts.get(events.ERROR):
            return "Failed"
        if self.finished:
            cached = counts.get(events.EXISTS, 0)
            return "Complete" + (f" ({cached} cached)" if cached else "")
        ready = counts.get(events.DONE, 0) + counts.get(events.EXISTS, 0)
        return f"{ready} of {len(self.layers)} layers"

    def _total_speed(self, now: float) -> float | None:
        starts = [l.download_started for l in self.layers.values() if l.download_started is not None]
        if not starts:
            return None
        ends = [l.download_ended or now for l in self.layers.values() if l.download_started is not None]
        elapsed = max(ends) - min(starts)
        return sum(l.downloaded for l in self.layers.values()) / elapsed if elapsed > 0.05 else None

    def _draw(self, now: float, force: bool) -> None:
        if not force and now - self._last_draw < _REDRAW_INTERVAL:
            return
        self._last_draw = now
        for layer_id in self._dirty_layers:
            layer = self.layers[layer_id]
            self._rows[layer_id].show(layer_status_text(_as_event(layer)), layer.fraction,
                                      _BAR_STYLE.get(layer.status, ""), layer.size_text(),
                                      _speed_text(layer.speed(now)) if not layer.cached else "cached")
        self._dirty_layers.clear()
        done, total = self.totals()
        status = self._total_status()
        style = {"Failed": "danger"}.get(status, "success" if self.finished else "")
        self._total_row.show(status, done / total if total else (1.0 if self.finished else 0.0), style,
                             f"{format_decimal(done)} / {format_decimal(total)}" if total else "",
                             _speed_text(self._total_speed(now)))

    def text(self) -> str:
        with self._lock:
            lines = [f"Pulling {self.title}"] if self.title else []
            for layer in self.layers.values():
                size = layer.size_text()
                lines.append(f"{layer.id}: {layer_status_text(_as_event(layer))}" + (f"  {size}" if size else ""))
            if self.layers:
                done, total = self.totals()
                lines.append(f"Total: {self._total_status()}  {format_decimal(done)} / {format_decimal(total)}")
            lines += self.messages
            return "\n".join(lines)


def _as_event(layer: LayerProgress) -> events.Progress:
    return events.Progress("layer", layer.id, layer.status, layer.current, layer.total, layer.message)
