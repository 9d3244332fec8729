"""Containers' resources as a live widget: CPU %, memory against its limit,
pids, network and block I/O as numbers, and small SVG time-series plots of
CPU, memory and network rate."""

from __future__ import annotations

import html
import threading
from collections import deque

import ipywidgets as w

from ..errors import ContainerNotFound, ContainersError
from ..units import format_binary, format_decimal
from .live import LiveWidget

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_PLOT_WIDTH, _PLOT_HEIGHT = 300, 90


class _History:
    """The recent samples of one container."""

    def __init__(self, name: str, length: int):
        self.name = name
        self.times: deque[float] = deque(maxlen=length)
        self.cpu: deque[float] = deque(maxlen=length)
        self.memory: deque[float] = deque(maxlen=length)
        self.network_rate: deque[float] = deque(maxlen=length)
        self.latest = None

    def add(self, sample) -> None:
        previous = self.latest
        self.latest = sample
        self.times.append(sample.read)
        self.cpu.append(sample.cpu_percent or 0.0)
        self.memory.append(sample.memory_usage or 0)
        rate = 0.0
        if previous is not None and sample.net_rx is not None and previous.net_rx is not None:
            elapsed = sample.read - previous.read
            moved = (sample.net_rx - previous.net_rx) + (sample.net_tx - previous.net_tx)
            rate = max(moved, 0) / elapsed if elapsed > 0 else 0.0
        self.network_rate.append(rate)


