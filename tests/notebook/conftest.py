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


def wait_until(condition, timeout: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Cell:
    """What one cell did: its result, stdout, stderr, displays, and the
    value IPython showed as ``Out[n]`` (``shown``: its format bundle, as a
    kernel's execute_result carries it, or None)."""

    def __init__(self, result, stdout: Recorder, stderr: Recorder, displays: list[dict], shown):
        self.result = result
        self.stdout = stdout
        self.stderr = stderr
        self.displays = displays
        self.shown = shown

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
        self._shown = []
        # Out[n] goes to Cell.shown rather than into stdout, as in a kernel.
        shell.displayhook.write_output_prompt = lambda: None
        shell.displayhook.write_format_data = lambda data, metadata=None: self._shown.append(data)

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

        self._shown.clear()
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = stdout, stderr
        publisher.publish = record
        try:
            result = self.shell.run_cell(source, store_history=True)
        finally:
            sys.stdout, sys.stderr = saved
            del publisher.publish
        return Cell(result, stdout, stderr, displays, self._shown[0] if self._shown else None)


@pytest.fixture
def shell(client):
    """A fresh InteractiveShell with the extension loaded, on ``client``'s
    private storage root (plain ``busybox`` resolves to the test registry;
    the containers are swept at the end)."""
    InteractiveShell.clear_instance()
    ipython = InteractiveShell.instance(config=Config({"HistoryManager": {"enabled": False}}))
    ipython.run_line_magic("load_ext", "jupyter_containers")
    wrapper = Shell(ipython)
    assert wrapper.run("%container pull -q busybox").error is None
    try:
        yield wrapper
    finally:
        ipython.run_line_magic("unload_ext", "jupyter_containers")
        InteractiveShell.clear_instance()


@pytest.fixture
def python(hub, shell):
    """``python`` and ``python:3.11`` resolve to the fixture Python image,
    pulled already."""
    hub.ensure("python_image", "library/python", tags=("latest", "3.11"))
    assert shell.run("%container pull -q python:3.11").error is None
