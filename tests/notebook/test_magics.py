"""%container and %%container through a real IPython shell against real
containers: attached and detached runs, exec, logs, ps, stop, rm, and cells
run by interpreters in fresh or running containers."""

from __future__ import annotations

import pytest

from jupyter_containers.client import Client, Container

from .conftest import wait_until

pytestmark = pytest.mark.root

TRICKY_BODY = """s = 'it\\'s "quoted" $HOME ${x} `cmd` {braces} \\\\back ünïcödé €'
print(s)
print("tab\\tseparated", end="|\\n")
"""
TRICKY_OUTPUT = "it's \"quoted\" $HOME ${x} `cmd` {braces} \\back ünïcödé €\ntab\tseparated|\n"


def test_attached_run_streams_its_output_live_to_the_right_streams(shell):
    cell = shell.run("%container run busybox sh -c 'echo first; sleep 1; echo oops >&2; echo second'")
    assert cell.error is None
    assert cell.value == 0
    assert "first\nsecond\n" in cell.stdout.text and cell.stderr.text.endswith("oops\n")
    # "first" was shown while the container still ran, not at its end.
    assert cell.stdout.first("second") - cell.stdout.first("first") > 0.8


def test_attached_run_keeps_colours_and_returns_the_exit_status(shell):
    cell = shell.run("code = %container run busybox sh -c 'printf \"\\033[1;32mgreen\\033[0m\\n\"; exit 7'")
    assert cell.error is None
    assert "\x1b[1;32mgreen\x1b[0m\n" in cell.stdout.text
    assert shell.shell.user_ns["code"] == 7


def test_detached_run_prints_the_name_and_returns_the_container(shell):
    cell = shell.run("db = %container run -d --name quiet-box busybox sleep 600")
    assert cell.error is None
    assert cell.stdout.text.endswith("quiet-box\n")
    db = shell.shell.user_ns["db"]
    assert isinstance(db, Container) and db.name == "quiet-box" and db.status == "running"
    assert "running" in db._repr_html_() and "quiet-box" in db._repr_html_()


def test_a_container_through_its_life(shell):
    assert shell.run("%container run -d --name life busybox sh -c "
                     "'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done'").error is None

    ps = shell.run("%container ps")
    assert ps.error is None and ps.value is None          # the table is the output, shown once
    assert "life" in ps.stdout.text and "Up " in ps.stdout.text

    exec_cell = shell.run("%container exec life sh -c 'echo in $(hostname) as $(id -u)'")
    assert exec_cell.error is None and exec_cell.value == 0
    assert exec_cell.stdout.text.startswith("in ") and exec_cell.stdout.text.endswith(" as 0\n")

    wait_until(lambda: b"tick 2\n" in Client().containers.get("life").logs(), what="three ticks")
    logs = shell.run("%container logs --tail 2 life")
    assert logs.error is None and logs.value is None
    assert [line.split()[0] for line in logs.stdout.text.splitlines()] == ["tick", "tick"]

    stop = shell.run("%container stop -t 1 life")
    assert stop.error is None and stop.stdout.text == "life\n"
    assert Client().containers.get("life").status == "exited"
    assert "life" not in shell.run("%container ps").stdout.text
    assert "life" in shell.run("%container ps -a").stdout.text

    rm = shell.run("%container rm life")
    assert rm.error is None and rm.stdout.text == "life\n"
    assert [c for c in Client().containers.list(all=True) if c.name == "life"] == []


def test_a_name_in_use_is_one_line(shell):
    assert shell.run("%container run -d --name taken busybox sleep 600").error is None
    cell = shell.run("%container run -d --name taken busybox sleep 600")
    assert cell.error is not None
    output = cell.stdout.text + cell.stderr.text
    assert "Traceback" not in output and "taken" in output and "already in use" in output


def test_cell_runs_in_sh_by_default_with_the_body_untouched(shell):
    cell = shell.run("%%container run busybox\n"
                     "echo \"$0 says: 'single' \\\"double\\\" \\\\ \\$HOME=$HOME\"\n"
                     "for word in a b; do echo \"$word\"; done\n")
    assert cell.error is None and cell.value is None
    assert cell.stdout.text == "sh says: 'single' \"double\" \\ $HOME=/root\na\nb\n"
    # The cell's container is gone with the cell.
    assert Client().containers.list(all=True) == []


def test_cell_runs_python_by_name_with_quotes_dollars_and_unicode(shell, python):
    cell = shell.run("%%container run python:3.11 python3\n" + TRICKY_BODY)
    assert cell.error is None
    assert cell.stdout.text == TRICKY_OUTPUT


def test_cell_output_streams_live(shell, python):
    cell = shell.run("%%container run python:3.11 python3\n"
                     "import time\nprint('one')\ntime.sleep(1)\nprint('two')\n")
    assert cell.error is None
    assert cell.stdout.first("two") - cell.stdout.first("one") > 0.8


def test_cell_with_interpreter_arguments(shell):
    cell = shell.run("%%container run busybox sh -s first second\necho \"$# args: $1 $2\"\n")
    assert cell.error is None and cell.stdout.text == "2 args: first second\n"


def test_cell_in_a_running_container(shell, python):
    assert shell.run("%container run -d --name service python:3.11 sleep 600").error is None
    cell = shell.run("%%container exec service python3\n" + TRICKY_BODY)
    assert cell.error is None and cell.stdout.text == TRICKY_OUTPUT
    shell_cell = shell.run("%%container exec -e GREETING=hello -w /tmp service\necho \"$GREETING from $(pwd)\"\n")
    assert shell_cell.error is None and shell_cell.stdout.text == "hello from /tmp\n"


def test_a_failing_cell_is_one_error_line(shell, python):
    cell = shell.run("%%container run python:3.11 python3\nprint('before')\nraise SystemExit(4)\n")
    assert cell.stdout.text.startswith("before\n")
    assert cell.error is not None
    assert "Traceback" not in cell.stdout.text
    assert cell.stdout.text.rstrip().endswith("exited with status 4")


def test_the_script_sees_the_notebook_directory_with_mount_cwd(shell, tmp_path, monkeypatch):
    (tmp_path / "data.txt").write_text("from the notebook's directory\n")
    monkeypatch.chdir(tmp_path)
    cell = shell.run("%%container run --mount-cwd busybox\npwd\ncat data.txt\necho written > out.txt\n")
    assert cell.error is None
    assert cell.stdout.text == "/work\nfrom the notebook's directory\n"
    assert (tmp_path / "out.txt").read_text() == "written\n"


def test_python_values_reach_the_command_line(shell):
    shell.run("word = 'expanded'\nnumber = 41")
    cell = shell.run("%container run busybox echo {word} $word {number + 1}")
    assert cell.stdout.text == "expanded expanded 42\n"


def test_history_shows_short_image_ids_as_docker_does(shell):
    image_id = Client().images.get("busybox").short_id
    cell = shell.run("%container history busybox")
    assert cell.error is None
    assert cell.stdout.text.splitlines()[1].startswith(f"{image_id}   ")
