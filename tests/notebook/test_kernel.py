"""The magics and widgets in a real kernel: a notebook executed by nbclient,
and the kernel's interrupt (the notebook's stop button) during attached runs."""

from __future__ import annotations

import queue
import re
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from nbclient import NotebookClient

from jupyter_containers.client import Client

from .conftest import WIDGET_VIEW

HERE = Path(__file__).parent
WORKTREE = HERE.parent.parent
pytestmark = pytest.mark.root


@pytest.fixture
def kernel_env(client, hub, monkeypatch):
    """Kernels started by the test import this checkout and use the test's
    storage root and registry mirror (they inherit the environment), where
    ``busybox`` and ``python:3.11`` are."""
    hub.ensure("python_image", "library/python", tags=("latest", "3.11"))
    monkeypatch.setenv("PYTHONPATH", str(WORKTREE))


def outputs_of(cell) -> dict:
    """A code cell's outputs by kind: stdout and stderr text, the
    execute_result and display bundles."""
    found = {"stdout": "", "stderr": "", "result": None, "displays": [], "errors": []}
    for output in cell.outputs:
        if output.output_type == "stream":
            found[output.name] += output.text
        elif output.output_type == "execute_result":
            found["result"] = output.data
        elif output.output_type == "display_data":
            found["displays"].append(output.data)
        elif output.output_type == "error":
            found["errors"].append(output)
    return found


class WidgetStates:
    """The widget models nbclient saved in the notebook's metadata."""

    def __init__(self, nb):
        self.states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]

    def __getitem__(self, model_id: str) -> dict:
        return self.states[model_id]["state"]

    def descendants(self, model_id: str):
        """Every model under ``model_id`` (children of boxes), depth first."""
        yield model_id, self[model_id]
        for child in self[model_id].get("children", []):
            yield from self.descendants(child.removeprefix("IPY_MODEL_"))

    def texts(self, model_id: str) -> str:
        return "\n".join(str(state.get("value", "")) for _id, state in self.descendants(model_id)
                         if isinstance(state.get("value"), str))


def source_index(nb, start: str) -> int:
    (index,) = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and cell.source.startswith(start)]
    return index


