"""User mistakes in %container and %%container: one line saying what to do,
never a traceback, and the cell fails (so Run All and nbclient stop)."""

from __future__ import annotations

import pytest

from jupyter_containers import commands
from jupyter_containers.errors import ContainerNotFound, UserError


def one_error_line(cell) -> str:
    assert cell.error is not None, "the cell should have failed"
    output = cell.stdout.text + cell.stderr.text
    assert "Traceback" not in output and "File " not in output
    (line,) = [line for line in output.splitlines() if "Error" in line]
    return line


@pytest.mark.parametrize("source, error_type, words", [
    ("%container run --no-such-flag busybox", commands.ArgumentError, "unknown flag or argument: --no-such-flag: see '%container run --help'"),
    ("%container frobnicate", UserError, "'frobnicate' is not a %container command"),
    ("%container logs", commands.ArgumentError, "required: CONTAINER"),
    ("%container run 'busybox", UserError, "No closing quotation: check the quotes"),
    ("%container stop no-such-container", ContainerNotFound, "no-such-container"),
    ("%%container ps\necho hi", UserError, "%%container ps cannot run a cell"),
    ("%%container run -d busybox\necho hi", UserError, "-d cannot be used in a %%container cell"),
    ("%%container exec -t something\necho hi", UserError, "-t cannot be used in a %%container cell"),
    ("%container save busybox", UserError, "cannot take an archive as output: write it to a file with -o FILE"),
    ("%container cp some-container:/etc/hostname -", UserError, "write it to a file with -o FILE"),
    ("%container load", UserError, "no input to read an archive from: read it from a file with -i FILE"),
])
def test_mistakes_are_one_line(shell, source, error_type, words):
    cell = shell.run(source)
    line = one_error_line(cell)
    assert isinstance(cell.error, error_type)
    assert words in line, line
    assert line.startswith("\x1b[31mError:\x1b[0m")


def test_help_is_the_parsers_help(shell):
    cell = shell.run("%container run --help")
    assert cell.error is None and cell.value is None
    assert cell.stdout.text.startswith("usage: %container run ")
    assert "--mount-cwd" in cell.stdout.text and "--stop-timeout" in cell.stdout.text
    top = shell.run("%container")
    assert top.error is None and "pull" in top.stdout.text and "Manage networks" in top.stdout.text


def test_variables_are_expanded_in_the_line(shell):
    shell.run("missing = 'not-a-container-name'")
    line = one_error_line(shell.run("%container stop {missing}"))
    assert "not-a-container-name" in line
    line = one_error_line(shell.run("%container stop $missing"))
    assert "not-a-container-name" in line


def test_unloading_removes_the_magics(shell):
    shell.shell.run_line_magic("unload_ext", "jupyter_containers")
    assert "container" not in shell.shell.magics_manager.magics["line"]
    assert "container" not in shell.shell.magics_manager.magics["cell"]
    shell.shell.run_line_magic("load_ext", "jupyter_containers")
    assert "container" in shell.shell.magics_manager.magics["cell"]
