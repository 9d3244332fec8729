"""Waiting for services (health checks, ports) and reproducible images
(containers.lock, --pull), against real containers and a real registry."""

import json
import os
import subprocess
import sys
import time

import pytest

from jupyter_containers.client import Client
from jupyter_containers.containers.health import NotReady
from jupyter_containers.errors import ImageNotFound, ManifestUnknown, UserError
from tests.fixtures.containers import set_offline
from tests.fixtures.registry import make_image

pytestmark = pytest.mark.root

NONE = {"network": "none"}


# --- health checks ----------------------------------------------------------------

def test_health_check_becomes_healthy_and_shows_in_ps_and_inspect(client):
    container = client.containers.run(
        "busybox", ["sh", "-c", "sleep 1; touch /tmp/ready; sleep 60"], detach=True, **NONE,
        healthcheck={"test": ["CMD", "test", "-f", "/tmp/ready"], "interval": "200ms", "retries": 50})
    assert container.attrs["State"]["Health"]["Status"] == "starting"
    started = time.monotonic()
    health = container.wait_healthy(timeout=20)
    assert 0.8 < time.monotonic() - started < 20
    assert health["Status"] == "healthy" and health["FailingStreak"] == 0
    assert health["Log"][-1]["ExitCode"] == 0
    assert container.attrs["State"]["Health"]["Status"] == "healthy"
    assert container.status_text.endswith("(healthy)")
    assert [c.name for c in client.containers.list(filters={"health": "healthy"})] == [container.name]


def test_a_service_that_never_becomes_healthy_is_a_clear_error(client):
    container = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, **NONE,
        healthcheck={"test": "echo not yet; exit 1", "interval": "200ms", "retries": 2})
    with pytest.raises(NotReady) as info:
        container.wait_healthy(timeout=20)
    message = str(info.value)
    assert "is unhealthy" in message and "not yet" in message and "\n" not in message
    slow = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, **NONE,
        healthcheck={"test": "exit 1", "interval": "5s", "retries": 3})
    with pytest.raises(NotReady, match="did not become healthy within 0.5s"):
        slow.wait_healthy(timeout=0.5)


def test_health_check_timeout_and_exit_before_healthy(client):
    container = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, **NONE,
        healthcheck={"test": "sleep 5", "interval": "300ms", "timeout": "200ms", "retries": 1})
    with pytest.raises(NotReady):
        container.wait_healthy(timeout=20)
    log = container.reload().attrs["State"]["Health"]["Log"]
    assert log[-1]["ExitCode"] == -1 and "exceeded timeout" in log[-1]["Output"]
    quitter = client.containers.run("busybox", ["sh", "-c", "sleep 0.3; exit 3"], detach=True, **NONE,
                                    healthcheck={"test": "false", "interval": "1s"})
    with pytest.raises(NotReady, match=r"exited \(code 3\) before it became healthy"):
        quitter.wait_healthy(timeout=20)


def test_a_health_check_that_cannot_run_says_why(client):
    container = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, **NONE,
        healthcheck={"test": ["CMD", "no-such-check"], "interval": "200ms", "retries": 1})
    with pytest.raises(NotReady, match="executable file not found"):
        container.wait_healthy(timeout=20)
    assert container.reload().attrs["State"]["Health"]["Log"][-1]["ExitCode"] == 127


def test_a_timed_out_health_check_is_killed(client):
    container = client.containers.run(
        "busybox", ["sleep", "60"], detach=True, **NONE,
        healthcheck={"test": "sleep 7; true", "interval": "1s", "timeout": "200ms", "retries": 1})
    with pytest.raises(NotReady, match="exceeded timeout"):
        container.wait_healthy(timeout=20)
    # the shell and its sleep are gone (the next check starts a second after)
    assert b"sleep 7" not in container.exec_run(["ps", "-o", "args"]).output


def test_no_health_check_is_a_user_error(client):
    container = client.containers.run("busybox", ["sleep", "60"], detach=True, **NONE)
    with pytest.raises(UserError, match="has no health check"):
        container.wait_healthy(timeout=1)


