"""Browser tests: Playwright (PyPI) driving Debian's Chromium (/usr/bin/chromium, never a
downloaded browser) against the real platform of the integration tests: the local Kubernetes
control plane, the test OpenID Provider and the app served by uvicorn.

Screenshots go to tests/browser/artifacts/ (git-ignored); with ONYXIA_UPDATE_SCREENSHOTS=1 they
are also copied to docs/screenshots/ for the README."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

from devtools.localoidc import default_users
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..integration.oidc_stack import Stack, stack
from ..support import wait_for_catalogs
from .helpers import CHARTS, FIXTURE_CHARTS, ROOT, Console, Screenshots

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests need the same servers as integration tests: mark them so."""
    for item in items:
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def platform(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    """The platform: alice (admin, groups stats and Data Science/ML) and bob, one catalogue."""
    tag = secrets.token_hex(3)
    projects = ProjectSettings(
        user_namespace_prefix=f"b{tag}-",
        group_namespace_prefix=f"bg{tag}-",
        user_quota={
            "requests.cpu": "4",
            "requests.memory": "16Gi",
            "count/pods": "20",
            "requests.nvidia.com/gpu": "8",
        },
    )
    tmp = tmp_path_factory.mktemp("browser")
    overrides = {
        "kubernetes": kube_settings,
        "projects": projects,
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[
                {
                    "id": "ide",
                    "name": "Interactive services",
                    "description": "Notebooks and IDEs",
                    "location": str(CHARTS),
                    "highlightedCharts": ["jupyter-python", "vscode-python", "rstudio"],
                },
                {
                    "id": "fixtures",
                    "name": "Test charts",
                    "status": "TEST",
                    "location": str(FIXTURE_CHARTS),
                },
            ],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": 60},
    }
    with stack(tmp, settings=overrides, users=default_users()) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    for name in (f"b{tag}-alice", f"b{tag}-bob", f"bg{tag}-stats", f"bg{tag}-economics"):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (no browser download: Chromium comes from Debian)."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make system-deps` (devtools/system-deps-browser.sh)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture(scope="session")
def shots() -> Iterator[Screenshots]:
    """Where screenshots go: a fresh artifacts folder (and docs/screenshots if asked)."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    saver = Screenshots(ARTIFACTS, os.environ.get("ONYXIA_UPDATE_SCREENSHOTS") == "1")
    yield saver
    if saver.to_docs:
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for png in sorted(ARTIFACTS.glob("*.png")):
            shutil.copy2(png, DOC_SCREENSHOTS / png.name)


@pytest.fixture
def console(platform: Stack) -> Console:
    """Console problems of the test's pages; the test checks them at its end."""
    return Console(platform.url)


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page at a laptop's size."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    context.set_default_timeout(20_000)
    tab = context.new_page()
    console.watch(tab)
    yield tab
    context.close()
