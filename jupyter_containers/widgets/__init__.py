"""Live notebook widgets (ipywidgets 8), each usable on its own::

    from jupyter_containers.widgets import PullProgress, LogViewer, ResourceMonitor, ContainerTable

- :class:`PullProgress` — a pull's progress callback: a bar per layer and a total;
- :class:`LogViewer` — follow a container's logs;
- :class:`ResourceMonitor` — CPU, memory, pids and network of containers;
- :class:`ContainerTable` — the container list with stop/restart/remove/logs.

The magics show them; with no widget frontend each shows as plain text.
Imported lazily: the magics' text-only paths need no ipywidgets.
"""

_EXPORTS = {
    "PullProgress": "progress",
    "LogViewer": "logs",
    "ResourceMonitor": "stats",
    "ContainerTable": "table",
    "NotebookUI": "ui",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
