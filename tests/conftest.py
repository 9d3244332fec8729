"""Shared pytest configuration.

Fixtures live in tests/fixtures/ and are loaded as plugins here so every test
directory can use them.
"""

import os

import pytest

pytest_plugins = [
    "tests.fixtures.storage",
    "tests.fixtures.security_probe",
    "tests.fixtures.registry",
    "tests.fixtures.layers",
    "tests.fixtures.compare",
    "tests.fixtures.cgroups",
    "tests.fixtures.images",
    "tests.fixtures.network",
    "tests.fixtures.containers",
    "tests.fixtures.podman",
]


def pytest_collection_modifyitems(config, items):
    # Tests marked `root` need namespaces, mounts and cgroups; CI runs as root.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
