"""Onyxia's configuration, regions, onboarding and launcher schemas against the real components:
the real OpenID Provider (bearer access tokens, as the Onyxia web sends them), a real chart
repository, the real API server and the session's RADOS Gateway. Answers are validated by the
pydantic models written from Onyxia's API; the web's own STS call is made as the web makes it,
from what /public/configuration says."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from devtools.helmrepo import HelmRepoServer
from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, default_users
from devtools.localrgw import LocalRgw
from onyxia_py.catalog.schema import bundled_schema_dir
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.onyxia_compat.models import ConfigurationOut, RegionOut
from onyxia_py.settings import (
    CatalogSettings,
    KubernetesSettings,
    OnyxiaCompatSettings,
    ProjectSettings,
)

from ..support import wait_for_catalogs
from .oidc_stack import Stack, bearer, stack
from .s3_stack import s3_settings, trust
from .test_onyxia_compat import catalogs, get, problem, repo

__all__ = ["repo"]  # the chart repository fixture, shared with test_onyxia_compat

WEB = "https://onyxia-web.example.org"
ADMIN_CPU_MAX = 2000  # alice has the role admin; bob has none
CHART_CPU_MAX = 40000  # jupyter-lite's own resources.requests.cpu
CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


def role_schemas(tmp: Path) -> Path:
    """An operator's registry: `ide/resources.json` with a lower CPU bound for role admin."""
    schemas = tmp / "schemas"
    bundled = json.loads((bundled_schema_dir() / "ide" / "resources.json").read_text())
    bundled["properties"]["requests"]["properties"]["cpu"]["sliderMax"] = ADMIN_CPU_MAX
    target = schemas / "roles" / "admin" / "ide" / "resources.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(bundled))
    return schemas


@pytest.fixture(scope="module")
def region_stack(
    tmp_path_factory: pytest.TempPathFactory,
    repo: HelmRepoServer,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("onyxia-regions")
    settings = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"r{tag}-", group_namespace_prefix=f"rg{tag}-"
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=catalogs(repo.url),
            cache_dir=tmp / "cache",
            schemas_dir=role_schemas(tmp),
        ),
        "s3": s3_settings(rgw, tag, bucket_cors_origins=[WEB]),
        "onyxia_compat": OnyxiaCompatSettings(cors_allowed_origins=[WEB]),
    }
    with stack(tmp, settings=settings, users=default_users()) as running:
        trust(rgw, running.provider)
        wait_for_catalogs(httpx.get, running.url)
        try:
            yield running
        finally:
            for namespace in (f"r{tag}-alice", f"rg{tag}-stats", f"r{tag}-bob"):
                with contextlib.suppress(NotFound):
                    kube.request_sync("DELETE", f"/api/v1/namespaces/{namespace}", body={})


@pytest.fixture(scope="module")
def alice_tokens(region_stack: Stack) -> dict[str, Any]:
    return region_stack.tokens("alice", ALICE_PASSWORD)


@pytest.fixture(scope="module")
def alice(alice_tokens: dict[str, Any]) -> dict[str, str]:
    return bearer(alice_tokens["access_token"])


@pytest.fixture(scope="module")
def bob(region_stack: Stack) -> dict[str, str]:
    return bearer(region_stack.tokens("bob", BOB_PASSWORD)["access_token"])


def post(s: Stack, path: str, headers: dict[str, str], body: Any) -> httpx.Response:
    return httpx.post(f"{s.url}/api{path}", headers=headers, json=body, timeout=60)


def test_the_configuration_describes_the_region_and_the_sign_in(
    region_stack: Stack, tag: str
) -> None:
    s = region_stack
    body = get(s, "/public/configuration").json()
    config = ConfigurationOut.model_validate(body)
    oidc = config.oidc_configuration
    assert oidc is not None
    assert (oidc.issuer_uri, oidc.client_id) == (s.provider.issuer, "onyxia")
    assert "openid" in oidc.scope.split()
    [region] = config.regions
    assert region.services.namespace_prefix == f"r{tag}-"
    assert region.services.group_namespace_prefix == f"rg{tag}-"
    assert region.services.quotas.user == s.settings.projects.user_quota
    assert region.data is not None
    [entry] = region.data.s3
    assert entry.url == s.settings.s3.endpoint_url
    assert entry.sts is not None
    assert entry.sts.role.role_arn == f"arn:aws:iam:::role/t{tag}-$1"
    regions = get(s, "/public/regions").json()
    assert [RegionOut.model_validate(r) for r in regions] == config.regions


def test_onboarding_creates_the_namespace_and_is_idempotent(
    region_stack: Stack, tag: str, alice: dict[str, str], kube: KubeClient
) -> None:
    s = region_stack
    for _ in range(2):
        answer = post(s, "/onboarding", alice, {})
        assert answer.status_code == 200, answer.text
    namespace = kube.request_sync("GET", f"/api/v1/namespaces/r{tag}-alice")
    assert namespace["metadata"]["labels"]["onyxia_owner"] == "alice"
    group = post(s, "/onboarding", alice, {"group": "stats"})
    assert group.status_code == 200, group.text
    kube.request_sync("GET", f"/api/v1/namespaces/rg{tag}-stats")
    kube.request_sync("GET", f"/api/v1/namespaces/rg{tag}-stats/resourcequotas/onyxia-quota")


