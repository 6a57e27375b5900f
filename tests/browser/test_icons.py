"""Chart icons in a real browser: a card shows its chart's icon (served by the platform, the
Content-Security-Policy allowing no other site's images) when it loads, and its monogram when
it does not; the launcher's header shows the icon too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from devtools.helmrepo import HelmRepoServer

from ..integration.icon_charts import SVG, publish, tiny_png, write_chart
from ..integration.oidc_stack import Stack
from .helpers import Console, Screenshots, api, json_of, log_in


@pytest.fixture
def icon_repo(tmp_path: Path) -> Iterator[HelmRepoServer]:
    """A repository of three charts: a PNG icon, an SVG icon, and an icon that is missing."""
    (tmp_path / "repo" / "icons").mkdir(parents=True)
    with HelmRepoServer(tmp_path / "repo") as server:
        (tmp_path / "repo" / "icons" / "logo.png").write_bytes(tiny_png(32, 32))
        (tmp_path / "repo" / "icons" / "logo.svg").write_bytes(SVG)
        icons = {
            "pictured": f"{server.url}/icons/logo.png",
            "vector": f"{server.url}/icons/logo.svg",
            "broken": f"{server.url}/icons/missing.png",
        }
        sources = tmp_path / "sources"
        publish(server, [write_chart(sources, name, icon) for name, icon in icons.items()])
        yield server


def loaded(image: Locator) -> bool:
    """Whether the browser decoded `image` (a failed one has no natural size)."""
    return bool(image.evaluate("img => img.complete && img.naturalWidth > 0"))


def test_cards_show_the_icon_or_the_monogram(
    platform: Stack,
    page: Page,
    console: Console,
    shots: Screenshots,
    icon_repo: HelmRepoServer,
) -> None:
    log_in(page, platform, "alice", "/catalog")
    client = api(platform, page)
    csrf = {"X-CSRF-Token": json_of(client.get("/auth/session"))["csrf_token"]}
    definition = {"id": "pictures", "name": "Pictures", "location": icon_repo.url}
    json_of(client.post("/api/admin/catalogs", json=definition, headers=csrf))
    project = json_of(client.get("/api/me"))["projects"][0]["id"]
    try:
        page.goto(f"{platform.url}/catalog/pictures")
        for chart in ("pictured", "vector"):
            icon = page.locator(f'[data-chart="{chart}"] img.chart-icon-img')
            expect(icon).to_be_visible()
            expect(icon).to_have_attribute(
                "src", f"/api/catalogs/pictures/charts/{chart}/icon?project={project}"
            )
            page.wait_for_function("img => img.complete", arg=icon.element_handle())
            assert loaded(icon), chart
            # The icon covers its monogram entirely.
            box, behind = icon.bounding_box(), icon.locator("..").bounding_box()
            assert box is not None
            assert box == behind
        broken = page.locator('[data-chart="broken"]')
        expect(broken.locator("img")).to_have_count(0)  # removed once it failed
        expect(broken.locator(".monogram")).to_be_visible()
        expect(broken.locator(".monogram")).to_have_text("B")
        shots.take(page, "catalogue-icons")

        # The launcher's header shows the chart's icon as well.
        page.get_by_role("link", name="Launch pictured").click()
        expect(page.get_by_role("heading", name="Launch pictured")).to_be_visible()
        header = page.locator(".launcher-head img.chart-icon-img")
        page.wait_for_function("img => img.complete", arg=header.element_handle())
        assert loaded(header)
        # Its page has no script for icons: CSS paints the monogram over the broken image.
        page.goto(f"{platform.url}/launcher/pictures/broken")
        expect(page.get_by_role("heading", name="Launch broken")).to_be_visible()
        header = page.locator(".launcher-head img.chart-icon-img")
        page.wait_for_function("img => img.complete", arg=header.element_handle())
        assert not loaded(header)
        after = header.evaluate("img => getComputedStyle(img, '::after').content")
        assert after == '"B"'
        shots.take(page, "launcher-broken-icon")
    finally:
        client.delete("/api/admin/catalogs/pictures", headers=csrf)
    assert console.problems == []


def test_our_catalogue_shows_our_own_icons(platform: Stack, page: Page, console: Console) -> None:
    log_in(page, platform, "alice", "/catalog")
    cards = page.locator("[data-chart]")
    expect(cards.first).to_be_visible()
    for index in range(cards.count()):
        card = cards.nth(index)
        icon = card.locator("img.chart-icon-img")
        expect(icon).to_be_visible()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=icon.element_handle()
        )
        assert loaded(icon), card.get_attribute("data-chart")
    assert console.problems == []
