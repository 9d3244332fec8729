"""The registry client's decisions that need no server: challenges, where
requests go, HTTP or HTTPS. Exchanges with real registries are in
tests/integration/test_registry.py."""

import pytest

from jupyter_containers.config import Registry
from jupyter_containers.errors import RegistryError
from jupyter_containers.images.registry import Endpoint, RegistryClient, parse_challenge


def client(**settings):
    return RegistryClient(Registry(**settings), credentials={})


def test_parse_bearer_challenge_of_docker_hub():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/mysql:pull",error="insufficient_scope"')
    assert parse_challenge([header]) == ("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/mysql:pull", "error": "insufficient_scope"})


def test_parse_prefers_bearer_over_basic_and_keeps_commas_in_quotes():
    header = 'Basic realm="Registry Realm", Bearer realm="http://t/token",scope="repository:a:pull,push"'
    assert parse_challenge([header]) == ("bearer", {"realm": "http://t/token", "scope": "repository:a:pull,push"})
    assert parse_challenge(['Basic realm="x"']) == ("basic", {"realm": "x"})
    assert parse_challenge(['Negotiate abc']) is None
    assert parse_challenge([]) is None


def test_docker_hub_goes_to_registry_1():
    assert client().endpoints("docker.io") == [Endpoint("https://registry-1.docker.io", "docker.io")]


@pytest.mark.parametrize("host, scheme", [
    ("quay.io", "https"),
    ("registry.example.com:5000", "https"),
    ("localhost:5000", "http"),
    ("127.0.0.1:5000", "http"),
    ("127.9.8.7", "http"),
    ("[::1]:5000", "http"),
    ("10.0.0.1:5000", "https"),
])
def test_plain_http_only_for_loopback_by_default(host, scheme):
    assert client().endpoints(host) == [Endpoint(f"{scheme}://{host}", host)]


def test_insecure_hosts_use_plain_http():
    configured = client(insecure=["registry.lan:5000", "other.lan"])
    assert configured.endpoints("registry.lan:5000")[0].url == "http://registry.lan:5000"
    assert configured.endpoints("other.lan:8080")[0].url == "http://other.lan:8080"
    assert configured.endpoints("registry.lan:6000")[0].url == "https://registry.lan:6000"


def test_mirrors_come_first_then_the_registry_unless_mirrors_only():
    mirrors = {"docker.io": ["http://127.0.0.1:5000", "https://mirror.example.com/", "127.0.0.2:6000"]}
    expected_mirrors = [Endpoint("http://127.0.0.1:5000", "127.0.0.1:5000", mirror=True),
                        Endpoint("https://mirror.example.com", "mirror.example.com", mirror=True),
                        Endpoint("http://127.0.0.2:6000", "127.0.0.2:6000", mirror=True)]
    assert client(mirrors=mirrors).endpoints("docker.io") == \
        expected_mirrors + [Endpoint("https://registry-1.docker.io", "docker.io")]
    assert client(mirrors=mirrors, mirrors_only=True).endpoints("docker.io") == expected_mirrors
    # mirrors_only only concerns registries that have mirrors
    assert client(mirrors=mirrors, mirrors_only=True).endpoints("quay.io") == [Endpoint("https://quay.io", "quay.io")]


@pytest.mark.parametrize("url", ["ftp://mirror", "http://mirror/some/path", "http://", "http://m?x=1"])
def test_bad_mirror_url_is_a_clear_error(url):
    with pytest.raises(RegistryError, match="Registry.mirrors: .* is not a registry URL: write scheme://host"):
        client(mirrors={"docker.io": [url]}).endpoints("docker.io")
