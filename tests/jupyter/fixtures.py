"""Fixtures shared by the Jupyter and browser tests: a client on the test's
storage root that removes every container the test left (whoever started
it: the test, the server, the browser), and the busybox fixture image pulled
into that root from the test registry."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from jupyter_containers.client import Client

LABEXTENSION = Path(__file__).resolve().parents[2] / "labextension"


def jlpm() -> str:
    """JupyterLab's pinned yarn: the ``jlpm`` next to this Python, or on PATH."""
    beside = Path(sys.executable).parent / "jlpm"
    found = str(beside) if beside.exists() else shutil.which("jlpm")
    assert found, "jlpm not found: install jupyterlab (pip install 'jupyter-containers[test]')"
    return found


@pytest.fixture
def client(storage_root):
    client = Client()
    yield client
    for container in client.containers.list(all=True):
        container.remove(force=True)


@pytest.fixture(scope="session")
def busybox_reference(registry, busybox_image) -> str:
    """busybox in the test registry, pushed once per session."""
    registry.push_layout(busybox_image.layout, busybox_image.ref, busybox_image.repository, "latest")
    return f"{registry.host}/{busybox_image.repository}:latest"


@pytest.fixture
def busybox(client, busybox_reference) -> str:
    """The busybox reference, already pulled into the test's storage root."""
    client.images.pull(busybox_reference)
    return busybox_reference