def test_onboarding_a_foreign_group_is_forbidden(
    region_stack: Stack, tag: str, alice: dict[str, str], kube: KubeClient
) -> None:
    found = problem(post(region_stack, "/onboarding", alice, {"group": "economics"}), 403)
    assert "economics" in found.detail
    with pytest.raises(NotFound):
        kube.request_sync("GET", f"/api/v1/namespaces/rg{tag}-economics")
    problem(post(region_stack, "/onboarding", {}, {}), 401)


def cpu_of(schema: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = schema["properties"]["resources"]["properties"]["requests"]
    return dict(node["properties"]["cpu"])


def test_the_launcher_schema_is_resolved_for_the_callers_roles(
    region_stack: Stack, alice: dict[str, str], bob: dict[str, str]
) -> None:
    s = region_stack
    path = "/my-lab/schemas/ide/charts/jupyter-lite/versions/"
    versions = get(s, "/my-lab/catalogs/ide/charts/jupyter-lite", alice).json()
    version = versions[0]["version"]
    mine = get(s, path + version, alice)
    assert mine.status_code == 200, mine.text
    theirs = get(s, path + version, bob)
    assert theirs.status_code == 200, theirs.text
    # The registry's schema replaced the chart's node; the admin role's override bounds CPU.
    assert cpu_of(mine.json())["sliderMax"] == ADMIN_CPU_MAX
    # Without a role override the chart's own inline bound ranks above the bundled schema's.
    assert cpu_of(theirs.json())["sliderMax"] == CHART_CPU_MAX
    assert cpu_of(theirs.json())["x-onyxia"]["useRegionSliderConfig"] == "cpu"
    # A chart without a schema: an empty body, as Onyxia answers.
    rstudio = get(s, "/my-lab/catalogs/ide/charts/rstudio-lite", alice).json()[0]["version"]
    empty = get(s, f"/my-lab/schemas/ide/charts/rstudio-lite/versions/{rstudio}", alice)
    assert empty.status_code == 200
    assert empty.content == b""
    problem(get(s, path + "99.99.99", alice), 404)
    problem(get(s, "/my-lab/schemas/ops-only/charts/jupyter-lite/versions/" + version, alice), 404)
    problem(get(s, path + version, {**alice, "ONYXIA-PROJECT": "no-such-project"}), 403)


def test_the_webs_own_sts_call_works_with_the_served_role(
    region_stack: Stack, rgw: LocalRgw, tag: str, alice_tokens: dict[str, Any]
) -> None:
    s = region_stack
    token = alice_tokens["access_token"]
    # The web onboards its project first: that provisions alice's role.
    assert post(s, "/onboarding", bearer(token), {}).status_code == 200
    config = ConfigurationOut.model_validate(get(s, "/public/configuration").json())
    [entry] = config.regions[0].data.s3  # type: ignore[union-attr]
    sts = entry.sts
    assert sts is not None
    role = sts.role
    # As the web resolves a templated role: the claim of the ID token, matched by the pattern.
    claims = id_token_claims(alice_tokens["id_token"])
    assert role.claim_name is not None
    assert role.included_claim_pattern is not None
    match = re.match(role.included_claim_pattern, claims[role.claim_name])
    assert match is not None

    def fill(text: str) -> str:
        return re.sub(r"\$(\d+)", lambda m: match.group(int(m.group(1))) or "", text)

    client = boto3.client(
        "sts",
        endpoint_url=sts.url,
        region_name=entry.region,
        aws_access_key_id="anonymous",
        aws_secret_access_key="anonymous",
        config=CONFIG,
    )
    creds = client.assume_role_with_web_identity(
        RoleArn=fill(role.role_arn),
        RoleSessionName=fill(role.role_session_name),
        WebIdentityToken=token,
        DurationSeconds=sts.duration_seconds,
    )["Credentials"]
    s3 = boto3.client(
        "s3",
        endpoint_url=entry.url,
        region_name=entry.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=CONFIG,
    )
    bucket = fill(entry.bookmarks[0].s3_uri).removeprefix("s3://").rstrip("/")
    assert bucket == f"u{tag}-alice"
    s3.head_bucket(Bucket=bucket)  # onboarding made it, so the explorer finds it
    s3.put_object(Bucket=bucket, Key="from-the-web.txt", Body=b"hello")
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == ["from-the-web.txt"]
    # The browser's own calls on the bucket pass CORS for the web's origin only.
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"][0]["AllowedOrigins"] == [WEB]
    for origin, allowed in ((WEB, True), ("https://elsewhere.example.org", False)):
        answer = httpx.options(
            f"{entry.url}/{bucket}/from-the-web.txt",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization,x-amz-date,x-amz-security-token",
            },
            timeout=10,
        )
        assert (answer.headers.get("access-control-allow-origin") == origin) is allowed, (
            origin,
            answer.status_code,
            dict(answer.headers),
        )


def id_token_claims(token: str) -> dict[str, Any]:
    """The payload of an ID token, read as the web's oidc-spa reads it (no check needed)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def preflight(s: Stack, path: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{s.url}/api{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,onyxia-project",
        },
        timeout=10,
    )


def test_cors_preflight_for_the_configured_origin_only(region_stack: Stack) -> None:
    allowed = preflight(region_stack, "/onboarding", WEB)
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["access-control-allow-origin"] == WEB
    assert "access-control-allow-credentials" not in allowed.headers
    refused = preflight(region_stack, "/onboarding", "https://elsewhere.example.org")
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    # An answer the web reads from its origin (a 401 too: it must see the status).
    denied = httpx.get(f"{region_stack.url}/api/user/info", headers={"Origin": WEB}, timeout=10)
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == WEB
