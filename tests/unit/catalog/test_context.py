"""The onyxia context built on the server, and path lookups into it."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from onyxia_py.catalog.context import (
    MISSING,
    ContextProject,
    ContextRegion,
    ContextS3,
    ContextUser,
    build_context,
    lookup,
)
from onyxia_py.catalog.launch import region_context
from onyxia_py.settings import RegionSettings, SliderBounds


def test_context_holds_the_paths_charts_use(context: dict[str, Any]) -> None:
    assert context["user"] == {
        "idep": "alice",
        "name": "Alice Martin",
        "email": "alice@example.org",
        "password": "s3rv1ce",
        "ip": "203.0.113.7",
        "lang": "fr",
        "darkMode": False,
        "decodedIdToken": {"sub": "42", "groups": ["data", "sspcloud-admin"]},
        "profile": {"git": {"token": "ghp_x", "name": "alice-m"}},
    }
    assert context["service"] == {"oneTimePassword": "one-time-pw-123"}
    assert context["project"]["id"] == "user-alice"
    assert context["project"]["password"] == "s3rv1ce"
    assert base64.b64decode(context["project"]["basic"]) == b"user-alice:s3rv1ce"
    assert context["k8s"] == {
        "domain": "lab.example.org",
        "ingressClassName": "nginx",
        "ingress": True,
        "route": False,
        "istio": {"enabled": False, "gateways": []},
        "useCertManager": False,
        "randomSubdomain": "123456",
        "initScriptUrl": "https://example.org/init.sh",
    }
    assert context["region"]["nodeSelector"] == {"pool": "cpu"}
    assert context["region"]["from"] == [{"namespaceSelector": {}}]
    assert context["region"]["defaultNetworkPolicy"] is True
    assert context["packageRepositoryInjection"] == {
        "pypiProxyUrl": "https://pypi.example.org/simple"
    }
    assert "proxyInjection" not in context
    assert "certificateAuthorityInjection" not in context
    assert context["vault"] == {}


def test_git_comes_from_the_profile_then_the_user(context: dict[str, Any]) -> None:
    assert context["git"] == {
        "name": "alice-m",
        "email": "alice@example.org",
        "token": "ghp_x",
        "credentials_cache_duration": 0,
    }


def test_s3_paths_and_array(context: dict[str, Any]) -> None:
    expected = {
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-key",
        "AWS_SESSION_TOKEN": "session",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_S3_ENDPOINT": "minio.example.org",
        "AWS_BUCKET_NAME": "user-alice",
        "port": 443,
        "pathStyleAccess": True,
        "isAnonymous": False,
        "profileName": "default",
        "workingDirectoryPath": "user-alice/",
    }
    assert context["s3"] == expected
    assert context["s3_array"] == [expected]


def test_anonymous_s3_on_an_unusual_port(
    user: ContextUser, project: ContextProject, region: ContextRegion
) -> None:
    s3 = ContextS3(None, None, None, "eu-west-3", "s3.local", port=9000)
    ctx = build_context(user, project, region, s3=s3)
    assert ctx["s3"]["AWS_S3_ENDPOINT"] == "s3.local:9000"
    assert ctx["s3"]["isAnonymous"] is True
    assert lookup(ctx, "s3.AWS_ACCESS_KEY_ID") is MISSING


def test_without_s3_the_paths_are_missing(
    user: ContextUser, project: ContextProject, region: ContextRegion
) -> None:
    ctx = build_context(user, project, region, s3=None)
    assert "s3" not in ctx
    assert ctx["s3_array"] == []


def test_the_users_access_token_never_reaches_a_release(
    user: ContextUser, project: ContextProject, region: ContextRegion
) -> None:
    ctx = build_context(user, project, region, s3=None)
    assert "accessToken" not in ctx["user"]


def test_random_parts_are_random_when_not_given(
    user: ContextUser, project: ContextProject, region: ContextRegion
) -> None:
    contexts = [build_context(user, project, region, s3=None) for _ in "ab"]
    passwords = {ctx["service"]["oneTimePassword"] for ctx in contexts}
    assert len(passwords) == 2
    for ctx in contexts:
        assert ctx["service"]["oneTimePassword"].isalnum()
        assert len(ctx["service"]["oneTimePassword"]) >= 20
        subdomain = ctx["k8s"]["randomSubdomain"]
        assert subdomain.isdigit()
        assert 6 <= len(subdomain) <= 9


def test_missing_optional_user_fields_are_left_out(
    project: ContextProject, region: ContextRegion
) -> None:
    bare = ContextUser("bob", "bob", None, (), (), "en", None, {}, {})
    ctx = build_context(bare, project, region, s3=None)
    assert "email" not in ctx["user"]
    assert "ip" not in ctx["user"]
    assert "accessToken" not in ctx["user"]
    assert ctx["git"] == {"name": "bob", "credentials_cache_duration": 0}


def test_the_context_does_not_share_state_with_its_inputs(
    user: ContextUser, project: ContextProject, region: ContextRegion
) -> None:
    ctx = build_context(user, project, region, s3=None)
    ctx["region"]["nodeSelector"]["pool"] = "changed"
    ctx["user"]["decodedIdToken"]["sub"] = "changed"
    assert region.node_selector == {"pool": "cpu"}
    assert user.decoded_id_token["sub"] == "42"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("user.email", "alice@example.org"),
        ("  user.lang ", "fr"),
        ("user.decodedIdToken.groups", ["data", "sspcloud-admin"]),
        ("user.decodedIdToken.groups[1]", "sspcloud-admin"),
        ("user.decodedIdToken.groups.0", "data"),
        ('user["decodedIdToken"].sub', "42"),
        ("s3_array[0].profileName", "default"),
        ("k8s.ingress", True),
    ],
)
def test_lookup_finds_values(context: dict[str, Any], path: str, expected: object) -> None:
    assert lookup(context, path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "user.nothing",
        "nothing.at.all",
        "user.decodedIdToken.groups[5]",
        "user.email.length",
        "",
        "user..email",
        ".user",
        "user.",
        "git.project",
        "a b",
    ],
)
def test_lookup_reports_missing_paths(context: dict[str, Any], path: str) -> None:
    assert lookup(context, path) is MISSING


def test_lookup_treats_null_as_missing() -> None:
    assert lookup({"a": {"b": None}}, "a.b") is MISSING


def test_every_region_value_comes_from_the_settings() -> None:

    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}]
    settings = RegionSettings(
        domain="apps.example.org",
        ingress_class="internal",
        route=True,
        istio_enabled=True,
        istio_gateways=["istio-system/public"],
        network_policy_from=peers,
        oauth2={"clientId": "charts", "issuerURI": "https://sso.example.org"},
        custom_values={"site": "paris"},
        kubernetes_enabled=False,
        kubernetes_role="edit",
        proxy={"enabled": True, "httpProxyUrl": "http://proxy:3128", "noProxy": ".svc"},
        package_repositories={"pypiProxyUrl": "https://pypi.example.org/simple"},
        certificate_authority="Q0E=",
        certificate_authority_path="/etc/ssl/certs/ca.pem",
        sliders={"cpu": SliderBounds(max=16000, unit="m")},
    )
    user = ContextUser("bob", "bob", None, (), (), "en", None, {}, {})
    project = ContextProject("user-bob", "user-bob", None, "pw")
    context = build_context(user, project, region_context(settings), s3=None)
    assert context["k8s"]["domain"] == "apps.example.org"
    assert context["k8s"]["ingressClassName"] == "internal"
    assert context["k8s"]["route"] is True
    assert context["k8s"]["istio"] == {"enabled": True, "gateways": ["istio-system/public"]}
    assert context["region"]["from"] == peers
    assert context["region"]["oauth2"] == {
        "clientId": "charts",
        "issuerURI": "https://sso.example.org",
    }
    assert context["region"]["customValues"] == {"site": "paris"}
    assert context["region"]["sliders"] == {"cpu": {"sliderUnit": "m", "sliderMax": 16000}}
    assert context["kubernetes"] == {"enabled": False, "role": "edit"}
    assert context["proxyInjection"] == settings.proxy
    assert context["packageRepositoryInjection"] == settings.package_repositories
    assert context["certificateAuthorityInjection"] == {
        "cacerts": "Q0E=",
        "pathToCaBundle": "/etc/ssl/certs/ca.pem",
    }


def test_region_defaults_are_onyxias() -> None:

    user = ContextUser("bob", "bob", None, (), (), "en", None, {}, {})
    project = ContextProject("user-bob", "user-bob", None, "pw")
    context = build_context(user, project, region_context(RegionSettings()), s3=None)
    assert context["k8s"]["istio"] == {"enabled": False, "gateways": []}
    assert context["k8s"]["route"] is False
    assert "ingressClassName" not in context["k8s"]
    assert context["region"]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert context["region"]["oauth2"] == {}
    assert context["region"]["customValues"] == {}
    assert context["region"]["sliders"] == {}
    assert context["kubernetes"] == {"enabled": True, "role": "view"}
    for absent in ("proxyInjection", "packageRepositoryInjection", "certificateAuthorityInjection"):
        assert absent not in context
    # Paths a chart reads under them resolve to nothing, so the chart keeps its own default.
    assert lookup(context, "region.oauth2.clientId") is MISSING
    assert lookup(context, "proxyInjection.httpProxyUrl") is MISSING
