"""The region, configuration and CORS of Onyxia's API, built from settings (no server reached:
the app runs without its lifespan, so nothing loads and no database is opened)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.app import create_app
from onyxia_py.errors import Forbidden
from onyxia_py.onyxia_compat.models import ConfigurationOut, RegionOut
from onyxia_py.onyxia_compat.regions import (
    SAFE_NAME_PATTERN,
    oidc_configuration,
    onboarded_project,
    region_out,
    s3_entry,
    url_port,
    web_identity,
)
from onyxia_py.projects.core import projects_of
from onyxia_py.settings import (
    AuthMode,
    AuthSettings,
    DatabaseSettings,
    KubernetesSettings,
    OnyxiaCompatSettings,
    ProjectSettings,
    RegionSettings,
    S3CredentialsMode,
    S3Settings,
    ServerSettings,
    Settings,
)
from onyxia_py.storage.core import name_part

WEB = "https://onyxia.example.org"


def s3(**overrides: object) -> S3Settings:
    values: dict[str, object] = {
        "enabled": True,
        "endpoint_url": "https://rgw.example.org/",
        "region": "eu-west-3",
        "role_arn": "arn:aws:iam:::role/onyxia-{username}",
        "duration_seconds": 3600,
        "refresh_before_seconds": 600,
    }
    values.update(overrides)
    return S3Settings(**values)


def oidc() -> AuthSettings:
    return AuthSettings(
        mode=AuthMode.OIDC,
        issuer_url="https://sso.example.org/realms/lab",
        client_id="onyxia-py",
        client_secret=SecretStr("x"),
        audience="onyxia",
        scopes=["openid", "profile", "groups"],
    )


def with_oidc(**groups: Any) -> Settings:
    """Settings with OIDC (S3 web identity needs it; the web does too)."""
    server = ServerSettings(session_secret=SecretStr("a-test-secret-of-at-least-32-characters"))
    return Settings(auth=oidc(), server=server, **groups)


def test_the_region_carries_our_settings_in_onyxias_names() -> None:
    settings = Settings(
        region=RegionSettings(
            domain="lab.example.org",
            ingress_class="nginx",
            service_url_template="http://{host}:8080",
            istio_enabled=True,
            istio_gateways=["istio-system/gw"],
            use_cert_manager=True,
            cert_manager_issuer="letsencrypt",
            custom_values={"site": "paris"},
            init_script_url="https://example.org/init.sh",
            proxy={"enabled": True, "httpProxyUrl": "http://proxy:3128", "noProxy": ".svc"},
            package_repositories={"pypiProxyUrl": "https://pypi.example.org/simple"},
            certificate_authority="LS0tLS1CRUdJTg==",
        ),
        projects=ProjectSettings(
            user_namespace_prefix="u-",
            group_namespace_prefix="g-",
            kubernetes_user_prefix="oidc:",
            kubernetes_group_prefix="oidc:",
            role_quotas={"big": {"requests.cpu": "64"}},
        ),
        kubernetes=KubernetesSettings(public_url="https://k8s.example.org:6443"),
    )
    wire = region_out(settings).model_dump(by_alias=True, exclude_none=True)
    RegionOut.model_validate(wire)
    services = wire["services"]
    assert services["singleNamespace"] is False
    assert services["allowNamespaceCreation"] is True
    assert (services["namespacePrefix"], services["groupNamespacePrefix"]) == ("u-", "g-")
    assert (services["usernamePrefix"], services["groupPrefix"]) == ("oidc:", "oidc:")
    assert services["quotas"]["userEnabled"]
    assert services["quotas"]["groupEnabled"]
    assert services["quotas"]["user"] == settings.projects.user_quota
    assert services["quotas"]["roles"] == {"big": {"requests.cpu": "64"}}
    assert services["expose"] == {
        "domain": "lab.example.org",
        "ingress": True,
        "route": False,
        "ingressClassName": "nginx",
        "ingressPort": 8080,
        "istio": {"enabled": True, "gateways": ["istio-system/gw"]},
        "certManager": {"useCertManager": True, "certManagerClusterIssuer": "letsencrypt"},
    }
    assert services["k8sPublicEndpoint"] == {"URL": "https://k8s.example.org:6443"}
    assert services["customValues"] == {"site": "paris"}
    assert services["initScript"] == "https://example.org/init.sh"
    # Credentials of the cluster and the legacy default configuration are never served.
    assert "server" not in services
    assert "defaultConfiguration" not in services
    assert wire["proxyInjection"] == {
        "enabled": True,
        "httpProxyUrl": "http://proxy:3128",
        "noProxy": ".svc",
    }
    assert wire["packageRepositoryInjection"] == {"pypiProxyUrl": "https://pypi.example.org/simple"}
    assert wire["certificateAuthorityInjection"] == {"cacerts": "LS0tLS1CRUdJTg=="}
    assert "data" not in wire  # no S3


def test_a_bare_region_leaves_out_what_is_not_configured() -> None:
    wire = region_out(Settings()).model_dump(by_alias=True, exclude_none=True)
    expose = wire["services"]["expose"]
    assert "ingressPort" not in expose  # https://{host}: the default port
    assert "ingressClassName" not in expose
    assert "k8sPublicEndpoint" not in wire["services"]
    for key in ("data", "proxyInjection", "packageRepositoryInjection"):
        assert key not in wire
    assert "certificateAuthorityInjection" not in wire


@pytest.mark.parametrize(
    ("template", "port"),
    [("https://{host}", None), ("http://{host}:8080", 8080), ("https://{host}:443/x", 443)],
)
def test_the_ingress_port_is_the_one_service_urls_carry(template: str, port: int | None) -> None:
    assert url_port(template) == port


def test_a_per_user_role_becomes_the_webs_claim_template() -> None:
    entry = s3_entry(with_oidc(s3=s3(sts_endpoint_url="https://sts.example.org/")))
    assert entry is not None
    wire = entry.model_dump(by_alias=True, exclude_none=True)
    assert (wire["URL"], wire["region"], wire["pathStyleAccess"]) == (
        "https://rgw.example.org",
        "eu-west-3",
        True,
    )
    assert wire["sts"] == {
        "URL": "https://sts.example.org",
        "durationSeconds": 3600,
        "role": {
            "roleARN": "arn:aws:iam:::role/onyxia-$1",
            "roleSessionName": "onyxia-$1",
            "profileName": "default",
            "claimName": "preferred_username",
            "includedClaimPattern": SAFE_NAME_PATTERN,
        },
    }
    assert [b["s3Uri"] for b in wire["bookmarks"]] == ["s3://user-$1/", "s3://projet-$1/"]


@pytest.mark.parametrize(
    "username", ["alice", "bob-2", "a", "x" * 40, "Alice", "bob.smith", "x" * 41, "-x", "é"]
)
def test_the_web_fills_in_exactly_the_names_we_keep_as_they_are(username: str) -> None:
    # The web substitutes the claim matched by the pattern; anything else we hash, and the web
    # gets no profile for it rather than a wrong role.
    matched = re.fullmatch(SAFE_NAME_PATTERN, username) is not None
    assert matched == (name_part(username) == username)


def test_a_shared_role_needs_no_claim() -> None:
    entry = s3_entry(
        with_oidc(s3=s3(role_arn="arn:minio:iam:::role/lab", role_session_name="onyxia"))
    )
    assert entry is not None
    assert entry.sts is not None
    role = entry.sts.role.model_dump(by_alias=True, exclude_none=True)
    assert role == {
        "roleARN": "arn:minio:iam:::role/lab",
        "roleSessionName": "onyxia",
        "profileName": "default",
    }
    assert entry.sts.url == "https://rgw.example.org"  # STS at the S3 endpoint by default


def test_assume_role_mode_offers_the_web_no_sts() -> None:
    entry = s3_entry(
        Settings(
            s3=s3(
                credentials_mode=S3CredentialsMode.ASSUME_ROLE,
                access_key_id=SecretStr("k"),
                secret_access_key=SecretStr("s"),
            )
        )
    )
    assert entry is not None
    # The web can only call AssumeRoleWithWebIdentity: the entry pre-fills its own S3 form.
    assert entry.sts is None
    assert entry.bookmarks == []


def test_the_web_gets_the_endpoints_a_browser_reaches() -> None:
    inside = {"endpoint_url": "http://rgw.storage.svc:8080", "sts_endpoint_url": None}
    public = s3_entry(with_oidc(s3=s3(**inside, public_endpoint_url="https://s3.example.org")))
    assert public is not None
    assert public.sts is not None
    assert (public.url, public.sts.url) == ("https://s3.example.org", "https://s3.example.org")
    own_sts = s3(**inside, public_sts_endpoint_url="https://sts.example.org/")
    entry = s3_entry(with_oidc(s3=own_sts))
    assert entry is not None
    assert entry.sts is not None
    # Without a public S3 endpoint, the one services use is all there is.
    assert (entry.url, entry.sts.url) == ("http://rgw.storage.svc:8080", "https://sts.example.org")


def test_rewritten_group_names_get_no_group_bookmark() -> None:
    settings = with_oidc(s3=s3(), projects=ProjectSettings(group_name_pattern="^/"))
    entry = s3_entry(settings)
    assert entry is not None
    assert [b.s3_uri for b in entry.bookmarks] == ["s3://user-$1/"]


def test_the_web_signs_in_with_its_own_client_when_one_is_set() -> None:
    assert oidc_configuration(Settings()) is None  # auth mode none
    base = Settings(auth=oidc(), server={"session_secret": SecretStr("s" * 40)})
    found = oidc_configuration(base)
    assert found is not None
    assert found.model_dump(by_alias=True, exclude_none=True) == {
        "issuerURI": "https://sso.example.org/realms/lab",
        "clientID": "onyxia-py",
        "extraQueryParams": "",
        "scope": "openid profile groups",
        "audience": "onyxia",
    }
    web = base.model_copy(update={"onyxia_compat": OnyxiaCompatSettings(web_client_id="web")})
    own = oidc_configuration(web)
    assert own is not None
    assert own.client_id == "web"


def test_onboarding_picks_the_callers_project_of_the_group() -> None:
    projects = projects_of("alice", ("stats", "ops"), ProjectSettings())
    assert onboarded_project(projects, None).id == "user-alice"
    assert onboarded_project(projects, "stats").id == "projet-stats"
    assert onboarded_project(projects, "projet-ops").id == "projet-ops"
    with pytest.raises(Forbidden, match="economics"):
        onboarded_project(projects, "economics")


@pytest.mark.parametrize(
    "origin", ["*", "onyxia.example.org", "https://onyxia.example.org/", "ftp://x", "https://"]
)
def test_cors_origins_must_be_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        OnyxiaCompatSettings(cors_allowed_origins=[origin])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    tmp: Path = tmp_path_factory.mktemp("regions")
    settings = Settings(
        kubernetes=KubernetesSettings(kubeconfig=tmp / "none"),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"),
        onyxia_compat=OnyxiaCompatSettings(cors_allowed_origins=[WEB]),
        # Auth mode none: S3 only with the platform's key (web identity needs OIDC tokens).
        s3=s3(
            credentials_mode=S3CredentialsMode.ASSUME_ROLE,
            access_key_id=SecretStr("k"),
            secret_access_key=SecretStr("s"),
        ),
    )
    return TestClient(create_app(settings))


def test_the_configuration_is_the_webs_first_call(client: TestClient) -> None:
    answer = client.get("/api/public/configuration")
    assert answer.status_code == 200
    body = answer.json()
    config = ConfigurationOut.model_validate(body)
    assert config.build.version
    assert "oidcConfiguration" not in body  # auth mode none
    [region] = config.regions
    assert region.data is not None
    assert region.data.s3[0].url == "https://rgw.example.org"
    assert region.data.s3[0].sts is None  # assume-role: the web cannot mint credentials itself
    assert client.get("/api/public/regions").json() == body["regions"]


def test_no_profile_form_is_an_empty_body(client: TestClient) -> None:
    answer = client.get("/api/profile/schema")
    assert answer.status_code == 200
    assert answer.content == b""


def preflight(client: TestClient, path: str, origin: str) -> dict[str, str]:
    answer = client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, onyxia-project, dpop",
        },
    )
    return {"status": str(answer.status_code), **answer.headers}


def test_cors_preflight_is_allowed_for_the_configured_origin_only(client: TestClient) -> None:
    allowed = preflight(client, "/api/onboarding", WEB)
    assert allowed["status"] == "200"
    assert allowed["access-control-allow-origin"] == WEB
    assert "POST" in allowed["access-control-allow-methods"]
    assert "ONYXIA-PROJECT" in allowed["access-control-allow-headers"]
    # Bearer tokens only: a page of that origin never rides on a session cookie.
    assert "access-control-allow-credentials" not in allowed
    refused = preflight(client, "/api/public/configuration", "https://evil.example.org")
    assert refused["status"] == "400"
    assert "access-control-allow-origin" not in refused


def test_answers_name_the_allowed_origin(client: TestClient) -> None:
    answer = client.get("/api/public/ip", headers={"Origin": WEB})
    assert answer.headers["access-control-allow-origin"] == WEB
    other = client.get("/api/public/ip", headers={"Origin": "https://evil.example.org"})
    assert "access-control-allow-origin" not in other.headers


def test_our_own_api_gets_no_cors_even_under_the_same_prefix(client: TestClient) -> None:
    for path in ("/api/catalogs", "/api/me", "/auth/session"):
        answer = preflight(client, path, WEB)
        assert "access-control-allow-origin" not in answer, path


def caller(method: AuthMethod, session_id: int | None = None) -> Principal:
    identity = Identity("https://sso", "sub-1", "alice", None, (), ())
    return Principal(1, identity, False, frozenset(Scope), method, session_id)


def request_with(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


@pytest.mark.parametrize("scheme", ["Bearer", "DPoP"])
def test_onboarding_mints_with_the_token_the_web_sent(scheme: str) -> None:
    hint = web_identity(request_with(f"{scheme} the-jwt"), caller(AuthMethod.BEARER))
    assert hint.web_token == "the-jwt"


def test_other_callers_mint_with_their_session() -> None:
    hint = web_identity(request_with("Bearer onyx_x"), caller(AuthMethod.API_TOKEN, 7))
    assert (hint.web_token, hint.session_id) == (None, 7)
    assert web_identity(request_with(None), caller(AuthMethod.SESSION, 3)).session_id == 3
