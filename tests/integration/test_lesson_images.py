"""The lessons' images: built from Debian packages, cached, and proven with
real runtimes (runc on a umoci bundle, podman from the OCI layout) before
the project's own runtime runs them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pymysql
import pytest

from jupyter_containers import lessons
from jupyter_containers.errors import ImageBuildError, UserError
from jupyter_containers.images.build import (Descriptor, ImageConfig, LayoutWriter, image_layers,
                                             read_blob_json, read_index)
from jupyter_containers.lessons.cache import cached_layout, key_digest
from tests.fixtures.images import FixtureImage, umoci_unpack
from tests.fixtures.podman import free_loopback_port

pytestmark = pytest.mark.root


def test_recipes_are_listed_and_unknown_names_refused():
    assert lessons.recipe_names() == ["busybox", "debian", "mysql", "python"]
    with pytest.raises(UserError, match="no lesson image named 'mongo'.*busybox, debian, mysql, python"):
        lessons.build_image("mongo")


def test_cached_builds_are_near_instant(busybox_image, debian_image, mysql_image, python_image):
    for image in (busybox_image, debian_image, mysql_image, python_image):
        name = image.repository.split("/")[-1]
        started = time.monotonic()
        assert lessons.build_image(name) == image.layout
        assert time.monotonic() - started < 1.0, name


def test_build_image_into_a_destination_layout(busybox_image, tmp_path):
    destination = tmp_path / "kit"
    assert lessons.build_image("busybox", destination) == destination
    assert read_index(destination)["latest"] == read_index(busybox_image.layout)["latest"]
    [layer] = image_layers(destination, "latest")
    assert (destination / "blobs/sha256" / layer.blob.digest[7:]).stat().st_size == layer.blob.size


def test_cache_never_uses_a_half_built_entry(tmp_path):
    calls = []

    def build(layout_dir: Path, work: Path) -> None:
        calls.append(layout_dir)
        with LayoutWriter(layout_dir) as layout:
            with layout.layer() as layer:
                layer.add_tree(work)
            layout.tag(layout.add_image(ImageConfig(), [layer.layer]), "latest")

    def failing(layout_dir: Path, work: Path) -> None:
        LayoutWriter(layout_dir)  # half a layout: blobs/ and oci-layout, no index.json
        raise RuntimeError("mirror went away")

    key = {"packages": ["a=1"]}
    with pytest.raises(RuntimeError, match="mirror went away"):
        cached_layout(tmp_path, "thing", key, failing)
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.endswith(".lock")) == []
    # A build killed half-way leaves its temporary directory; it is never used.
    killed = tmp_path / ".thing-{}.abc.tmp".format(key_digest(key))
    (killed / "layout").mkdir(parents=True)
    entry = cached_layout(tmp_path, "thing", key, build)
    assert not killed.exists() and len(calls) == 1
    assert (entry / "index.json").exists()
    assert cached_layout(tmp_path, "thing", key, build) == entry and len(calls) == 1
    newer = cached_layout(tmp_path, "thing", {"packages": ["a=2"]}, build)
    assert newer != entry and entry.exists(), "another checkout may still use the older entry"
    week_ago = time.time() - 8 * 86400
    os.utime(entry, (week_ago, week_ago))
    cached_layout(tmp_path, "thing", {"packages": ["a=3"]}, build)
    assert not entry.exists() and not (tmp_path / f".{entry.name}.lock").exists(), "unused for a week"
    assert newer.exists()


def test_busybox_has_applets_users_and_runs_as_app(busybox_image, tmp_path, run_bundle, podman):
    rootfs = umoci_unpack(busybox_image, tmp_path / "bundle")
    assert os.readlink(rootfs / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(rootfs / "usr" / "bin" / "wget") == "/bin/busybox"
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (rootfs / "home" / "app").stat().st_uid == 1000
    size = sum(path.stat().st_size for path in busybox_image.layout.rglob("*") if path.is_file())
    assert size < 2 * 1024 * 1024

    result = run_bundle(tmp_path / "bundle", ["id"], uid=1000, gid=1000, groups=[100])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "uid=1000(app) gid=1000(app) groups=100(users)"

    result = podman("run", "--rm", "--network", "none", "-u", "app", busybox_image.transport, "id")
    assert result.stdout.strip() == "uid=1000(app) gid=1000(app) groups=100(users),1000(app)"


def test_python_image_has_two_interpreters(python_image, tmp_path, run_bundle):
    tags = lessons.image_tags(python_image.layout)
    versions = sorted(tag for tag in tags if tag[0].isdigit())
    assert "3.11" in versions and "latest" in tags
    assert len(versions) == 2, f"expected bookworm's and trixie's interpreters, got {versions}"
    for version in versions:
        image = FixtureImage(python_image.layout, version, python_image.repository)
        layers = image_layers(image.layout, version)
        assert len(layers) == 2, "Debian, then the interpreter"
        bundle = tmp_path / version
        umoci_unpack(image, bundle)
        result = run_bundle(bundle, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == version


def test_mysql_image_is_debian_plus_mariadb(mysql_image, debian_image):
    mysql_layers = image_layers(mysql_image.layout, mysql_image.ref)
    [debian_layer] = image_layers(debian_image.layout, debian_image.ref)
    assert len(mysql_layers) == 2 and mysql_layers[0] == debian_layer
    manifest = read_blob_json(mysql_image.layout, read_index(mysql_image.layout)["latest"])
    config = read_blob_json(mysql_image.layout, Descriptor.from_json(manifest["config"]))["config"]
    assert config["Entrypoint"] == ["docker-entrypoint.sh"] and config["Cmd"] == ["mariadbd"]
    assert config["ExposedPorts"] == {"3306/tcp": {}} and config["Volumes"] == {"/var/lib/mysql": {}}
    assert config["Healthcheck"]["Test"] == ["CMD", "healthcheck.sh"]


def test_mysql_image_unpacks_with_umoci(mysql_image, tmp_path):
    rootfs = umoci_unpack(mysql_image, tmp_path / "bundle")
    assert os.access(rootfs / "usr/local/bin/docker-entrypoint.sh", os.X_OK)
    assert (rootfs / "usr/sbin/mariadbd").is_file()
    assert os.listdir(rootfs / "var/lib/mysql") == [], "the first start initialises the data"
    assert os.listdir(rootfs / "dev") == []


def wait_for_mysql(podman, container: str, port: int, user: str, password: str,
                   database: str | None = None, timeout: float = 90) -> pymysql.connections.Connection:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                                   database=database, connect_timeout=2)
        except pymysql.err.OperationalError:
            running = podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
            if running != "true":
                logs = podman("logs", container)
                pytest.fail(f"the mysql container stopped: {logs.stdout}{logs.stderr}")
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_mysql_serves_the_user_it_was_given(mysql_image, podman):
    port = free_loopback_port()
    container = podman.run_detached(
        "-p", f"127.0.0.1:{port}:3306", "-e", "MYSQL_ROOT_PASSWORD=my-secret-pw",
        "-e", "MYSQL_DATABASE=shop", "-e", "MYSQL_USER=alice", "-e", "MYSQL_PASSWORD=it's \"odd\"",
        mysql_image.transport)
    connection = wait_for_mysql(podman, container, port, "alice", "it's \"odd\"", "shop")
    with connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE fruit (name VARCHAR(20))")
        cursor.execute("INSERT INTO fruit VALUES ('apple'), ('pear')")
        cursor.execute("SELECT name FROM fruit ORDER BY name")
        assert cursor.fetchall() == (("apple",), ("pear",))
        cursor.execute("SELECT CURRENT_USER()")
        assert cursor.fetchone() == ("alice@%",)
    with wait_for_mysql(podman, container, port, "root", "my-secret-pw") as root:
        with root.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            assert "MariaDB" in cursor.fetchone()[0]
    assert podman("exec", container, "healthcheck.sh", check=False).returncode == 0
    assert podman("exec", container, "ps", "-o", "user=", "-C", "mariadbd", check=False).stdout.strip() == "mysql"
    podman("stop", "--time", "10", container)
    logs = podman("logs", container).stderr + podman("logs", container).stdout
    assert "ready for connections" in logs
    assert "Access denied" not in logs            # the health check logs in as a user of its own


def test_mysql_mariadb_twins_random_password_and_initdb(mysql_image, podman, tmp_path):
    initdb = tmp_path / "initdb"
    initdb.mkdir()
    (initdb / "01-schema.sql").write_text("CREATE TABLE seeded (id INT); INSERT INTO seeded VALUES (42);\n")
    (initdb / "02-note.sh").write_text('echo "initdb script ran for $MARIADB_USER"\n')
    port = free_loopback_port()
    container = podman.run_detached(
        "-p", f"127.0.0.1:{port}:3306", "-v", f"{initdb}:/docker-entrypoint-initdb.d:ro",
        "-e", "MARIADB_RANDOM_ROOT_PASSWORD=yes", "-e", "MARIADB_DATABASE=lesson",
        "-e", "MARIADB_USER=bob", "-e", "MARIADB_PASSWORD=secret", mysql_image.transport)
    connection = wait_for_mysql(podman, container, port, "bob", "secret", "lesson")
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT id FROM seeded")
        assert cursor.fetchall() == ((42,),)
    logs = podman("logs", container)
    output = logs.stdout + logs.stderr
    assert "initdb script ran for bob" in output
    [password] = [line.split("GENERATED ROOT PASSWORD: ", 1)[1].strip()
                  for line in output.splitlines() if "GENERATED ROOT PASSWORD: " in line]
    wait_for_mysql(podman, container, port, "root", password).close()


def test_mysql_without_a_password_setting_says_what_to_set(mysql_image, podman):
    result = podman("run", "--rm", "--network", "none", mysql_image.transport, check=False)
    assert result.returncode == 1
    assert "database is uninitialized and password option is not specified" in result.stderr
    assert "MYSQL_ROOT_PASSWORD" in result.stderr and "MYSQL_RANDOM_ROOT_PASSWORD" in result.stderr


def test_an_unreachable_mirror_is_a_clear_error_and_caches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_CONTAINERS_DEBIAN_MIRROR", f"http://127.0.0.1:{free_loopback_port()}/debian")
    with pytest.raises(ImageBuildError) as raised:
        lessons.build_image("busybox", cache_dir=tmp_path)
    message = str(raised.value)
    assert "package lists failed (apt-get exited 100): E: Failed to fetch" in message
    assert "\n" not in message
    assert "JUPYTER_CONTAINERS_DEBIAN_MIRROR" in message
    assert not list(tmp_path.glob("busybox-*"))


def test_mysql_allow_empty_password(mysql_image, podman):
    port = free_loopback_port()
    container = podman.run_detached("-p", f"127.0.0.1:{port}:3306", "-e", "MYSQL_ALLOW_EMPTY_PASSWORD=yes",
                                    mysql_image.transport)
    with wait_for_mysql(podman, container, port, "root", "") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
