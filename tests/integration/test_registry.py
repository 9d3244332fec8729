"""The registry client against real docker-registry instances on loopback:
manifests of every kind, mirrors, configuration files, basic and token
auth, credentials from docker's config and helpers, login/logout, and
faults (429, 503, dropped connections, redirects, ignored ranges, altered
bodies) injected by a proxy."""

import base64
import json
import os
import socket
import stat
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from jupyter_containers import config
from jupyter_containers.errors import (AuthenticationRequired, ImageNotFound, IntegrityError, ManifestUnknown,
                                       RegistryError)
from jupyter_containers.images import mediatypes
from jupyter_containers.images.auth import Credentials, DockerConfig
from jupyter_containers.images.platform import host_platform, select_platform
from jupyter_containers.images.reference import parse
from jupyter_containers.images.registry import RegistryClient
from tests.fixtures.registry import (PASSWORD, USERNAME, closed_port_url, make_image, make_index, write_oci_layout)

_counter = iter(range(1_000_000))


def unique(name: str) -> str:
    """A repository name of its own for each test (the registry is shared)."""
    return f"jc/{name}-{os.getpid()}-{next(_counter)}"


def push(server, name: str, image, tag: str = "v1") -> str:
    """Push ``image`` to a repository of its own; its name."""
    repository = unique(name)
    server.push_image(repository, tag, image)
    return repository


def make_client(credentials=None, **settings) -> RegistryClient:
    settings = {"retries": 3, "backoff": 0.01, "timeout": 10.0, **settings}
    return RegistryClient(config.Registry(**settings), credentials=credentials if credentials is not None else {})


def download(client, ref, digest, **options) -> bytes:
    received = bytearray()
    client.download_blob(ref, digest, received.extend, **options)
    return bytes(received)


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def client():
    with make_client() as instance:
        yield instance


