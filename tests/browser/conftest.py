"""A real JupyterLab with the extension, on loopback, driven by Debian's
chromium through Playwright.

The server runs from this checkout (``PYTHONPATH``), with the server
extension enabled by a private config dir and the labextension found
through a private ``JUPYTER_PATH`` — so nothing needs installing, and the
user's own Jupyter config never leaks in. The labextension is built first
when its build is missing or older than its sources.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.fixtures.registry import free_port, http_request
from tests.jupyter.fixtures import LABEXTENSION, busybox, jlpm  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "jupyter_containers" / "labextension"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def newest_source_time() -> float:
    sources = [LABEXTENSION / "package.json", *(LABEXTENSION / "src").rglob("*"), *(LABEXTENSION / "style").rglob("*")]
    return max(path.stat().st_mtime for path in sources if path.is_file())


@pytest.fixture(scope="session")
def built_labextension() -> Path:
    marker = BUILT / "package.json"
    if not marker.exists() or marker.stat().st_mtime < newest_source_time():
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        for step in (["install"], ["build:prod"]):
            result = subprocess.run([jlpm(), *step], cwd=LABEXTENSION, env=env, capture_output=True, text=True,
                                    timeout=900)
            assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return BUILT


@dataclass
class LabServer:
    port: int
    token: str
    process: subprocess.Popen
    log: Path

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"


@pytest.fixture
def lab(tmp_path, client, jupyter_config_dir, built_labextension):
    """JupyterLab on the test's storage root, with the test client's
    configuration (registry mirror, its own bridge)."""
    config_dir, data_dir, work_dir = tmp_path / "lab-config", tmp_path / "lab-data", tmp_path / "work"
    (config_dir / "labconfig").mkdir(parents=True)
    shutil.copy(jupyter_config_dir / "jupyter_containers_config.json", config_dir)
    (data_dir / "labextensions").mkdir(parents=True)
    work_dir.mkdir()
    (data_dir / "labextensions" / "jupyter-containers").symlink_to(built_labextension)
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"jupyter_containers": True}}}))
    # The news prompt would cover the panel in screenshots.
    (config_dir / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir), "JUPYTER_PATH": str(data_dir),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={work_dir}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=output, stderr=subprocess.STDOUT)
    server = LabServer(port, token, process, log)
    try:
        wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_serving(server: LabServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"JupyterLab exited:\n{server.log.read_text()[-4000:]}")
        try:
            if http_request("GET", server.url("api/status"))[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"JupyterLab did not start in {timeout} s:\n{server.log.read_text()[-4000:]}")


@pytest.fixture
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
