"""Paths inside a root never lead out of it, with openat2 and with the
component-by-component walk used on kernels without it."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_containers.linux import paths

WORKTREE = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["openat2", "walk"])
def resolver(request, monkeypatch):
    """Run the test once with the kernel's openat2 and once with the fallback."""
    monkeypatch.setattr(paths, "_openat2_works", None if request.param == "openat2" else False)
    yield request.param
    if request.param == "openat2":
        assert paths._openat2_works is True, "openat2 was not used"


@pytest.fixture
def tree(tmp_path):
    """A root with symlinks that lead out of it if followed on the host, and
    an ``outside`` directory next to it that must stay empty."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.symlink("usr/lib", root / "lib")
    os.symlink(str(outside), root / "abs")  # absolute: means ROOT/<outside path> inside
    os.symlink("../../../../../../../..", root / "up")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("/etc/passwd", root / "passwd-link")
    yield root, outside
    assert list(outside.iterdir()) == [], "something was written outside the root"


def test_resolve_in_root(tree):
    root, outside = tree
    assert paths.resolve_in_root(root, "lib/x") == f"{root}/usr/lib/x"
    assert paths.resolve_in_root(root, "/lib/../etc/passwd") == f"{root}/usr/etc/passwd"
    assert paths.resolve_in_root(root, "up/etc/passwd") == f"{root}/etc/passwd"
    assert paths.resolve_in_root(root, "../../etc") == f"{root}/etc"
    assert paths.resolve_in_root(root, "abs/f") == f"{root}{outside}/f"
    assert paths.resolve_in_root(root, "passwd-link") == f"{root}/etc/passwd"
    assert paths.resolve_in_root(root, "missing/a/../b") == f"{root}/missing/b"
    assert paths.resolve_in_root(root, "/") == str(root)
    with pytest.raises(OSError) as error:
        paths.resolve_in_root(root, "loop1/x")
    assert error.value.errno == errno.ELOOP


def test_open_in_root_creates_inside_the_root(tree, resolver):
    root, outside = tree
    with pytest.raises(FileNotFoundError):  # abs -> a directory the root does not have
        paths.open_in_root(root, "abs/created", os.O_WRONLY | os.O_CREAT, 0o644)
    for path in ("up/created", "lib/created"):
        os.close(paths.open_in_root(root, path, os.O_WRONLY | os.O_CREAT, 0o644))
    assert (root / "created").exists()
    assert (root / "usr" / "lib" / "created").exists()
    fd = paths.open_in_root(root, "passwd-link", os.O_RDONLY)
    with os.fdopen(fd) as handle:
        assert handle.read().startswith("root:")
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(root, "abs/nested/file", os.O_WRONLY | os.O_CREAT, 0o644)


def test_open_in_root_without_following_symlinks(tree, resolver):
    root, _ = tree
    for path, flags in (("lib/x", os.O_WRONLY | os.O_CREAT), ("passwd-link", os.O_RDONLY),
                        ("passwd-link", os.O_RDONLY | os.O_NOFOLLOW)):
        with pytest.raises(OSError) as error:
            paths.open_in_root(root, path, flags, 0o644, follow=False)
        assert error.value.errno == errno.ELOOP
    with pytest.raises(OSError) as error:
        paths.open_in_root(root, "passwd-link", os.O_RDONLY | os.O_NOFOLLOW)
    assert error.value.errno == errno.ELOOP
    os.close(paths.open_in_root(root, "etc/passwd", os.O_RDONLY, follow=False))


def test_open_dir_in_root_creates_missing_directories_inside(tree, resolver):
    root, outside = tree
    fd = paths.open_dir_in_root(root, "abs/a/b", create=True, mode=0o700)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == f"{root}{outside}/a/b"
    finally:
        os.close(fd)
    fd = paths.open_dir_in_root(root, "up/lib/new", create=True)
    os.close(fd)
    assert (root / "usr" / "lib" / "new").is_dir()
    with pytest.raises(FileNotFoundError):
        paths.open_dir_in_root(root, "nothing/here")
    with pytest.raises(NotADirectoryError):
        paths.open_dir_in_root(root, "etc/passwd/x", create=True)
    with pytest.raises(OSError) as error:
        paths.open_dir_in_root(root, "lib/deeper", create=True, follow=False)
    assert error.value.errno == errno.ELOOP


def test_open_parent(tree, resolver):
    root, _ = tree
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        dirfd, name = paths.open_parent(root_fd, "/lib/libc.so")
        try:
            assert name == "libc.so"
            assert os.readlink(f"/proc/self/fd/{dirfd}") == f"{root}/usr/lib"
            os.symlink("/etc/shadow", name, dir_fd=dirfd)  # what a `cp` into the root would do
        finally:
            os.close(dirfd)
        assert os.readlink(root / "usr" / "lib" / "libc.so") == "/etc/shadow"
        for bad in ("/", "a/..", ""):
            with pytest.raises(OSError) as error:
                paths.open_parent(root_fd, bad)
            assert error.value.errno == errno.EINVAL
    finally:
        os.close(root_fd)


def test_remove_at_never_follows_symlinks(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("x")
    tree = tmp_path / "tree"
    tree.mkdir()
    os.symlink(victim, tree / "link")
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(1200):  # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        parent, fd = fd, os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(parent)
    os.symlink(victim / "keep", "file-link", dir_fd=fd)
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        paths.remove_at(fd, "tree")
    finally:
        os.close(fd)
    assert not tree.exists()
    assert (victim / "keep").read_text() == "x"


def test_importable_on_the_container_start_path():
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         f"import sys; sys.path.insert(0, {str(WORKTREE)!r}); import jupyter_containers.linux.paths;"
         "print(sorted(m for m in sys.modules if m.startswith('jupyter_containers')))"],
        capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ("['jupyter_containers', 'jupyter_containers.linux', "
                                     "'jupyter_containers.linux.paths', 'jupyter_containers.linux.syscalls']")