# -- manifests ------------------------------------------------------------


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-schema2"])
def test_image_manifest_by_tag_and_by_digest(registry, client, docker):
    repository = unique("single")
    image = make_image([{"etc/hello": b"hello\n"}, {"bin/tool": b"#!/bin/sh\n"}], docker=docker)
    pushed = registry.push_image(repository, "v1", image)
    assert pushed == image.digest
    ref = parse(f"{registry.host}/{repository}:v1")

    descriptor, endpoint = client.resolve(ref)
    assert descriptor == {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    assert endpoint.url == registry.url and not endpoint.mirror

    assert client.get_manifest(ref) == (image.manifest, image.media_type, image.digest)
    assert client.get_manifest(ref, image.digest, endpoint=endpoint) == (image.manifest, image.media_type, image.digest)

    by_digest = parse(f"{registry.host}/{repository}@{image.digest}")
    assert client.resolve(by_digest)[0]["digest"] == image.digest
    tag_and_digest = parse(f"{registry.host}/{repository}:v1@{image.digest}")
    assert client.get_manifest(tag_and_digest)[2] == image.digest

    for layer in image.document["layers"]:
        assert download(client, ref, layer["digest"], size=layer["size"]) == image.blobs[layer["digest"]]


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_index_and_platform_selection(registry, client, docker):
    repository = unique("multi")
    amd64 = make_image([{"arch": b"amd64\n"}], docker=docker, platform="linux/amd64")
    arm64 = make_image([{"arch": b"arm64\n"}], docker=docker, platform="linux/arm64/v8")
    index_digest, index_raw = registry.push_index(repository, "multi", [amd64, arm64], docker=docker)
    ref = parse(f"{registry.host}/{repository}:multi")

    descriptor, endpoint = client.resolve(ref)
    index_type = mediatypes.DOCKER_MANIFEST_LIST if docker else mediatypes.OCI_INDEX
    assert descriptor == {"mediaType": index_type, "digest": index_digest, "size": len(index_raw)}
    raw, media_type, digest = client.get_manifest(ref, descriptor["digest"], endpoint=endpoint)
    assert (raw, media_type, digest) == (index_raw, index_type, index_digest)

    for wanted, image in (("linux/arm64", arm64), ("linux/arm64/v8", arm64), ("linux/amd64", amd64)):
        chosen = select_platform(raw, wanted)
        assert chosen["digest"] == image.digest
        assert client.get_manifest(ref, chosen["digest"], endpoint=endpoint)[0] == image.manifest

    by_host = {"linux/amd64": amd64, "linux/arm64/v8": arm64}.get(str(host_platform()))
    if by_host is not None:
        assert select_platform(raw)["digest"] == by_host.digest
    with pytest.raises(ImageNotFound) as caught:
        select_platform(raw, "linux/s390x")
    assert "it offers linux/amd64, linux/arm64/v8" in one_line(caught)


def test_layouts_pushed_by_skopeo(registry, client, tmp_path):
    """skopeo is the reference client: what it pushed we read back byte for
    byte, and our digest is the one skopeo reports."""
    repository = unique("skopeo")
    image = make_image([{"file": b"from an OCI layout\n"}])
    write_oci_layout(tmp_path / "single", "v1", [image])
    registry.push_layout(tmp_path / "single", "v1", repository, "v1")
    ref = parse(f"{registry.host}/{repository}:v1")
    raw, media_type, digest = client.get_manifest(ref)
    inspect = ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/{repository}:v1"]
    assert raw == subprocess.run(inspect + ["--raw"], check=True, capture_output=True, timeout=60).stdout
    assert digest == json.loads(subprocess.run(inspect, check=True, capture_output=True, timeout=60).stdout)["Digest"]
    assert client.resolve(ref)[0]["digest"] == digest

    images = [make_image([{"p": b"amd64"}], platform="linux/amd64"),
              make_image([{"p": b"arm64"}], platform="linux/arm64/v8")]
    index_raw, _ = make_index(images)
    write_oci_layout(tmp_path / "multi", "multi", images, index=index_raw)
    registry.push_layout(tmp_path / "multi", "multi", repository, "multi", all_platforms=True)
    ref = parse(f"{registry.host}/{repository}:multi")
    descriptor, endpoint = client.resolve(ref)
    assert descriptor["mediaType"] == mediatypes.OCI_INDEX
    raw, _, _ = client.get_manifest(ref, descriptor["digest"], endpoint=endpoint)
    arm = select_platform(raw, "linux/arm64")
    assert client.get_manifest(ref, arm["digest"], endpoint=endpoint)[0] == images[1].manifest


def test_unknown_image_tag_and_digest(registry, client):
    image = make_image([{"x": b"x"}])
    repository = push(registry, "known", image)
    with pytest.raises(ManifestUnknown) as caught:
        client.resolve(parse(f"{registry.host}/{repository}:nope"))
    assert one_line(caught) == (f"image '{registry.host}/{repository}:nope' not found in {registry.host}: "
                                f"check the name and tag")
    with pytest.raises(ManifestUnknown, match="not found"):
        client.resolve(parse(f"{registry.host}/jc/no-such-repository"))
    missing = "sha256:" + "0" * 64
    with pytest.raises(ManifestUnknown) as caught:
        client.get_manifest(parse(f"{registry.host}/{repository}@{missing}"))
    assert one_line(caught).endswith("check the name and digest")
    with pytest.raises(RegistryError) as caught:
        download(client, parse(f"{registry.host}/{repository}:v1"), missing)
    assert f"blob {missing} of {registry.host}/{repository} is missing" in one_line(caught)


# -- mirrors and configuration --------------------------------------------


def test_serving_mirror_means_the_registry_is_not_contacted(registry, fault_proxy):
    behind = fault_proxy(registry)  # "the registry itself": records whether anyone asked it
    image = make_image([{"m": b"mirror\n"}])
    repository = push(registry, "mirrored", image)
    ref = parse(f"{behind.host}/{repository}:v1")
    with make_client(mirrors={behind.host: [registry.url]}) as client:
        descriptor, endpoint = client.resolve(ref)
        assert endpoint.mirror and endpoint.url == registry.url
        assert client.get_manifest(ref, descriptor["digest"], endpoint=endpoint)[0] == image.manifest
        digest, blob = image.layer()
        assert download(client, ref, digest, endpoint=endpoint) == blob
    assert behind.requests == []


def test_unreachable_or_empty_mirror_falls_back_to_the_registry(registry, fault_proxy):
    image = make_image([{"f": b"fallback\n"}])
    repository = push(registry, "fallback", image)
    ref = parse(f"{registry.host}/{repository}:v1")
    empty_mirror = fault_proxy(registry)
    empty_mirror.add("status", r"/v2/.*/manifests/.*", method="HEAD", status=404, times=100)
    mirrors = [closed_port_url(), empty_mirror.url]
    started = time.monotonic()
    with make_client(mirrors={registry.host: mirrors}, retries=5, backoff=1.0) as client:
        descriptor, endpoint = client.resolve(ref)
        assert endpoint.url == registry.url and not endpoint.mirror
        digest, blob = image.layer()
        assert download(client, ref, digest, endpoint=endpoint) == blob
    assert time.monotonic() - started < 1.0, "a failing mirror is skipped at once, not retried"
    assert [r.method for r in empty_mirror.requests] == ["HEAD"]


def test_mirrors_only_never_reaches_the_registry(registry, fault_proxy):
    behind = fault_proxy(registry)
    dead_mirror = closed_port_url()
    with make_client(mirrors={behind.host: [dead_mirror]}, mirrors_only=True, retries=1) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(parse(f"{behind.host}/jc/anything:v1"))
    message = one_line(caught)
    assert dead_mirror.split("//")[1] in message and "gave up after 1 retry" in message
    assert behind.requests == []


def test_mirror_from_jupyter_config_file_resolves_docker_hub_names(registry, jupyter_config_dir):
    """`busybox`-style names go to docker.io; a mirror in the user's
    jupyter_containers_config.json sends them to the loopback registry."""
    image = make_image([{"bin/busybox": b"not really\n"}])
    registry.push_image("library/jc-config-test", "1.0", image)
    (jupyter_config_dir / "jupyter_containers_config.json").write_text(json.dumps(
        {"Registry": {"mirrors": {"docker.io": [registry.url]}, "mirrors_only": True, "retries": 1}}))
    config.reset()
    with RegistryClient(credentials={}) as client:
        descriptor, endpoint = client.resolve(parse("jc-config-test:1.0"))
        assert descriptor["digest"] == image.digest and endpoint.url == registry.url
        with pytest.raises(ManifestUnknown) as caught:
            client.resolve(parse("jc-config-test:2.0"))
        assert one_line(caught) == (f"image 'jc-config-test:2.0' not found in docker.io (mirror {registry.url}): "
                                    "check the name and tag")


def _loopback_alias() -> str:
    """A name of this machine that resolves to loopback without being
    spelled as a loopback address (so only configuration makes it HTTP)."""
    name = socket.gethostname().lower()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if name == "localhost" or not address.startswith("127."):
        pytest.skip(f"this machine's host name {name!r} does not resolve to loopback")
    return name


def test_insecure_registry_from_jupyter_config_file(registry, jupyter_config_dir):
    alias = f"{_loopback_alias()}:{registry.port}"
    image = make_image([{"i": b"plain http\n"}])
    repository = push(registry, "insecure", image)
    ref = parse(f"{alias}/{repository}:v1")
    config.reset()
    with RegistryClient(credentials={}) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(ref)  # HTTPS against a plain-HTTP registry
    assert f"TLS with {alias} failed" in one_line(caught) and "Registry.insecure" in one_line(caught)

    (jupyter_config_dir / "jupyter_containers_config.json").write_text(
        json.dumps({"Registry": {"insecure": [alias]}}))
    config.reset()
    with RegistryClient(credentials={}) as client:
        descriptor, endpoint = client.resolve(ref)
    assert endpoint.url == f"http://{alias}" and descriptor["digest"] == image.digest


# -- basic auth -------------------------------------------------------------


def test_basic_auth(auth_registry):
    image = make_image([{"b": b"basic\n"}])
    repository = push(auth_registry, "basic", image)
    ref = parse(f"{auth_registry.host}/{repository}:v1")
    with make_client({auth_registry.host: Credentials(USERNAME, PASSWORD)}) as client:
        descriptor, endpoint = client.resolve(ref)
        assert descriptor["digest"] == image.digest
        digest, blob = image.layer()
        assert download(client, ref, digest, endpoint=endpoint) == blob

    with make_client({auth_registry.host: Credentials(USERNAME, "wrong")}) as client:
        with pytest.raises(AuthenticationRequired) as caught:
            client.resolve(ref)
    assert f"pull access denied for {repository} on {auth_registry.host} with the stored credentials" \
        in one_line(caught)

    with make_client() as client:
        with pytest.raises(AuthenticationRequired) as caught:
            client.get_manifest(ref)
    assert one_line(caught).endswith(f"log in with `jupyter-containers login {auth_registry.host}`")


# -- token auth -------------------------------------------------------------


def test_token_auth_anonymous_pull_of_a_public_repository(token_registry, token_requests):
    repository = "public/" + unique("anon")
    image = make_image([{"t": b"token\n"}])
    token_registry.push_image(repository, "v1", image)
    ref = parse(f"{token_registry.host}/{repository}:v1")
    with make_client() as client:
        descriptor, endpoint = client.resolve(ref)
        client.get_manifest(ref, descriptor["digest"], endpoint=endpoint)
        for layer in image.document["layers"] + [image.document["config"]]:
            assert download(client, ref, layer["digest"], endpoint=endpoint) == image.blobs[layer["digest"]]
    # one anonymous token for the scope served every request
    assert [(r.account, r.scopes) for r in token_requests] == [(None, [f"repository:{repository}:pull"])]


def test_token_auth_private_repository_needs_credentials(token_registry, token_requests):
    image = make_image([{"p": b"private\n"}])
    repository = push(token_registry, "private", image)
    ref = parse(f"{token_registry.host}/{repository}:v1")
    with make_client() as client:
        with pytest.raises(AuthenticationRequired) as caught:
            client.resolve(ref)
    assert one_line(caught) == (
        f"pull access denied for {repository} on {token_registry.host} (the repository does not exist or "
        f"needs a login): log in with `jupyter-containers login {token_registry.host}`")
    # the registry itself refused the anonymous token: the service granted nothing
    assert token_requests[-1].account is None and token_requests[-1].granted == []

    token_requests.clear()
    with make_client({token_registry.host: Credentials(USERNAME, PASSWORD)}) as client:
        descriptor, endpoint = client.resolve(ref)
        assert descriptor["digest"] == image.digest
        digest, blob = image.layer()
        assert download(client, ref, digest, endpoint=endpoint) == blob
        other = unique("other")
        token_registry.push_image(other, "v1", image)
        client.resolve(parse(f"{token_registry.host}/{other}:v1"))
    assert [(r.account, r.scopes) for r in token_requests] == [
        (USERNAME, [f"repository:{repository}:pull"]), (USERNAME, [f"repository:{other}:pull"])]

    with make_client({token_registry.host: Credentials(USERNAME, "wrong")}) as client:
        with pytest.raises(AuthenticationRequired) as caught:
            client.resolve(ref)
    assert one_line(caught) == (f"{token_registry.host} refused the stored credentials of {USERNAME}: "
                                f"log in again with `jupyter-containers login {token_registry.host}`")


def test_expired_tokens_are_fetched_again(token_registry, token_service, token_requests):
    repository = "public/" + unique("expiry")
    token_registry.push_image(repository, "v1", make_image([{"e": b"e"}]))
    ref = parse(f"{token_registry.host}/{repository}:v1")
    token_service.expires_in = 1
    with make_client() as client:
        client.resolve(ref)
        client.resolve(ref)
        assert len(token_requests) == 1
        time.sleep(1.0)
        client.resolve(ref)
    assert len(token_requests) == 2


def test_identity_token_from_docker_config(token_registry, token_service, token_requests, tmp_path):
    image = make_image([{"i": b"identity\n"}])
    repository = push(token_registry, "identity", image)
    refresh_token = token_service.issue_refresh_token(USERNAME)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {token_registry.host: {"identitytoken": refresh_token}}}))
    with make_client(DockerConfig(str(path))) as client:
        assert client.resolve(parse(f"{token_registry.host}/{repository}:v1"))[0]["digest"] == image.digest
    assert [(r.method, r.grant_type, r.account) for r in token_requests] == [("POST", "refresh_token", USERNAME)]


