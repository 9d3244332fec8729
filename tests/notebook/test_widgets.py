"""The live widgets against real containers: the states their models reach,
their background updates ending, and their text fallback."""

from __future__ import annotations

import threading

import pytest

from jupyter_containers.client import Client
from jupyter_containers.containers.monitor import running_monitor
from jupyter_containers.widgets import ContainerTable, LogViewer, ResourceMonitor

from .conftest import wait_until

pytestmark = pytest.mark.root

TICKER = ("sh -c 'i=0; while true; do echo \"out $i\"; printf \"\\033[31merr $i\\033[0m\\n\" >&2; "
          "i=$((i+1)); sleep 0.1; done'")


@pytest.fixture
def widgets(shell):
    shell.magics.widgets = True
    return shell


def start(shell, name: str, command: str = TICKER, options: str = "") -> None:
    cell = shell.run(f"%container run -d --name {name} {options} busybox {command}")
    assert cell.error is None, cell.stdout.text


def test_log_viewer_follows_tells_streams_apart_and_renders_colours(widgets):
    start(widgets, "ticker")
    wait_until(lambda: b"out 5\n" in Client().containers.get("ticker").logs(), what="six lines")
    viewer = widgets.run("%container logs -f --tail 3 ticker").widget(LogViewer)
    try:
        wait_until(lambda: viewer.received >= 10, what="new lines")
        assert viewer.running and viewer.follow
        streams = {line.stream for line in viewer.lines}
        assert streams == {"stdout", "stderr"}
        # The tail came first: three lines (of either stream), then new ones.
        first = [line.text for line in list(viewer.lines)[:3]]
        assert all(text.startswith(("out ", "\x1b[31merr ")) for text in first)
        wait_until(lambda: '<span style="color:#e75c58">err ' in viewer.view.value, what="a red line")
        assert 'class="jc-log-stderr"' in viewer.view.value and 'class="jc-log-stdout">out ' in viewer.view.value
        assert "\x1b" not in viewer.view.value

        # Pause: lines are still collected, the view stays as it was.
        viewer.paused = True
        frozen, count = viewer.view.value, viewer.received
        wait_until(lambda: viewer.received >= count + 6, what="lines while paused")
        assert viewer.view.value == frozen and viewer.status.value.startswith("paused")
        viewer.paused = False
        assert viewer.view.value != frozen

        viewer.clear()
        assert len(viewer.lines) == 0
        wait_until(lambda: len(viewer.lines) > 0, what="lines after clearing")

        # The container stops: the viewer reads what is left and ends.
        assert widgets.run("%container stop -t 1 ticker").error is None
        viewer.join(5)
        assert viewer.ended and not viewer.running
        assert viewer.status.value.startswith("exited (137)") or viewer.status.value.startswith("exited (143)")
        assert "ticker logs:" in viewer.text() and "\x1b" not in viewer.text()
    finally:
        viewer.close()


def test_log_viewer_stays_bounded_when_the_container_floods_it(widgets):
    start(widgets, "flood", "sh -c 'sleep 1; seq 1 200000; sleep 600'")
    viewer = LogViewer(Client().containers.get("flood"), tail=0, max_lines=100, interval=0.2)
    try:
        wait_until(lambda: any(line.text == "200000" for line in viewer.lines), timeout=60,
                   what="the last line of the flood")
        assert len(viewer.lines) == 100
        assert viewer.received < 1000       # far fewer than were written: the middle was skipped
        assert viewer.skips >= 1
        assert viewer.view.value.count("<div class=\"jc-log-") <= 100
    finally:
        viewer.close()
    viewer.join(5)
    assert not viewer.running


