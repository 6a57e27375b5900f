"""Search as you type on the catalogue page, even when its script arrives late."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from ..integration.oidc_stack import Stack
from .helpers import Console, log_in


def test_words_typed_before_the_script_ran_still_filter(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice", "/")
    held: list[Route] = []
    # Hold the catalogue's script until the user has typed (a slow network or server); module
    # scripts hold DOMContentLoaded back, so the page is used as soon as it arrives.
    page.route("**/static/js/catalog.js", lambda route: held.append(route))
    page.goto(f"{platform.url}/catalog", wait_until="commit")
    cards = page.locator("#chart-cards > li")
    expect(cards.filter(visible=True)).to_have_count(7)
    page.get_by_label("Search services").press_sequentially("jupyter")
    expect(cards.filter(visible=True)).to_have_count(7)  # nothing filters yet
    assert len(held) == 1
    held[0].continue_()
    expect(cards.filter(visible=True)).to_have_count(2)
    expect(page.locator("#search-count")).to_have_text("2 of 7 services")