# -- credentials from docker's config, helpers, login ------------------------


def test_credentials_from_docker_config_auths(auth_registry, tmp_path):
    image = make_image([{"c": b"c"}])
    repository = push(auth_registry, "config-auths", image)
    path = tmp_path / "config.json"
    encoded = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"http://{auth_registry.host}/v2/": {"auth": encoded}}}))
    with RegistryClient(config.Registry(docker_config=str(path))) as client:
        assert client.resolve(parse(f"{auth_registry.host}/{repository}:v1"))[0]["digest"] == image.digest


def test_credentials_from_a_credential_helper(auth_registry, credential_helpers, tmp_path):
    image = make_image([{"h": b"h"}])
    repository = push(auth_registry, "helper", image)
    credential_helpers.install("jcstore", {auth_registry.host: {"Username": USERNAME, "Secret": PASSWORD}})
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {auth_registry.host: "jcstore"}}))
    with make_client(DockerConfig(str(path))) as client:
        ref = parse(f"{auth_registry.host}/{repository}:v1")
        descriptor, endpoint = client.resolve(ref)
        digest, blob = image.layer()
        assert download(client, ref, digest, endpoint=endpoint) == blob
    assert credential_helpers.calls("jcstore") == [["get", auth_registry.host]]  # asked once per client


