"""Real containers from the busybox fixture image: lifecycle, image config,
options, limits, logs, exec, cp, export, durability."""

import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from jupyter_containers.errors import (Conflict, ContainerError, ContainerNotFound, ContainerStartError, UserError)

pytestmark = pytest.mark.root

NONE = {"network": "none"}


def run(client, command, **options):
    return client.containers.run("busybox", command, **{**NONE, **options})


# --- running and the image's config ---------------------------------------------

def test_output_and_exit_code(client):
    assert run(client, ["echo", "hello"]) == b"hello\n"
    with pytest.raises(ContainerError) as info:
        run(client, ["sh", "-c", "echo oops >&2; exit 3"], stderr=True)
    assert info.value.exit_status == 3
    assert info.value.stderr == b"oops\n"


def test_missing_command_is_127_and_not_executable_126(client):
    with pytest.raises(ContainerStartError) as info:
        run(client, ["no-such-program"])
    assert info.value.exit_code == 127
    assert 'executable file not found in $PATH' in str(info.value)
    with pytest.raises(ContainerStartError) as info:
        run(client, ["/etc/passwd"])
    assert info.value.exit_code == 126


def test_default_signal_dispositions(client):
    """Nothing of the runtime's own (Python ignores SIGPIPE and SIGXFSZ)
    reaches the container: a pipe to `head` ends the writer."""
    assert run(client, ["sh", "-c", "grep SigIgn /proc/self/status; yes x | head -c 4"]) == \
        b"SigIgn:\t0000000000000000\nx\nx\n"


def test_env_workdir_hostname_user(client):
    out = run(client, ["sh", "-c", "echo $GREETING; pwd; hostname; id -un; echo $HOME"],
              environment={"GREETING": "hi"}, working_dir="/tmp/new", hostname="box", user="app")
    assert out.decode().split() == ["hi", "/tmp/new", "box", "app", "/home/app"]


def test_user_and_group_by_name_from_the_image(client):
    out = run(client, ["id"], user="nobody:app").decode()
    assert "uid=65534(nobody)" in out and "gid=1000(app)" in out
    with pytest.raises(ContainerStartError, match="unable to find user ghost"):
        run(client, ["id"], user="ghost")


def test_entrypoint_and_cmd(client):
    assert run(client, None, entrypoint=["echo", "from", "entrypoint"]) == b"from entrypoint\n"
    assert run(client, ["a", "b"], entrypoint="echo") == b"a b\n"


def test_hosts_hostname_resolv_files(client):
    out = run(client, ["sh", "-c", "cat /etc/hostname; grep localhost /etc/hosts | head -1; cat /etc/resolv.conf"],
              hostname="named", extra_hosts=["db:10.1.2.3"]).decode()
    assert out.startswith("named\n127.0.0.1\tlocalhost")
    assert "nameserver" in out
    assert run(client, ["grep", "db", "/etc/hosts"], extra_hosts=["db:10.1.2.3"]) == b"10.1.2.3\tdb\n"


# --- lifecycle ----------------------------------------------------------------------

def test_detached_lifecycle(client):
    container = run(client, ["sh", "-c", "trap 'exit 7' TERM; while true; do sleep 0.1; done"],
                    detach=True, name="life")
    assert container.status == "running" and container.name == "life"
    assert container.attrs["State"]["Pid"] > 0
    assert [c.name for c in client.containers.list()] == ["life"]
    container.pause()
    assert container.status == "paused"
    container.unpause()
    assert container.status == "running"
    container.stop(timeout=5)
    assert container.status == "exited" and container.exit_code == 7
    assert client.containers.list() == []
    assert [c.name for c in client.containers.list(all=True)] == ["life"]
    container.start()
    assert container.status == "running"
    container.kill("SIGKILL")
    assert container.status == "exited"  # kill -s KILL returns once the exit is recorded
    assert container.wait(timeout=10)["StatusCode"] == 137
    container.rename("renamed")
    assert client.containers.get("renamed").id == container.id
    container.remove()
    with pytest.raises(ContainerNotFound):
        client.containers.get("renamed")


