"""Fixtures shared by the Jupyter and browser tests, on top of the suite's
``client`` (a private storage root, every container swept at the end,
whoever started it: the test, the server or the browser) and ``hub`` (the
fixture images in the session's registry)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def jlpm() -> str:
    """JupyterLab's pinned yarn: the ``jlpm`` next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "jlpm"
    found = str(beside) if beside.exists() else shutil.which("jlpm")
    assert found, "jlpm not found: install jupyterlab (pip install 'jupyter-containers[test]')"
    return found


def pulled(hub, client, fixture_name: str, repository: str) -> str:
    """The fixture image, pulled from the test registry into the test's
    storage root; its full reference (the server and the browser need no
    mirror configuration to use it)."""
    hub.ensure(fixture_name, repository)
    reference = f"{hub.registry.host}/{repository}:latest"
    client.images.pull(reference)
    return reference


@pytest.fixture
def busybox(hub, client) -> str:
    return pulled(hub, client, "busybox_image", "library/busybox")
