"""The container list as a live widget: name, image, state, ports and
uptime, with stop, restart, remove and logs buttons on every row."""

from __future__ import annotations

import html
import threading

import ipywidgets as w

from ..client import state_badge
from ..commands.format import container_status, ports_text
from ..commands.ui import text_table
from ..errors import ContainerNotFound, ContainersError
from .live import LiveWidget

_COLUMNS = ("NAME", "IMAGE", "STATE", "PORTS", "STATUS", "")
_GRID = "minmax(110px, max-content) minmax(110px, max-content) 90px minmax(90px, max-content) " \
        "minmax(150px, max-content) max-content"


class _Row:
    """The widgets of one container's row."""

    def __init__(self, table: "ContainerTable", container):
        self.container = container
        self.name = w.HTML()
        self.image = w.Label()
        self.state = w.HTML()
        self.ports = w.Label()
        self.status = w.Label()
        self.buttons = {}
        for action, icon, tip in (("stop", "stop", "Stop"), ("restart", "redo", "Restart"),
                                  ("remove", "trash", "Remove (force)"), ("logs", "align-left", "Show logs")):
            button = w.Button(icon=icon, tooltip=tip, layout=w.Layout(width="34px"))
            button.on_click(lambda _b, action=action: table.act(self.container, action))
            self.buttons[action] = button
        self.actions = w.HBox(list(self.buttons.values()))
        self.cells = [self.name, self.image, self.state, self.ports, self.status, self.actions]

    def show(self, container) -> None:
        self.container = container
        attrs = container.attrs
        self.name.value = f"<b>{html.escape(container.name)}</b>"
        self.image.value = container.image_name
        self.state.value = state_badge(container.status, container.exit_code)
        self.ports.value = ports_text(container.ports)
        self.status.value = container_status(attrs)
        self.buttons["stop"].disabled = container.status not in ("running", "paused", "restarting")

    def text(self) -> list[str]:
        return [self.container.name, self.container.image_name, self.container.status,
                ports_text(self.container.ports), container_status(self.container.attrs)]


class ContainerTable(LiveWidget, w.VBox):
    """``docker ps`` as a table that keeps itself up to date every
    ``interval`` seconds.

    Either the containers of a query (``all``, ``filters`` as ``ps``
    takes them; new containers appear) or a fixed list of ``containers``
    (the table ends its updates once they are all removed). The logs button
    opens a :class:`LogViewer` under the table.
    """

    def __init__(self, containers=None, *, client=None, all: bool = False, filters=None, interval: float = 2.0,
                 **kwargs):
        if client is None:
            from ..client import Client

            client = containers[0].client if containers else Client()
        self.client = client
        self.all = all
        self.filters = filters
        self.interval = interval
        self._tracked = [c.id for c in containers] if containers is not None else None
        self._rows: dict[str, _Row] = {}
        self._lock = threading.RLock()
        self._grid = w.GridBox(layout=w.Layout(grid_template_columns=_GRID, grid_gap="2px 12px",
                                               align_items="center"))
        self._headers = [w.HTML(f"<b>{h}</b>") for h in _COLUMNS]
        self._empty_note = w.HTML()
        self.message = w.HTML()
        self.logs_area = w.VBox()
        self.log_viewer = None
        super().__init__([self._grid, self._empty_note, self.message, self.logs_area], **kwargs)
        self.refresh(containers)
        self._start_live()

    # --- data -------------------------------------------------------------

    def _current(self) -> list:
        if self._tracked is None:
            return self.client.containers.list(all=self.all, filters=self.filters)
        found = []
        for container_id in self._tracked:
            try:
                found.append(self.client.containers.get(container_id))
            except ContainerNotFound:
                continue
        return found

    def refresh(self, containers=None) -> None:
        """Show the containers as they are now."""
        containers = self._current() if containers is None else containers
        with self._lock:
            ids = [c.id for c in containers]
            rows = {}
            for container in containers:
                rows[container.id] = self._rows.get(container.id) or _Row(self, container)
                rows[container.id].show(container)
            if list(rows) != list(self._rows) or not self._grid.children:
                self._grid.children = [*self._headers, *(cell for row in rows.values() for cell in row.cells)]
            self._rows = rows
            if self._tracked is not None:
                self._tracked = ids
            self._empty_note.value = "" if ids else (
                "<i>No containers.</i>" if self._tracked is None else "<i>All removed.</i>")

    @property
    def containers(self) -> list:
        with self._lock:
            return [row.container for row in self._rows.values()]

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            try:
                self.refresh()
            except ContainersError as error:
                self.message.value = _error_html(error)
            if self._tracked == []:
                return

    # --- buttons ------------------------------------------------------------

    def act(self, container, action: str) -> threading.Thread | None:
        """Do what a row's button does (in a thread: a stop may take seconds)."""
        if action == "logs":
            self.show_logs(container)
            return None
        thread = threading.Thread(target=self._act, args=(container, action), daemon=True)
        thread.start()
        return thread

    def _act(self, container, action: str) -> None:
        self.message.value = f"{action.capitalize()} {html.escape(container.name)}…"
        try:
            if action == "stop":
                container.stop()
            elif action == "restart":
                container.restart()
            elif action == "remove":
                container.remove(force=True)
            self.message.value = ""
        except ContainersError as error:
            self.message.value = _error_html(error)
        self.refresh()

    def show_logs(self, container) -> None:
        from .logs import LogViewer

        if self.log_viewer is not None:
            self.log_viewer.close()
        self.log_viewer = LogViewer(container)
        self.logs_area.children = [self.log_viewer]

    def close(self) -> None:
        if self.log_viewer is not None:
            self.log_viewer.close()
        super().close()

    def text(self) -> str:
        with self._lock:
            rows = [row.text() for row in self._rows.values()]
        return "\n".join(text_table(list(_COLUMNS[:-1]), rows)) if rows else "No containers."


def _error_html(error: Exception) -> str:
    return f"<span style='color:var(--jp-error-color1, #c62828)'>{html.escape(str(error))}</span>"
