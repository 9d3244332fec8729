"""The lesson notebooks in ``notebooks/``, executed top to bottom by nbclient
with a real ``python3`` kernel against real containers.

The notebooks are never edited for the tests: the kernel is given an
environment instead — a private storage root, a Jupyter config whose
registry mirror is the session's loopback registry (where the lesson images
are pushed under their Docker Hub names), and a temporary copy of
``notebooks/`` as its working directory, so ``containers.lock`` and the
files a lesson writes land there. Each notebook must run without an error
cell, and what it teaches must show in its outputs.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from jupyter_containers.client import Client
from tests.fixtures.containers import set_offline, sweep_root, write_test_config

WORKTREE = Path(__file__).resolve().parent.parent.parent
NOTEBOOKS = WORKTREE / "notebooks"
LESSONS = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 300
#: Lesson 2 publishes MySQL's port on the host, as the lesson it follows does.
MYSQL_PORT = 3306


# --- running a lesson ---------------------------------------------------------------

#: Where the lessons' images come from: the session's registry, as mirror of
#: Docker Hub, or the offline kit (``lesson-images``) with Registry.offline on.
SOURCES = ("registry", "offline-kit")


@pytest.fixture
def lesson_dir(request, storage_root, jupyter_config_dir, tmp_path, monkeypatch):
    """A copy of notebooks/ for the kernel to work in, on a private storage
    root whose images come from ``request.param`` (one of SOURCES); every
    container a lesson leaves is removed afterwards."""
    monkeypatch.setenv("PYTHONPATH", str(WORKTREE))   # kernels and the CLI import this checkout
    monkeypatch.delenv("JUPYTER_CONTAINERS_LOCK", raising=False)
    monkeypatch.delenv("JUPYTER_CONTAINERS_OFFLINE", raising=False)
    if request.param == "registry":
        hub = request.getfixturevalue("hub")
        hub.lessons()
        write_test_config(jupyter_config_dir, hub.url)
    else:
        write_test_config(jupyter_config_dir, "http://127.0.0.1:1")
        kit = subprocess.run([sys.executable, "-m", "jupyter_containers", "lesson-images"],
                             capture_output=True, text=True, timeout=1200)
        assert kit.returncode == 0, kit.stderr
        set_offline(jupyter_config_dir)
    copy = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOKS, copy)
    yield copy
    sweep_root(storage_root.root, storage_root.run.parent)


class Run:
    """An executed notebook: its cells with their outputs, and how long it took."""

    def __init__(self, nb, seconds: float):
        self.nb = nb
        self.seconds = seconds

    def cell(self, source_start: str, occurrence: int = 0):
        cells = [c for c in self.nb.cells if c.cell_type == "code" and c.source.startswith(source_start)]
        assert len(cells) > occurrence, f"no code cell #{occurrence} starting with {source_start!r}"
        return Outputs(cells[occurrence])

    def widget_texts(self, model_id: str) -> str:
        """The string values of a widget and its children, as saved by nbclient."""
        states = self.nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        found, stack = [], [model_id]
        while stack:
            state = states[stack.pop()]["state"]
            if isinstance(state.get("value"), str):
                found.append(state["value"])
            stack += [child.removeprefix("IPY_MODEL_") for child in state.get("children", [])]
        return "\n".join(found)


class Outputs:
    def __init__(self, cell):
        self.nb_source = cell.source
        self.stdout = self.stderr = ""
        self.result = None
        self.displays = []
        for output in cell.outputs:
            if output.output_type == "stream":
                setattr(self, output.name, getattr(self, output.name) + output.text)
            elif output.output_type == "execute_result":
                self.result = output.data.get("text/plain")
            elif output.output_type == "display_data":
                self.displays.append(output.data)

    @property
    def widget_ids(self) -> list[str]:
        return [data[WIDGET_VIEW]["model_id"] for data in self.displays if WIDGET_VIEW in data]

    @property
    def text(self) -> str:
        """Everything the cell showed as text (streams, displays, result)."""
        shown = [data.get("text/plain", "") for data in self.displays]
        return "\n".join([self.stdout, self.stderr, *shown, self.result or ""])


def execute(lesson_dir: Path, name: str, source: str) -> Run:
    nb = nbformat.read(lesson_dir / name, as_version=4)
    started = time.monotonic()
    # Any error output makes execute() raise CellExecutionError, naming the cell.
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                   resources={"metadata": {"path": str(lesson_dir)}}).execute()
    seconds = time.monotonic() - started
    errors = [c.source for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    print(f"{name} (images from the {source}): {seconds:.1f} s")
    return Run(nb, seconds)


def no_containers_left() -> list[str]:
    return [c.name for c in Client().containers.list(all=True)]


# --- what each lesson must show ------------------------------------------------------

def check_containers_and_images(run: Run, lesson_dir: Path) -> None:
    pull = run.cell("%container pull busybox")
    assert pull.widget_ids and "Digest: sha256:" in pull.stdout
    assert "busybox" in run.cell("%container images").text
    history = run.cell("%container history busybox").text
    assert re.search(r"^[0-9a-f]{12} ", history, re.M), history
    assert run.cell("%container image inspect").stdout == "default command: ['sh']\n"

    hello = run.cell("%container run busybox echo")
    assert hello.stdout == "Hello from a container!\n" and hello.result == "0"
    inside = run.cell("%container run --rm busybox sh -c").stdout
    assert re.search(r"^\s*1 root .* sh -c", inside, re.M), inside      # its shell is PID 1
    kernel_release = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=True).stdout
    assert run.cell("%container run --rm busybox uname -r").stdout == kernel_release

    assert run.cell("%container run --name scratchpad").stdout == "my notes\n"
    fresh = run.cell("%container run --rm busybox cat /notes.txt")
    assert "No such file" in fresh.stderr and fresh.result == "1"
    assert "scratchpad" in run.cell("%container ps -a").text
    assert "Deleted Containers:" in run.cell("%container container prune -f").stdout

    assert run.cell("%container ps").widget_ids
    assert "tick 1\n" in run.cell("%container logs ticker").stdout
    (log_viewer,) = run.cell("%container logs -f").widget_ids
    assert "tick " in run.widget_texts(log_viewer)
    assert "sleep 1" in run.cell("%container exec ticker ps").stdout
    assert run.cell("ticker.reload()").stdout == "ticker is exited with exit code 0\n"
    assert run.cell("%container logs --tail 3 ticker").stdout.endswith("stopping\n")
    assert no_containers_left() == []


def check_mysql(run: Run, lesson_dir: Path) -> None:
    assert "(health: starting)" in run.cell("%container ps").text
    assert run.cell("%container wait --healthy").stdout == "some-mysql: healthy\n"
    assert "(healthy)" in run.cell("%container ps", 1).text
    assert run.cell("import pymysql").stdout.startswith("Connected to server version ")
    assert run.cell("with connection.cursor() as cursor:\n    cursor.execute(\"SELECT").stdout == (
        "1  Ada    docker run\n2  Grace  docker logs\n3  Linus  docker ps\n")
    inside = run.cell("%container exec some-mysql mysql").stdout
    assert "Ada\tdocker run\nGrace\tdocker logs\nLinus\tdocker ps\n" in inside
    (log_viewer,) = run.cell("%container logs -f").widget_ids
    assert "ready for connections" in run.widget_texts(log_viewer)
    assert "Access denied" not in run.widget_texts(log_viewer)        # the health checks are quiet
    assert run.cell("for mount in db.reload()").stdout.startswith("/var/lib/mysql is the volume ")
    assert run.cell("connection = pymysql.connect").stdout == "Students after the restart: 3\n"
    assert no_containers_left() == []
    assert Client().volumes.list() == []                 # rm -v took the data volume too


def check_resource_isolation(run: Run, lesson_dir: Path) -> None:
    roomy = run.cell("%container run --rm --mount-cwd -m 256m")
    assert roomy.stdout.endswith("holding 200 MiB\ndone: I got all the memory I wanted\n") and roomy.result == "0"
    squeezed = run.cell("%container run --name memory-hog")
    assert "holding 10 MiB" in squeezed.stdout and "done" not in squeezed.stdout and squeezed.result == "137"
    assert run.cell("%container inspect").stdout == "OOMKilled: True, exit code: 137\n"

    limited = run.cell("%container run --rm --mount-cwd --cpus 0.5").stdout
    share = float(re.search(r"(\d+)% of one CPU", limited).group(1))
    assert share <= 65, limited          # at most half a CPU, give or take a period

    (monitor,) = run.cell("%container stats busy").widget_ids
    assert "busy" in run.widget_texts(monitor) and "32MiB" in run.widget_texts(monitor)
    assert re.search(r"^busy +\d+\.\d+% +[\d.]+[KM]iB / 32MiB", run.cell("%container stats --no-stream").text, re.M)
    average = float(re.search(r"average: (\d+) %", run.cell("measurements = busy.stats()").stdout).group(1))
    assert 0 < average <= 65
    assert no_containers_left() == []
    assert not (lesson_dir / "memory_hog.py").exists() and not (lesson_dir / "spin.py").exists()


def check_cells_in_containers(run: Run, lesson_dir: Path) -> None:
    shell = run.cell("%%container run busybox").stdout
    assert "This cell runs in container " in shell and "lesson: cells\n" in shell
    old, new = run.cell("%%container run python:3.11"), run.cell("%%container run python:3.13")
    assert old.stdout.startswith("Python 3.11.") and "does not exist here" in old.stdout
    assert new.stdout.startswith("Python 3.13.") and "[('A', 'B', 'C'), ('D', 'E', 'F'), ('G', 'H')]" in new.stdout
    assert run.cell("%%container run python:3.11").nb_source.partition("\n")[2] == \
        run.cell("%%container run python:3.13").nb_source.partition("\n")[2]       # the same cell body
    assert run.cell("%%container run --mount-cwd").stdout == "report.txt written in /work\n"
    assert run.cell('print(Path("report.txt")').stdout == "3 students, average score 86.3\n\n"
    assert "| cherry |  3.00 |" in run.cell("%%container exec lesson-db mysql").stdout
    files = run.cell("%%container exec lesson-db\n").stdout
    assert "its first process is: " in files and "fruit." in files
    assert no_containers_left() == []
    assert not (lesson_dir / "scores.csv").exists() and not (lesson_dir / "report.txt").exists()


def registry_digests(client, name: str) -> list[str]:
    return [repo_digest.partition("@")[2] for repo_digest in client.images.get(name).attrs["RepoDigests"]]


def check_reproducibility(run: Run, lesson_dir: Path) -> None:
    client = Client()
    lock = json.loads((lesson_dir / "containers.lock").read_text())["images"]
    assert set(lock) == {"busybox", "python:3.13"}
    for name, entry in lock.items():
        assert entry["digest"] in registry_digests(client, name)
    assert lock["busybox"]["digest"] in run.cell("%container images --digests").text
    assert "pinned by containers.lock" in run.cell("%container run --rm busybox echo \"hello again\"").stdout
    which = "%container run --rm busybox sh -c 'if"
    assert run.cell(which, 0).stdout.endswith("I am BusyBox\n")        # the lock held
    assert run.cell(which, 1).stdout.startswith("I am Debian ")         # the moved tag, without it
    assert run.cell("try:").stdout.startswith("refused: image 'hello-world' is not present locally and --pull=never")
    assert run.cell("%container run --rm --pull missing").stdout.startswith("Python 3.11.")
    assert "pinned by containers.lock" in run.cell("%container run --rm --pull always").stdout
    # The lesson leaves busybox:latest as the registry has it, and the lock in place.
    assert lock["busybox"]["digest"] in registry_digests(client, "busybox")
    assert not (lesson_dir / "containers.lock.off").exists()
    assert no_containers_left() == []


CHECKS = {
    "01-containers-and-images": check_containers_and_images,
    "02-mysql": check_mysql,
    "03-resource-isolation": check_resource_isolation,
    "04-cells-in-containers": check_cells_in_containers,
    "05-reproducibility": check_reproducibility,
}


def lesson_key(name: str) -> str:
    """Translations (``01-….ko.ipynb``) are checked as their original."""
    return name.split(".")[0]


@pytest.mark.root
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("lesson_dir", SOURCES, indirect=True)
@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_top_to_bottom(name, lesson_dir, request):
    key = lesson_key(name)
    assert key in CHECKS, f"{name} has no checks: add what it must show to CHECKS"
    if key == "02-mysql":
        host_port_is_free(MYSQL_PORT)
    source = request.node.callspec.params["lesson_dir"]
    run = execute(lesson_dir, name, source)
    CHECKS[key](run, lesson_dir)
    if source == "offline-kit":
        pulls = [cell for cell in run.nb.cells if cell.cell_type == "code" and cell.source.startswith("%container pull")]
        for cell in pulls:
            assert "Status: Offline: using the image on this computer" in Outputs(cell).stdout, cell.source


def host_port_is_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            pytest.fail(f"port {port} is in use on this host, and lesson 02 publishes it "
                        f"(-p {port}:{port}, as in the lesson it follows): stop what holds it "
                        f"(ss -ltnp 'sport = :{port}') and run again")


# --- the notebooks as stored in git --------------------------------------------------

def test_there_are_lessons():
    assert {lesson_key(name) for name in LESSONS} >= set(CHECKS)


@pytest.mark.parametrize("name", LESSONS)
def test_notebooks_are_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) == {"kernelspec"} and nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        assert not cell.get("metadata"), f"{name}: cell metadata {cell.metadata}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{name}: outputs left in {cell.source[:60]!r}; clear them before committing"


@pytest.mark.parametrize("translation", [name for name in LESSONS if name.count(".") == 2])
def test_translations_have_the_same_code(translation):
    original = translation.split(".")[0] + ".ipynb"

    def cells(name):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        return [(cell.cell_type, cell.source if cell.cell_type == "code" else None) for cell in nb.cells]

    assert cells(translation) == cells(original)
