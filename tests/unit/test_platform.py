import json
import os

import pytest

from jupyter_containers.errors import ImageNotFound, UserError
from jupyter_containers.images.platform import Platform, host_platform, normalize, parse_platform, select_platform


@pytest.mark.parametrize("text, expected", [
    ("linux/amd64", "linux/amd64"),
    ("linux/x86_64", "linux/amd64"),
    ("linux/amd64/v1", "linux/amd64"),
    ("linux/amd64/v3", "linux/amd64/v3"),
    ("linux/arm64", "linux/arm64/v8"),
    ("linux/aarch64", "linux/arm64/v8"),
    ("linux/arm64/8", "linux/arm64/v8"),
    ("linux/arm", "linux/arm/v7"),
    ("linux/armhf", "linux/arm/v7"),
    ("linux/armel", "linux/arm/v6"),
    ("linux/i686", "linux/386"),
    ("arm64", "linux/arm64/v8"),
    ("Linux/PPC64LE", "linux/ppc64le"),
])
def test_parse_and_normalise(text, expected):
    assert str(parse_platform(text)) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "linux/amd 64"])
def test_bad_platform_is_a_user_error(text):
    with pytest.raises(UserError, match="invalid platform"):
        parse_platform(text)


def test_host_platform_follows_uname():
    machine = os.uname().machine
    expected = {"x86_64": Platform("linux", "amd64"), "aarch64": Platform("linux", "arm64", "v8")}
    if machine in expected:
        assert host_platform() == expected[machine]
    assert host_platform().os == os.uname().sysname.lower()


def entry(digest_char, os_name, arch, variant=None):
    platform = {"os": os_name, "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + digest_char * 64, "size": 1, "platform": platform}


INDEX = {"schemaVersion": 2, "manifests": [
    entry("a", "linux", "amd64"),
    entry("b", "linux", "arm64", "v8"),
    entry("c", "linux", "arm", "v6"),
    entry("d", "unknown", "unknown"),  # a buildx attestation
    entry("e", "linux", "ppc64le"),
]}


@pytest.mark.parametrize("wanted, chosen", [
    ("linux/amd64", "a"),
    ("linux/amd64/v3", "a"),      # v3 runs v1 images
    ("linux/arm64", "b"),         # arm64 means arm64/v8
    ("linux/arm64/v8", "b"),
    ("linux/arm/v7", "c"),        # v7 runs v6 images when there is no v7 one
    ("linux/ppc64le", "e"),
])
def test_select_platform(wanted, chosen):
    assert select_platform(INDEX, wanted)["digest"] == "sha256:" + chosen * 64


def test_select_prefers_the_exact_variant():
    index = {"manifests": [entry("1", "linux", "arm", "v6"), entry("2", "linux", "arm", "v7")]}
    assert select_platform(index, "linux/arm/v7")["digest"] == "sha256:" + "2" * 64
    assert select_platform(index, "linux/arm/v6")["digest"] == "sha256:" + "1" * 64


def test_select_defaults_to_the_host_and_accepts_raw_json():
    host = host_platform()
    index = {"manifests": [entry("f", "linux", "s390x"),
                           entry("9", host.os, host.architecture, host.variant or None)]}
    assert select_platform(json.dumps(index).encode())["digest"] == "sha256:" + "9" * 64
    assert select_platform(index, Platform("linux", "s390x"))["digest"] == "sha256:" + "f" * 64


def test_no_match_lists_what_the_index_offers():
    with pytest.raises(ImageNotFound) as caught:
        select_platform(INDEX, "linux/riscv64")
    message = str(caught.value)
    assert message == ("no image for linux/riscv64 in this multi-platform image (it offers linux/amd64, "
                       "linux/arm/v6, linux/arm64/v8, linux/ppc64le): choose one with --platform")


def test_normalize_keeps_unknown_names():
    assert normalize("linux", "loong64") == Platform("linux", "loong64")