@pytest.mark.parametrize("server", ["auth_registry", "token_registry"])
def test_login_logout_round_trip(server, request, tmp_path):
    registry = request.getfixturevalue(server)
    image = make_image([{"l": b"login\n"}])
    repository = push(registry, "login", image)
    ref = parse(f"{registry.host}/{repository}:v1")
    path = tmp_path / "docker" / "config.json"
    store = DockerConfig(str(path))

    with make_client(store) as client:
        with pytest.raises(AuthenticationRequired) as caught:
            client.login(registry.host, USERNAME, "wrong")
        assert "incorrect username or password" in one_line(caught) or "refused" in one_line(caught)
        assert not path.exists()

        client.login(f"http://{registry.host}/", USERNAME, PASSWORD)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert store.get(registry.host) == Credentials(USERNAME, PASSWORD)
        assert client.resolve(ref)[0]["digest"] == image.digest

        assert client.logout(registry.host) is True
        assert json.loads(path.read_text())["auths"] == {}
        with pytest.raises(AuthenticationRequired):
            client.resolve(ref)
        assert client.logout(registry.host) is False


def test_login_stores_in_the_configured_helper(auth_registry, credential_helpers, tmp_path):
    credential_helpers.install("jcstore")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credsStore": "jcstore"}))
    with make_client(DockerConfig(str(path))) as client:
        client.login(auth_registry.host, USERNAME, PASSWORD)
    assert credential_helpers.store("jcstore") == {auth_registry.host: {"Username": USERNAME, "Secret": PASSWORD}}
    assert json.loads(path.read_text())["auths"] == {auth_registry.host: {}}