def test_stop_escalates_to_sigkill(client):
    container = run(client, ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"], detach=True)
    started = time.monotonic()
    container.stop(timeout=1)
    assert 0.9 < time.monotonic() - started < 8
    assert container.exit_code == 137


def test_names_are_unique_and_generated(client):
    first = client.containers.create("busybox", ["true"], name="same", **NONE)
    with pytest.raises(Conflict, match='name "/same" is already in use'):
        client.containers.create("busybox", ["true"], name="same", **NONE)
    generated = client.containers.create("busybox", ["true"], **NONE)
    assert "_" in generated.name and generated.name != first.name
    with pytest.raises(UserError, match="invalid container name"):
        client.containers.create("busybox", ["true"], name="bad name", **NONE)


def test_remove_running_needs_force(client):
    container = run(client, ["sleep", "30"], detach=True)
    with pytest.raises(Conflict, match="stop the container before attempting removal or force remove"):
        container.remove()
    container.remove(force=True)
    assert client.containers.list(all=True) == []


def test_auto_remove(client):
    assert run(client, ["echo", "gone"], remove=True) == b"gone\n"
    assert client.containers.list(all=True) == []
    container = run(client, ["sh", "-c", "sleep 0.2"], detach=True, auto_remove=True)
    container.wait(timeout=10)
    deadline = time.monotonic() + 10
    while client.containers.list(all=True) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.containers.list(all=True) == []


def test_ps_filters(client):
    a = run(client, ["sleep", "30"], detach=True, name="fa", labels={"lesson": "1"})
    b = run(client, ["true"], detach=True, name="fb", labels={"lesson": "2"})
    b.wait(timeout=10)
    names = lambda **kw: sorted(c.name for c in client.containers.list(**kw))  # noqa: E731
    assert names() == ["fa"]
    assert names(all=True) == ["fa", "fb"]
    assert names(all=True, filters={"status": "exited"}) == ["fb"]
    assert names(all=True, filters={"label": "lesson=2"}) == ["fb"]
    assert names(all=True, filters={"label": "lesson"}) == ["fa", "fb"]
    assert names(all=True, filters={"name": "f[ab]"}) == ["fa", "fb"]
    assert names(all=True, filters={"exited": "0"}) == ["fb"]
    assert names(all=True, filters={"ancestor": "busybox"}) == ["fa", "fb"]
    assert names(all=True, filters={"id": a.id[:6]}) == ["fa"]
    with pytest.raises(UserError, match="invalid filter 'color'"):
        client.containers.list(filters={"color": "red"})


@pytest.mark.parametrize("options, message", [
    ({"mem_limit": "1m"}, "minimum memory limit allowed is 6MB"),
    ({"memswap_limit": "1g"}, "--memory-swap needs --memory"),
    ({"mem_limit": "1g", "memswap_limit": "512m"}, "--memory-swap must be at least --memory"),
    ({"cpus": "64"}, "range of CPUs is from 0.01"),
])
def test_limits_docker_refuses_are_refused_at_create(client, options, message):
    with pytest.raises(UserError) as info:
        client.containers.create("busybox", ["true"], **NONE, **options)
    assert message in str(info.value)
    assert client.containers.list(all=True) == []


def test_inspect_fields(client):
    container = client.containers.create("busybox", ["sleep", "30"], mem_limit="64m", cpus="0.5", pids_limit=20,
                                         restart_policy="on-failure:2", labels={"a": "b"}, **NONE)
    attrs = container.attrs
    assert attrs["State"]["Status"] == "created"
    assert attrs["Config"]["Cmd"] == ["sleep", "30"] and attrs["Config"]["Labels"]["a"] == "b"
    host = attrs["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (64 << 20, 500_000_000, 20)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    container.start()
    state = container.attrs["State"]
    assert state["Running"] and state["Pid"] > 0 and state["StartedAt"] > "2020"
    assert state["FinishedAt"].startswith("0001")


def test_container_prune(client):
    run(client, ["true"], detach=True).wait(timeout=10)
    keep = run(client, ["sleep", "30"], detach=True)
    result = client.containers.prune()
    assert len(result["ContainersDeleted"]) == 1
    assert [c.id for c in client.containers.list(all=True)] == [keep.id]


# --- restart policies --------------------------------------------------------------

def test_restart_on_failure_counts(client):
    container = run(client, ["sh", "-c", "echo run; exit 1"], detach=True, restart_policy="on-failure:2")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited" and container.attrs["RestartCount"] == 2:
            break
        time.sleep(0.1)
    assert container.status == "exited"
    assert container.attrs["RestartCount"] == 2
    assert container.logs() == b"run\nrun\nrun\n"


def test_restart_always_until_stopped(client):
    container = run(client, ["sh", "-c", "sleep 0.1; exit 0"], detach=True, restart_policy="always")
    deadline = time.monotonic() + 20
    while container.reload().attrs["RestartCount"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert container.attrs["RestartCount"] >= 2
    container.stop(timeout=2)
    time.sleep(0.5)
    assert container.reload().status == "exited"


# --- limits ------------------------------------------------------------------------

def test_memory_limit_ends_in_an_oom_kill(client):
    container = run(client, ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"], detach=True,
                    mem_limit="32m", memswap_limit="32m")
    assert container.wait(timeout=60)["StatusCode"] == 137
    assert container.reload().attrs["State"]["OOMKilled"] is True


def test_an_attached_run_returns_once_its_exit_is_recorded(client):
    """As docker run: inspect right after an attached run sees the final
    state, OOMKilled included (the exit hook has run)."""
    container = client.containers.create("busybox", ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"],
                                         mem_limit="32m", memswap_limit="32m", **NONE)
    attachment = client.containers.start_attached(container)
    list(attachment)
    assert attachment.exit_code == 137
    state = container.reload().attrs["State"]
    assert state["Status"] == "exited" and state["OOMKilled"] is True


def test_pids_limit_stops_a_fork_bomb(client):
    with pytest.raises(ContainerError) as info:
        run(client, ["sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo all 40 started"],
            pids_limit=10, stderr=True)
    assert b"can't fork" in info.value.stderr
    assert b"all 40 started" not in info.value.stderr


def test_cpus_throttle(client):
    container = run(client, ["sh", "-c", "while true; do :; done"], detach=True, cpus="0.3")
    time.sleep(0.5)
    figures = [container.stats(stream=False)["cpu_percent"] for _ in range(3)]
    container.kill()
    assert max(figures) < 55, figures
    assert max(figures) > 5, figures


# --- logs --------------------------------------------------------------------------

def test_logs_streams_tail_timestamps_and_survive_the_starter(client):
    script = ("import sys; sys.path.insert(0, {root!r}); from jupyter_containers.client import Client; "
              "c = Client().containers.run('busybox', ['sh', '-c', "
              "'for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.3; done; exit 5'], "
              "network='none', detach=True, name='survivor'); print(c.id, flush=True); "
              "import time; time.sleep(60)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    starter = subprocess.Popen([sys.executable, "-c", script.format(root=root)], stdout=subprocess.PIPE)
    container_id = starter.stdout.readline().decode().strip()
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    container = client.containers.get(container_id)
    assert container.wait(timeout=20)["StatusCode"] == 5
    assert container.logs(stderr=False) == b"out 1\nout 2\nout 3\n"
    assert container.logs(stdout=False) == b"err 1\nerr 2\nerr 3\n"
    assert container.logs(tail=2) == b"out 3\nerr 3\n"
    stamped = container.logs(timestamps=True, tail=1).decode()
    assert stamped.startswith("20") and stamped.endswith(" err 3\n")
    entries = list(container.log_entries())
    assert [e[0] for e in entries[:2]] == ["stdout", "stderr"]


def test_logs_follow_from_another_process(client, cli_env):
    container = run(client, ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done"], detach=True)
    follower = subprocess.run([sys.executable, "-m", "jupyter_containers", "logs", "-f", container.id],
                              env=cli_env, capture_output=True, timeout=30)
    assert follower.stdout == b"line 1\nline 2\nline 3\n"


# --- exec ---------------------------------------------------------------------------

def test_exec_shares_the_container(client):
    container = run(client, ["sh", "-c", "echo marker > /tmp/shared; sleep 30"], detach=True,
                    environment={"FROM_RUN": "1"})
    time.sleep(0.3)
    code, out = container.exec_run(["sh", "-c", "cat /tmp/shared; echo $FROM_RUN $EXTRA; id -u; pwd; "
                                               "grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status"],
                                   environment={"EXTRA": "2"}, user="app", workdir="/tmp")
    lines = out.decode().splitlines()
    assert code == 0
    assert lines[:4] == ["marker", "1 2", "1000", "/tmp"]
    assert "CapEff:\t0000000000000000" in lines and "NoNewPrivs:\t1" in lines and "Seccomp:\t2" in lines
    code, out = container.exec_run(["sh", "-c", "exit 9"])
    assert code == 9
    code, out = container.exec_run(["sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '"])
    pid, init = out.decode().splitlines()
    assert int(pid) > 1 and init.startswith(("sh -c echo marker", "sleep 30"))  # sh may exec its last command


def test_exec_with_a_tty(client):
    container = run(client, ["sleep", "30"], detach=True)
    code, out = container.exec_run(["sh", "-c", "test -t 0 && test -t 1 && echo tty"], tty=True)
    assert (code, out.strip()) == (0, b"tty")


def test_exec_errors_name_the_cause_with_docker_codes(client):
    container = run(client, ["sleep", "30"], detach=True)
    for command, options, code, text in [
        (["no-such-program"], {}, 127, 'exec: "no-such-program": executable file not found in $PATH'),
        (["/etc/passwd"], {}, 126, 'exec: "/etc/passwd": permission denied'),
        (["true"], {"workdir": "/no/such/dir"}, 126, "cannot enter the working directory /no/such/dir"),
        (["true"], {"user": "ghost"}, 126, "unable to find user ghost"),
    ]:
        with pytest.raises(ContainerStartError, match=re.escape(text)) as info:
            container.exec_run(command, **options)
        assert info.value.exit_code == code
    # Environment and $PATH are the container's: a program in a directory
    # only the exec's own PATH names is found, an empty entry is the cwd.
    script = "mkdir -p /opt/x && printf '#!/bin/sh\\necho found\\n' > /opt/x/tool && chmod +x /opt/x/tool"
    assert container.exec_run(["sh", "-c", script]).exit_code == 0
    assert container.exec_run(["tool"], environment={"PATH": "/opt/x"}) == (0, b"found\n")
    assert container.exec_run(["tool"], environment={"PATH": ":/bin"}, workdir="/opt/x") == (0, b"found\n")
    assert container.exec_run(["sh", "-c", "echo $HOME"], user="app").output == b"/home/app\n"


def test_exec_environment_stays_off_the_host_command_line(client):
    """An exec's environment may hold secrets: the helper gets it through a
    memfd, so no host user reads it in `ps`; the process has it."""
    container = run(client, ["sleep", "30"], detach=True)
    process = container.exec(["sleep", "30"], environment={"SECRET": "s3cret-value"})
    try:
        with open(f"/proc/{process.popen.pid}/cmdline", "rb") as handle:
            helper_cmdline = handle.read()
        with open(f"/proc/{process.pid}/environ", "rb") as handle:
            environ = handle.read().split(b"\0")
        assert b"jc-exec" in helper_cmdline and b"s3cret-value" not in helper_cmdline
        assert b"SECRET=s3cret-value" in environ and b"HOME=/root" in environ
        # the helper runs from a sealed memfd copy: nothing in the container
        # can reach the host binary through /proc/PID/exe (CVE-2019-5736)
        assert os.readlink(f"/proc/{process.popen.pid}/exe").startswith("/memfd:jc-exec")
    finally:
        process.signal(signal.SIGKILL)
        assert process.wait(10) == 128 + signal.SIGKILL


def test_exec_process_has_its_own_session_and_default_signals(client):
    """Never the caller's terminal (TIOCSTI into the user's shell), never
    the caller's ignored signals (a Jupyter kernel ignores SIGINT)."""
    container = run(client, ["sleep", "30"], detach=True)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        script = "read -r pid comm state ppid pgrp sid tty rest < /proc/self/stat; echo $pid $sid $tty"
        code, out = container.exec_run(["sh", "-c", script])
        status = container.exec_run(["cat", "/proc/self/status"]).output.decode().split("\n")
    finally:
        signal.signal(signal.SIGINT, previous)
    pid, sid, tty = out.decode().split()
    assert code == 0 and pid == sid and tty == "0"
    assert "SigBlk:\t0000000000000000" in status and "SigIgn:\t0000000000000000" in status


def test_exec_user_ids_out_of_range_are_refused(client):
    container = run(client, ["sleep", "30"], detach=True)
    for user in ("4294967296", "4294967295", "0:4294967295"):
        with pytest.raises(ContainerStartError, match="out of range"):
            container.exec_run(["id"], user=user)
    assert container.exec_run(["id", "-u"], user="4294967294") == (0, b"4294967294\n")


def test_exec_reads_users_inside_the_container_root(client, tmp_path):
    """The user is looked up in the container's own /etc/passwd: a symlink
    there to an absolute path is resolved inside the container, never on the
    host, and a FIFO in place of /etc/group cannot make exec hang."""
    host_only = tmp_path / "passwd"
    host_only.write_text("hostonly:x:4242:4242::/:/bin/sh\n")
    container = run(client, ["sleep", "30"], detach=True)
    code, _ = container.exec_run(["sh", "-c", f"ln -sf {host_only} /etc/passwd && rm /etc/group && mkfifo /etc/group"])
    assert code == 0
    with pytest.raises(ContainerStartError, match="unable to find user hostonly"):
        container.exec_run(["true"], user="hostonly")
    assert container.exec_run(["id", "-u"], user="4242:4242") == (0, b"4242\n")


def test_exec_into_a_stopped_container_is_a_clear_error(client):
    container = client.containers.create("busybox", ["true"], **NONE)
    with pytest.raises(Conflict, match="is not running"):
        container.exec_run(["true"])


# --- stdin, tty ------------------------------------------------------------------------

def test_stdin_and_tty(client):
    container = client.containers.create("busybox", ["sh", "-c", "cat; echo done"], stdin_open=True, **NONE)
    attachment = client.containers.start_attached(container)
    attachment.send(b"through stdin\n")
    attachment.close_stdin()
    out = b"".join(data for _stream, data in attachment)
    assert out == b"through stdin\ndone\n" and attachment.exit_code == 0
    out = run(client, ["sh", "-c", "test -t 1 && echo is a tty; stty size"], tty=True)
    assert out.splitlines()[0].strip() == b"is a tty"


# --- mounts, volumes, read-only, tmpfs ---------------------------------------------

def test_bind_mounts_and_read_only(client, tmp_path):
    (tmp_path / "in.txt").write_text("from host")
    out = run(client, ["sh", "-c", "cat /data/in.txt; echo written > /data/out.txt"],
              volumes=[f"{tmp_path}:/data"])
    assert out == b"from host"
    assert (tmp_path / "out.txt").read_text() == "written\n"
    with pytest.raises(ContainerError):
        run(client, ["sh", "-c", "echo x > /data/nope"], volumes=[f"{tmp_path}:/data:ro"])
    with pytest.raises(ContainerError):
        run(client, ["sh", "-c", "echo x > /root/nope"], read_only=True)
    assert run(client, ["sh", "-c", "echo ok > /scratch/f && cat /scratch/f"], read_only=True,
               tmpfs={"/scratch": "size=1m"}) == b"ok\n"


def test_a_file_can_be_bind_mounted(client, tmp_path):
    (tmp_path / "script.sh").write_text("echo from a mounted file")
    assert run(client, ["sh", "/script.sh"], volumes=[f"{tmp_path / 'script.sh'}:/script.sh:ro"]) == \
        b"from a mounted file\n"
    # A missing source is still created, as a directory (docker's -v).
    run(client, ["test", "-d", "/made"], volumes=[f"{tmp_path / 'made'}:/made"])
    assert (tmp_path / "made").is_dir()


def test_named_volumes_persist_and_copy_up(client):
    run(client, ["sh", "-c", "echo kept > /etc/data/file"], volumes=["lesson-data:/etc/data"], remove=True)
    assert run(client, ["cat", "/etc/data/file"], volumes=["lesson-data:/etc/data"]) == b"kept\n"
    # A new volume over an image directory starts with that directory's content.
    assert b"root:" in run(client, ["cat", "/etc/passwd"], volumes=["fresh:/etc"])
    assert client.volumes.get("lesson-data").attrs["Mountpoint"].endswith("/_data")
    with pytest.raises(Conflict):
        keeper = run(client, ["sleep", "30"], detach=True, volumes=["lesson-data:/d"])
        client.volumes.get("lesson-data").remove()
    keeper.remove(force=True)


def test_rm_v_removes_anonymous_volumes(client):
    container = run(client, ["true"], detach=True, volumes=["/anonymous"])
    container.wait(timeout=10)
    volume = [m for m in container.attrs["Mounts"] if m["Destination"] == "/anonymous"][0]["Name"]
    assert client.volumes.get(volume).attrs["Anonymous"]
    container.remove(v=True)
    assert volume not in [v.name for v in client.volumes.list()]


# --- init --------------------------------------------------------------------------

def test_init_reaps_orphans_and_forwards_signals(client):
    container = run(client, ["sh", "-c", "sh -c 'sleep 0.1 &' ; sleep 1; ps -o pid,stat,comm; sleep 30"],
                    detach=True, init=True)
    time.sleep(1.6)
    assert container.exec_run(["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])[1].startswith(b"/dev/init")
    assert b" Z " not in container.logs()
    started = time.monotonic()
    container.stop(timeout=10)
    assert time.monotonic() - started < 5  # TERM reached sh through the init
    assert container.exit_code == 143


# --- cp, export -----------------------------------------------------------------------

def test_cp_in_and_out_confined_to_the_container(client, tmp_path):
    container = run(client, ["sh", "-c", "ln -s / /escape; ln -s /etc /tmp/etclink; sleep 30"], detach=True)
    time.sleep(0.3)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    container.put_archive("/tmp", buffer.getvalue())
    assert container.exec_run(["cat", "/tmp/hello.txt"]).output == b"hello"
    # A copy through a symlink that points at / writes inside the container,
    # never on the host.
    before = set(os.listdir("/tmp"))
    container.put_archive("/escape/tmp", buffer.getvalue())
    assert set(os.listdir("/tmp")) == before
    assert container.exec_run(["ls", "/tmp"]).output.split().count(b"hello.txt") == 1
    chunks, stat = container.get_archive("/tmp/etclink/passwd")
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        content = archive.extractfile(archive.getmembers()[0]).read()
    assert b"app:x:1000" in content  # the image's passwd, not the host's
    assert stat["name"] == "passwd"


def test_export_is_the_container_filesystem(client):
    container = run(client, ["sh", "-c", "echo exported > /root/mark"], detach=True)
    container.wait(timeout=10)
    with tarfile.open(fileobj=io.BytesIO(b"".join(container.export()))) as archive:
        names = set(archive.getnames())
        assert archive.extractfile("root/mark").read() == b"exported\n"
    assert {"bin/busybox", "etc/passwd"} <= names
