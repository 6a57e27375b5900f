"""The launch form in a real browser: live validation with the server's field errors next to the
fields, range sliders that keep their order, conditional fields, restore defaults, saved
configurations, GPU availability, friendly quota errors, and the form's YAML reader."""

from __future__ import annotations

import re

import yaml
from playwright.sync_api import Page, expect

from onyxia_py.ui.form import to_yaml

from ..integration.oidc_stack import Stack
from .helpers import Console, Screenshots, api, json_of, log_in

JUPYTER = "/launcher/ide/jupyter-python"


def output_of(page: Page, label: str) -> str:
    """The selector of the readout next to the slider labelled `label`."""
    return f'output[data-output-for="{page.get_by_label(label).get_attribute("id")}"]'


def test_field_errors_show_next_to_their_field_and_block_the_launch(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, platform, "alice", JUPYTER)
    validity = page.locator("#validity")
    expect(validity).to_have_text("Your settings are valid.")
    password = page.get_by_label("Password (Jupyter token)")
    password.fill("short")
    error = page.locator(f"#{password.get_attribute('id')}-error")
    expect(error).not_to_be_empty()
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(validity).to_have_text(re.compile(r"^1 setting needs a change"))
    page.get_by_role("button", name="Show").first.click()
    expect(password).to_have_attribute("type", "text")
    password.evaluate("e => e.scrollIntoView({block: 'center'})")
    shots.take(page, "13-launcher-field-error")

    page.get_by_role("button", name="Launch", exact=True).click()
    summary = page.locator("#form-errors")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("1 field needs a change")
    expect(password).to_be_focused()
    assert page.locator("#launch-progress").is_hidden()

    password.fill("long enough password")
    expect(validity).to_have_text("Your settings are valid.")
    expect(error).to_be_empty()
    assert console.problems == []


def test_ranges_conditions_defaults_and_saved_configurations(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice", JUPYTER)
    low, high = page.get_by_label("CPU (guaranteed)"), page.get_by_label("CPU (maximum)")
    # The guaranteed CPU pushed to the end carries the maximum with it.
    low.focus()
    low.press("End")
    expect(page.locator(output_of(page, "CPU (guaranteed)"))).to_have_text("8000m")
    expect(page.locator(output_of(page, "CPU (maximum)"))).to_have_text("8000m")
    assert high.input_value() == "8000"
    # A field shown only while another is set.
    size = page.get_by_label("Size", exact=True)
    expect(size).to_be_visible()
    page.get_by_label("Enable persistence").uncheck()
    expect(size).to_be_hidden()
    page.get_by_label("Enable persistence").check()
    expect(size).to_be_visible()

    page.get_by_role("button", name="Restore defaults").click()
    expect(page.locator(output_of(page, "CPU (guaranteed)"))).to_have_text("100m")
    expect(page.locator(output_of(page, "CPU (maximum)"))).to_have_text("4000m")

    # Save a configuration with 250m guaranteed, find it in My services, open it again.
    low.focus()
    for _ in range(3):
        low.press("ArrowRight")
    expect(page.locator(output_of(page, "CPU (guaranteed)"))).to_have_text("250m")
    page.get_by_role("button", name="Save configuration").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Small notebook")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#toasts")).to_contain_text("Configuration “Small notebook” saved")
    project = json_of(api(platform, page).get("/api/me"))["projects"][0]["id"]
    saved = json_of(api(platform, page).get(f"/api/projects/{project}/saved"))
    mine = next(s for s in saved if s["name"] == "Small notebook")
    assert mine["values"] == {"resources": {"requests": {"cpu": "250m"}}}

    page.get_by_role("navigation", name="Main").get_by_role("link", name="My services").click()
    item = page.locator(f'[data-saved="{mine["id"]}"]')
    expect(item).to_contain_text("Small notebook")
    item.get_by_role("link", name="Edit").click()
    expect(page.get_by_text("Showing your saved configuration")).to_be_visible()
    expect(page.locator(output_of(page, "CPU (guaranteed)"))).to_have_text("250m")
    assert console.problems == []


