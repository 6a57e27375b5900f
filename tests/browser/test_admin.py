"""Administrators add, change and remove catalogues from the page, with the server's field
errors next to the fields; users see the new catalogue as a tab of the catalogue page."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from ..integration.oidc_stack import Stack
from .helpers import CHARTS, Console, Screenshots, api, json_of, log_in


def test_add_change_and_remove_a_catalogue(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, platform, "alice", "/admin/catalogs")
    page.get_by_role("link", name="Add a catalogue").click()
    page.get_by_label("Id", exact=True).fill("Not A Label")
    page.get_by_label("Location").fill(str(CHARTS))
    page.get_by_role("button", name="Add the catalogue").click()
    id_error = page.locator("#c-id-error")
    expect(id_error).to_contain_text("DNS label")
    expect(page.get_by_label("Id", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-errors")).to_contain_text("1 field needs a change")
    shots.take(page, "16-admin-catalogue-form", full_page=True)

    page.get_by_label("Id", exact=True).fill("extra")
    page.get_by_label("Name", exact=True).fill("Extra tools")
    page.get_by_label("Highlighted charts").fill("mlflow, label-studio")
    page.get_by_label("Other fields (YAML)").fill("includeKeywords: [mlops, annotation]\n")
    page.get_by_role("button", name="Add the catalogue").click()
    page.wait_for_url(f"{platform.url}/admin/catalogs")
    row = page.locator('tr[data-catalog="extra"]')
    expect(row).to_contain_text("database")
    definition = next(
        c["definition"]
        for c in json_of(api(platform, page).get("/api/admin/catalogs"))
        if c["id"] == "extra"
    )
    assert definition["highlightedCharts"] == ["mlflow", "label-studio"]
    assert definition["includeKeywords"] == ["mlops", "annotation"]

    # Users get a tab for it, with its charts.
    page.goto(f"{platform.url}/catalog/extra")
    expect(page.get_by_role("link", name="Extra tools")).to_have_attribute("aria-current", "page")
    expect(page.locator("#chart-cards > li").first).to_contain_text("mlflow")

    # Change it (the YAML box keeps what the form has no input for), then remove it.
    page.goto(f"{platform.url}/admin/catalogs/extra/edit")
    expect(page.get_by_label("Other fields (YAML)")).to_contain_text("includeKeywords")
    page.get_by_label("Name", exact=True).fill("More tools")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"{platform.url}/admin/catalogs")
    expect(row).to_contain_text("More tools")
    row.get_by_role("button", name="Remove extra").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    expect(row).to_have_count(0)
    ids = [c["id"] for c in json_of(api(platform, page).get("/api/admin/catalogs"))]
    assert "extra" not in ids
    assert console.problems == []
