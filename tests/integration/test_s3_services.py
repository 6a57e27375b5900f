"""S3 credentials in services, on the local control plane with a real S3 server (Ceph RGW) and
a real OpenID Provider: a launch puts fresh credentials in the `s3.*` context and in a Secret of
the project that the chart mounts; the refresh job rotates that Secret before the credentials
expire (900 s credentials renewed when less than 890 s are left, checked every second), skips
suspended services, and makes its failures visible; a broken S3 server only adds a warning.
In a group project, whose members can read each other's Secrets, a service's credentials (at
launch and renewed) reach the project's bucket only, never the launcher's personal bucket or
their other groups' buckets; the renewal takes that scope from the namespace, not from what the
Secret says."""

from __future__ import annotations

import base64
import contextlib
import gzip
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
from botocore.exceptions import ClientError

from devtools.localoidc import BOB_PASSWORD, OidcUser, default_users
from devtools.localrgw import LocalRgw
from devtools.ports import free_port
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.services import objects as service_objects
from onyxia_py.services.models import ServiceMeta
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings
from onyxia_py.storage import objects as s3_objects

from ..support import wait_for_catalogs
from .oidc_stack import Stack, browser_login, csrf, launch_followed, stack
from .s3_stack import s3_settings, trust

CHARTS = Path(__file__).parents[2] / "charts"
SHAPES = Path(__file__).parents[1] / "fixtures" / "shapes"
PASSWORDS = {
    "dave": "dave-password",
    "erin": "erin-password",
    "frank": "frank-password",
    "grace": "grace-password",
    "heidi": "heidi-password",
}
# grace and heidi share group `lab`; grace alone is in `survey`.
GROUPS = {"grace": ["lab", "survey"], "heidi": ["lab"]}


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
            definitions=[
                {"id": "ide", "name": "IDE", "location": str(CHARTS)},
                {"id": "shapes", "name": "Shapes", "location": str(SHAPES)},
            ],
            cache_dir=tmp / "cache",
        ),
        "helm": {"timeout_seconds": 60},
        "s3": s3,
    }
    users = [
        *default_users(),
        *(OidcUser(u, p, groups=GROUPS.get(u, [])) for u, p in PASSWORDS.items()),
    ]
    with stack(tmp, settings=overrides, users=users, access_token_ttl=120) as running:
        wait_for_catalogs(httpx.get, running.url)
        yield running
    namespaces = [f"s3{tag}-{user}" for user in ("alice", "bob", *PASSWORDS)]
    namespaces += [f"s3g{tag}-{group}" for group in ("lab", "survey")]
    for namespace in namespaces:
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{namespace}", body={})


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


def test_a_chart_that_copies_its_credentials_is_marked_with_their_expiry(
    platform: Stack, kube: KubeClient, tag: str
) -> None:
    http, _ = browser_login(platform, "bob", BOB_PASSWORD)
    try:
        namespace = f"s3{tag}-bob"
        accepted, events = launch_followed(http, namespace, "s3-copy", catalog="shapes")
        assert events[-1]["phase"] == "running", events
        release = accepted["release"]
        # The chart's own Secret holds the launch's credentials, which nobody renews.
        copied = kube.request_sync("GET", f"/api/v1/namespaces/{namespace}/secrets/{release}-s3")
        platform_secret = secret_of(kube, namespace, release)
        assert value(copied, "AWS_ACCESS_KEY_ID") == value(platform_secret, "AWS_ACCESS_KEY_ID")
        expires = platform_secret["metadata"]["annotations"]["onyxia.sh/s3-expires-at"]
        listed = http.get(f"/api/projects/{namespace}/services").json()
        mine = next(s for s in listed if s["id"] == release)
        assert mine["s3_credentials_expire"] is not None
        assert datetime.fromisoformat(mine["s3_credentials_expire"]) == datetime.fromisoformat(
            expires
        )
        page = http.get(f"/services/{release}", params={"project": namespace})
        assert page.status_code == 200
        assert "copied its S3 credentials into its own settings" in page.text
        # Our own charts read the renewed Secret: not marked.
        jupyter, _ = launch(platform, http, namespace)
        listed = http.get(f"/api/projects/{namespace}/services").json()
        assert next(s for s in listed if s["id"] == jupyter)["s3_credentials_expire"] is None
        for gone in (release, jupyter):
            deleted = http.delete(f"/api/projects/{namespace}/services/{gone}", headers=csrf(http))
            assert deleted.status_code == 204
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


