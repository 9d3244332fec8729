"""%container pull against a real registry: the progress widget's states,
the text fallback, and errors as one line."""

from __future__ import annotations

import os

import pytest

from jupyter_containers import events
from jupyter_containers.client import Image
from jupyter_containers.widgets import PullProgress
from tests.fixtures.registry import make_image


@pytest.fixture(scope="module")
def pushed(registry):
    """An image with a tiny layer and a 4 MiB one (incompressible, so its
    download takes many progress events)."""
    image = make_image([{"hello.txt": b"hello\n"}, {"big.bin": os.urandom(4 << 20)}])
    registry.push_image("notebook/pull", "1", image)
    return f"{registry.host}/notebook/pull:1", image


def test_pull_shows_a_bar_per_layer_and_returns_the_image(shell, pushed):
    name, image = pushed
    shell.magics.widgets = True
    cell = shell.run(f"img = %container pull {name}")
    assert cell.error is None
    progress = cell.widget(PullProgress)
    layer_ids = [events.short_id(layer["digest"]) for layer in image.document["layers"]]
    assert list(progress.layers) == layer_ids
    big = progress.layers[layer_ids[1]]
    # It went through the states docker pull shows, and ended complete.
    assert big.statuses[0] == events.WAITING and big.statuses[-1] == events.DONE
    assert events.DOWNLOADING in big.statuses
    assert big.current == big.total == image.document["layers"][1]["size"]
    rows = progress._rows
    assert rows[layer_ids[1]].bar.value == 1.0 and rows[layer_ids[1]].bar.bar_style == "success"
    assert rows[layer_ids[1]].status.value == "Pull complete"
    assert progress._total_row.bar.value == 1.0 and progress._total_row.status.value == "Complete"
    assert progress.totals() == (sum(l["size"] for l in image.document["layers"]),) * 2
    assert any(m.startswith("Digest: sha256:") for m in progress.messages)
    assert isinstance(shell.shell.user_ns["img"], Image)
    assert shell.shell.user_ns["img"].tags == [name]

    # Pulled again: every layer is cached, and the widget says so.
    again = shell.run(f"%container pull {name}").widget(PullProgress)
    assert {layer.status for layer in again.layers.values()} == {events.EXISTS}
    assert all(layer.cached for layer in again.layers.values())
    assert again._total_row.status.value == "Complete (2 cached)"
    assert {row.speed.value for row in again._rows.values()} == {"cached"}
    assert "Already exists" in again.text()


def test_pull_without_widgets_prints_docker_lines(shell, pushed):
    name, image = pushed
    shell.magics.widgets = False
    cell = shell.run(f"%container pull {name}")
    assert cell.error is None and not cell.widgets
    for layer in image.document["layers"]:
        assert f"{events.short_id(layer['digest'])}: Pull complete" in cell.stdout.text
    assert f"Status: Downloaded newer image for {name}" in cell.stdout.text
    # The result is shown as the cell's value: the image.
    assert isinstance(cell.value, Image)


def test_the_text_fallback_of_the_widget_is_the_final_state(shell, pushed):
    """A frontend with no widgets (nbconvert to text) keeps the text/plain
    the magic displays last: the finished pull, not an empty widget."""
    name, _image = pushed
    shell.magics.widgets = True
    cell = shell.run(f"%container pull {name}")
    texts = [bundle["text/plain"] for bundle in cell.displays if "text/plain" in bundle]
    assert "Total: Complete" in texts[-1]
    assert texts[-1] == cell.widget(PullProgress).text()


def test_a_missing_image_is_one_line(shell, registry):
    cell = shell.run(f"%container pull {registry.host}/notebook/no-such-image:1")
    assert cell.error is not None
    output = cell.stdout.text + cell.stderr.text
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "Error" in line]
    assert "not found" in line