def test_the_example_notebook_runs_with_a_real_kernel(kernel_env, tmp_path):
    nb = nbformat.read(HERE / "magics-and-widgets.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    widgets = WidgetStates(nb)

    def cell(start):
        return outputs_of(nb.cells[source_index(nb, start)])

    for code_cell in nb.cells:
        if code_cell.cell_type == "code":
            assert not outputs_of(code_cell)["errors"], code_cell.source

    pull = cell("%container pull")
    (view,) = [d for d in pull["displays"] if WIDGET_VIEW in d][-1:]
    assert "Total: Complete" in view["text/plain"]
    assert "Complete" in widgets.texts(view[WIDGET_VIEW]["model_id"])

    started = cell("web = %container run -d")
    assert started["stdout"] == "nb-web\n"
    assert "running" in started["result"]["text/html"]

    table = cell("%container ps")
    (view,) = [d for d in table["displays"] if WIDGET_VIEW in d]
    assert "nb-web" in view["text/plain"] and "busybox" in view["text/plain"]
    # The table kept itself up to date: when the notebook was saved its
    # last update showed nb-web stopped, or already removed.
    shown = widgets.texts(view[WIDGET_VIEW]["model_id"])
    assert ("<b>nb-web</b>" in shown and ">exited</span>" in shown) or "All removed." in shown, shown

    logs = cell("%container logs -f")
    (view,) = [d for d in logs["displays"] if WIDGET_VIEW in d]
    shown = widgets.texts(view[WIDGET_VIEW]["model_id"])
    assert 'class="jc-log-stdout">line ' in shown and 'class="jc-log-stderr">err ' in shown
    assert "exited (" in shown or "removed ·" in shown        # it followed until nb-web stopped

    stats = cell("%container stats")
    (view,) = [d for d in stats["displays"] if WIDGET_VIEW in d]
    assert "<svg" in widgets.texts(view[WIDGET_VIEW]["model_id"])
    assert "nb-web" in widgets.texts(view[WIDGET_VIEW]["model_id"])

    # The body reached sh on its stdin ($0 is "sh"), untouched.
    assert re.fullmatch(r"exec in [0-9a-f]{12}: 'sh'\n", cell("%%container exec")["stdout"])
    assert cell("%%container run")["stdout"] == "quotes \"double\" and $dollar \\backslash ünïcode\n"

    attached = cell("%container run busybox sh -c")
    assert attached["stdout"] == "\x1b[32mgreen\x1b[0m\n" and attached["stderr"] == "to-stderr\n"
    assert attached["result"]["text/plain"] == "3"

    assert [c.name for c in Client().containers.list(all=True) if c.name == "nb-web"] == []


class Kernel:
    """A kernel of our own, driven message by message."""

    def __init__(self, *arguments: str):
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(extra_arguments=list(arguments))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def execute(self, code: str, timeout: float = 60) -> dict:
        msg_id = self.client.execute(code)
        return self.reply(msg_id, timeout)

    def reply(self, msg_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if message["parent_header"].get("msg_id") == msg_id:
                return message["content"]

    def wait_for_output(self, msg_id: str, needle: str, timeout: float = 60) -> str:
        """Read iopub until a stream of ``msg_id`` has printed ``needle``."""
        deadline = time.monotonic() + timeout
        seen = ""
        while needle not in seen:
            try:
                message = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{needle!r} not printed; saw {seen!r}") from None
            if message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "stream":
                seen += message["content"]["text"]
        return seen

    def stderr_of(self, msg_id: str) -> str:
        text = ""
        while True:
            try:
                message = self.client.get_iopub_msg(timeout=1)
            except queue.Empty:
                return text
            if (message["parent_header"].get("msg_id") == msg_id and message["msg_type"] == "stream"
                    and message["content"]["name"] == "stderr"):
                text += message["content"]["text"]

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel(kernel_env):
    running = Kernel()
    try:
        assert running.execute("%load_ext jupyter_containers")["status"] == "ok"
        yield running
    finally:
        running.close()


def interrupt_during(kernel: Kernel, code: str, started: str) -> tuple[dict, float, str]:
    msg_id = kernel.client.execute(code)
    kernel.wait_for_output(msg_id, started)
    interrupted_at = time.monotonic()
    kernel.manager.interrupt_kernel()
    reply = kernel.reply(msg_id, timeout=60)
    return reply, time.monotonic() - interrupted_at, kernel.stderr_of(msg_id)


def test_interrupt_sends_sigint_to_the_container(kernel):
    """A process that handles SIGINT (Python) ends at once; the cell returns
    its exit status and the kernel goes on."""
    reply, elapsed, stderr = interrupt_during(
        kernel, "code = %container run --name py-sleeper python:3.11 python3 -c "
                "'import time; print(\"started\", flush=True); time.sleep(600)'", "started")
    assert reply["status"] == "ok"
    assert elapsed < 5
    assert "Interrupted: sent SIGINT to py-sleeper" in stderr
    container = Client().containers.get("py-sleeper")
    assert container.status == "exited" and container.exit_code == 130
    assert kernel.execute("assert code == 130")["status"] == "ok"


def test_interrupt_kills_a_container_ignoring_sigint_after_its_stop_timeout(kernel):
    """sh as PID 1 ignores SIGINT: it is killed once --stop-timeout has passed."""
    reply, elapsed, stderr = interrupt_during(
        kernel, "%container run --name sh-sleeper --stop-timeout 2 busybox sh -c 'echo started; sleep 600'",
        "started")
    assert reply["status"] == "ok"
    assert 2 <= elapsed < 8
    assert "did not stop within 2 s: killing it" in stderr
    container = Client().containers.get("sh-sleeper")
    assert container.status == "exited" and container.exit_code == 137


def test_interrupt_during_a_cell_run_fails_the_cell_in_one_line(kernel):
    reply, elapsed, _stderr = interrupt_during(
        kernel, "%%container run --name cell-sleeper python:3.11 python3\n"
                "import time\nprint('started', flush=True)\ntime.sleep(600)\n", "started")
    assert reply["status"] == "error" and elapsed < 5
    assert reply["traceback"] == [f"\x1b[31mError:\x1b[0m {reply['evalue']}"]
    assert reply["evalue"].startswith("interrupted: python3 in cell-sleeper was stopped")
    assert "cell-sleeper" not in [c.name for c in Client().containers.list(all=True)]   # --rm


def test_interrupt_during_an_exec_stops_the_exec(kernel):
    assert kernel.execute("%container run -d --name exec-host busybox sleep 3600")["status"] == "ok"
    reply, elapsed, stderr = interrupt_during(
        kernel, "%%container exec exec-host\necho started\nsleep 600\n", "started")
    assert reply["status"] == "error" and elapsed < 15
    assert "Interrupted: sent SIGINT to the exec in exec-host" in stderr
    assert reply["evalue"].startswith("interrupted: sh in exec-host was stopped")
    host = Client().containers.get("exec-host")
    assert host.status == "running"                           # the container itself goes on
    commands = [" ".join(process) for process in host.top()["Processes"]]
    assert not [c for c in commands if "sleep 600" in c], commands


def test_a_prompt_the_frontend_cannot_answer_is_one_line(kernel):
    """login asks for a password through the frontend; nbclient-style
    frontends take no input, and the cell says what to do instead."""
    msg_id = kernel.client.execute("%container login -u alice 127.0.0.1:1", allow_stdin=False)
    reply = kernel.reply(msg_id, timeout=60)
    assert reply["status"] == "error"
    assert reply["traceback"] == [f"\x1b[31mError:\x1b[0m {reply['evalue']}"]
    assert reply["evalue"] == "cannot ask for input: this frontend does not take any: use --password-stdin"


def test_ipython_extensions_config_loads_the_magics(kernel_env):
    kernel = Kernel("--InteractiveShellApp.extensions=jupyter_containers")
    try:
        msg_id = kernel.client.execute("%container run busybox echo configured")
        assert kernel.wait_for_output(msg_id, "configured\n")
        assert kernel.reply(msg_id, timeout=60)["status"] == "ok"
    finally:
        kernel.close()
