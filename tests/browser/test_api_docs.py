"""The interactive API docs work offline: Swagger UI at /docs loads every file from our own
origin (none from a CDN), renders the operations under the strict CSP and trips no refusal;
/redoc leads there."""

from __future__ import annotations

from playwright.sync_api import Page, Request, expect

from ..integration.oidc_stack import Stack
from .helpers import Console


def elsewhere(page: Page, origin: str) -> list[str]:
    """Collects every request `page` makes to another origin."""
    found: list[str] = []

    def seen(request: Request) -> None:
        if not request.url.startswith((origin, "data:", "blob:")):
            found.append(request.url)

    page.on("request", seen)
    return found


def test_swagger_ui_renders_the_operations_offline(
    platform: Stack, page: Page, console: Console
) -> None:
    other = elsewhere(page, platform.url)
    page.goto(f"{platform.url}/docs")
    expect(page.get_by_text("onyxia-py", exact=False).first).to_be_visible()
    operation = page.locator(".opblock-summary-path", has_text="/api/me").first
    expect(operation).to_be_visible(timeout=20_000)
    operation.click()
    expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    assert other == []
    assert console.problems == []


def test_redoc_leads_to_the_docs(platform: Stack, page: Page, console: Console) -> None:
    answer = page.goto(f"{platform.url}/redoc")
    assert answer is not None
    page.wait_for_url(f"{platform.url}/docs")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    expect(page.locator(".opblock-summary-path", has_text="/api/me").first).to_be_visible(
        timeout=20_000
    )
    assert console.problems == []
