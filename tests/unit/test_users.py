import pytest

from jupyter_containers.containers.users import UserNotFound, resolve


@pytest.fixture
def etc(tmp_path):
    (tmp_path / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\n"
        "# a comment\n"
        "app:x:1000:1000:app:/home/app:/bin/sh\n"
        "nobody:x:65534:65534::/nonexistent:/bin/false\n")
    (tmp_path / "group").write_text(
        "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nnogroup:x:65534:\n")
    return str(tmp_path / "passwd"), str(tmp_path / "group")


def test_default_is_root(etc):
    user = resolve("", *etc)
    assert (user.uid, user.gid, user.home, user.groups) == (0, 0, "/root", [0])


def test_name_with_supplementary_groups(etc):
    user = resolve("app", *etc)
    assert (user.uid, user.gid, user.home) == (1000, 1000, "/home/app")
    assert user.groups == [1000, 50]


def test_uid_and_group_by_name(etc):
    user = resolve("1000:staff", *etc)
    assert (user.uid, user.gid, user.groups) == (1000, 50, [50])


def test_unknown_numeric_uid_is_allowed(etc):
    user = resolve("4242:4343", *etc)
    assert (user.uid, user.gid, user.home) == (4242, 4343, "/")


@pytest.mark.parametrize("spec, message", [
    ("ghost", "unable to find user ghost"),
    ("app:ghosts", "unable to find group ghosts"),
])
def test_unknown_names(etc, spec, message):
    with pytest.raises(UserNotFound, match=message):
        resolve(spec, *etc)


def test_missing_files_mean_numeric_only(tmp_path):
    user = resolve("1234", str(tmp_path / "none"), str(tmp_path / "none"))
    assert user.uid == 1234
    with pytest.raises(UserNotFound):
        resolve("app", str(tmp_path / "none"), str(tmp_path / "none"))
