"""The Files page and the account's S3 credentials in a real browser, against a real S3 server
(Ceph RGW) trusting the test OpenID Provider: a user logs in through the provider's form,
creates a folder, uploads files (the file chooser, with progress bars, and drag-and-drop),
downloads one byte for byte, previews a CSV, makes the folder public and private again (checked
anonymously on the gateway), shares a link that works, pages through a large folder, renames,
moves and deletes with confirmation; then gets temporary credentials on the account page whose
boto3 snippet, copied and run, lists the bucket."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect

from devtools.localrgw import LocalRgw
from onyxia_py.kube import KubeClient
from onyxia_py.settings import KubernetesSettings

from ..integration.oidc_stack import Stack, csrf
from ..integration.s3_stack import s3_settings, trust
from .helpers import (
    Console,
    Screenshots,
    api,
    json_of,
    log_in,
    s3_browser_platform,
    unlabelled_controls,
)

CSV = b"city,population,region\nLyon,522250,ARA\nLille,236710,HDF\nNantes,320732,PDL\n"
NOTES = b"first line\nsecond line\n"
MANY = 101  # one more than a page of the listing


@pytest.fixture(scope="module")
def s3_platform(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Stack]:
    """The platform with S3 configured (900 s web-identity credentials, a role per user)."""
    tmp = tmp_path_factory.mktemp("browser-files")
    s3 = s3_settings(rgw, tag)
    with s3_browser_platform(tmp, kube_settings, kube, f"f{tag}", s3) as running:
        trust(rgw, running.provider)
        yield running


@pytest.fixture
def console(s3_platform: Stack) -> Console:
    """Console problems of this module's pages (on the S3 platform's origin)."""
    return Console(s3_platform.url)


def fits_and_labelled(page: Page) -> None:
    """The page does not scroll sideways at 1280x800 and every control has a label."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{page.url} scrolls sideways ({width}px)"
    assert unlabelled_controls(page) == []


def quiet(page: Page) -> None:
    """Before a picture for the docs: no toast over the page, no button under the mouse."""
    page.locator("#toasts").evaluate("box => box.replaceChildren()")
    page.mouse.move(1, 790)


