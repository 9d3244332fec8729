"""Authentication and authorization of every route, XSRF for browser POSTs,
and the REST document kept in step with the routes."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import yaml
from tornado.httpclient import HTTPClientError

from jupyter_containers.server import handlers

from .conftest import ReadOnlyAuthorizer, server_config

NO_TOKEN = {"Authorization": ""}

REST_ROUTES = [
    ("GET", "containers"),
    ("POST", "containers"),
    ("GET", "containers/web"),
    ("DELETE", "containers/web"),
    ("POST", "containers/web/stop"),
    ("POST", "containers/web/restart"),
    ("GET", "containers/web/stats"),
    ("POST", "containers/web/exec"),
    ("GET", "images"),
    ("GET", "images/busybox"),
    ("DELETE", "images/busybox"),
    ("GET", "networks"),
    ("GET", "volumes"),
]
WEBSOCKET_ROUTES = ["containers/web/logs", "containers/web/stats/stream", "pull?image=busybox"]


async def status_of(jp_fetch, method: str, *parts: str, **kwargs) -> int:
    try:
        response = await jp_fetch(*parts, method=method, follow_redirects=False,
                                  body="{}" if method in ("POST", "PUT") else None, **kwargs)
    except HTTPClientError as error:
        return error.code
    return response.code


@pytest.mark.parametrize(("method", "path"), REST_ROUTES)
async def test_rest_routes_refuse_requests_without_credentials(jp_fetch, method, path):
    assert await status_of(jp_fetch, method, "containers", "api", *path.split("/"), headers=NO_TOKEN) == 403


@pytest.mark.parametrize("path", WEBSOCKET_ROUTES)
async def test_websockets_refuse_connections_without_credentials(jp_ws_fetch, path):
    route, _, query = path.partition("?")
    params = dict([query.split("=")]) if query else None
    with pytest.raises(HTTPClientError) as error:
        await jp_ws_fetch("containers", "api", *route.split("/"), params=params, headers=NO_TOKEN)
    assert error.value.code == 403


async def test_proxy_sends_browsers_to_log_in_and_refuses_other_methods(jp_fetch):
    assert await status_of(jp_fetch, "GET", "containers", "proxy", "web", "8080", "", headers=NO_TOKEN) == 302
    assert await status_of(jp_fetch, "POST", "containers", "proxy", "web", "8080", "x", headers=NO_TOKEN) == 403
    assert await status_of(jp_fetch, "GET", "containers", "absolute", "web", "8080", "", headers=NO_TOKEN) == 302


def cookies_of(response) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def test_browser_posts_need_the_xsrf_token(jp_fetch, api):
    # A token-authenticated request leaves the login cookie, as a browser's
    # first visit does; the login page hands out an _xsrf cookie.
    login_cookie = cookies_of(await jp_fetch("containers", "api", "images"))
    xsrf = cookies_of(await jp_fetch("login", headers=NO_TOKEN))["_xsrf"]
    session = "; ".join(f"{k}={v}" for k, v in login_cookie.items())

    # The cookie alone is enough to read…
    assert (await api("GET", "containers", headers={**NO_TOKEN, "Cookie": session}))[0] == 200
    # …but not to change anything…
    status, body = await api("POST", "containers", body={"image": ""}, headers={**NO_TOKEN, "Cookie": session})
    assert status == 403 and "_xsrf" in body["message"]
    # …unless the request carries the XSRF token, as JupyterLab's requests do.
    status, body = await api("POST", "containers", body={"image": ""},
                             headers={**NO_TOKEN, "Cookie": f"{session}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert status == 400 and "'image' is required" in body["message"]


class TestReadOnlyUser:
    @pytest.fixture
    def jp_server_config(self, project_config):
        return server_config(project_config, authorizer_class=ReadOnlyAuthorizer)

    @pytest.mark.parametrize(("method", "path"), [r for r in REST_ROUTES if r[0] != "GET"])
    async def test_may_not_change_anything(self, api, method, path):
        status, body = await api(method, *path.split("/"), body={} if method == "POST" else None)
        assert status == 403
        assert "not authorized" in body["message"]

    async def test_may_read(self, api):
        for path in ("containers", "images", "networks", "volumes"):
            assert (await api("GET", path))[0] == 200, path

    async def test_may_not_use_the_proxy_to_write(self, jp_fetch):
        assert await status_of(jp_fetch, "POST", "containers", "proxy", "web", "8080", "form") == 403


def test_the_rest_document_lists_every_route():
    document = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "rest-api.yaml").read_text())
    documented = {re.sub(r"\{[^}]+\}", "{}", path) for path in document["paths"]}
    routes = {"/" + re.sub(r"\([^)]*\)", "{}", path) for path, *_ in handlers.API_ROUTES}
    assert routes <= documented, routes - documented
