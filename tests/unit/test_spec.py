"""Container options → the record `inspect` shows (docker's semantics)."""

import pytest

from jupyter_containers.containers import spec
from jupyter_containers.errors import UserError


class FakeImage:
    """An image's identity and OCI config: plain data, as the store hands it."""

    def __init__(self, config):
        self.id = "sha256:" + "1" * 64
        self.name = "docker.io/library/busybox:latest"
        self.config = {"config": config}
        self.requested = "busybox"


def record(config=None, command=None, **options):
    return spec.build_record("a" * 64, "web", FakeImage(config or {"Cmd": ["sh"]}), command, options, "2026-01-01T00:00:00Z")


def test_image_defaults():
    r = record({"Entrypoint": ["/entry"], "Cmd": ["serve"], "Env": ["A=1"], "WorkingDir": "/srv",
                "User": "app", "StopSignal": "SIGQUIT", "ExposedPorts": {"80/tcp": {}}})
    assert (r["Path"], r["Args"]) == ("/entry", ["serve"])
    assert r["Config"]["Env"][0].startswith("PATH=") and "A=1" in r["Config"]["Env"]
    assert r["Config"]["WorkingDir"] == "/srv"
    assert r["Config"]["User"] == "app"
    assert r["Config"]["StopSignal"] == "SIGQUIT"
    assert r["Config"]["Hostname"] == "a" * 12
    assert r["HostConfig"]["NetworkMode"] == "bridge"


def test_command_replaces_cmd_and_entrypoint_clears_it():
    config = {"Entrypoint": ["/entry"], "Cmd": ["serve"]}
    r = record(config, ["echo", "hi"])
    assert [r["Path"], *r["Args"]] == ["/entry", "echo", "hi"]
    r = record(config, None, entrypoint="sh")
    assert [r["Path"], *r["Args"]] == ["sh"]
    r = record(config, "-c 'echo x'", entrypoint="sh")
    assert [r["Path"], *r["Args"]] == ["sh", "-c", "echo x"]


def test_environment_overrides_image_env():
    r = record({"Cmd": ["sh"], "Env": ["A=1", "PATH=/x"]}, environment={"A": "2", "B": "3"})
    assert r["Config"]["Env"] == ["A=2", "PATH=/x", "B=3"]


def test_no_command_is_a_clear_error():
    with pytest.raises(UserError, match="no command specified"):
        record({"Env": ["A=1"]})


def test_limits_parse_docker_units():
    r = record(mem_limit="512m", memswap_limit="1g", cpus="0.5", pids_limit=64, cpu_shares=512)
    host = r["HostConfig"]
    assert host["Memory"] == 512 << 20
    assert host["MemorySwap"] == 1 << 30
    assert host["NanoCpus"] == 500_000_000
    assert host["PidsLimit"] == 64 and host["CpuShares"] == 512


@pytest.mark.parametrize("options, message", [
    ({"mem_limit": "lots"}, "invalid --memory 'lots'"),
    ({"cpus": "many"}, "invalid --cpus 'many'"),
    ({"restart_policy": "sometimes"}, "invalid restart policy"),
    ({"restart_policy": "always:3"}, "only goes with on-failure"),
    ({"restart_policy": "always", "auto_remove": True}, "--restart and --rm"),
    ({"volumes": ["/a:relative"]}, "invalid volume specification"),
    ({"volumes": ["/a:/b:bogus"]}, "unknown option 'bogus'"),
    ({"volumes": ["/a:/b", "/c:/b"]}, "duplicate mount point"),
    ({"tmpfs": ["relative"]}, "must be absolute"),
    ({"security_opt": ["label:disable", "apparmour=x"]}, "invalid --security-opt"),
    ({"working_dir": "relative"}, "absolute path"),
    ({"bogus": 1}, "unknown container option"),
])
def test_bad_options_name_the_problem(options, message):
    with pytest.raises(UserError) as info:
        record(**options)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_volumes():
    r = record(volumes=["/host:/data:ro", "named:/db", "/anon"])
    kinds = {m["Destination"]: (m["Type"], m["Source"], m["RW"]) for m in r["Mounts"]}
    assert kinds == {"/data": ("bind", "/host", False), "/db": ("volume", "named", True),
                     "/anon": ("volume", "", True)}
    r = record(volumes={"/host": {"bind": "/data", "mode": "ro"}})
    assert r["Mounts"][0]["RW"] is False


def test_restart_policies():
    assert spec.restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert spec.restart_policy({"Name": "always"}) == {"Name": "always", "MaximumRetryCount": 0}
    assert spec.restart_policy(None) == {"Name": "no", "MaximumRetryCount": 0}


def test_healthcheck_from_options_over_image():
    image = {"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000}}
    r = record(image, healthcheck={"test": "pg_isready", "retries": 5, "interval": "1s"})
    assert r["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "pg_isready"], "Interval": 1_000_000_000, "Retries": 5}
    r = record(image, healthcheck={"test": ["NONE"]})
    assert r["Config"]["Healthcheck"] is None