def test_container_table_buttons(widgets):
    start(widgets, "alpha")
    start(widgets, "beta", "sleep 600")
    cell = widgets.run("%container ps")
    assert cell.value is None
    table = cell.widget(ContainerTable)
    try:
        assert sorted(c.name for c in table.containers) == ["alpha", "beta"]
        names = [cell.value for cell in table._grid.children[len(table._headers)::len(table._headers)]]
        assert sorted(names) == ["<b>alpha</b>", "<b>beta</b>"]
        assert "alpha" in table.text() and "busybox" in table.text() and "running" in table.text()
        rows = table._rows
        beta = next(c for c in table.containers if c.name == "beta")
        assert "running" in rows[beta.id].state.value and rows[beta.id].status.value.startswith("Up ")

        table.act(beta, "stop").join(30)
        assert Client().containers.get("beta").status == "exited"
        assert "exited" in rows[beta.id].state.value and rows[beta.id].buttons["stop"].disabled

        # Runtime race (reported): a start while the stopped container's
        # monitor still runs its exit hook fails with "already has a running
        # monitor". Until start waits for it, so does the test.
        wait_until(lambda: running_monitor(Client().runtime.store.run_dir(beta.id)) is None, what="the monitor to end")
        table.act(beta, "restart").join(30)
        assert Client().containers.get("beta").status == "running", table.message.value
        assert "running" in rows[beta.id].state.value

        alpha = next(c for c in table.containers if c.name == "alpha")
        table.act(alpha, "logs")
        assert isinstance(table.log_viewer, LogViewer) and table.logs_area.children == (table.log_viewer,)
        wait_until(lambda: table.log_viewer.received > 0, what="alpha's logs in the table")

        table.act(beta, "remove").join(30)
        assert [c.name for c in table.containers] == ["alpha"]
        assert len(table._grid.children) == 2 * len(table._headers)
        assert "beta" not in table.text()

        # The refresh thread follows what happens elsewhere.
        Client().containers.get("alpha").remove(force=True)
        wait_until(lambda: table.containers == [], timeout=10, what="the table to drop alpha")
        table.join(10)
        assert not table.running                # every tracked container gone: updates end
    finally:
        table.close()


def test_resource_monitor(widgets):
    start(widgets, "busy", "sh -c 'while :; do :; done'")
    cell = widgets.run("%container stats busy")
    monitor = cell.widget(ResourceMonitor)
    try:
        wait_until(lambda: monitor.samples_seen >= 3, timeout=20, what="three samples")
        busy_id = Client().containers.get("busy").id
        history = monitor.histories[busy_id]
        assert history.name == "busy"
        sample = history.latest
        assert max(history.cpu) > 50                         # one busy loop: about one CPU
        assert sample.memory_usage > 0 and sample.memory_limit >= sample.memory_usage
        assert sample.pids >= 1
        assert sample.net_rx is not None and sample.net_tx is not None      # on the default bridge
        assert len(history.cpu) >= 3
        assert "<polyline" in monitor.plots.value and "busy" in monitor.table.value
        assert "busy" in monitor.text() and "%" in monitor.text()

        assert widgets.run("%container rm -f busy").error is None
        monitor.join(10)
        assert monitor.ended and not monitor.running
    finally:
        monitor.close()


def test_resource_monitor_says_it_is_sampling_until_the_first_sample(client):
    """Its text, shown where widgets are not, never claims that no container
    runs before it has looked."""
    first_sample = threading.Event()

    def samples():
        first_sample.wait(20)
        yield []

    monitor = ResourceMonitor(client=client, samples=samples())
    try:
        assert monitor.text() == "Sampling…"
        first_sample.set()
        monitor.join(10)
        assert monitor.text() == "No running containers."
    finally:
        monitor.close()


def test_resource_monitor_from_python_for_all_running_containers(shell):
    start(shell, "one", "sleep 600")
    start(shell, "two", "sleep 600")
    monitor = ResourceMonitor(interval=0.3)
    try:
        wait_until(lambda: {h.name for h in monitor.histories.values()} == {"one", "two"}, timeout=20,
                   what="both containers")
        start(shell, "three", "sleep 600")
        wait_until(lambda: "three" in {h.name for h in monitor.histories.values()}, timeout=20,
                   what="a container started later")
    finally:
        monitor.close()
    monitor.join(5)
    assert not monitor.running


def test_updates_stop_with_the_last_view_and_resume_with_a_new_one(shell):
    start(shell, "viewed", "sleep 600")
    table = ContainerTable(interval=0.2)
    try:
        assert table.running
        table._view_count = 1                # what the frontend reports as views come and go
        table._view_count = 0
        table.join(5)
        assert not table.running
        table._view_count = 1
        assert table.running
    finally:
        table.close()
    table.join(5)
    assert not table.running


def test_without_widgets_the_verbs_print_text(shell):
    shell.magics.widgets = False
    start(shell, "plain", "sh -c 'echo hello; echo oops >&2; sleep 1; echo bye'")
    logs = shell.run("%container logs -f plain")
    assert logs.error is None and not logs.widgets
    assert logs.stdout.text == "hello\nbye\n" and logs.stderr.text == "oops\n"
    stats = shell.run("%container stats --no-stream")
    assert stats.error is None and not stats.widgets
    assert stats.stdout.text.startswith("CONTAINER ID")
