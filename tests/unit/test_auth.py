"""Credentials in docker's config.json, and docker-credential-* helpers
(real executables written into a temporary PATH directory)."""

import base64
import json
import stat

import pytest

from jupyter_containers.errors import UserError
from jupyter_containers.images.auth import DOCKER_HUB_KEY, Credentials, DockerConfig, config_key, registry_host

def write_config(path, data):
    path.write_text(json.dumps(data))
    return DockerConfig(str(path))


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("text, host", [
    ("docker.io", "docker.io"),
    ("index.docker.io", "docker.io"),
    ("registry-1.docker.io", "docker.io"),
    ("https://index.docker.io/v1/", "docker.io"),
    ("Registry.Example.com:5000", "registry.example.com:5000"),
    ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"),
    ("quay.io/some/path", "quay.io"),
])
def test_registry_host_normalises_every_spelling(text, host):
    assert registry_host(text) == host


def test_config_key_of_docker_hub_is_the_v1_index_url():
    assert config_key("docker.io") == DOCKER_HUB_KEY == "https://index.docker.io/v1/"
    assert config_key("quay.io") == "quay.io"


def test_auths_entries_base64_fields_and_key_variants(tmp_path):
    store = write_config(tmp_path / "config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hub:pass")},
        "https://registry.example.com/v1/": {"username": "old", "password": "style"},
        "token.example.com": {"identitytoken": "refresh-me"},
        "empty.example.com": {},
    }})
    assert store.get("docker.io") == Credentials("hubuser", "hub:pass")
    assert store.get("index.docker.io") == Credentials("hubuser", "hub:pass")
    assert store.get("registry.example.com") == Credentials("old", "style")
    assert store.get("token.example.com") == Credentials(identity_token="refresh-me")
    assert store.get("empty.example.com") is None
    assert store.get("elsewhere.example.com") is None


def test_missing_config_file_means_no_credentials(tmp_path):
    assert DockerConfig(str(tmp_path / "absent" / "config.json")).get("docker.io") is None


def test_credentials_repr_hides_the_secret():
    assert "s3cret" not in repr(Credentials("bob", "s3cret"))
    assert "s3cret" not in repr(Credentials(identity_token="s3cret"))


def test_broken_config_is_a_one_line_error(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(UserError) as caught:
        DockerConfig(str(path)).get("docker.io")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    bad_auth = write_config(tmp_path / "bad.json", {"auths": {"quay.io": {"auth": "%%%"}}})
    with pytest.raises(UserError, match="not base64"):
        bad_auth.get("quay.io")


def test_store_writes_auths_0600_atomically_and_keeps_other_keys(tmp_path):
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"auths": {"https://quay.io/": {"auth": b64("stale:x")}},
                                "psFormat": "table {{.ID}}"}))
    path.chmod(0o644)
    store = DockerConfig(str(path))
    store.store("quay.io", Credentials("carol", "pw"))
    store.store("index.docker.io", Credentials("dave", "pw2"))
    data = json.loads(path.read_text())
    assert data["psFormat"] == "table {{.ID}}"
    assert data["auths"] == {"quay.io": {"auth": b64("carol:pw")},
                             DOCKER_HUB_KEY: {"auth": b64("dave:pw2")}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary file left
    assert store.get("docker.io") == Credentials("dave", "pw2")


def test_store_creates_the_directory_private(tmp_path):
    path = tmp_path / "new" / "config.json"
    DockerConfig(str(path)).store("quay.io", Credentials("erin", "pw"))
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_erase_removes_every_variant_and_reports_absence(tmp_path):
    store = write_config(tmp_path / "config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": b64("a:b")}, "docker.io": {"auth": b64("a:b")},
        "quay.io": {"auth": b64("c:d")}}})
    assert store.erase("docker.io") is True
    assert json.loads((tmp_path / "config.json").read_text())["auths"] == {"quay.io": {"auth": b64("c:d")}}
    assert store.erase("docker.io") is False


def test_creds_store_helper_get_store_erase(tmp_path, credential_helpers):
    credential_helpers.install("jctest", {"127.0.0.1:5000": {"Username": "frank", "Secret": "pw"}})
    store = write_config(tmp_path / "config.json", {"credsStore": "jctest"})
    assert store.get("127.0.0.1:5000") == Credentials("frank", "pw")
    assert credential_helpers.calls("jctest") == [["get", "127.0.0.1:5000"]]
    assert store.get("other:5000") is None  # "credentials not found" is not an error

    store.store("docker.io", Credentials("gina", "hub-pw"))
    assert credential_helpers.store("jctest")[DOCKER_HUB_KEY] == {"Username": "gina", "Secret": "hub-pw"}
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["auths"] == {DOCKER_HUB_KEY: {}}  # docker records the host, not the secret
    assert store.get("docker.io") == Credentials("gina", "hub-pw")

    assert store.erase("docker.io") is True
    assert DOCKER_HUB_KEY not in credential_helpers.store("jctest")
    assert json.loads((tmp_path / "config.json").read_text())["auths"] == {}
    assert ["erase", DOCKER_HUB_KEY] in credential_helpers.calls("jctest")


def test_cred_helpers_per_registry_win_over_creds_store(tmp_path, credential_helpers):
    credential_helpers.install("special", {"quay.io": {"Username": "<token>", "Secret": "identity"}})
    credential_helpers.install("general", {"quay.io": {"Username": "wrong", "Secret": "wrong"}})
    store = write_config(tmp_path / "config.json",
                         {"credsStore": "general", "credHelpers": {"https://quay.io": "special"}})
    assert store.get("quay.io") == Credentials(identity_token="identity")


def test_missing_helper_is_a_clear_error(tmp_path, credential_helpers):
    store = write_config(tmp_path / "config.json", {"credsStore": "not-installed-anywhere"})
    with pytest.raises(UserError) as caught:
        store.get("quay.io")
    message = str(caught.value)
    assert "docker-credential-not-installed-anywhere" in message and "is not installed" in message
    assert "\n" not in message


def test_failing_helper_reports_its_message(tmp_path, credential_helpers):
    program = credential_helpers.directory / "docker-credential-broken"
    program.write_text("#!/bin/sh\necho 'keyring is locked'\nexit 3\n")
    program.chmod(0o755)
    store = write_config(tmp_path / "config.json", {"credsStore": "broken"})
    with pytest.raises(UserError, match="docker-credential-broken get failed: keyring is locked"):
        store.get("quay.io")
