"""Services of a group project on My services: rename, share with the group, read the notes,
reveal the project password; other members then see the shared service."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from devtools.localoidc import ALICE_PASSWORD

from ..integration.oidc_stack import Stack, bearer
from ..integration.services.helpers import launch_running
from .helpers import Console, Screenshots, api, json_of, log_in


def test_rename_share_notes_and_password_in_a_group_project(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    alice = bearer(platform.tokens("alice", ALICE_PASSWORD)["access_token"])
    projects = json_of(api(platform, page).get("/api/me", headers=alice))["projects"]
    group = next(p["id"] for p in projects if p["group"] == "stats")
    release = launch_running(platform, alice, group, "vscode-python")["release"]

    log_in(page, platform, "alice", f"/services?project={group}")
    card = page.locator(f"#svc-{release}")
    expect(card.locator("[data-status-badge]")).to_have_text("Running")

    card.get_by_role("button", name="Rename").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("New name").fill("Team editor")
    dialog.get_by_role("button", name="Rename").click()
    expect(card.get_by_role("link", name="Team editor")).to_be_visible()

    share = card.get_by_role("button", name="Share")
    share.click()
    expect(card.get_by_role("button", name="Stop sharing")).to_have_attribute(
        "aria-pressed", "true"
    )
    line = next(
        s
        for s in json_of(api(platform, page).get(f"/api/projects/{group}/services"))
        if s["id"] == release
    )
    assert (line["friendly_name"], line["share"]) == ("Team editor", True)

    card.get_by_text("Notes").click()
    expect(card.locator("[data-notes-text]")).to_contain_text("code-server", ignore_case=True)

    password = page.get_by_role("textbox", name="Project password")
    expect(password).to_have_attribute("type", "password")
    page.locator('[data-reveal="project-password"]').click()
    expect(password).to_have_attribute("type", "text")
    assert len(password.input_value()) >= 16
    shots.take(page, "17-group-services", full_page=True)

    page.get_by_role("button", name="Delete all my services").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete all").click()
    expect(card).to_have_count(0)
    assert console.problems == []
