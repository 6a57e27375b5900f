"""A launch warning stays in view (issue #18 item 5): with an S3 server that cannot be reached,
the launch is accepted with a warning, which the launch page keeps while its progress moves on,
and the service page still says after the launch has ended."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from devtools.localoidc import default_users
from devtools.localrgw import LocalRgw
from devtools.ports import free_port
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..integration.oidc_stack import Stack, stack
from ..integration.s3_stack import s3_settings
from ..support import wait_for_catalogs
from .helpers import CHARTS, Console, Screenshots, log_in

UNREACHABLE = re.compile(r"cannot be reached")


@pytest.fixture(scope="module")
def broken_s3(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Stack]:
    """The platform with S3 configured on an address where nothing answers."""
    tmp = tmp_path_factory.mktemp("browser-warning")
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"w{tag}-", group_namespace_prefix=f"wg{tag}-"
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "s3": s3_settings(rgw, tag, endpoint_url=f"http://127.0.0.1:{free_port()}"),
    }
    with stack(tmp, settings=overrides, users=default_users()) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    for name in (f"w{tag}-alice", f"wg{tag}-stats"):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@pytest.fixture
def console(broken_s3: Stack) -> Console:
    """Console problems of this module's pages (on this platform's origin)."""
    return Console(broken_s3.url)


def test_a_launch_warning_stays_on_the_launch_page_and_the_service_page(
    broken_s3: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, broken_s3, "alice", "/launcher/ide/jupyter-python")
    page.get_by_role("button", name="Launch", exact=True).click()
    warning = page.locator("#progress-warning")
    expect(warning).to_contain_text(UNREACHABLE)
    shots.take(page, "warning-01-launch")
    # The progress goes on below it and the warning stays (it used to be overwritten within
    # 100 ms), until the page moves on to the service (at once on a simulated node).
    page.wait_for_timeout(300)
    if "/launcher/" in page.url:
        expect(warning).to_contain_text(UNREACHABLE)
    page.wait_for_url(re.compile(r"/services/jupyter-python-\d+"), timeout=90_000)
    expect(page.locator("#service-status")).to_have_text("Running", timeout=90_000)
    kept = page.locator("[data-launch-warning]")
    expect(kept).to_contain_text("Launched with a warning")
    expect(kept).to_contain_text(UNREACHABLE)
    shots.take(page, "warning-02-service")
    page.reload()
    expect(page.locator("[data-launch-warning]")).to_contain_text(UNREACHABLE)
    assert console.problems == []
