"""What the browser tests share besides fixtures: logging in through the provider's form,
screenshots, console watching, and an HTTP client with the page's session."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ConsoleMessage, Locator, Page, Request

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, default_users
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings, S3Settings

from ..integration.oidc_stack import Stack, stack

PASSWORDS = {"alice": ALICE_PASSWORD, "bob": BOB_PASSWORD}
ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
FIXTURE_CHARTS = ROOT / "tests" / "fixtures" / "catalog"  # rstudio-lite has no schema


@contextlib.contextmanager
def s3_browser_platform(
    tmp: Path,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    prefix: str,
    s3: S3Settings,
    catalogs: list[dict[str, Any]] | None = None,
) -> Iterator[Stack]:
    """The platform with `s3`, the default users, projects named `<prefix>-<user>` and
    `<prefix>g-<group>`, and `catalogs` (none by default); the projects are deleted after."""
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"{prefix}-", group_namespace_prefix=f"{prefix}g-"
        ),
        "catalogs": CatalogSettings(paths=[], definitions=catalogs or [], cache_dir=tmp / "cache"),
        "s3": s3,
    }
    with stack(tmp, settings=overrides, users=default_users()) as running:
        yield running
    for name in (f"{prefix}-alice", f"{prefix}-bob", f"{prefix}g-stats", f"{prefix}g-economics"):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@dataclass
class Screenshots:
    """Saves one screenshot per page, named after it."""

    folder: Path
    to_docs: bool
    taken: list[Path] = field(default_factory=list)

    def take(
        self, page: Page, name: str, *, full_page: bool = False, mask: list[Locator] | None = None
    ) -> Path:
        """A PNG of what `page` shows now (the viewport, or the whole page), `mask` painted over
        (secrets have no place in committed pictures)."""
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled", mask=mask or [])
        self.taken.append(path)
        return path


@dataclass
class Console:
    """What our pages wrote to the console: script errors, CSP refusals and static files that
    failed to load are test failures. (Chromium also logs every API answer >= 400 as a failed
    load; those are expected answers the pages show, checked by the tests themselves.)"""

    origin: str
    problems: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        """Collect the problems of `page`."""
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("requestfailed", self._failed)

    def _message(self, message: ConsoleMessage) -> None:
        url = str(message.location.get("url", ""))
        if "Content Security Policy" in message.text:
            self.problems.append(f"CSP refusal: {message.text}")
        elif message.type == "error" and url.startswith(self.origin):
            if "Failed to load resource" in message.text:
                if url.startswith(f"{self.origin}/static/"):
                    self.problems.append(f"static file failed: {url}: {message.text}")
                return
            self.problems.append(f"console error at {url}: {message.text}")

    def _failed(self, request: Request) -> None:
        failure = request.failure or ""
        # Streams the page closes on purpose (leaving, unfollowing logs) end as aborted.
        if request.url.startswith(self.origin) and "ERR_ABORTED" not in failure:
            self.problems.append(f"request failed: {request.url}: {failure}")


def log_in(page: Page, platform: Stack, username: str, next_path: str = "/") -> None:
    """Log in through the OpenID Provider's own form, as a person would: open `next_path`
    (pages that need a login go to the provider at once; others offer "Log in")."""
    page.goto(f"{platform.url}{next_path}")
    if page.url.startswith(platform.url):
        page.get_by_role("link", name="Log in").first.click()
    page.wait_for_url(re.compile(re.escape(platform.provider.issuer)))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{platform.url}{next_path}")


def api(platform: Stack, page: Page) -> httpx.Client:
    """An HTTP client with the page's session cookie (to check what the pages did)."""
    cookies = {c["name"]: c["value"] for c in page.context.cookies() if "value" in c}
    return httpx.Client(base_url=platform.url, cookies=cookies, timeout=30)


def json_of(response: httpx.Response) -> Any:
    """The body of a successful answer."""
    assert response.status_code < 400, response.text
    return response.json()


def unlabelled_controls(page: Page) -> list[str]:
    """Form controls of `page` without a label people and screen readers can read (ids)."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter((e) => !e.labels?.length && !e.getAttribute('aria-label'))
            .map((e) => e.id || e.name)"""
    )
    return found
