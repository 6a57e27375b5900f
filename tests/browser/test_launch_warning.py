"""A launch warning stays in view (issue #18 item 5): with an S3 server that cannot be reached,
the launch is accepted with a warning, which the launch page keeps while its progress moves on,
and the service page still says after the launch has ended."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from devtools.localrgw import LocalRgw
from devtools.ports import free_port
from onyxia_py.kube import KubeClient
from onyxia_py.settings import KubernetesSettings

from ..integration.oidc_stack import Stack
from ..integration.s3_stack import s3_settings
from ..support import wait_for_catalogs
from .helpers import CHARTS, Console, Screenshots, log_in, s3_browser_platform

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
    s3 = s3_settings(rgw, tag, endpoint_url=f"http://127.0.0.1:{free_port()}")
    ide = [{"id": "ide", "name": "IDE", "location": str(CHARTS)}]
    tmp = tmp_path_factory.mktemp("browser-warning")
    with s3_browser_platform(tmp, kube_settings, kube, f"w{tag}", s3, ide) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running


# Reports, as console messages, each time the launch page's warning is emptied or hidden after
# it has been shown (the bug: the progress overwrote it within 100 ms).
WATCH_WARNING = """() => {
    const warning = document.getElementById("progress-warning");
    let shown = false;
    new MutationObserver(() => {
        const visible = !warning.hidden && warning.textContent.trim() !== "";
        if (visible) shown = true;
        else if (shown) console.log("launch warning lost");
    }).observe(warning, {attributes: true, childList: true, characterData: true, subtree: true});
}"""


@pytest.fixture
def console(broken_s3: Stack) -> Console:
    """Console problems of this module's pages (on this platform's origin)."""
    return Console(broken_s3.url)


def test_a_launch_warning_stays_on_the_launch_page_and_the_service_page(
    broken_s3: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, broken_s3, "alice", "/launcher/ide/jupyter-python")
    lost: list[str] = []
    page.on("console", lambda m: lost.append(m.text) if m.text == "launch warning lost" else None)
    page.evaluate(WATCH_WARNING)
    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page.locator("#progress-warning")).to_contain_text(UNREACHABLE)
    shots.take(page, "warning-01-launch")
    page.wait_for_url(re.compile(r"/services/jupyter-python-\d+"), timeout=90_000)
    expect(page.locator("#service-status")).to_have_text("Running", timeout=90_000)
    assert lost == []  # kept in view as long as the launch page showed its progress
    kept = page.locator("[data-launch-warning]")
    expect(kept).to_contain_text("Launched with a warning")
    expect(kept).to_contain_text(UNREACHABLE)
    shots.take(page, "warning-02-service")
    page.reload()
    expect(page.locator("[data-launch-warning]")).to_contain_text(UNREACHABLE)
    assert console.problems == []
