"""The issue's scenario in a real browser: a user logs in through the OpenID Provider's form,
launches Jupyter from the catalogue with a changed CPU slider, watches it reach Running, opens
its page and logs, creates an API token (a script then launches with it, and My services shows
that launch live), suspends and deletes the service; then an administrator refreshes a
catalogue, suspends another user's service and finds all of it in the audit trail."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from devtools.localoidc import BOB_PASSWORD

from ..integration.oidc_stack import Stack, bearer
from ..integration.services.helpers import launch_running, project_of
from .helpers import Console, Screenshots, api, json_of, log_in

LAUNCH_SECONDS = 90


def test_launch_follow_manage_and_audit_a_service(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    # Home, before logging in.
    page.goto(f"{platform.url}/")
    expect(page.get_by_role("heading", name="Your data-science platform")).to_be_visible()
    shots.take(page, "01-home")

    log_in(page, platform, "alice")
    expect(page.get_by_text("Hello alice")).to_be_visible()
    me = json_of(api(platform, page).get("/api/me"))
    project = me["projects"][0]["id"]

    # Catalogue: search as you type.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalogue").click()
    expect(page.get_by_role("link", name="Launch jupyter-python")).to_be_visible()
    search = page.get_by_label("Search services")
    search.press_sequentially("jupyter")
    cards = page.locator("#chart-cards > li")
    expect(cards.filter(visible=True)).to_have_count(2)
    expect(page.locator("#search-count")).to_have_text("2 of 7 services")
    shots.take(page, "02-catalogue")
    search.fill("")
    expect(cards.filter(visible=True)).to_have_count(7)

    # Launcher: move the guaranteed CPU with the keyboard, 100m -> 300m.
    page.get_by_role("link", name="Launch jupyter-python").click()
    expect(page.get_by_role("heading", name="Launch jupyter-python")).to_be_visible()
    expect(page.locator("#validity")).to_have_text("Your settings are valid.")
    cpu = page.get_by_label("CPU (guaranteed)")
    cpu.focus()
    for _ in range(4):
        cpu.press("ArrowRight")
    expect(page.locator(f'output[data-output-for="{cpu.get_attribute("id")}"]')).to_have_text(
        "300m"
    )
    expect(page.locator("#validity")).to_have_text("Your settings are valid.")
    page.get_by_label("Name of the service").fill("My notebook")
    shots.take(page, "03-launcher")

    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page.locator("#launch-progress")).to_be_visible()
    expect(page.locator('#timeline [data-phase="accepted"]')).to_have_class(re.compile("done"))
    shots.take(page, "04-launch-progress")
    page.wait_for_url(
        re.compile(rf"{re.escape(platform.url)}/services/jupyter-python-\d+$"),
        timeout=LAUNCH_SECONDS * 1000,
    )
    release = page.url.rsplit("/", 1)[1]

    # The service page: Running, pods, logs that follow.
    status = page.locator("#service-status")
    expect(status).to_have_text("Running", timeout=LAUNCH_SECONDS * 1000)
    expect(page.get_by_role("heading", name="My notebook")).to_be_visible()
    expect(page.locator('#timeline [data-phase="running"]')).to_have_class(re.compile("done"))
    expect(page.locator("#pods")).to_contain_text(f"{release}-0")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("simulated container", timeout=20_000)
    expect(logs).to_contain_text("still running", timeout=20_000)
    shots.take(page, "05-service", full_page=True)
    detail = json_of(api(platform, page).get(f"/api/projects/{project}/services/{release}"))
    assert detail["values"]["resources"]["requests"]["cpu"] == "300m"
    assert detail["friendly_name"] == "My notebook"
    # Beside Open, the password that the service's login asks for (hidden until shown).
    login_password = page.get_by_label("Log in with your project password")
    expect(login_password).to_have_attribute("type", "password")
    shown = login_password.input_value()

    # My services: the card, live.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My services").click()
    expect(page.get_by_role("textbox", name="Project password")).to_have_value(shown)
    card = page.locator(f"#svc-{release}")
    badge = card.locator("[data-status-badge]")
    expect(badge).to_have_text("Running")
    expect(page.locator("#quota-gauges")).to_contain_text("0.3 CPU of 4 CPU")
    expect(card.get_by_role("link", name=re.compile("^Open"))).to_have_attribute(
        "href", re.compile(r"^https://")
    )
    shots.take(page, "06-my-services")

    # Account: a personal API token, shown once, that works.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_label("launch and change services").check()
    page.get_by_role("button", name="Create token").click()
    token = page.get_by_label("New token")
    expect(token).to_have_value(re.compile(r"^onyx_"))
    expect(page.locator("#tokens-table")).to_contain_text("laptop")
    shots.take(page, "07-account", mask=[token])
    secret = token.input_value()
    answer = httpx.get(f"{platform.url}/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert json_of(answer)["username"] == "alice"

    # My services follows the project live: a launch made elsewhere (a script using the new
    # token) appears and runs without a reload.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My services").click()
    scripted = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "vscode-python", "friendly_name": "From a script"},
        headers={"Authorization": f"Bearer {secret}"},
        timeout=30,
    )
    other = json_of(scripted)["release"]
    other_card = page.locator(f"#svc-{other}")
    expect(other_card).to_contain_text("From a script", timeout=20_000)
    expect(other_card.locator("[data-status-badge]")).to_have_text("Running", timeout=60_000)

    # Suspend, then delete (confirmed), one service; then "delete all" for the rest.
    card.get_by_role("button", name="Suspend").click()
    expect(badge).to_have_text("Suspended", timeout=60_000)
    expect(card.get_by_role("button", name="Resume")).to_be_visible()
    expect(card.get_by_role("button", name="Suspend")).to_be_hidden()
    card.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete My notebook?")
    dialog.get_by_role("button", name="Delete").click()
    expect(card).to_have_count(0)
    page.get_by_role("button", name="Delete all my services").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete all").click()
    expect(other_card).to_have_count(0)
    expect(page.locator("#no-services")).to_be_visible()
    listed = json_of(api(platform, page).get(f"/api/projects/{project}/services"))
    assert [s["id"] for s in listed if s["id"] in (release, other)] == []

    # Meanwhile bob launched RStudio (through the API, with his provider token).
    bob = bearer(platform.tokens("bob", BOB_PASSWORD)["access_token"])
    bobs = launch_running(platform, bob, project_of(platform, bob), "rstudio")["release"]

    # Administration: refresh the catalogue.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Catalogues")).to_be_visible()
    page.get_by_role("button", name="Refresh ide").click()
    expect(page.locator("#toasts")).to_contain_text("ide refreshed: 7 charts.")
    shots.take(page, "08-admin-catalogues")

    # Every service: bob's, suspended by the administrator.
    admin_nav = page.get_by_role("navigation", name="Administration")
    admin_nav.get_by_role("link", name="All services").click()
    row = page.locator("[data-admin-services] tbody tr").filter(has_text=bobs)
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("bob")
    shots.take(page, "09-admin-services")
    row.get_by_role("button", name="Suspend").click()
    page.get_by_role("dialog").get_by_role("button", name="Suspend").click()
    expect(row).to_contain_text("Suspended")

    admin_nav.get_by_role("link", name="Quotas").click()
    expect(page.get_by_role("heading", name="Quotas per project")).to_be_visible()
    shots.take(page, "10-admin-quotas")
    admin_nav.get_by_role("link", name="GPUs").click()
    expect(page.locator("[data-gpu-services]")).to_contain_text("No service holds a GPU.")
    shots.take(page, "12-admin-gpus")

    admin_nav.get_by_role("link", name="Audit log").click()
    page.get_by_label("User", exact=True).fill("alice")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows.first).to_be_visible()
    trail = rows.evaluate_all("rows => rows.map(r => [r.dataset.action, r.innerText])")
    actions = {action for action, _ in trail}
    expected = {
        "auth.login",
        "service.launch",
        "token.create",
        "service.suspend",
        "service.delete",
        "catalog.refresh",
    }
    assert expected <= actions, actions
    deleted = [text for action, text in trail if action == "service.delete"]
    assert any(release in text for text in deleted)
    assert any(other in text for text in deleted)
    assert any(bobs in text for action, text in trail if action == "service.suspend")
    shots.take(page, "11-admin-audit")

    page.get_by_label("Action starts with").fill("service.")
    page.get_by_role("button", name="Filter").click()
    filtered = rows.evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert filtered
    assert all(action.startswith("service.") for action in filtered)

    assert console.problems == []