# -- retries, resume, redirects, integrity ------------------------------------


def random_image(size: int = 300_000):
    return make_image([{"random.bin": os.urandom(size)}])


def test_429_is_retried_after_retry_after(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = make_image([{"t": b"t"}])
    repository = push(registry, "throttled", image)
    proxy.add("status", r"/v2/.*/manifests/v1", method="HEAD", status=429, headers={"Retry-After": "1"})
    started = time.monotonic()
    with make_client(backoff=0.01) as client:
        assert client.resolve(parse(f"{proxy.host}/{repository}:v1"))[0]["digest"] == image.digest
    assert time.monotonic() - started >= 1.0
    assert [r.fault for r in proxy.seen("/manifests/")] == ["status", None]


def test_503_gives_up_after_the_configured_retries(registry, fault_proxy):
    proxy = fault_proxy(registry)
    proxy.add("status", r"/v2/.*/manifests/.*", method="HEAD", status=503, times=100)
    with make_client(retries=2) as client:
        with pytest.raises(RegistryError) as caught:
            client.resolve(parse(f"{proxy.host}/jc/unavailable:v1"))
    assert one_line(caught) == (f"registry {proxy.host} answered 503 Service Unavailable (gave up after 2 "
                                f"retries): check that the registry is up and reachable, or try again later")
    assert len(proxy.seen("/manifests/")) == 3

    proxy.add("status", r"/v2/.*/manifests/.*", method="GET", status=502, times=100)
    with make_client(retries=0) as client:
        with pytest.raises(RegistryError) as caught:
            client.get_manifest(parse(f"{proxy.host}/jc/unavailable:v1"))
    assert "answered 502 Bad Gateway (UNAVAILABLE: injected fault) (gave up after 0 retries)" in one_line(caught)


def test_registry_refusing_head_is_resolved_with_get(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = make_image([{"n": b"n"}])
    repository = push(registry, "nohead", image)
    proxy.add("status", r"/v2/.*/manifests/.*", method="HEAD", status=405)
    with make_client() as client:
        descriptor, _ = client.resolve(parse(f"{proxy.host}/{repository}:v1"))
    assert descriptor == {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    assert [r.method for r in proxy.requests] == ["HEAD", "GET"]


def test_dropped_connection_resumes_with_range(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = random_image()
    repository = push(registry, "dropped", image)
    digest, blob = image.layer()
    proxy.add("drop", r"/v2/.*/blobs/.*", after=100_000)
    reported = []
    with make_client() as client:
        ref = parse(f"{proxy.host}/{repository}:v1")
        assert download(client, ref, digest, size=len(blob), progress=reported.append) == blob
    requests = proxy.seen("/blobs/")
    assert [r.headers.get("Range") for r in requests] == [None, "bytes=100000-"]
    assert reported == sorted(reported) and reported[-1] == len(blob)
    assert 100_000 in reported  # progress counted the bytes before the drop once


def test_server_ignoring_range_has_the_start_skipped(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = random_image()
    repository = push(registry, "norange", image)
    digest, blob = image.layer()
    proxy.add("ignore_range", r"/v2/.*/blobs/.*")
    proxy.add("drop", r"/v2/.*/blobs/.*", after=200_000)
    ref = parse(f"{proxy.host}/{repository}:v1")
    with make_client() as client:
        # a partial download of 12345 bytes is resumed; the server answers 200 with everything
        assert download(client, ref, digest, offset=12345, size=len(blob)) == blob[12345:]
        assert proxy.seen("/blobs/")[0].headers["Range"] == "bytes=12345-"
        # a drop while resuming resumes again, from where the drop left it
        assert download(client, ref, digest, offset=50_000, size=len(blob)) == blob[50_000:]
    assert [r.headers.get("Range") for r in proxy.seen("/blobs/")[1:]] == ["bytes=50000-", "bytes=250000-"]


def test_redirected_blob_does_not_get_the_registry_authorization(auth_registry, fault_proxy):
    proxy = fault_proxy(auth_registry)
    cdn = fault_proxy(auth_registry, inject=True)  # another origin that serves the blob
    image = random_image(50_000)
    repository = push(auth_registry, "redirect", image)
    digest, blob = image.layer()
    proxy.add("redirect", r"/v2/.*/blobs/.*", to=cdn.url)
    with make_client({proxy.host: Credentials(USERNAME, PASSWORD)}) as client:
        ref = parse(f"{proxy.host}/{repository}:v1")
        client.resolve(ref)  # learns that the registry wants basic auth
        assert download(client, ref, digest, size=len(blob)) == blob
    (redirected,) = proxy.seen("/blobs/")
    assert redirected.fault == "redirect" and redirected.headers["Authorization"].startswith("Basic ")
    (fetched,) = cdn.requests
    assert "Authorization" not in fetched.headers


def test_blob_larger_than_its_descriptor_is_refused(registry, client):
    image = random_image(10_000)
    repository = push(registry, "oversized", image)
    digest, blob = image.layer()
    received = bytearray()
    with pytest.raises(IntegrityError) as caught:
        client.download_blob(parse(f"{registry.host}/{repository}:v1"), digest, received.extend, size=len(blob) - 10)
    assert f"is {len(blob)} bytes, not the {len(blob) - 10} the image says" in one_line(caught)
    with pytest.raises(IntegrityError, match=f"is {len(blob)} bytes, not the {len(blob) + 1}"):
        client.download_blob(parse(f"{registry.host}/{repository}:v1"), digest, received.extend, size=len(blob) + 1)
    assert len(received) == 0


def test_altered_manifest_is_refused(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = make_image([{"a": b"a"}])
    repository = push(registry, "altered", image)
    proxy.add("tamper", r"/v2/.*/manifests/.*", times=2)
    with make_client() as client:
        with pytest.raises(IntegrityError) as caught:
            client.get_manifest(parse(f"{proxy.host}/{repository}@{image.digest}"))
        assert "does not match its digest" in one_line(caught)
        with pytest.raises(IntegrityError) as caught:
            client.get_manifest(parse(f"{proxy.host}/{repository}:v1"))
        assert f"not to the {image.digest} the registry announced" in one_line(caught)


def test_parallel_downloads_share_a_few_kept_alive_connections(registry, fault_proxy):
    proxy = fault_proxy(registry)
    image = make_image([{f"layer{i}": os.urandom(20_000)} for i in range(12)])
    repository = push(registry, "parallel", image)
    ref = parse(f"{proxy.host}/{repository}:v1")
    layers = image.document["layers"]
    with make_client() as client:
        descriptor, endpoint = client.resolve(ref)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda layer: download(client, ref, layer["digest"], size=layer["size"],
                                                           endpoint=endpoint), layers))
    assert results == [image.blobs[layer["digest"]] for layer in layers]
    connections = {r.connection for r in proxy.requests}
    assert len(proxy.requests) == 13 and len(connections) <= 4
    assert threading.active_count() < 20
