"""Schemathesis over the app's own /openapi.json, against the app served on the local control
plane with a real OpenID Provider and a real S3 server: once as a normal user (an API token
with the read and launch scopes) and once as an administrator (the provider's access token).
No answer may be a 5xx, and each must have a status, content type and body the document
declares. Settings in schemathesis.toml beside this file; each run is bounded by time.

Each caller has a running service before the run, and most generated projects, namespaces,
releases, catalogues and charts name real ones (the caller's own, and one of the other
caller's), so requests reach the code behind "not a member" and "no such service". Nothing is
excluded: logging out with a bearer token ends no session, tokens are revoked only by their
owner's login, and the small quota bounds how many services the fuzzer can launch."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD
from devtools.localrgw import LocalRgw
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..support import wait_for_catalogs
from .oidc_stack import Stack, bearer, stack
from .s3_stack import s3_settings, trust
from .services.helpers import CHARTS

CONFIG = Path(__file__).with_name("schemathesis.toml")
REPOSITORY = Path(__file__).parents[2]
# Seconds of generated requests per caller; `make test` keeps the default (two callers).
FUZZ_SECONDS = int(os.environ.get("ONYXIA_FUZZ_SECONDS", "50"))


@dataclass(frozen=True)
class Fuzzed:
    """The platform under test and what exists in it."""

    stack: Stack
    projects: dict[str, list[str]]  # by caller: theirs first, then one of the other's
    releases: list[str]


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("fuzz")
    prefix = f"f{tag}"
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"{prefix}-",
            group_namespace_prefix=f"{prefix}g-",
            # A few services per project: launches and relaunches stop at the quota.
            user_quota={"requests.cpu": "4", "requests.memory": "16Gi", "count/pods": "4"},
            group_quota={"requests.cpu": "4", "requests.memory": "16Gi", "count/pods": "4"},
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "s3": s3_settings(rgw, tag),
    }
    with stack(tmp, settings=overrides, access_token_ttl=900) as running:
        trust(rgw, running.provider)
        wait_for_catalogs(httpx.get, running.url)
        releases = [
            launch(running, bearer(running.tokens(name, password)["access_token"]))
            for name, password in (("alice", ALICE_PASSWORD), ("bob", BOB_PASSWORD))
        ]
        alice, bob, stats = f"{prefix}-alice", f"{prefix}-bob", f"{prefix}g-stats"
        yield Fuzzed(running, {"admin": [alice, stats, bob], "user": [bob, alice]}, releases)
    for name in (f"{prefix}-alice", f"{prefix}-bob", f"{prefix}g-stats"):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


def launch(platform: Stack, headers: dict[str, str]) -> str:
    """A running Jupyter in the caller's personal project; its release."""
    project = httpx.get(f"{platform.url}/api/me", headers=headers).json()["projects"][0]["id"]
    answer = httpx.post(
        f"{platform.url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "jupyter-python"},
        headers=headers,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    with httpx.stream(
        "GET", platform.url + answer.json()["events_url"], headers=headers, timeout=120
    ) as events:
        last = [line for line in events.iter_lines() if line.startswith("data: ")][-1]
    assert '"running"' in last, last
    release: str = answer.json()["release"]
    return release


def dictionary(path: Path, values: list[str]) -> None:
    """A Schemathesis dictionary file: one quoted value a line."""
    path.write_text("".join(f'"{v}"\n' for v in values))


def user_token(platform: Stack) -> str:
    """bob (no admin role): an API token with the read and launch scopes."""
    login = bearer(platform.tokens("bob", BOB_PASSWORD)["access_token"])
    made = httpx.post(
        f"{platform.url}/api/tokens",
        json={"name": "fuzz", "scopes": ["read", "launch"]},
        headers=login,
    )
    assert made.status_code == 201, made.text
    token: str = made.json()["token"]
    return token


def admin_token(platform: Stack) -> str:
    """alice (admin role): the provider's access token, every scope."""
    token: str = platform.tokens("alice", ALICE_PASSWORD)["access_token"]
    return token


def failures(report: dict[str, Any]) -> list[str]:
    """One line per failed check of a Schemathesis JSON report, with the operations it failed
    on; and one per error (a request that could not be made, a schema it could not read)."""
    found = [f"{f['code']} {f['title']}: {', '.join(f['operations'])}" for f in report["failures"]]
    return found + [f"error: {json.dumps(e)[:500]}" for e in report["errors"]]


def details(output: str) -> str:
    """The FAILURES section of Schemathesis' output: each failure with a curl to reproduce it."""
    start = output.find("= FAILURES =")
    end = output.find("= WARNINGS =", start) if start >= 0 else -1
    return output[start:end] if start >= 0 else output[-5000:]


@pytest.mark.parametrize("caller", ["user", "admin"])
def test_the_api_answers_as_its_document_declares(
    platform: Fuzzed, caller: str, tmp_path: Path
) -> None:
    served = platform.stack
    token = user_token(served) if caller == "user" else admin_token(served)
    config = tmp_path / CONFIG.name
    shutil.copyfile(CONFIG, config)
    dictionary(tmp_path / "projects.dict", platform.projects[caller])
    dictionary(tmp_path / "releases.dict", platform.releases)
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{served.url}/openapi.json",
        "--max-time",
        str(FUZZ_SECONDS),
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    started = time.monotonic()
    run = subprocess.run(
        command,
        env={**os.environ, "ONYXIA_FUZZ_TOKEN": token, "PYTHONPATH": str(REPOSITORY)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS * 4 + 60,
        check=False,
    )
    took = time.monotonic() - started
    output = run.stdout + run.stderr
    print(f"schemathesis as {caller}: {took:.0f} s, exit {run.returncode}\n{output[-3000:]}")
    assert report.exists(), output[-5000:]
    failed = failures(json.loads(report.read_text()))
    assert failed == [], f"as {caller}:\n" + "\n".join(failed) + "\n\n" + details(output)
    assert run.returncode == 0, output[-5000:]
