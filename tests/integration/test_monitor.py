"""jc-monitor with real processes: sh start hooks that fork the "container"
in the background and report its pid on fd 3; the monitor adopts it as a
child subreaper. No namespaces are needed for what the monitor does, so
these tests run without root too."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from jupyter_containers import errors
from jupyter_containers.containers import monitor
from jupyter_containers.containers.attach import AttachClient
from jupyter_containers.containers.logs import read_logs
from jupyter_containers.containers.monitor import running_monitor, spawn_monitor, wait_monitor

WORKTREE = Path(__file__).resolve().parents[2]
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")

# Background jobs of a non-interactive sh get /dev/null as stdin: the
# container gets the hook's stdin through fd 4. dash reaps a background job
# that ends while the hook still runs, so the container waits at a gate (a
# FIFO the hook holds open) until the hook has exited and it belongs to the
# monitor.
DEFAULT_START = """\
exec 4<&0
sh -c "read _ < '$DIR/gate'; exec sh '$DIR/container.sh'" <&4 4<&- 3>&- &
exec 5>"$DIR/gate"
echo "pid $!" >&3
"""


def wait_for(predicate, timeout=10.0, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


def kill_quietly(kill, target, sig=signal.SIGKILL):
    try:
        kill(target, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Box:
    """One monitored "container": its state and run directories, its hook."""

    def __init__(self, root: Path, binary: Path):
        self.dir = root
        self.state_dir = root / "state"
        self.run_dir = root / "run" / ("r" * 100)       # longer than a socket address can hold
        self.state_dir.mkdir()
        self.binary = binary
        self.hook = root / "hook.sh"
        os.mkfifo(root / "gate")
        self.write_hook()

    def write_hook(self, start: str = DEFAULT_START, exited: str = "exit 0") -> None:
        self.hook.write_text(
            f"#!/bin/sh\nDIR='{self.dir}'\ncase \"$1\" in\nstart)\n    echo $$ >> \"$DIR/groups\"\n"
            f"{textwrap.indent(start, '    ')}    ;;\nexited)\n{textwrap.indent(exited, '    ')}    ;;\nesac\n")
        self.hook.chmod(0o755)

    def container(self, script: str) -> "Box":
        (self.dir / "container.sh").write_text(script)
        return self

    def spawn(self, script: str | None = None, **options):
        if script is not None:
            self.container(script)
        options.setdefault("log_max_size", 0)
        options.setdefault("log_max_files", 1)
        return spawn_monitor("c0ffee", self.state_dir, self.run_dir, [str(self.hook)], binary=self.binary,
                             timeout=10, **options)

    def wait_exit(self, timeout=10.0) -> dict:
        assert wait_monitor(self.run_dir, timeout), "the monitor did not exit"
        return json.loads((self.state_dir / "exit.json").read_text())

    def raw_log(self, name="ctr.log") -> list[dict]:
        return [json.loads(line) for line in (self.state_dir / name).read_text().splitlines()]

    def cleanup(self) -> None:
        # Every hook ran in a process group of its own, shared by the
        # "container" it started and everything that one forked.
        groups = self.dir / "groups"
        for group in groups.read_text().split() if groups.exists() else ():
            kill_quietly(os.killpg, int(group))
        pid = running_monitor(self.run_dir) if self.run_dir.exists() else None
        if pid and not wait_monitor(self.run_dir, 5):
            kill_quietly(os.kill, pid)


@pytest.fixture(scope="session")
def monitor_path(tmp_path_factory) -> Path:
    return monitor.monitor_binary(tmp_path_factory.mktemp("monitor-cache"))


@pytest.fixture
def box(tmp_path, monitor_path):
    made = []

    def make() -> Box:
        root = tmp_path / f"box{len(made)}"
        root.mkdir()
        made.append(Box(root, monitor_path))
        return made[-1]

    yield make
    for each in made:
        each.cleanup()


# --- the log ------------------------------------------------------------------

def test_output_lands_in_the_log_with_stream_and_time(box):
    b = box()
    before = time.time_ns()
    started = b.spawn("echo out; echo err >&2")
    assert started.pid > 1 and started.monitor_pid > 1 and started.attach is None
    assert b.wait_exit()["exit_code"] == 0
    lines = b.raw_log()
    assert sorted((line["stream"], line["log"]) for line in lines) == [("stderr", "err\n"), ("stdout", "out\n")]
    for line in lines:
        assert TIME.fullmatch(line["time"]), line["time"]
    entries = list(read_logs(b.state_dir))
    assert {(e.stream, e.data) for e in entries} == {("stdout", b"out\n"), ("stderr", b"err\n")}
    from jupyter_containers.containers.logs import parse_time
    assert all(before <= parse_time(e.time) <= time.time_ns() for e in entries)


def test_interleaved_stdout_and_stderr_keep_their_order(box):
    b = box()
    # Each line is written once the previous one is in the log, so the order
    # across the two pipes is defined however loaded the machine is.
    log = b.state_dir / "ctr.log"
    b.spawn(f"for i in 1 2 3 4; do echo out$i; until grep -q out$i '{log}'; do sleep 0.01; done; "
            f"echo err$i >&2; until grep -q err$i '{log}'; do sleep 0.01; done; done")
    b.wait_exit()
    lines = b.raw_log()
    assert [(line["stream"], line["log"]) for line in lines] == [
        (stream, f"{prefix}{i}\n") for i in range(1, 5) for stream, prefix in (("stdout", "out"), ("stderr", "err"))]
    times = [line["time"] for line in lines]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_json_escaping_of_control_and_invalid_bytes(box):
    b = box()
    # quote, backslash, control bytes, ESC, tab, CR; valid multi-byte UTF-8;
    # then invalid: a lone continuation byte, 0xFF, an overlong '/', a
    # UTF-16 surrogate and a truncated sequence before 'x'.
    b.spawn(r"""printf 'q"b\\s\001\033[1m\tt\r|\303\251\342\202\254\360\237\230\200|\200\377\300\257\355\240\200\342\202x\n'""")
    b.wait_exit()
    raw = (b.state_dir / "ctr.log").read_text()
    expected = (r'"q\"b\\s\u0001\u001b[1m\tt\r|é€😀|' + r"\ufffd" * 9 + r'x\n"')
    assert f'"log":{expected},' in raw
    (entry,) = read_logs(b.state_dir)
    assert entry.data == 'q"b\\s\x01\x1b[1m\tt\r|é€😀|'.encode() + "\ufffd".encode() * 9 + b"x\n"


def test_lines_longer_than_16_kib_are_split(box):
    b = box()
    b.spawn("head -c 40000 /dev/zero | tr '\\0' a; echo; "
            # A two-byte character straddling the 16 KiB boundary stays whole.
            "head -c 16383 /dev/zero | tr '\\0' b; printf '\\303\\251tail\\n'")
    b.wait_exit()
    logs = [line["log"] for line in b.raw_log()]
    assert logs == ["a" * 16384, "a" * 16384, "a" * 7232 + "\n", "b" * 16383, "étail\n"]


def test_a_partial_last_line_is_flushed_at_exit(box):
    b = box()
    b.spawn("echo whole; printf 'no newline'; printf 'on stderr too' >&2")
    b.wait_exit()
    assert sorted((line["stream"], line["log"]) for line in b.raw_log()) == [
        ("stderr", "on stderr too"), ("stdout", "no newline"), ("stdout", "whole\n")]


def test_rotation_keeps_max_files_and_tail_reads_across_them(box):
    b = box()
    b.spawn("i=1; while [ $i -le 400 ]; do echo line-$i-$(printf %040d 0); i=$((i+1)); done",
            log_max_size=4096, log_max_files=3)
    b.wait_exit()
    names = sorted(p.name for p in b.state_dir.iterdir() if p.name.startswith("ctr.log"))
    assert names == ["ctr.log", "ctr.log.1", "ctr.log.2"]
    for name in names:
        assert (b.state_dir / name).stat().st_size <= 4096
    numbers = [int(e.data.split(b"-")[1]) for e in read_logs(b.state_dir)]
    assert numbers == list(range(numbers[0], 401)) and numbers[0] > 1
    tail = [int(e.data.split(b"-")[1]) for e in read_logs(b.state_dir, tail=50)]
    assert tail == list(range(351, 401))


def test_follow_reads_across_rotation_until_the_container_stops(box):
    b = box()
    b.spawn("i=1; while [ $i -le 300 ]; do echo line-$i-$(printf %040d 0); i=$((i+1)); sleep 0.002; done",
            log_max_size=8192, log_max_files=10)
    followed = [int(e.data.split(b"-")[1]) for e in
                read_logs(b.state_dir, follow=True, is_running=lambda: running_monitor(b.run_dir) is not None)]
    assert followed == list(range(1, 301))


# --- attach -------------------------------------------------------------------

def test_attach_streams_output_and_round_trips_stdin(box):
    b = box()
    started = b.spawn("cat; echo done >&2", stdin=True, wait_attach=True)
    client = started.attach
    try:
        client.send_stdin(b"hello\n")
        received = b""
        for stream, data in client.output(timeout=10):
            assert stream == "stdout"
            received += data
            if received == b"hello\n":
                break
        payload = bytes(range(256)) * 16_000              # 4 MB: many frames, more than any buffer

        def feed():
            client.send_stdin(payload, timeout=10)
            client.close_stdin()

        feeder = threading.Thread(target=feed)
        feeder.start()                                      # writes while this thread reads
        rest = {"stdout": b"", "stderr": b""}
        for stream, data in client.output(timeout=10):
            rest[stream] += data
        feeder.join()
        assert rest == {"stdout": payload, "stderr": b"done\n"}
        assert client.exit_code == 0 and client.wait() == 0 and client.pid == started.pid
    finally:
        client.close()
    # In the log, as in docker's, bytes that are not UTF-8 (here every byte
    # from 0x80: none of them is in a valid sequence) become U+FFFD.
    logged = b"".join(e.data for e in read_logs(b.state_dir, stderr=False))
    assert logged == b"hello\n" + re.sub(rb"[\x80-\xff]", "\ufffd".encode(), payload)


def test_tty(box):
    b = box()
    script = "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo is-a-tty; stty size; read line; stty size; echo got $line"
    client = b.spawn(script, tty=True, stdin=True, wait_attach=True).attach
    try:
        output = b""
        for _, data in client.output(timeout=10):
            output += data
            if output.count(b"\r\n") == 2:
                break
        assert output == b"is-a-tty\r\n0 0\r\n"
        client.resize(30, 100)
        client.send_stdin(b"word\n")
        for _, data in client.output(timeout=10):
            output += data
        assert output.endswith(b"word\r\n30 100\r\ngot word\r\n")
        assert client.exit_code == 0
    finally:
        client.close()
    assert all(line["stream"] == "stdout" for line in b.raw_log())


def test_close_stdin_on_a_tty_sends_end_of_file(box):
    b = box()
    client = b.spawn("cat; echo after-eof", tty=True, stdin=True, wait_attach=True).attach
    with client:
        client.send_stdin(b"abc\n")
        client.close_stdin()
        output = b"".join(data for _, data in client.output(timeout=10))
        assert client.exit_code == 0
    assert output.endswith(b"after-eof\r\n") and b"abc\r\n" in output


def test_wait_attach_starts_only_once_a_client_is_attached(box, monitor_path):
    b = box().container("echo first-words")
    b.run_dir.mkdir(parents=True)
    subprocess.run([str(monitor_path), "--id", "c0ffee", "--state-dir", str(b.state_dir), "--run-dir",
                    str(b.run_dir), "--wait-attach", "--", str(b.hook)], check=True, timeout=10)
    time.sleep(0.3)
    assert not (b.dir / "groups").exists(), "started before anyone attached"
    with AttachClient.connect(b.run_dir) as client:
        assert b"".join(data for _, data in client.output(timeout=10)) == b"first-words\n"
        assert client.exit_code == 0 and client.pid > 1


def test_wait_attach_starts_nothing_when_the_starter_gives_up(box, monitor_path):
    b = box().container("echo never")
    b.run_dir.mkdir(parents=True)
    ready_read, ready_write = os.pipe()
    subprocess.run([str(monitor_path), "--id", "c0ffee", "--state-dir", str(b.state_dir), "--run-dir",
                    str(b.run_dir), "--wait-attach", "--ready-fd", str(ready_write), "--", str(b.hook)],
                   pass_fds=(ready_write,), check=True, timeout=10)
    os.close(ready_write)
    time.sleep(0.1)
    assert running_monitor(b.run_dir)
    os.close(ready_read)
    assert wait_monitor(b.run_dir, 5)
    assert not (b.dir / "groups").exists() and not (b.state_dir / "exit.json").exists()


def test_a_client_that_does_not_read_is_dropped_and_the_log_is_complete(box):
    b = box()
    b.spawn("sleep 0.2; head -c 12000000 /dev/zero | tr '\\0' x | fold -w 99")
    with AttachClient.connect(b.run_dir) as lazy:
        exit_code = b.wait_exit(timeout=60)["exit_code"]
        frames = iter(lambda: lazy.read_frame(timeout=10), None)
        received = sum(len(frame.payload) for frame in frames)
        assert lazy.exit_code is None, "the dropped client still got the exit frame"
        assert 0 < received < 12_000_000
    assert exit_code == 0
    lines = b.raw_log()
    assert len(lines) == 12_000_000 // 99 + 1 and lines[0]["log"] == "x" * 99 + "\n"


# --- exit, errors, restart ----------------------------------------------------

def test_a_container_that_ends_before_its_hook_is_still_recorded(box):
    b = box()
    # No gate: the container ends while the hook (exec'd into sleep, which
    # does not reap) still runs; the monitor inherits it as a zombie.
    b.write_hook(start='sh -c "sleep 0.05; exit 5" 3>&- &\necho "pid $!" >&3\nexec sleep 0.3\n')
    started = b.spawn()
    status = b.wait_exit()
    assert status["pid"] == started.pid and status["exit_code"] == 5


def test_exit_code_and_exit_json(box):
    b = box()
    started = b.spawn("exit 3")
    status = b.wait_exit()
    assert status["pid"] == started.pid and status["exit_code"] == 3 and status["signal"] == 0
    assert TIME.fullmatch(status["finished_at"])
    assert not (b.run_dir / "attach.sock").exists()


def test_killed_by_sigkill_exits_137_with_an_exit_frame(box):
    b = box()
    started = b.spawn("sleep 100")
    with AttachClient.connect(b.run_dir) as client:
        assert client.read_frame(timeout=5).type == 4 and client.pid == started.pid
        os.kill(started.pid, signal.SIGKILL)
        assert client.wait(timeout=10) == 137
    status = b.wait_exit()
    assert (status["exit_code"], status["signal"], status["pid"]) == (137, 9, started.pid)


def test_a_start_hook_error_is_raised_with_its_exit_code(box):
    b = box()
    b.write_hook(start='echo "error 127 exec: \\"nope\\": executable file not found in \\$PATH" >&3\nexit 1\n')
    with pytest.raises(errors.ContainerStartError) as raised:
        b.spawn()
    assert raised.value.exit_code == 127
    assert str(raised.value) == 'exec: "nope": executable file not found in $PATH'
    status = b.wait_exit()
    assert status["exit_code"] == 127 and status["pid"] == 0 and "nope" in status["error"]


def test_a_hook_that_reports_nothing_is_a_start_error(box):
    b = box()
    b.write_hook(start="echo 'something went wrong' >&2\nexit 4\n")
    with pytest.raises(errors.ContainerStartError, match="exited with status 4 without reporting") as raised:
        b.spawn()
    assert raised.value.exit_code == 125
    b.wait_exit()
    assert b.raw_log()[0]["log"] == "something went wrong\n"


def test_a_container_that_inherited_fd_3_does_not_stall_the_start(box):
    b = box()
    b.write_hook(start='sleep 100 &\necho "pid $!" >&3\n')      # forgot 3>&-
    started = b.spawn()
    os.kill(started.pid, signal.SIGKILL)
    assert b.wait_exit()["exit_code"] == 137
    b = box()
    b.write_hook(start='sleep 100 &\nexit 3\n')
    began = time.monotonic()
    with pytest.raises(errors.ContainerStartError, match="exited with status 3 without reporting"):
        b.spawn()
    assert time.monotonic() - began < 2


def test_monitor_setup_errors_are_one_line(box, tmp_path):
    b = box()
    b.spawn("sleep 100")
    with pytest.raises(errors.RuntimeFailure, match="already has a running monitor"):
        b.spawn("true")
    with pytest.raises(errors.RuntimeFailure, match="cannot open --state-dir"):
        spawn_monitor("x", tmp_path / "missing", tmp_path / "run2", ["true"], log_max_size=0, log_max_files=1,
                      binary=b.binary)


def test_restart_when_the_exit_hook_says_75(box):
    b = box()
    b.write_hook(exited='n=$(wc -l < "$DIR/groups")\n[ "$n" -lt 3 ] && exit 75\nexit 0\n')
    b.spawn("echo run $$; exit 7")
    status = b.wait_exit()
    runs = [e.data for e in read_logs(b.state_dir)]
    assert len(runs) == 3 and len(set(runs)) == 3 and all(run.startswith(b"run ") for run in runs)
    assert status["exit_code"] == 7 and status["pid"] == int(runs[-1].split()[1])


def test_the_exit_hook_finds_exit_json_written(box):
    b = box()
    b.write_hook(exited='cp "$DIR/state/exit.json" "$DIR/seen-by-hook"\n')
    b.spawn("exit 5")
    b.wait_exit()
    assert json.loads((b.dir / "seen-by-hook").read_text())["exit_code"] == 5


# --- detached and durable -----------------------------------------------------

def test_the_container_outlives_a_sigkill_of_its_starter(box):
    b = box().container("while :; do echo tick; sleep 0.05; done")
    starter = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from jupyter_containers.containers.monitor import spawn_monitor
            started = spawn_monitor("c0ffee", {str(b.state_dir)!r}, {str(b.run_dir)!r}, [{str(b.hook)!r}],
                                    log_max_size=0, log_max_files=1, binary={str(b.binary)!r})
            print(started.pid, flush=True)
            time.sleep(600)
        """)],
        env={**os.environ, "PYTHONPATH": str(WORKTREE)}, stdout=subprocess.PIPE)
    try:
        pid = int(starter.stdout.readline())
    finally:
        starter.kill()
        starter.wait()
        starter.stdout.close()
    killed_at = time.time_ns()
    from jupyter_containers.containers.logs import parse_time
    wait_for(lambda: sum(parse_time(e.time) > killed_at + 200_000_000 for e in read_logs(b.state_dir)) >= 3)
    assert running_monitor(b.run_dir) and os.path.exists(f"/proc/{pid}")
    os.kill(pid, signal.SIGKILL)
    assert b.wait_exit()["exit_code"] == 137