def test_browse_upload_share_and_delete_files(
    s3_platform: Stack,
    rgw: LocalRgw,
    tag: str,
    page: Page,
    console: Console,
    shots: Screenshots,
) -> None:
    bucket = f"u{tag}-alice"
    big = os.urandom(3 * 1024 * 1024 + 7)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=s3_platform.url)
    log_in(page, s3_platform, "alice", "/files")
    expect(page.get_by_role("heading", name="My files")).to_be_visible()
    expect(page.locator("#files-status")).to_have_text(re.compile("This folder is empty"))
    crumbs = page.get_by_role("navigation", name="Folder path")
    expect(crumbs.get_by_role("link", name=bucket)).to_have_attribute("aria-current", "page")
    http = api(s3_platform, page)
    project = json_of(http.get("/api/me"))["projects"][0]["id"]
    s3_api = f"/api/projects/{project}/s3"

    # A new folder: a bad name is refused next to the field, a good one is listed.
    page.get_by_role("button", name="New folder").click()
    dialog = page.get_by_role("dialog", name="New folder")
    dialog.get_by_label("Folder name").fill("a//b")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator("#folder-name-error")).to_contain_text("empty segments")
    expect(dialog.get_by_label("Folder name")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Folder name").fill("reports")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()
    folder_link = page.get_by_role("link", name="reports/", exact=True)
    expect(folder_link).to_be_focused()

    # Into the folder with the keyboard.
    page.keyboard.press("Enter")
    expect(crumbs.get_by_role("link", name="reports")).to_have_attribute("aria-current", "page")
    expect(page.locator("#folder-title")).to_be_focused()
    assert "prefix=reports%2F" in page.url
    expect(page.locator("#files-status")).to_have_text(re.compile("This folder is empty"))

    # Two files through the file chooser, each with its progress bar reaching 100%.
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload files").click()
    chosen: list[FilePayload] = [
        {"name": "data.csv", "mimeType": "text/csv", "buffer": CSV},
        {"name": "big.bin", "mimeType": "application/octet-stream", "buffer": big},
    ]
    chooser.value.set_files(chosen)
    for key in ("reports/data.csv", "reports/big.bin"):
        expect(page.get_by_role("progressbar", name=key)).to_have_attribute("value", "100")
        expect(page.locator(f'li[data-upload="{key}"]')).to_contain_text("Uploaded")
    expect(page.locator("#toasts")).to_contain_text("2 files uploaded.")
    # One more dropped on the page.
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["first line\\nsecond line\\n"], "notes.txt",
                                    {type: "text/plain"}));
            return data;
        }"""
    )
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": dropped})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    expect(page.locator('li[data-upload="reports/notes.txt"]')).to_contain_text("Uploaded")
    rows = page.locator("#object-rows tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#files-status")).to_have_text("3 files.")
    # Usage: the three files (the folder's empty marker is not a file).
    expect(page.locator('[data-usage="objects"]')).to_have_text("3")
    total = len(CSV) + len(big) + len(NOTES)
    expect(page.locator('[data-usage="bytes"]')).to_have_attribute("title", f"{total:,} bytes")
    fits_and_labelled(page)
    quiet(page)
    shots.take(page, "18-files")
    listed = json_of(http.get(f"{s3_api}/objects", params={"prefix": "reports/"}))
    assert sorted((o["name"], o["size"]) for o in listed["objects"]) == [
        ("big.bin", len(big)),
        ("data.csv", len(CSV)),
        ("notes.txt", len(NOTES)),
    ]

    # Download: the same bytes.
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download big.bin").click()
    download = downloading.value
    assert download.suggested_filename == "big.bin"
    assert Path(download.path()).read_bytes() == big

    # Preview of the CSV: a table.
    page.get_by_role("button", name="Preview data.csv").click()
    preview = page.get_by_role("dialog", name="data.csv")
    expect(preview.get_by_role("columnheader", name="population")).to_be_visible()
    expect(preview.get_by_role("cell", name="Nantes")).to_be_visible()
    expect(preview.locator("[data-preview-meta]")).to_contain_text("CSV")
    expect(preview.locator("[data-preview-meta]")).to_contain_text("first 3 rows")
    shots.take(page, "19-file-preview")
    page.keyboard.press("Escape")
    expect(preview).to_be_hidden()

    # Public, checked anonymously on the S3 server itself.
    anonymous = f"{rgw.endpoint}/{bucket}/reports/data.csv"
    assert httpx.get(anonymous).status_code == 403
    crumbs.get_by_role("link", name=bucket).click()
    page.get_by_role("button", name="Make public reports", exact=True).click()
    confirm = page.get_by_role("dialog", name="Make “reports” public?")
    expect(confirm).to_contain_text("without credentials")
    confirm.get_by_role("button", name="Make public").click()
    folder_row = page.locator('tr[data-prefix="reports/"]')
    expect(folder_row.locator("[data-public-badge]")).to_have_text("public")
    expect(page.locator("#public-list")).to_contain_text(f"{bucket}/reports/")
    assert json_of(http.get(f"{s3_api}/public"))["public_prefixes"] == ["reports/"]
    assert httpx.get(anonymous).content == CSV

    # A share link with a chosen expiry (shortened to the 900 s credentials), and the public
    # address of a file in a public folder; both download without credentials.
    page.get_by_role("link", name="reports/", exact=True).click()
    page.get_by_role("button", name="Share big.bin").click()
    share = page.get_by_role("dialog", name="Share a download link")
    expect(share.get_by_label("Public address (no expiry: the folder is public)")).to_have_value(
        f"{rgw.endpoint}/{bucket}/reports/big.bin"
    )
    share.get_by_label("Link valid for").select_option(label="1 hour")
    share.get_by_role("button", name="Create link").click()
    link = share.get_by_label("Link", exact=True)
    expect(link).to_have_value(
        re.compile(rf"^{re.escape(rgw.endpoint)}/{bucket}/reports/big\.bin\?")
    )
    expect(link).to_be_focused()
    expect(share).to_contain_text("sooner than asked")
    assert httpx.get(link.input_value()).content == big
    assert httpx.get(f"{rgw.endpoint}/{bucket}/reports/big.bin").content == big
    share.get_by_role("button", name="Copy the link").click()
    assert page.evaluate("navigator.clipboard.readText()") == link.input_value()
    share.get_by_role("button", name="Close").click()
    expect(share).to_be_hidden()

    # Private again.
    crumbs.get_by_role("link", name=bucket).click()
    page.get_by_role("button", name="Make private reports", exact=True).click()
    expect(folder_row.locator("[data-public-badge]")).to_be_hidden()
    expect(page.locator("#no-public")).to_be_visible()
    assert httpx.get(anonymous).status_code == 403

    # A folder larger than a page: "Load more".
    headers = csrf(http)

    def put(i: int) -> None:
        answer = http.put(
            f"{s3_api}/object", params={"key": f"many/{i:03}.txt"}, content=b"x", headers=headers
        )
        assert answer.status_code == 201, answer.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(MANY)))
    page.get_by_role("button", name="Refresh").click()
    page.get_by_role("link", name="many/", exact=True).click()
    expect(rows).to_have_count(100)
    expect(page.locator("#files-status")).to_have_text("100 files shown; more below.")
    page.get_by_role("button", name="Load more").click()
    expect(rows).to_have_count(MANY)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.locator("#files-status")).to_have_text(f"{MANY} files.")

    # Rename a file; move a folder (not into itself), with the reason next to the field.
    crumbs.get_by_role("link", name=bucket).click()
    page.get_by_role("link", name="reports/", exact=True).click()
    page.get_by_role("button", name="Rename data.csv").click()
    move = page.get_by_role("dialog", name="Rename or move")
    expect(move.get_by_label("New path in the bucket")).to_have_value("reports/data.csv")
    move.get_by_label("New path in the bucket").fill("reports/table.csv")
    move.get_by_role("button", name="Move").click()
    expect(move).to_be_hidden()
    expect(page.locator('tr[data-key="reports/table.csv"]')).to_be_visible()
    expect(page.locator('tr[data-key="reports/data.csv"]')).to_have_count(0)
    crumbs.get_by_role("link", name=bucket).click()
    page.get_by_role("button", name="Rename reports", exact=True).click()
    move.get_by_label("New path in the bucket").fill("reports/inside")
    move.get_by_role("button", name="Move").click()
    expect(move.locator("#move-destination-error")).to_contain_text("inside the source folder")
    move.get_by_label("New path in the bucket").fill("results")
    move.get_by_role("button", name="Move").click()
    expect(move).to_be_hidden()
    expect(page.get_by_role("link", name="results/", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="reports/", exact=True)).to_have_count(0)
    moved = json_of(http.get(f"{s3_api}/objects", params={"prefix": "results/"}))
    assert sorted(o["name"] for o in moved["objects"]) == ["big.bin", "notes.txt", "table.csv"]

    # Delete a file, then folders: the confirmation says what goes.
    page.get_by_role("link", name="results/", exact=True).click()
    page.get_by_role("button", name="Delete notes.txt").click()
    confirm = page.get_by_role("dialog", name="Delete “notes.txt”?")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    confirm.get_by_role("button", name="Delete").click()
    expect(page.locator('tr[data-key="results/notes.txt"]')).to_have_count(0)
    crumbs.get_by_role("link", name=bucket).click()
    page.get_by_role("button", name="Delete many", exact=True).click()
    confirm = page.get_by_role("dialog", name="Delete the folder “many” and everything in it?")
    expect(confirm).to_contain_text(f"It holds {MANY} files")
    confirm.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("link", name="many/", exact=True)).to_be_visible()
    page.get_by_role("button", name="Delete many", exact=True).click()
    confirm.get_by_role("button", name=f"Delete {MANY} files").click()
    expect(page.get_by_role("link", name="many/", exact=True)).to_have_count(0)
    page.get_by_role("button", name="Delete results", exact=True).click()
    confirm = page.get_by_role("dialog", name="Delete the folder “results” and everything in it?")
    expect(confirm.locator("p")).to_have_text(re.compile(r"It holds 2 files \(3\.1 MB\)"))
    confirm.get_by_role("button", name="Delete 2 files").click()
    expect(page.locator("#files-status")).to_have_text(re.compile("This folder is empty"))
    expect(page.locator('[data-usage="objects"]')).to_have_text("0")
    assert json_of(http.get(f"{s3_api}/usage"))["objects"] == 0

    assert console.problems == []


def test_account_gives_s3_credentials_and_snippets(
    s3_platform: Stack, tag: str, page: Page, console: Console, shots: Screenshots
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=s3_platform.url)
    log_in(page, s3_platform, "alice", "/account")
    section = page.locator("#s3")
    expect(section).to_contain_text(f"u{tag}-alice")
    expect(section).to_contain_text("15 minutes")
    page.get_by_role("button", name="Get credentials").click()

    access = page.get_by_label("Access key ID")
    expect(access).not_to_have_value("")
    secret = page.get_by_label("Secret access key")
    expect(secret).to_have_attribute("type", "password")
    expect(page.get_by_label("Session token")).to_have_attribute("type", "password")
    expect(page.locator("#s3-expiry")).to_contain_text(re.compile(r"in 1[45] minutes"))
    boto3_tab = page.get_by_role("tab", name="Python: boto3")
    expect(boto3_tab).to_have_attribute("aria-selected", "true")
    code = page.locator("#snippet-code")
    expect(code).to_contain_text("boto3.client(")
    expect(code).to_contain_text("••••••••")
    secret_value = secret.input_value()
    assert secret_value
    assert secret_value not in code.inner_text()
    expect(page.get_by_role("tab")).to_have_count(11)
    fits_and_labelled(page)
    # The access key ID is no secret (and these credentials die in 15 minutes on a throwaway
    # server); the secret and the token stay masked, on the page and in the snippets.
    quiet(page)
    shots.take(page, "20-account-s3", full_page=True)

    # Tabs work with the keyboard.
    boto3_tab.focus()
    page.keyboard.press("ArrowDown")
    s3fs_tab = page.get_by_role("tab", name="Python: s3fs")
    expect(s3fs_tab).to_be_focused()
    expect(s3fs_tab).to_have_attribute("aria-selected", "true")
    expect(code).to_contain_text("s3fs.S3FileSystem(")
    page.keyboard.press("ArrowUp")
    expect(boto3_tab).to_have_attribute("aria-selected", "true")

    # Shown on demand; copied whole.
    page.get_by_role("button", name="Show the secret access key").click()
    expect(secret).to_have_attribute("type", "text")
    expect(code).to_contain_text(secret_value)
    page.get_by_role("button", name="Copy the Python: boto3 snippet").click()
    copied: str = page.evaluate("navigator.clipboard.readText()")
    assert secret_value in copied
    assert access.input_value() in copied

    # The snippet, pasted into Python, lists the bucket (created by first use).
    http = api(s3_platform, page)
    project = json_of(http.get("/api/me"))["projects"][0]["id"]
    json_of(http.get(f"/api/projects/{project}/s3/objects"))
    run = subprocess.run(
        [sys.executable, "-c", copied], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0"
    expect(page.get_by_role("button", name="Get new credentials")).to_be_visible()
    assert console.problems == []
