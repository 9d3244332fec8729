"""A Jupyter server with the extension, for the tests of this directory.

pytest-jupyter's fixtures come in here rather than through the root
conftest's ``pytest_plugins``: they include autouse fixtures (an event loop
and a ServerApp cleanup per test) that the rest of the suite does not want.
"""

from __future__ import annotations

import json

import pytest
from jupyter_server.auth import Authorizer
from pytest_jupyter.jupyter_server import *  # noqa: F401,F403 - fixtures and hooks
from tornado.httpclient import HTTPClientError

from .fixtures import busybox  # noqa: F401 - fixture


class ReadOnlyAuthorizer(Authorizer):
    """Lets users read, never write or execute."""

    def is_authorized(self, handler, user, action, resource) -> bool:
        return action == "read"


@pytest.fixture
def project_config(client, jupyter_config_dir) -> dict:
    """The test's jupyter_containers configuration (its registry mirror, a
    bridge of its own), which the server must share with the test's client."""
    return json.loads((jupyter_config_dir / "jupyter_containers_config.json").read_text())


def server_config(project_config: dict, **server_app) -> dict:
    """The server's config: the extension enabled, the project's sections
    (the server extension honours them in jupyter_server_config too)."""
    return {**project_config, "ServerApp": {"jpserver_extensions": {"jupyter_containers": True}, **server_app}}


@pytest.fixture
def jp_server_config(project_config):
    return server_config(project_config)


@pytest.fixture
def api(jp_fetch):
    """``await api(METHOD, "containers", name, …, body=…, params=…)`` →
    ``(status, decoded JSON or None)``; errors are answers, not exceptions."""

    async def request(method: str, *parts: str, body=None, params=None, headers=None):
        kwargs = {"method": method, "params": params, "headers": headers}
        if body is not None:
            kwargs["body"] = json.dumps(body)
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = ""
        try:
            response = await jp_fetch("containers", "api", *parts, **kwargs)
        except HTTPClientError as error:
            response = error.response
            if response is None:
                raise
        return response.code, (json.loads(response.body) if response.body else None)

    return request


@pytest.fixture
def ws_messages(jp_ws_fetch):
    """``await ws_messages("containers", name, "logs", params=…)`` → every
    JSON message until the server closes the socket."""

    async def collect(*parts: str, params=None, headers=None, limit: int | None = None):
        connection = await jp_ws_fetch("containers", "api", *parts, params=params, headers=headers)
        messages = []
        try:
            while limit is None or len(messages) < limit:
                text = await connection.read_message()
                if text is None:
                    break
                messages.append(json.loads(text))
        finally:
            connection.close()
        return messages

    return collect