def test_spawning_from_many_threads_at_once(box):
    boxes = [box().container("echo hello from $$") for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(len(boxes)) as pool:
        starts = list(pool.map(lambda b: b.spawn(), boxes))
    assert len({s.pid for s in starts}) == len({s.monitor_pid for s in starts}) == len(boxes)
    for b, started in zip(boxes, starts):
        assert b.wait_exit()["pid"] == started.pid
        assert [e.data for e in read_logs(b.state_dir)] == [f"hello from {started.pid}\n".encode()]


def test_the_monitor_ignores_sigterm_sigint_and_sighup(box):
    b = box()
    started = b.spawn("sleep 100")
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        os.kill(started.monitor_pid, sig)
    time.sleep(0.2)
    assert running_monitor(b.run_dir) == started.monitor_pid
    os.kill(started.pid, signal.SIGTERM)
    assert b.wait_exit()["exit_code"] == 128 + signal.SIGTERM


def test_a_sigkilled_monitor_leaves_exit_json_absent_or_whole(box):
    outcomes = set()
    for attempt in range(30):
        b = box()
        started = b.spawn("exit 5")
        time.sleep(attempt * 0.0002)
        kill_quietly(os.kill, started.monitor_pid)
        wait_monitor(b.run_dir, 5)
        path = b.state_dir / "exit.json"
        if path.exists():
            assert json.loads(path.read_text())["exit_code"] == 5
            outcomes.add("whole")
        else:
            outcomes.add("absent")
    # Which outcomes occur depends on timing; neither may be torn.
    print("exit.json after a SIGKILLed monitor:", sorted(outcomes))


# --- file descriptors ---------------------------------------------------------

def fd_listings(text: str) -> dict[str, dict[int, str]]:
    """fd → kind of file, from `echo NAME; ls -l /proc/self/fd` output,
    without the fd ls itself opened to list the directory."""
    listings: dict[str, dict[int, str]] = {}
    current: dict[int, str] = {}
    for line in text.splitlines():
        match = re.search(r" (\d+) -> (.*)$", line)
        if match:
            if not re.fullmatch(r"/proc/\d+/fd", match[2]):
                target = match[2]
                current[int(match[1])] = ("monitor.log" if target.endswith("/monitor.log")
                                          else re.sub(r"\d+", "N", target.split(":")[0]))
        elif re.fullmatch(r"[\w-]+", line.strip()):
            current = listings.setdefault(line.strip(), {})
    return listings


LIST_FDS = "echo {name}; ls -lN /proc/self/fd\n"       # -N: no quotes, even on a tty


def test_the_hook_gets_exactly_fds_0_to_3_and_the_container_0_to_2(box):
    b = box()
    b.write_hook(start=LIST_FDS.format(name="hook") + DEFAULT_START,
                 exited=LIST_FDS.format(name="exit-hook"))
    b.spawn(LIST_FDS.format(name="container"), stdin=True)
    b.wait_exit()
    listings = fd_listings("".join(e.data.decode() for e in read_logs(b.state_dir)))
    assert listings == {"hook": {0: "pipe", 1: "pipe", 2: "pipe", 3: "pipe"},
                        "container": {0: "pipe", 1: "pipe", 2: "pipe"}}
    assert fd_listings((b.run_dir / "monitor.log").read_text()) == {
        "exit-hook": {0: "/dev/null", 1: "monitor.log", 2: "monitor.log"}}


def test_without_stdin_the_container_reads_dev_null_and_with_tty_a_pty(box):
    for options, expected in (({}, {0: "/dev/null", 1: "pipe", 2: "pipe", 3: "pipe"}),
                              ({"tty": True}, {0: "/dev/pts/N", 1: "/dev/pts/N", 2: "/dev/pts/N", 3: "pipe"})):
        b = box()
        b.write_hook(start=LIST_FDS.format(name="hook") + DEFAULT_START)
        b.spawn("true", **options)
        b.wait_exit()
        text = "".join(e.data.decode() for e in read_logs(b.state_dir)).replace("\r", "")
        assert fd_listings(text) == {"hook": expected}


# --- the binary ---------------------------------------------------------------

def test_monitor_binary_compiles_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(monitor, "BIN", tmp_path / "not-installed")
    built = monitor.monitor_binary(tmp_path)
    assert built == tmp_path / "bin" / f"jc-monitor-{monitor.source_digest()[:16]}"
    assert os.access(built, os.X_OK)
    made = built.stat().st_mtime_ns
    assert monitor.monitor_binary(tmp_path) == built and built.stat().st_mtime_ns == made
    assert [p.name for p in built.parent.iterdir() if p.name.startswith(".")] == []

    monkeypatch.setenv("PATH", str(tmp_path / "no-compilers-here"))
    with pytest.raises(errors.HostUnsupported, match=r"no C compiler: install gcc \(apt-get install gcc\)"):
        monitor.monitor_binary(tmp_path / "other-cache")


def test_the_wheel_carries_the_monitor(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=WORKTREE, check=True,
                             capture_output=True, text=True).stdout.split()
    project = tmp_path / "project"
    for name in tracked:
        if (WORKTREE / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            (project / name).write_bytes((WORKTREE / name).read_bytes())
    subprocess.run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
                   cwd=project, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert re.search(r"-cp\d+-cp\d+-linux_\w+\.whl$", wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        binary = archive.getinfo("jupyter_containers/_bin/jc-monitor")
        assert binary.external_attr >> 16 & 0o111
        recorded = archive.read("jupyter_containers/_bin/jc-monitor.sha256").decode().strip()
    assert recorded == monitor.source_digest()


def test_idle_monitors_are_small(box):
    """Private memory each idle monitor adds (PSS from smaps_rollup)."""
    boxes = [box() for _ in range(20)]
    pids = [b.spawn("sleep 100").monitor_pid for b in boxes]
    time.sleep(0.2)
    pss = [int(re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{pid}/smaps_rollup").read_text(), re.M)[1])
           for pid in pids]
    assert sum(pss) / len(pss) < 200, pss
