"""S3 credentials in services, on the local control plane with a real S3 server (Ceph RGW) and
a real OpenID Provider: a launch puts fresh credentials in the `s3.*` context and in a Secret of
the project that the chart mounts; the refresh job rotates that Secret before the credentials
expire (900 s credentials renewed when less than 890 s are left, checked every second), skips
suspended services, and makes its failures visible; a broken S3 server only adds a warning."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from devtools.localoidc import OidcUser, default_users
from devtools.localrgw import LocalRgw
from devtools.ports import free_port
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ..support import wait_for_catalogs
from .oidc_stack import Stack, browser_login, csrf, launch_followed, stack
from .s3_stack import s3_settings, trust

CHARTS = Path(__file__).parents[2] / "charts"
PASSWORDS = {"dave": "dave-password", "erin": "erin-password", "frank": "frank-password"}


@contextlib.contextmanager
def platform_with(
    tmp: Path, kube_settings: KubernetesSettings, kube: KubeClient, s3: Any, tag: str
) -> Iterator[Stack]:
    overrides = {
        "kubernetes": kube_settings,
        "projects": ProjectSettings(
            user_namespace_prefix=f"s3{tag}-", group_namespace_prefix=f"s3g{tag}-"
        ),
        "catalogs": CatalogSettings(
            paths=[],
            definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": 60},
        "s3": s3,
    }
    users = [*default_users(), *(OidcUser(u, p) for u, p in PASSWORDS.items())]
    with stack(tmp, settings=overrides, users=users, access_token_ttl=120) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    for user in ("alice", "bob", *PASSWORDS):
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/s3{tag}-{user}", body={})


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory,
    kube_settings: KubernetesSettings,
    kube: KubeClient,
    rgw: LocalRgw,
    tag: str,
) -> Iterator[Stack]:
    s3 = s3_settings(rgw, tag, refresh_interval_seconds=1.0, refresh_before_seconds=890)
    tmp = tmp_path_factory.mktemp("s3-services")
    with platform_with(tmp, kube_settings, kube, s3, tag) as running:
        trust(rgw, running.provider)
        yield running


def launch(s: Stack, http: httpx.Client, project: str) -> tuple[str, list[dict[str, Any]]]:
    """Launch jupyter-python as the session of `http`; the release and the launch's events."""
    accepted, events = launch_followed(http, project, "jupyter-python")
    # The 202 answer carries the same warning as the first event, if any.
    warning = events[0]["message"].partition("; warning: ")[2] or None
    assert accepted["warning"] == warning
    return str(accepted["release"]), events


def secret_of(kube: KubeClient, namespace: str, release: str) -> dict[str, Any]:
    found: dict[str, Any] = kube.request_sync(
        "GET", f"/api/v1/namespaces/{namespace}/secrets/onyxia-s3-{release}"
    )
    return found


