"""Every example the docs give works as shown: settings examples load (a refused example costs
a new operator their first hour), and policy documents are the compact JSON RGW accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from onyxia_py.settings import Settings

DOCS = Path(__file__).parents[2] / "docs"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
GROUPS = set(Settings.model_fields)
OIDC_BASE: dict[str, Any] = {
    "auth": {"mode": "oidc", "issuer_url": "https://sso.example.org", "client_id": "onyxia"},
    "server": {"session_secret": "an-example-secret-of-at-least-32-characters"},
}


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in sorted(DOCS.glob("*.md")):
        for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
            if match.group(1) == language:
                found.append((page.name, match.group(2)))
    return found


def settings_examples() -> list[tuple[str, str]]:
    """YAML blocks made only of settings groups (others are charts' values, manifests...)."""
    found = []
    for page, text in blocks("yaml"):
        data = yaml.safe_load(text)
        if isinstance(data, dict) and data and set(data) <= GROUPS:
            found.append((page, text))
    return found


def test_the_docs_have_settings_examples() -> None:
    pages = {page for page, _ in settings_examples()}
    assert {"configuration.md", "s3.md"} <= pages, pages


@pytest.mark.parametrize(("page", "text"), settings_examples())
def test_each_settings_example_loads(page: str, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Secrets an example says to give as environment variables (in a comment) are given so.
    comments = [line.partition("#")[2] for line in text.splitlines() if "#" in line]
    for variable in re.findall(r"\bONYXIA_[A-Z0-9_]+", "\n".join(comments)):
        monkeypatch.setenv(variable, "an-example-value-of-the-right-shape")
    example = yaml.safe_load(text)
    # An example of one group goes on top of an OIDC installation (as S3 web identity needs).
    base = {} if "auth" in example else OIDC_BASE
    Settings(**{**base, **example})


@pytest.mark.parametrize(("page", "text"), blocks("json"))
def test_each_json_example_parses_and_is_compact(page: str, text: str) -> None:
    json.loads(text)
    assert "\n" not in text.strip(), f"{page}: write JSON on one line (RGW refuses whitespace)"
