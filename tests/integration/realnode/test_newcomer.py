"""The newcomer's first hour on the embedded default (issue #18), in a real browser.

The platform runs as `make run` starts it: `python -m onyxia_py serve` in the repository, with
no settings file, auth mode `none`, SQLite, the default catalogue, the images built here and S3
on a local Ceph RGW in assume-role mode, set up by the same function `make run` uses
(`devtools.localstack.setup_platform_s3`), all given as the same ONYXIA_* variables. Only the
port, the database file and the namespace prefix differ, so that the test leaves the machine's
own `make run` alone. In Chromium, the newcomer starts a session from the home page, uploads a
CSV on the Files page, launches Jupyter from the catalogue, waits for Running, opens it with
the project password the service page shows, and JupyterLab's code reads the CSV back from
the bucket with the credentials the platform injected.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect, sync_playwright

from devtools.localcluster import LocalCluster
from devtools.localplatform import environment, prepare_images
from devtools.localrgw import LocalRgw
from devtools.localstack import setup_platform_s3
from devtools.ports import free_port
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import KubernetesSettings

from .tools_stack import Ingress, run_in_kernel

REPO = Path(__file__).parents[3]
ARTIFACTS = REPO / "tests" / "browser" / "artifacts" / "newcomer"
CSV = b"city,population\nLyon,522250\nLille,236710\n"
LAUNCH_MS = 420_000


@pytest.fixture(scope="module")
def embedded(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, tag: str
) -> Iterator[str]:
    """The platform as `make run` serves it; its URL."""
    tmp = tmp_path_factory.mktemp("newcomer")
    images = prepare_images(real_cluster, ["jupyter-python"])
    port = free_port()
    prefix = f"nc{tag}-"
    kube = KubeClient(KubernetesSettings(kubeconfig=real_cluster.kubeconfig))
    with LocalRgw(extra_addresses=(real_cluster.pod_gateway,)) as rgw:
        env = {
            **os.environ,
            **environment(real_cluster, images),
            **setup_platform_s3(rgw, rgw.endpoint_on(real_cluster.pod_gateway)),
            "ONYXIA_KUBERNETES__KUBECONFIG": str(real_cluster.kubeconfig),
            "ONYXIA_SERVER__PORT": str(port),
            "ONYXIA_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
            "ONYXIA_SERVER__SESSION_SECRET_FILE": str(tmp / "session-secret"),
            "ONYXIA_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}",
            "ONYXIA_PROJECTS__USER_NAMESPACE_PREFIX": prefix,
            "ONYXIA_HELM__TIMEOUT_SECONDS": "300",
        }
        env.pop("ONYXIA_TEST_KUBECONFIG", None)
        log = (tmp / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "onyxia_py", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            ready(url, server, tmp / "serve.log")
            yield url
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(30)
            server.kill()
            log.close()
            with contextlib.suppress(NotFound):
                kube.request_sync("DELETE", f"/api/v1/namespaces/{prefix}onyxia", body={})
            kube.close()


def ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until the platform answers /readyz with every check ok (catalogues loaded)."""
    deadline = time.monotonic() + 120
    last = ""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"onyxia_py serve exited {server.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(f"{url}/readyz", timeout=5)
            last = answer.text
            if answer.status_code == 200:
                return
        time.sleep(1)
    raise AssertionError(f"the platform never got ready: {last}\n{log.read_text()[-3000:]}")


def test_a_newcomer_reads_their_uploaded_csv_from_jupyter(embedded: str) -> None:
    # Playwright's sync API keeps an event loop in its thread: never the test's own thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        jupyter_url, token = pool.submit(journey, embedded).result(timeout=900)
    jupyter = Ingress(jupyter_url)
    code = textwrap.dedent(
        """
        import io, os
        import boto3, pandas
        from botocore.config import Config
        s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
        body = s3.get_object(Bucket=os.environ["AWS_BUCKET_NAME"], Key="data/cities.csv")
        frame = pandas.read_csv(io.BytesIO(body["Body"].read()))
        print("total:", int(frame["population"].sum()))
        """
    )
    try:
        out = run_in_kernel(jupyter, token, code)
    finally:
        jupyter.close()
    assert "total: 758960" in out, out


def journey(url: str) -> tuple[str, str]:
    """Home, session, Files upload, catalogue, launch, Running, Open, JupyterLab; the service's
    URL and the password the service page shows."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"{url}/")
            page.screenshot(path=str(ARTIFACTS / "01-home.png"))
            page.get_by_role("link", name="Start a session", exact=True).click()

            upload_csv(page, url)
            page.screenshot(path=str(ARTIFACTS / "02-files.png"))

            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Catalogue"
            ).click()
            page.get_by_role("link", name="Launch jupyter-python").click()
            expect(page.locator("#validity")).to_have_text("Your settings are valid.")
            page.get_by_role("button", name="Launch", exact=True).click()
            page.wait_for_url(re.compile(r"/services/jupyter-python-\d+$"), timeout=LAUNCH_MS)
            expect(page.locator("#service-status")).to_have_text("Running", timeout=LAUNCH_MS)
            page.screenshot(path=str(ARTIFACTS / "03-running.png"))

            open_link = page.get_by_role("link", name=re.compile("^Open"))
            service_url = str(open_link.get_attribute("href")).rstrip("/")
            password = page.locator("#project-password").input_value()
            assert password, "the service page shows no password"
            with page.context.expect_page(timeout=60_000) as opened:
                open_link.click()
            lab = opened.value
            log_in_to_jupyter(lab, password)
            lab.screenshot(path=str(ARTIFACTS / "04-jupyterlab.png"))
            return service_url, password
        finally:
            browser.close()


def upload_csv(page: Page, url: str) -> None:
    """Upload cities.csv into data/ of the personal bucket through the Files page."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Files").click()
    page.get_by_role("button", name="New folder").click()
    dialog = page.get_by_role("dialog", name="New folder")
    dialog.get_by_label("Folder name").fill("data")
    dialog.get_by_role("button", name="Create").click()
    page.get_by_role("link", name="data/", exact=True).click()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload files").click()
    chosen: FilePayload = {"name": "cities.csv", "mimeType": "text/csv", "buffer": CSV}
    chooser.value.set_files(chosen)
    expect(page.locator('li[data-upload="data/cities.csv"]')).to_contain_text("Uploaded")


def log_in_to_jupyter(lab: Page, password: str) -> None:
    """The new tab: the ingress may answer 502/503 for a moment after Running (the pod just
    became ready); then Jupyter's login asks for the password and JupyterLab loads."""
    deadline = time.monotonic() + 120
    while True:
        lab.wait_for_load_state()
        if lab.locator("input[type=password]").count():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"Jupyter's login page never came: {lab.url}")
        time.sleep(2)
        lab.reload()
    lab.locator("input[type=password]").first.fill(password)
    lab.keyboard.press("Enter")
    lab.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    lab.wait_for_selector(".jp-LauncherCard", timeout=60_000)