def test_gpu_fields_say_what_is_free_and_failures_are_explained(
    platform: Stack, page: Page, console: Console, shots: Screenshots
) -> None:
    log_in(page, platform, "alice", "/launcher/ide/jupyter-pytorch-gpu")
    expect(page.locator("[data-gpu-hint]").first).to_contain_text("2 GPUs you can take right now")
    # Three GPUs fit the quota (8) but no node has that many: the check says so, and the
    # launch is refused before anything starts.
    gpu = page.get_by_label("GPU", exact=True)
    gpu.focus()
    gpu.press("End")  # the chart's maximum (4), then one step down
    gpu.press("ArrowLeft")
    expect(page.locator(output_of(page, "GPU"))).to_have_text("3")
    expect(page.locator("[data-gpu-warning]")).to_contain_text(
        "You ask for 3 GPUs but only 2 are free"
    )
    no_node = re.compile(r"requested 3 GPU; the largest (\S+ )?node offers 2")
    expect(page.locator("#validity")).to_contain_text(no_node)
    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page.locator("#form-errors")).to_contain_text(no_node)
    expect(page.locator("#launch-progress")).to_be_hidden()
    expect(page.get_by_role("button", name="Launch", exact=True)).to_be_enabled()
    shots.take(page, "15-launch-failed")

    # A request beyond the quota: the sliders say what is left, the check refuses it as the
    # launch would, and the launch is refused before anything starts.
    page.goto(f"{platform.url}{JUPYTER}")
    expect(page.locator('[data-quota-hint="requests.cpu"]')).to_contain_text(
        re.compile(r"Your project's quota has [\d.]+ CPU left guaranteed")
    )
    low = page.get_by_label("CPU (guaranteed)")
    low.focus()
    low.press("End")  # 8 CPU guaranteed; the project's quota has 4
    over = re.compile(r"requested 8 CPU, [\d.]+ CPU available")
    expect(page.locator("#validity")).to_contain_text(over)
    page.get_by_role("button", name="Launch", exact=True).click()
    summary = page.locator("#form-errors")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text(re.compile(r"requested 8 CPU, [\d.]+ CPU available"))
    expect(page.get_by_role("button", name="Launch", exact=True)).to_be_enabled()
    assert page.locator("#launch-progress").is_hidden()
    assert console.problems == []


def test_the_yaml_reader_reads_what_the_server_writes(platform: Stack, page: Page) -> None:
    values = [
        {"nodeSelector": {"nvidia.com/gpu.product": "Tesla-T4"}},
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        {"yes": "no", "on": "off", "n": "007", "empty": "", "none": None, "t": True, "f": 1.5},
        {"text": "two\nlines\n", "quote": 'it\'s "quoted"', "hash": "#x", "colon": "a: b"},
        [[1, [2]], {"x": []}, {}],
        {"unicode": "é€ 中文"},
    ]
    page.goto(f"{platform.url}/")
    texts = [to_yaml(v) for v in values] + ["a: [1, two, 'x y']\nb: {c: 1}", "# only\nk: v # c"]
    read = page.evaluate(
        """async (texts) => {
            const { parseYaml } = await import('/static/js/yaml.js');
            return texts.map((t) => parseYaml(t));
        }""",
        texts,
    )
    assert read == [yaml.safe_load(t) for t in texts]
    refused = page.evaluate(
        """async (texts) => {
            const { parseYaml } = await import('/static/js/yaml.js');
            return texts.map((t) => {
                try { parseYaml(t); return null } catch (e) { return e.message }
            });
        }""",
        ["a: 1\n  b: 2", "a: &anchor 1", "a: 1\na: 2", "a:\n\tb: 1"],
    )
    assert all(refused), refused


def test_a_chart_without_schema_is_launched_from_its_values_in_yaml(
    platform: Stack, page: Page, console: Console
) -> None:
    log_in(page, platform, "alice", "/launcher/fixtures/rstudio-lite")
    editor = page.get_by_label("Values", exact=True)
    expect(editor).to_contain_text("password: changeme")
    text = editor.input_value()
    editor.fill(text.replace("password: changeme", "password: another-secret"))
    expect(page.locator("#validity")).to_have_text("Your settings are valid.")
    # Broken YAML is explained next to the editor, before anything reaches the server.
    editor.fill(text.replace("  cpu: 100m", "    cpu: 100m"))
    error = page.locator("#raw-values-error")
    expect(error).to_contain_text("line")
    expect(editor).to_have_attribute("aria-invalid", "true")
    editor.fill(text.replace("password: changeme", "password: another-secret"))
    expect(page.locator("#validity")).to_have_text("Your settings are valid.")
    page.get_by_role("button", name="Save configuration").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("R with my password")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator("#toasts")).to_contain_text("saved")
    project = json_of(api(platform, page).get("/api/me"))["projects"][0]["id"]
    saved = json_of(api(platform, page).get(f"/api/projects/{project}/saved"))
    mine = next(s for s in saved if s["name"] == "R with my password")
    # Only what changed is kept.
    assert mine["values"] == {"password": "another-secret"}
    assert console.problems == []