def s3_client(rgw: LocalRgw, access: str, secret: str, token: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def secret_client(rgw: LocalRgw, secret: dict[str, Any]) -> Any:
    """An S3 client signed with the credentials a service's Secret holds."""
    return s3_client(
        rgw,
        value(secret, "AWS_ACCESS_KEY_ID"),
        value(secret, "AWS_SECRET_ACCESS_KEY"),
        value(secret, "AWS_SESSION_TOKEN"),
    )


def context_s3(kube: KubeClient, namespace: str, release: str) -> dict[str, Any]:
    """The `s3` values the release was installed with: what the onyxia context filled in."""
    found = kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{namespace}/secrets",
        query={"labelSelector": f"owner=helm,name={release}"},
    )["items"]
    newest = max(found, key=lambda s: int(s["metadata"]["labels"]["version"]))
    raw = base64.b64decode(base64.b64decode(newest["data"]["release"]))
    s3: dict[str, Any] = json.loads(gzip.decompress(raw))["config"]["s3"]
    return s3


def error_code(call: Callable[[], Any]) -> str | None:
    """The S3 error code of a refused call; None when it succeeded."""
    try:
        call()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        return "AccessDenied" if status == 403 and code in (None, "403") else str(code)
    return None


def own_client(rgw: LocalRgw, http: httpx.Client, project: str) -> Any:
    """An S3 client with the caller's own credentials (POST .../s3/credentials: all their
    buckets)."""
    answer = http.post(f"/api/projects/{project}/s3/credentials", headers=csrf(http), timeout=30)
    assert answer.status_code == 200, answer.text
    creds = answer.json()
    return s3_client(
        rgw, creds["access_key_id"], creds["secret_access_key"], creds["session_token"]
    )


def reaches(client: Any, bucket: str) -> dict[str, str | None]:
    """What `client` gets on `bucket`: each operation's error code (None: it worked); leaves
    `private.txt` alone."""
    return {
        "list": error_code(lambda: client.list_objects_v2(Bucket=bucket)),
        "get": error_code(lambda: client.get_object(Bucket=bucket, Key="private.txt")),
        "put": error_code(lambda: client.put_object(Bucket=bucket, Key="from-service", Body=b"x")),
        "delete": error_code(lambda: client.delete_object(Bucket=bucket, Key="from-service")),
    }


ALLOWED = {"list": None, "get": None, "put": None, "delete": None}
DENIED = dict.fromkeys(ALLOWED, "AccessDenied")


def seed(client: Any, bucket: str) -> None:
    """Create `bucket` (if needed) with an object `private.txt`."""
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="private.txt", Body=b"private")


@pytest.fixture(scope="module")
def grace(platform: Stack, rgw: LocalRgw, tag: str) -> Iterator[httpx.Client]:
    """grace's browser session, with an object in her personal bucket and in the bucket of her
    other group (`survey`), written with her own credentials."""
    http, _ = browser_login(platform, "grace", PASSWORDS["grace"])
    try:
        own = own_client(rgw, http, f"s3{tag}-grace")
        for bucket in (f"u{tag}-grace", f"g{tag}-survey"):
            seed(own, bucket)
        yield http
    finally:
        http.close()


def test_a_group_project_service_reaches_the_projects_bucket_only(
    platform: Stack, grace: httpx.Client, kube: KubeClient, rgw: LocalRgw, tag: str
) -> None:
    namespace = f"s3g{tag}-lab"
    release, events = launch(platform, grace, namespace)
    assert events[-1]["phase"] == "running", events
    # No warning: the cut-down credentials could create the project's bucket.
    assert not any("warning" in e["message"] for e in events)
    secret = secret_of(kube, namespace, release)
    assert value(secret, "AWS_BUCKET_NAME") == f"g{tag}-lab"
    seed(secret_client(rgw, secret), f"g{tag}-lab")
    # The onyxia context carries the very credentials of the Secret.
    context = context_s3(kube, namespace, release)
    assert context["AWS_ACCESS_KEY_ID"] == value(secret, "AWS_ACCESS_KEY_ID")
    assert context["AWS_SESSION_TOKEN"] == value(secret, "AWS_SESSION_TOKEN")

    def check(service: Any) -> None:
        assert reaches(service, f"g{tag}-lab") == ALLOWED
        # Another member of `lab` can read this Secret: it must not open grace's other buckets.
        assert reaches(service, f"u{tag}-grace") == DENIED
        assert reaches(service, f"g{tag}-survey") == DENIED
        assert error_code(lambda: service.create_bucket(Bucket=f"g{tag}-elsewhere")) == (
            "AccessDenied"
        )

    check(secret_client(rgw, secret))
    # Renewals keep the scope.
    first_key = value(secret, "AWS_ACCESS_KEY_ID")
    wait_for(
        lambda: value(secret_of(kube, namespace, release), "AWS_ACCESS_KEY_ID") != first_key,
        45,
        "the Secret to be rotated",
    )
    rotated = secret_of(kube, namespace, release)
    assert rotated["metadata"]["annotations"].get("onyxia.sh/s3-error") is None
    check(secret_client(rgw, rotated))
    # grace's own credentials (the Files page, the credentials API) are not cut down.
    own = own_client(rgw, grace, f"s3{tag}-grace")
    assert own.get_object(Bucket=f"u{tag}-grace", Key="private.txt")["Body"].read() == b"private"
    assert own.get_object(Bucket=f"g{tag}-survey", Key="private.txt")["Body"].read() == b"private"


