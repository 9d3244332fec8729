"""An IPython shell with the extension loaded, on the test's private storage
root, and a sweep of the containers a test started."""

from __future__ import annotations

import io
import sys
import time

import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Recorder(io.TextIOBase):
    """A stdout/stderr stand-in that keeps each write with its time, so
    tests can tell output that streamed from output that came at the end."""

    def __init__(self):
        self.writes: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        self.writes.append((time.monotonic(), text))
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(text for _time, text in self.writes)

    def first(self, needle: str) -> float:
        """When the output first contained ``needle``."""
        seen = ""
        for moment, text in self.writes:
            seen += text
            if needle in seen:
                return moment
        raise AssertionError(f"{needle!r} never written; output: {seen!r}")


class Cell:
    """What one cell did: its result, stdout, stderr and displays."""

    def __init__(self, result, stdout: Recorder, stderr: Recorder, displays: list[dict]):
        self.result = result
        self.stdout = stdout
        self.stderr = stderr
        self.displays = displays

    @property
    def widgets(self) -> list:
        """The widgets the cell displayed, found from the model ids in the
        display messages as a frontend finds them."""
        from ipywidgets.widgets.widget import _instances

        return [_instances[bundle[WIDGET_VIEW]["model_id"]] for bundle in self.displays if WIDGET_VIEW in bundle]

    def widget(self, kind):
        (found,) = {id(w): w for w in self.widgets if isinstance(w, kind)}.values()
        return found

    @property
    def value(self):
        return self.result.result

    @property
    def error(self):
        return self.result.error_in_exec


class Shell:
    """A real InteractiveShell; ``run(source)`` executes a cell as the
    notebook would and returns a :class:`Cell`."""

    def __init__(self, shell: InteractiveShell):
        self.shell = shell

    @property
    def magics(self):
        return self.shell.magics_manager.registry["ContainerMagics"]

    def run(self, source: str) -> Cell:
        stdout, stderr = Recorder(), Recorder()
        displays = []
        publisher = self.shell.display_pub
        publish = publisher.publish

        def record(data, *args, **kwargs):
            displays.append(data)
            return publish(data, *args, **kwargs)

        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        publisher.publish = record
        try:
            result = self.shell.run_cell(source, store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
            del publisher.publish
        return Cell(result, stdout, stderr, displays)


@pytest.fixture
def shell(storage_root):
    InteractiveShell.clear_instance()
    ipython = InteractiveShell.instance(config=Config({"HistoryManager": {"enabled": False}}))
    ipython.run_line_magic("load_ext", "jupyter_containers")
    wrapper = Shell(ipython)
    try:
        yield wrapper
    finally:
        ipython.run_line_magic("unload_ext", "jupyter_containers")
        InteractiveShell.clear_instance()
        remove_all_containers()


def remove_all_containers() -> None:
    from jupyter_containers.client import Client

    client = Client()
    for container in client.containers.list(all=True):
        container.remove(force=True)
