"""The Containers sidebar in a real JupyterLab, in a real browser, against
real containers and a real registry. Screenshots go to tests/artifacts/."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.fixtures.registry import make_image

TIMEOUT = 30_000  # ms: the panel refreshes every 2 s


def open_panel(page, lab):
    page.goto(lab.url("lab"))
    tab = page.locator('.jp-SideBar [data-id="jupyter-containers-panel"]')
    expect(tab).to_be_visible(timeout=60_000)
    tab.click()
    panel = page.locator("#jupyter-containers-panel")
    expect(panel).to_be_visible()
    return panel


def test_panel_follows_a_container_started_from_python_and_stops_it(lab, page, client, busybox, artifacts):
    script = ("mkdir /www && echo served through jupyter > /www/index.html && httpd -p 8080 -h /www && "
              "trap 'exit 0' TERM; echo hello from the container; echo warning >&2; while true; do sleep 1; done")
    client.containers.run(busybox, ["sh", "-c", script], name="lab-web", expose=[8080], detach=True)
    panel = open_panel(page, lab)

    web = panel.locator('[data-container-name="lab-web"]')
    expect(web).to_have_attribute("data-state", "running", timeout=TIMEOUT)
    expect(web.locator(".jp-Containers-image")).to_have_text(busybox)
    expect(web.locator(".jp-Containers-status")).to_contain_text("Up")
    link = web.locator(".jp-Containers-ports a")
    expect(link).to_have_attribute("href", f"http://127.0.0.1:{lab.port}/containers/proxy/lab-web/8080/")
    with page.context.expect_page() as opened:
        link.click()
    expect(opened.value.locator("body")).to_have_text("served through jupyter")
    opened.value.close()
    expect(web.locator(".jp-Containers-usage .jp-Containers-bar")).to_have_count(2, timeout=TIMEOUT)
    expect(panel.locator("[data-image-id]")).to_contain_text(" ago")  # the busybox image's age

    # A container started while the panel is open appears by itself.
    client.containers.run(busybox, ["sleep", "600"], name="lab-late", detach=True)
    expect(panel.locator('[data-container-name="lab-late"]')).to_have_attribute("data-state", "running",
                                                                                timeout=TIMEOUT)

    web.get_by_role("button", name="Logs of lab-web").click()
    logs = page.locator(".jp-ContainerLogs-lines")
    expect(logs.locator(".jp-ContainerLogs-stdout")).to_have_text("hello from the container\n", timeout=TIMEOUT)
    expect(logs.locator(".jp-ContainerLogs-stderr")).to_have_text("warning\n")
    page.screenshot(path=str(artifacts / "lab-panel-running.png"))

    web.get_by_role("button", name="Stop lab-web").click()
    expect(web).to_have_attribute("data-state", "exited", timeout=TIMEOUT)
    expect(web.locator(".jp-Containers-status")).to_contain_text("Exited (0)")
    expect(web.locator(".jp-Containers-ports a")).to_have_count(0)  # nothing to reach any more
    assert client.containers.get("lab-web").status == "exited"
    expect(page.locator(".jp-ContainerLogs-status")).to_contain_text("not running", timeout=TIMEOUT)
    page.screenshot(path=str(artifacts / "lab-panel-stopped.png"))

    web.get_by_role("button", name="Remove lab-web").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Remove").click()
    expect(web).to_have_count(0, timeout=TIMEOUT)
    assert [c.name for c in client.containers.list(all=True)] == ["lab-late"]


PALETTE_LABELS = ["Show Containers Panel", "Refresh Containers", "Show Container Logs…", "Stop Container…",
                  "Restart Container…", "Remove Container…", "Pull Image…", "Remove Image…"]


def test_pull_from_the_palette_shows_each_layer_then_the_image(lab, page, registry, client, artifacts):
    image = make_image([{"a.txt": b"a" * 300_000}, {"b.txt": b"b" * 200_000}])
    registry.push_image("jc-lab/browser", "1", image)
    reference = f"{registry.host}/jc-lab/browser:1"
    panel = open_panel(page, lab)

    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-input").fill("Containers")
    items = page.locator(".lm-CommandPalette-item:visible .lm-CommandPalette-itemLabel")
    for label in PALETTE_LABELS:
        expect(items.filter(has_text=label)).to_have_count(1)
    page.locator(".lm-CommandPalette-input").fill("Pull Image")
    page.locator(".lm-CommandPalette-item:visible").filter(has_text="Pull Image…").click()
    page.locator(".jp-Dialog input").fill(reference)
    page.locator(".jp-Dialog").get_by_role("button", name="Ok").click()
    progress = panel.locator(f'.jp-Containers-pullProgress[data-reference="{reference}"]')
    expect(progress).to_have_attribute("data-state", "done", timeout=TIMEOUT)
    layers = progress.locator("[data-layer]")
    expect(layers).to_have_count(2)
    for index in range(2):
        expect(layers.nth(index)).to_have_attribute("data-status", "done")
    expect(page.locator(".jp-Notification-Toast-success, .Toastify__toast--success")).to_contain_text(
        f"Pulled {reference}")
    pulled = client.images.get(reference)
    item = panel.locator(f'[data-image-id="{pulled.id}"]')
    expect(item).to_contain_text(reference)
    page.screenshot(path=str(artifacts / "lab-panel-pulled.png"))

    item.get_by_role("button", name=f"Remove image {reference}").click()
    page.locator(".jp-Dialog").get_by_role("button", name="Remove").click()
    expect(item).to_have_count(0, timeout=TIMEOUT)
    assert client.images.list() == []

    # The pull box, and a failing pull: an error notification.
    panel.get_by_label("Image to pull").fill(f"{registry.host}/jc-lab/browser:missing")
    panel.get_by_role("button", name="Pull", exact=True).click()
    expect(page.locator(".jp-Notification-Toast-error, .Toastify__toast--error")).to_contain_text("missing",
                                                                                                   timeout=TIMEOUT)
