import pytest

from jupyter_containers.errors import InvalidReference
from jupyter_containers.images.reference import parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "text, expected",
    [
        ("mysql", "docker.io/library/mysql:latest"),
        ("mysql:8.0", "docker.io/library/mysql:8.0"),
        ("user/app:tag", "docker.io/user/app:tag"),
        ("library/mysql", "docker.io/library/mysql:latest"),
        ("index.docker.io/library/mysql", "docker.io/library/mysql:latest"),
        ("docker.io/mysql", "docker.io/library/mysql:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/ns/app", "localhost:5000/ns/app:latest"),
        ("127.0.0.1:5000/ns/sub/app:v1.2", "127.0.0.1:5000/ns/sub/app:v1.2"),
        ("quay.io/org/app", "quay.io/org/app:latest"),
        (f"mysql@{DIGEST}", f"docker.io/library/mysql@{DIGEST}"),
        (f"mysql:8@{DIGEST}", f"docker.io/library/mysql:8@{DIGEST}"),
        ("a__b-c---d/x.y_z", "docker.io/a__b-c---d/x.y_z:latest"),
    ],
)
def test_normalisation(text, expected):
    assert str(parse(text)) == expected


def test_parts():
    ref = parse(f"host:5000/ns/app:v1@{DIGEST}")
    assert ref.domain == "host:5000"
    assert ref.path == "ns/app"
    assert ref.tag == "v1"
    assert ref.digest == DIGEST
    assert ref.pull_target == DIGEST
    assert ref.familiar == f"host:5000/ns/app:v1@{DIGEST}"


def test_familiar_names():
    assert parse("mysql").familiar == "mysql:latest"
    assert parse("user/app:1").familiar == "user/app:1"
    assert parse("docker.io/library/a/b").familiar == "library/a/b:latest"


@pytest.mark.parametrize(
    "text, part",
    [
        ("", "empty"),
        ("MySQL", "lowercase"),
        ("mysql:", "tag ''"),
        ("mysql:-bad", "tag '-bad'"),
        ("mysql:" + "x" * 129, "bad tag"),
        ("mysql@sha256:1234", "digest"),
        ("mysql@sha256:" + "g" * 64, "digest"),
        ("my_-sql", "my_-sql"),
        ("ns//app", "(empty)"),
        ("http://host/app", "URL scheme"),
        ("host:5000/", "(empty)"),
        ("-host.com/app", "registry host '-host.com'"),
    ],
)
def test_invalid_names_the_bad_part(text, part):
    with pytest.raises(InvalidReference) as info:
        parse(text)
    assert part in str(info.value)
    assert "\n" not in str(info.value)