_COLUMNS = ["CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
_HEADERS = ["NAME", *_COLUMNS]


def _row(history: _History) -> list[str]:
    """docker stats' columns, as ``ContainerStats.display`` formats them."""
    shown = history.latest.display()
    return [history.name] + [shown[column] for column in _COLUMNS]


def plot_svg(title: str, series: list[tuple[str, list[float], list[float]]], *, floor: float,
             label) -> str:
    """A small line chart: one polyline per ``(colour, times, values)``,
    scaled to the largest value (at least ``floor``)."""
    top = max([floor] + [max(values) for _c, _t, values in series if values])
    times = [t for _c, ts, _v in series for t in ts]
    start, end = (min(times), max(times)) if times else (0.0, 1.0)
    span = (end - start) or 1.0
    lines = []
    for colour, ts, values in series:
        points = " ".join(f"{(t - start) / span * _PLOT_WIDTH:.1f},{_PLOT_HEIGHT - v / top * (_PLOT_HEIGHT - 4):.1f}"
                          for t, v in zip(ts, values))
        if points:
            lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
    return (f'<div style="display:inline-block;margin-right:12px"><div style="font-size:11px">'
            f'<b>{html.escape(title)}</b> <span style="color:#888">max {html.escape(label(top))}</span></div>'
            f'<svg width="{_PLOT_WIDTH}" height="{_PLOT_HEIGHT}" style="border:1px solid #ddd;background:white">'
            f'{"".join(lines)}</svg></div>')


class ResourceMonitor(LiveWidget, w.VBox):
    """Live ``docker stats`` for ``containers`` (client ``Container`` objects
    or names; none: the running containers, following those that start
    later), sampled every ``interval`` seconds, with the last ``history``
    samples plotted.

    ``samples``: an iterator of lists of ``stats.ContainerStats`` to show
    instead of sampling, ``names`` their containers' names by id (what the
    ``stats`` verb passes). With ``follow=False`` only the first list is
    shown. Updates end when the widget is closed or every container it has
    shown is gone.
    """

    def __init__(self, containers=None, *, client=None, samples=None, names: dict | None = None,
                 follow: bool = True, interval: float = 1.0, history: int = 60, **kwargs):
        if client is None:
            from ..client import Client

            client = next((c.client for c in (containers or []) if not isinstance(c, str)), None) or Client()
        self.client = client
        self.interval = interval
        self.follow = follow
        self.history_length = history
        self.histories: dict[str, _History] = {}
        self.samples_seen = 0
        self.ended = False
        self._names = names if names is not None else {}
        self._had_containers = False
        if samples is None:
            samples = self._sample(containers)
        self._samples = iter(samples)
        self._samples_lock = threading.Lock()
        self._lock = threading.Lock()
        self.status = w.Label("sampling…")
        self.table = w.HTML()
        self.plots = w.HTML()
        super().__init__([w.HBox([w.HTML("<b>Resources</b>"), self.status],
                                 layout=w.Layout(grid_gap="8px", align_items="center")),
                          self.table, self.plots], **kwargs)
        self._start_live()

    def _sample(self, containers):
        if containers is None:
            def ids():            # re-listed at every sample: follows containers that start later
                return [c.id for c in self.client.containers.list()]
        else:
            ids = [self.client.containers.get(c).id if isinstance(c, str) else c.id for c in containers]
        return self.client.runtime.stats(ids, stream=True, interval=self.interval)

    def _name(self, container_id: str) -> str:
        if container_id not in self._names:
            try:
                self._names[container_id] = self.client.containers.get(container_id).name
            except ContainerNotFound:
                return container_id[:12]
        return self._names[container_id]

    def _restartable(self) -> bool:
        return not self.ended

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                with self._samples_lock:
                    batch = next(self._samples, None)
            except ContainersError:        # a container it was given is gone
                batch = []
            if batch is None or stop.is_set():
                break
            if self._had_containers and not batch:
                self.ended = True           # all gone: keep showing their last figures
                break
            self.add(batch)
            self._had_containers = self._had_containers or bool(batch)
            if not self.follow:
                self.ended = True
                break
        self._show_status()

    def add(self, batch) -> None:
        """Show one list of samples."""
        with self._lock:
            self.samples_seen += 1
            present = set()
            for sample in batch:
                history = self.histories.get(sample.id)
                if history is None:
                    history = self.histories[sample.id] = _History(self._name(sample.id), self.history_length)
                history.add(sample)
                present.add(sample.id)
            for gone in set(self.histories) - present:
                del self.histories[gone]
            current = list(self.histories.values())
        self._draw(current)

    def _draw(self, current: list[_History]) -> None:
        colours = {h.name: _COLOURS[i % len(_COLOURS)] for i, h in enumerate(current)}
        head = "".join(f"<th style='text-align:left;padding-right:1em'>{h}</th>" for h in _HEADERS)
        rows = []
        for history in current:
            cells = _row(history)
            swatch = f"<span style='color:{colours[history.name]}'>■</span> "
            memory_bar = ""
            if history.latest.memory_percent is not None:
                memory_bar = (f"<div style='width:120px;height:4px;background:#eee'><div style='height:4px;"
                              f"width:{min(history.latest.memory_percent, 100):.0f}%;background:"
                              f"{'#c62828' if history.latest.memory_percent > 90 else '#2e7d32'}'></div></div>")
            rows.append("<tr>" + "".join(
                f"<td style='text-align:left;padding-right:1em'>{swatch if i == 0 else ''}{html.escape(c)}"
                f"{memory_bar if i == 2 else ''}</td>" for i, c in enumerate(cells)) + "</tr>")
        self.table.value = (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                            if rows else "<i>No running containers.</i>")

        def series(attribute):
            return [(colours[h.name], list(h.times), list(getattr(h, attribute))) for h in current]

        self.plots.value = (plot_svg("CPU %", series("cpu"), floor=100.0, label=lambda v: f"{v:.0f}%")
                            + plot_svg("Memory", series("memory"), floor=1 << 20, label=format_binary)
                            + plot_svg("Network", series("network_rate"), floor=1000.0,
                                       label=lambda v: f"{format_decimal(v)}/s"))
        self._show_status()

    def _show_status(self) -> None:
        count = len(self.histories)
        if self.ended or not self.running:
            state = "ended" if self.ended else "stopped"
        else:
            state = f"every {self.interval:g} s"
        self.status.value = f"{count} container{'s' if count != 1 else ''} · {state}"

    def text(self) -> str:
        from ..commands.ui import text_table

        with self._lock:
            rows = [_row(h) for h in self.histories.values()]
        if rows:
            return "\n".join(text_table(_HEADERS, rows))
        return "Sampling…" if self.running and not self.samples_seen else "No running containers."