def test_a_personal_project_service_keeps_all_the_users_buckets(
    platform: Stack, grace: httpx.Client, kube: KubeClient, rgw: LocalRgw, tag: str
) -> None:
    namespace = f"s3{tag}-grace"
    release, events = launch(platform, grace, namespace)
    assert events[-1]["phase"] == "running", events
    secret = secret_of(kube, namespace, release)
    assert value(secret, "AWS_BUCKET_NAME") == f"u{tag}-grace"
    service = secret_client(rgw, secret)
    for bucket in (f"u{tag}-grace", f"g{tag}-survey"):
        assert service.get_object(Bucket=bucket, Key="private.txt")["Body"].read() == b"private"
    assert reaches(service, f"u{tag}-bob") != ALLOWED  # never another user's


def forge(kube: KubeClient, namespace: str, release: str, user_id: str, bucket: str) -> None:
    """What a user with write access to `namespace` can do: a running service's metadata and an
    S3 Secret due for renewal that names another user and that user's personal bucket."""
    meta = ServiceMeta(
        release=release,
        namespace=namespace,
        catalog="ide",
        chart="jupyter-python",
        version="1",
        owner="grace",
        friendly_name=release,
        share=False,
        created=datetime.now(UTC).isoformat(),
        running_since=datetime.now(UTC).isoformat(),
    )
    kube.request_sync(
        "POST", f"/api/v1/namespaces/{namespace}/secrets", body=service_objects.meta_secret(meta)
    )
    kube.request_sync(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        body={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": s3_objects.secret_name(release),
                "labels": {s3_objects.S3_LABEL: "true"},
                "annotations": {
                    s3_objects.A_RELEASE: release,
                    s3_objects.A_OWNER: "grace",
                    s3_objects.A_USER_ID: user_id,
                    s3_objects.A_BUCKET: bucket,
                },
            },
        },
    )


def test_renewals_take_their_scope_from_the_namespace_not_from_the_secret(
    platform: Stack, grace: httpx.Client, kube: KubeClient, rgw: LocalRgw, tag: str
) -> None:
    # grace's user id, as any Secret of hers in a shared namespace shows it.
    release, _ = launch(platform, grace, f"s3g{tag}-lab")
    user_id = secret_of(kube, f"s3g{tag}-lab", release)["metadata"]["annotations"][
        "onyxia.sh/s3-user-id"
    ]
    heidi, _ = browser_login(platform, "heidi", PASSWORDS["heidi"])  # her projects exist now
    heidi.close()
    # In the shared project: renewed, but for the project's bucket only.
    forge(kube, f"s3g{tag}-lab", "forged-lab", user_id, f"u{tag}-grace")
    wait_for(
        lambda: (
            "AWS_ACCESS_KEY_ID"
            in (secret_of(kube, f"s3g{tag}-lab", "forged-lab").get("data") or {})
        ),
        45,
        "the forged Secret in the group project to be renewed",
    )
    forged = secret_client(rgw, secret_of(kube, f"s3g{tag}-lab", "forged-lab"))
    assert reaches(forged, f"u{tag}-grace") == DENIED
    assert reaches(forged, f"g{tag}-survey") == DENIED
    # In heidi's personal project, grace's credentials have no place at all.
    forge(kube, f"s3{tag}-heidi", "forged-own", user_id, f"u{tag}-grace")

    def refused() -> bool:
        found = secret_of(kube, f"s3{tag}-heidi", "forged-own")
        return "onyxia.sh/s3-error" in (found["metadata"].get("annotations") or {})

    wait_for(refused, 45, "the renewal in heidi's project to be refused")
    found = secret_of(kube, f"s3{tag}-heidi", "forged-own")
    assert "AWS_ACCESS_KEY_ID" not in (found.get("data") or {})
    assert "not a member" in found["metadata"]["annotations"]["onyxia.sh/s3-error"]


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
            # The warning stays with the service: in the listing and on its page.
            listed = http.get(f"/api/projects/{namespace}/services").json()
            kept = next(s for s in listed if s["id"] == release)["launch_warning"]
            assert "starts without them" in kept
            page = http.get(f"/services/{release}", params={"project": namespace})
            assert "Launched with a warning" in page.text
            assert "starts without them" in page.text
        finally:
            http.close()