def test_wait_for_a_port(client):
    container = client.containers.run(
        "busybox", ["sh", "-c", "sleep 1; echo ok > /tmp/index.html; httpd -f -p 8080 -h /tmp"], detach=True)
    started = time.monotonic()
    host, port = container.wait_port(8080, timeout=20)
    assert time.monotonic() - started > 0.8
    assert port == 8080 and host == container.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    quitter = client.containers.run("busybox", ["sh", "-c", "sleep 0.3; exit 2"], detach=True)
    with pytest.raises(NotReady, match="before port 9 accepted connections"):
        quitter.wait_port(9, timeout=20)


def test_wait_cli(client, cli_env):
    container = client.containers.run(
        "busybox", ["sh", "-c", "sleep 0.5; touch /tmp/ok; sleep 60"], detach=True, **NONE,
        healthcheck={"test": "test -f /tmp/ok", "interval": "100ms", "retries": 100})
    result = subprocess.run([sys.executable, "-m", "jupyter_containers", "wait", "--healthy", "--timeout", "20",
                             container.name], env=cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"{container.name}: healthy"
    result = subprocess.run([sys.executable, "-m", "jupyter_containers", "wait", "--port", "7", "--timeout", "0.5",
                             container.name], env=cli_env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "not reachable from the host" in result.stderr


# --- containers.lock, --pull ---------------------------------------------------------

@pytest.fixture
def lesson_dir(tmp_path, monkeypatch):
    directory = tmp_path / "lesson"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


def test_lock_pins_the_digest_a_later_push_does_not_change(client, hub, lesson_dir):
    hub.registry.push_image("library/pinme", "latest", make_image([{"version": b"one"}]))
    client.images.pull("pinme")
    entries = client.image_service.lock(["pinme"])
    first = entries["pinme"]["digest"]
    lock = json.loads((lesson_dir / "containers.lock").read_text())
    assert lock["images"]["pinme"] == {"reference": "docker.io/library/pinme:latest", "digest": first}

    # The tag moves on in the registry; the lesson keeps running the pinned bytes.
    hub.registry.push_image("library/pinme", "latest", make_image([{"version": b"two"}]))
    client.images.remove("pinme")
    events = []
    pulled = client.image_service.pull("pinme", progress=events.append)
    assert pulled.repo_digest == first
    assert any("pinned by containers.lock" in e.message for e in events)
    info = client.image_service.resolve_for_run("pinme", pull="never")
    assert info.manifest_digest == first

    # Without the lock, the name means the new image again.
    (lesson_dir / "containers.lock").unlink()
    assert client.image_service.pull("pinme").repo_digest != first


def test_a_pinned_digest_gone_from_the_registry_is_a_clear_error(client, hub, lesson_dir):
    image = make_image([{"soon": b"gone"}])
    hub.registry.push_image("library/vanishing", "latest", image)
    client.images.pull("vanishing")
    client.image_service.lock(["vanishing"])
    client.images.remove("vanishing")
    hub.registry.api("DELETE", f"/v2/library/vanishing/manifests/{image.digest}", "library/vanishing")
    with pytest.raises(ManifestUnknown) as info:
        client.image_service.pull("vanishing")
    assert "pinned by containers.lock" in str(info.value) and "\n" not in str(info.value)
    assert "remove its entry from containers.lock" in str(info.value)
    assert client.image_service.store.images() == [] or all(
        "vanishing" not in e["annotations"]["org.opencontainers.image.ref.name"]
        for e in client.image_service.store.images())


def test_pull_policies(client, hub):
    with pytest.raises(ImageNotFound, match="--pull=never"):
        client.containers.run("busybox", ["true"], pull="never", **NONE)
    assert client.image_service.store.images() == []
    assert client.containers.list(all=True) == []
    client.containers.run("busybox", ["true"], **NONE)  # missing: pulled
    hub.registry.push_image("library/moving", "latest", make_image([{"v": b"1"}]))
    first = client.image_service.pull("moving").id
    hub.registry.push_image("library/moving", "latest", make_image([{"v": b"2"}]))
    assert client.image_service.resolve_for_run("moving", pull="missing").id == first
    assert client.image_service.resolve_for_run("moving", pull="always").id != first


def test_lesson_images_load_the_offline_kit(client, cli_env, busybox_image, tmp_path):
    result = subprocess.run([sys.executable, "-m", "jupyter_containers", "lesson-images", "busybox"],
                            env=cli_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Ready: docker.io/library/busybox:latest" in result.stdout
    image = client.images.get("busybox")
    assert image.attrs["RepoDigests"]  # pinnable: the build is reproducible
    assert client.containers.run("busybox", ["echo", "offline"], pull="never", **NONE) == b"offline\n"
    assert os.path.exists(busybox_image.layout)


def test_an_image_whose_tag_moved_stays_known_by_its_digest(client, hub):
    hub.registry.push_image("library/drifting", "latest", make_image([{"v": b"1"}]))
    first = client.image_service.pull("drifting").repo_digest
    hub.registry.push_image("library/drifting", "latest", make_image([{"v": b"2"}]))
    assert client.image_service.pull("drifting").repo_digest != first
    # As docker's dangling image: untagged, still there under its digest.
    old = client.images.get(f"drifting@{first}")
    assert old.attrs["RepoTags"] == [] and old.attrs["RepoDigests"] == [f"drifting@{first}"]
    assert [row["RepoTags"] for row in client.image_service.list("drifting")].count([]) == 1
    # Once nothing names it, a tag moving does not keep it twice.
    client.images.tag(f"drifting@{first}", "drifting:old")
    client.images.tag("drifting:latest", "drifting:old")
    assert client.images.get(f"drifting@{first}").attrs["RepoTags"] == []
    assert len(client.image_service.list("drifting")) == 2


def test_a_tag_in_another_repository_claims_no_registry_digest(client):
    client.images.pull("busybox")
    client.images.tag("busybox", "my-tools:latest")
    assert [d.split("@")[0] for d in client.images.get("my-tools").attrs["RepoDigests"]] == ["busybox"]
    with pytest.raises(UserError, match="no registry digest"):
        client.image_service.lock(["my-tools"], path="unused.lock")


def test_offline_pulls_use_the_images_on_this_computer(client, hub, jupyter_config_dir, lesson_dir):
    hub.registry.push_image("library/shell-less", "latest", make_image([{"just": b"a file"}]))
    client.images.pull("shell-less")
    client.images.pull("busybox")
    client.image_service.lock(["busybox"])
    pinned = json.loads((lesson_dir / "containers.lock").read_text())["images"]["busybox"]["digest"]
    set_offline(jupyter_config_dir)
    offline = Client()

    events = []
    pulled = offline.image_service.pull("busybox", progress=events.append)
    assert pulled.repo_digest == pinned and pulled.status == "Offline: using the image on this computer"
    assert any("offline" in event.message for event in events)
    assert offline.containers.run("busybox", ["echo", "ok"], pull="always", **NONE) == b"ok\n"
    with pytest.raises(ImageNotFound, match="Registry.offline forbids pulling it"):
        offline.image_service.pull("python:3.11")

    # The local tag moves to another image: the lock still finds the pinned
    # busybox on this computer, with no registry to fetch it from.
    offline.images.tag("shell-less", "busybox:latest")
    assert offline.containers.run("busybox", ["echo", "pinned"], **NONE) == b"pinned\n"
    (lesson_dir / "containers.lock").unlink()
    assert offline.images.get("busybox").id == offline.images.get("shell-less").id


def test_offline_is_on_with_its_environment_variable(monkeypatch):
    from jupyter_containers import config

    monkeypatch.setenv("JUPYTER_CONTAINERS_OFFLINE", "1")
    assert config.Registry().offline is True
    monkeypatch.delenv("JUPYTER_CONTAINERS_OFFLINE")
    assert config.Registry().offline is False
