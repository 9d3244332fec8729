"""The JupyterLab extension's own TypeScript unit tests (vitest), run from
pytest so the suite runs them; and its metadata kept in step with the
Python package."""

from __future__ import annotations

import json
import os
import re
import subprocess

import jupyter_containers

from .fixtures import LABEXTENSION, jlpm


def test_typescript_unit_tests_pass():
    install = subprocess.run([jlpm(), "install"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    # Plain text whatever the environment says (CI=true makes vitest colour).
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    result = subprocess.run([jlpm(), "test"], cwd=LABEXTENSION, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    summary = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert re.search(r"Tests\s+\d+ passed", summary) and " failed" not in summary, summary[-2000:]


def test_labextension_version_and_name_match_the_python_package():
    package = json.loads((LABEXTENSION / "package.json").read_text())
    assert package["version"] == jupyter_containers.__version__
    assert [{"src": "labextension", "dest": package["name"]}] == jupyter_containers._jupyter_labextension_paths()
