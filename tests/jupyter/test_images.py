"""Images through the server extension: pull over a websocket with the
CLI's progress events, list, inspect, remove — against a real registry."""

from __future__ import annotations

import pytest
from tornado.httpclient import HTTPClientError

from tests.fixtures.registry import make_image

from .conftest import ReadOnlyAuthorizer, server_config


@pytest.fixture
def tiny_image(registry):
    """A two-layer image in the test registry: its reference and manifest."""
    image = make_image([{"hello.txt": b"hello\n"}, {"data/bytes.bin": bytes(range(256)) * 64}])
    registry.push_image("jc-lab/tiny", "1", image)
    return f"{registry.host}/jc-lab/tiny:1", image


async def test_pull_streams_per_layer_progress_then_the_image(ws_messages, api, tiny_image):
    reference, image = tiny_image
    messages = await ws_messages("pull", params={"image": reference})

    assert messages[-1]["type"] == "done"
    pulled = messages[-1]["image"]
    assert reference in pulled["RepoTags"]
    progress = [m for m in messages if m["type"] == "progress"]
    layer_ids = {digest.split(":")[1][:12] for digest in (layer["digest"] for layer in image.document["layers"])}
    for layer_id in layer_ids:
        statuses = [m["status"] for m in progress if m["kind"] == "layer" and m["id"] == layer_id]
        assert statuses[0] == "waiting" and statuses[-1] == "done", statuses
        done = [m for m in progress if m["id"] == layer_id and m["status"] == "done"][0]
        assert done["current"] == done["total"] > 0
    assert any(m["kind"] == "status" and image.digest in m["message"] for m in progress)

    status, images = await api("GET", "images")
    assert status == 200
    assert [i["Id"] for i in images if reference in i["RepoTags"]] == [pulled["Id"]]

    status, inspected = await api("GET", "images", reference)
    assert (status, inspected["Id"]) == (200, pulled["Id"])

    # Pulling again: every layer is reported as already there, none downloads.
    again = await ws_messages("pull", params={"image": reference})
    layer_events = [m for m in again if m["type"] == "progress" and m["kind"] == "layer"]
    assert {m["id"]: m["status"] for m in layer_events} == {layer_id: "exists" for layer_id in layer_ids}
    assert "downloading" not in {m["status"] for m in layer_events}
    assert again[-1]["type"] == "done"


async def test_remove_image_then_it_is_unknown(ws_messages, api, tiny_image):
    reference, _ = tiny_image
    await ws_messages("pull", params={"image": reference})

    status, removed = await api("DELETE", "images", reference)
    assert status == 200
    assert {"Untagged": reference} in removed
    assert any("Deleted" in entry for entry in removed)

    status, error = await api("GET", "images", reference)
    assert status == 404
    assert reference.split("/", 1)[1].split(":")[0] in error["message"]
    status, error = await api("DELETE", "images", reference)
    assert status == 404 and error["message"]


async def test_pull_of_an_unknown_tag_ends_with_the_registry_error(ws_messages, registry):
    messages = await ws_messages("pull", params={"image": f"{registry.host}/jc-lab/tiny:no-such-tag"})
    assert messages[-1]["type"] == "error"
    assert messages[-1]["status"] == 404
    assert "no-such-tag" in messages[-1]["message"]


async def test_pull_needs_an_image(jp_ws_fetch):
    with pytest.raises(HTTPClientError) as error:
        await jp_ws_fetch("containers", "api", "pull")
    assert error.value.code == 400


async def test_bad_reference_is_a_400(api):
    status, error = await api("GET", "images", "UPPER/Case")
    assert status == 400
    assert error["message"]


class TestReadOnlyUser:
    @pytest.fixture
    def jp_server_config(self, project_config):
        return server_config(project_config, authorizer_class=ReadOnlyAuthorizer)

    async def test_may_list_but_not_pull_or_remove(self, api, jp_ws_fetch, tiny_image):
        reference, _ = tiny_image
        assert (await api("GET", "images"))[0] == 200
        with pytest.raises(HTTPClientError) as error:
            await jp_ws_fetch("containers", "api", "pull", params={"image": reference})
        assert error.value.code == 403
        status, body = await api("DELETE", "images", reference)
        assert status == 403
        assert "write" in body["message"]
