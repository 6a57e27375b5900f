"""The platform the service tests share per module: a real OpenID Provider with users, the app
on the local control plane, and bearer headers for alice (admin), bob and carol."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

import httpx
import pytest

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, OidcUser, default_users
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ...support import wait_for_catalogs
from ..oidc_stack import Stack, bearer, stack
from .helpers import CHARTS


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, kube_settings: KubernetesSettings, kube: KubeClient
) -> Iterator[Stack]:
    tag = secrets.token_hex(3)
    projects = ProjectSettings(
        user_namespace_prefix=f"s{tag}-",
        group_namespace_prefix=f"sg{tag}-",
        user_quota={
            "requests.cpu": "3",
            "requests.memory": "16Gi",
            "count/pods": "20",
            "requests.nvidia.com/gpu": "8",
        },
    )
    tmp = tmp_path_factory.mktemp("services")
    overrides = {
        "kubernetes": kube_settings,
        "projects": projects,
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": 60},
        # Records changed behind the platform's back are mirrored again at each pass.
        "services": {"reconcile_interval_seconds": 5, "reconcile_sweep_seconds": 5},
    }
    users = [
        *default_users(),
        OidcUser("carol", "carol-password", groups=["stats"]),
        OidcUser("dave", "dave-password"),
        OidcUser("erin", "erin-password"),
    ]
    with stack(tmp, settings=overrides, users=users) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    for name in (
        *(f"s{tag}-{u}" for u in ("alice", "bob", "carol", "dave", "erin")),
        f"sg{tag}-stats",
    ):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


@pytest.fixture(scope="module")
def alice(platform: Stack) -> dict[str, str]:
    return bearer(platform.tokens("alice", ALICE_PASSWORD)["access_token"])


@pytest.fixture(scope="module")
def carol(platform: Stack) -> dict[str, str]:
    return bearer(platform.tokens("carol", "carol-password")["access_token"])


@pytest.fixture(scope="module")
def bob(platform: Stack) -> dict[str, str]:
    return bearer(platform.tokens("bob", BOB_PASSWORD)["access_token"])
