"""Who sees what, and how the pages behave for keyboards, laptops and the Content-Security-Policy:
logins that come back where they started, a friendly refusal of the admin pages, the project
switcher, a skip link and visible focus, no horizontal scrolling at 1280x800, no CSP refusal."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from ..integration.oidc_stack import Stack
from .helpers import Console, Screenshots, log_in

PAGES = ["/", "/catalog", "/launcher/ide/jupyter-python", "/services", "/account", "/files"]
ADMIN_PAGES = ["/admin/catalogs", "/admin/services", "/admin/quotas", "/admin/gpus", "/admin/audit"]


def test_a_page_needing_a_login_sends_to_the_provider_and_back(
    platform: Stack, page: Page, console: Console
) -> None:
    page.goto(f"{platform.url}/services")
    page.wait_for_url(re.compile(re.escape(platform.provider.issuer)))
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("bob-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{platform.url}/services")
    expect(page.get_by_role("heading", name="My services")).to_be_visible()
    assert console.problems == []


def test_admin_pages_refuse_other_users_in_words(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, platform, "bob")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Catalogue")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(f"{platform.url}/admin/audit")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name="Forbidden")).to_be_visible()
    expect(page.get_by_text("this needs the administrator role")).to_be_visible()
    expect(page.get_by_text(re.compile(r"request id [0-9a-f]+"))).to_be_visible()
    shots.take(page, "14-forbidden")
    missing = page.goto(f"{platform.url}/services/no-such-service")
    assert missing is not None
    assert missing.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    wrong = page.goto(f"{platform.url}/launcher/ide/jupyter-python?saved=first")
    assert wrong is not None
    assert wrong.status == 400
    expect(page.get_by_role("heading", name="Bad address")).to_be_visible()
    expect(page.locator("main")).to_contain_text("saved")
    assert console.problems == []


def test_the_project_switcher_changes_and_remembers_the_project(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice", "/services")
    switcher = page.get_by_label("Project", exact=True)
    options = switcher.locator("option").all_inner_texts()
    assert [o.strip() for o in options][:2] == ["Personal (alice)", "Group: stats"]
    switcher.select_option(label="Group: stats")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("main")).to_contain_text("(group stats)")
    group_project = page.locator("#service-cards").get_attribute("data-project")
    assert group_project is not None
    assert group_project.endswith("stats")
    # Remembered on the next page, without the query.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogue").click()
    expect(page.locator("main")).to_contain_text(f"Services you can launch in {group_project}")
    expect(page.get_by_label("Project", exact=True)).to_have_value(group_project)
    assert console.problems == []


def test_keyboard_users_skip_to_the_content_and_see_the_focus(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice", "/catalog")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.bounding_box() is not None
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # Tabbing on reaches the search box and the first card's Launch link, with a visible ring.
    search = page.get_by_label("Search services")
    search.focus()
    outline = search.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Launch jupyter-python")).to_be_focused()
    assert console.problems == []


def test_every_page_fits_a_laptop_screen_without_csp_refusals(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice")
    # In the project with the longest name: the widest header there is.
    switcher = page.get_by_label("Project", exact=True)
    longest = max(switcher.locator("option").all_inner_texts(), key=len).strip()
    switcher.select_option(label=longest)
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Project", exact=True)).not_to_have_value("")
    for path in PAGES + ADMIN_PAGES:
        response = page.goto(f"{platform.url}{path}")
        assert response is not None
        assert response.status == 200, path
        csp = response.headers["content-security-policy"]
        assert "'unsafe-inline'" not in csp
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"{path} scrolls sideways ({width}px)"
        # The header keeps to one row: brand, menu, project switcher and session side by side.
        rows = page.evaluate(
            """() => new Set([...document.querySelector('.topbar').children]
                .map((e) => e.getBoundingClientRect())
                .map((r) => Math.round((r.top + r.bottom) / 80))).size"""
        )
        assert rows == 1, f"{path}: the header wraps onto {rows} rows at 1280 px"
        # Every form control has a label people and screen readers can read.
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                .filter((e) => !e.labels?.length && !e.getAttribute('aria-label'))
                .map((e) => e.id || e.name)"""
        )
        assert unlabelled == [], f"{path}: {unlabelled}"
    assert console.problems == []