def value(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def works(rgw: LocalRgw, secret: dict[str, Any]) -> bool:
    """The Secret's credentials can list the bucket it names."""
    s3 = boto3.client(
        "s3",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=value(secret, "AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=value(secret, "AWS_SECRET_ACCESS_KEY"),
        aws_session_token=value(secret, "AWS_SESSION_TOKEN"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    bucket = value(secret, "AWS_BUCKET_NAME")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    s3.list_objects_v2(Bucket=bucket)
    return True


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.5)


def test_launch_injects_credentials_and_the_refresh_job_rotates_them(
    platform: Stack, kube: KubeClient, rgw: LocalRgw, tag: str
) -> None:
    http, _ = browser_login(platform, "dave", PASSWORDS["dave"])
    try:
        namespace = f"s3{tag}-dave"
        release, events = launch(platform, http, namespace)
        assert events[-1]["phase"] == "running", events
        assert not any("warning" in e["message"] for e in events)
        secret = secret_of(kube, namespace, release)
        first_key = value(secret, "AWS_ACCESS_KEY_ID")
        assert value(secret, "AWS_BUCKET_NAME") == f"u{tag}-dave"
        assert value(secret, "AWS_ENDPOINT_URL") == rgw.endpoint
        assert "aws_session_token = " in value(secret, "credentials")
        assert json.loads(value(secret, "credentials.json"))["AccessKeyId"] == first_key
        assert "credential_process" in value(secret, "config")
        assert works(rgw, secret)
        # The chart reads the platform's Secret; it renders no S3 Secret of its own.
        pods = kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": f"app.kubernetes.io/instance={release}"},
        )["items"]
        volumes = {v["name"]: v for v in pods[0]["spec"]["volumes"]}
        assert volumes["s3-credentials"]["secret"]["secretName"] == f"onyxia-s3-{release}"
        env = {e["name"]: e for e in pods[0]["spec"]["containers"][0]["env"]}
        assert (
            env["AWS_SESSION_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == f"onyxia-s3-{release}"
        )
        with pytest.raises(NotFound):
            kube.request_sync("GET", f"/api/v1/namespaces/{namespace}/secrets/{release}-s3")

        started = time.monotonic()
        wait_for(
            lambda: value(secret_of(kube, namespace, release), "AWS_ACCESS_KEY_ID") != first_key,
            45,
            "the Secret to be rotated",
        )
        print(f"rotated {time.monotonic() - started:.1f}s after the launch settled")
        rotated = secret_of(kube, namespace, release)
        assert works(rgw, rotated)
        listed = http.get(f"/api/projects/{namespace}/s3/services").json()
        mine = next(s for s in listed if s["release"] == release)
        assert mine["error"] is None
        assert mine["refreshed_at"] is not None
        assert secret_of(kube, namespace, release)["metadata"]["annotations"][
            "onyxia.sh/s3-expires-at"
        ] == mine["expires_at"].replace("Z", "+00:00")

        deleted = http.delete(f"/api/projects/{namespace}/services/{release}", headers=csrf(http))
        assert deleted.status_code == 204
        with pytest.raises(NotFound):
            secret_of(kube, namespace, release)
    finally:
        http.close()


def test_suspended_services_are_skipped_and_failures_are_visible(
    platform: Stack, kube: KubeClient, tag: str
) -> None:
    http, _ = browser_login(platform, "erin", PASSWORDS["erin"])
    try:
        namespace = f"s3{tag}-erin"
        release, events = launch(platform, http, namespace)
        assert events[-1]["phase"] == "running", events
        suspended = http.post(
            f"/api/projects/{namespace}/services/{release}/suspend", headers=csrf(http), timeout=60
        )
        assert suspended.status_code == 204, suspended.text
        secret = secret_of(kube, namespace, release)
        key = value(secret, "AWS_ACCESS_KEY_ID")
        # Due 10 s after it was minted (890 of 900 s left); give the job three more passes.
        minted = datetime.fromisoformat(
            secret["metadata"]["annotations"]["onyxia.sh/s3-refreshed-at"]
        )
        time.sleep(max(0.0, (minted - datetime.now(UTC)).total_seconds() + 13))
        assert value(secret_of(kube, namespace, release), "AWS_ACCESS_KEY_ID") == key

        # Logged out: no session left to mint credentials from, so the renewal must fail loudly.
        assert http.post("/auth/logout", headers=csrf(http)).status_code in (200, 204, 303)
        resumed = httpx.post(
            f"{platform.url}/api/projects/{namespace}/services/{release}/resume",
            headers={
                "Authorization": "Bearer "
                + platform.tokens("erin", PASSWORDS["erin"])["access_token"]
            },
            timeout=90,
        )
        assert resumed.status_code == 204, resumed.text

        def failed() -> bool:
            notes = secret_of(kube, namespace, release)["metadata"].get("annotations") or {}
            return "onyxia.sh/s3-error" in notes

        wait_for(failed, 45, "the failed renewal to be recorded")
        assert value(secret_of(kube, namespace, release), "AWS_ACCESS_KEY_ID") == key
        token = platform.tokens("erin", PASSWORDS["erin"])["access_token"]
        listed = httpx.get(
            f"{platform.url}/api/projects/{namespace}/s3/services",
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        error = next(s for s in listed if s["release"] == release)["error"]
        assert "log in" in error
        events_list = kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            query={"fieldSelector": "reason=S3CredentialsRefreshFailed"},
        )["items"]
        assert events_list
        assert events_list[0]["involvedObject"]["name"] == f"sh.onyxia.release.v1.{release}"
        assert len(events_list) <= 2  # one per distinct error, not one per second
    finally:
        http.close()


def test_a_failing_s3_server_only_warns_at_launch(
    tmp_path: Path, kube_settings: KubernetesSettings, kube: KubeClient, rgw: LocalRgw
) -> None:
    tag = secrets.token_hex(3)
    broken = s3_settings(rgw, tag, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with platform_with(tmp_path, kube_settings, kube, broken, tag) as running:
        http, _ = browser_login(running, "frank", PASSWORDS["frank"])
        try:
            namespace = f"s3{tag}-frank"
            release, events = launch(running, http, namespace)
            assert events[-1]["phase"] == "running", events
            warnings = [e["message"] for e in events if "warning: " in e["message"]]
            assert len(warnings) == 1
            assert "cannot be reached" in warnings[0]
            assert "starts without them" in warnings[0]
            with pytest.raises(NotFound):
                secret_of(kube, namespace, release)
        finally:
            http.close()
