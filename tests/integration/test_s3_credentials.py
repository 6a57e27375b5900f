"""Temporary S3 credentials against a real S3 server with STS (Ceph RGW) and a real OpenID
Provider: minted with a real user token and usable; forged or expired tokens get nothing; a
user's credentials never reach another user's bucket, even when they call STS themselves with
their own token; assume-role mode confines the platform role with a session policy."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, make_rsa_jwk
from devtools.localrgw import LocalRgw
from devtools.ports import free_port
from onyxia_py.settings import S3CredentialsMode

from ..support import mint, tamper, unsigned
from .oidc_stack import Stack, bearer, browser_login, csrf, stack
from .s3_stack import s3_settings, trust

CONFIG = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def s3stack(tmp_path_factory: pytest.TempPathFactory, rgw: LocalRgw, tag: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("s3-credentials")
    with stack(tmp, settings={"s3": s3_settings(rgw, tag)}) as running:
        trust(rgw, running.provider)
        yield running


@pytest.fixture(scope="module")
def alice_token(s3stack: Stack) -> str:
    return str(s3stack.tokens("alice", ALICE_PASSWORD)["access_token"])


@pytest.fixture(scope="module")
def bob_token(s3stack: Stack) -> str:
    return str(s3stack.tokens("bob", BOB_PASSWORD)["access_token"])


def s3_client(rgw: LocalRgw, creds: dict[str, Any]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
        config=CONFIG,
    )


def sts_client(rgw: LocalRgw, key: tuple[str, str, str | None] | None = None) -> Any:
    access, secret, token = key or ("anonymous", "anonymous", None)
    return boto3.client(
        "sts",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=CONFIG,
    )


def issue(s: Stack, token: str, project: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{s.url}/api/projects/{project}/s3/credentials", headers=bearer(token), timeout=30
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def status_of(call: Any) -> int:
    """The HTTP status of a refused boto3 call (0 if it succeeded)."""
    try:
        call()
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 0


def test_a_real_token_gives_working_credentials_with_snippets(
    s3stack: Stack, rgw: LocalRgw, tag: str, alice_token: str
) -> None:
    before = time.time()
    creds = issue(s3stack, alice_token, "user-alice")
    assert creds["bucket"] == f"u{tag}-alice"
    assert creds["endpoint_url"] == rgw.endpoint
    expires = datetime.fromisoformat(creds["expires_at"]).timestamp()
    assert 850 <= expires - before <= 960
    s3 = s3_client(rgw, creds)
    s3.create_bucket(Bucket=creds["bucket"])
    s3.put_object(Bucket=creds["bucket"], Key="hello.txt", Body=b"hello")
    assert s3.get_object(Bucket=creds["bucket"], Key="hello.txt")["Body"].read() == b"hello"
    ids = {s["id"] for s in creds["snippets"]}
    assert {"boto3", "s3fs", "pandas", "polars", "pyarrow", "r-arrow", "r-aws-s3"} <= ids
    assert {"aws-cli", "rclone", "mlflow", "env"} <= ids
    boto3_snippet = next(s["code"] for s in creds["snippets"] if s["id"] == "boto3")
    assert creds["session_token"] in boto3_snippet
    compile(boto3_snippet, "boto3-snippet", "exec")


def test_credentials_of_one_user_cannot_touch_another_users_bucket(
    s3stack: Stack, rgw: LocalRgw, tag: str, alice_token: str, bob_token: str
) -> None:
    bob = s3_client(rgw, issue(s3stack, bob_token, "user-bob"))
    bob_bucket = f"u{tag}-bob"
    bob.create_bucket(Bucket=bob_bucket)
    bob.put_object(Bucket=bob_bucket, Key="private.txt", Body=b"bob's")
    alice = s3_client(rgw, issue(s3stack, alice_token, "user-alice"))
    assert status_of(lambda: alice.get_object(Bucket=bob_bucket, Key="private.txt")) == 403
    assert status_of(lambda: alice.put_object(Bucket=bob_bucket, Key="x", Body=b"x")) == 403
    assert status_of(lambda: alice.list_objects_v2(Bucket=bob_bucket)) == 403
    assert status_of(lambda: alice.delete_object(Bucket=bob_bucket, Key="private.txt")) == 403
    assert status_of(lambda: alice.put_bucket_policy(Bucket=bob_bucket, Policy="{}")) == 403
    assert status_of(lambda: alice.create_bucket(Bucket=f"u{tag}-mallory")) == 403
    assert bob.get_object(Bucket=bob_bucket, Key="private.txt")["Body"].read() == b"bob's"


def test_calling_sts_directly_with_ones_own_token_gives_nothing_more(
    s3stack: Stack, rgw: LocalRgw, tag: str, alice_token: str, bob_token: str
) -> None:
    issue(s3stack, bob_token, "user-bob")  # bob's role and bucket exist
    bob_bucket = f"u{tag}-bob"
    sts = sts_client(rgw)

    def assume(role: str, token: str) -> dict[str, Any]:
        answer: dict[str, Any] = sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam:::role/t{tag}-{role}",
            RoleSessionName="direct-call",
            WebIdentityToken=token,
            DurationSeconds=900,
        )["Credentials"]
        return {
            "access_key_id": answer["AccessKeyId"],
            "secret_access_key": answer["SecretAccessKey"],
            "session_token": answer["SessionToken"],
        }

    # Her own role: her bucket only, whatever she asks STS for.
    own = assume("alice", alice_token)
    alice = s3_client(rgw, own)
    assert status_of(lambda: alice.list_objects_v2(Bucket=bob_bucket)) == 403
    assert status_of(lambda: alice.put_object(Bucket=bob_bucket, Key="x", Body=b"x")) == 403
    assert status_of(lambda: alice.get_object(Bucket=bob_bucket, Key="private.txt")) == 403
    # Nor can her credentials rewrite her role.
    iam = boto3.client(
        "iam",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=own["access_key_id"],
        aws_secret_access_key=own["secret_access_key"],
        aws_session_token=own["session_token"],
        config=CONFIG,
    )
    open_policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}],
        },
        separators=(",", ":"),
    )
    assert status_of(
        lambda: iam.put_role_policy(
            RoleName=f"t{tag}-alice", PolicyName="onyxia", PolicyDocument=open_policy
        )
    ) in (400, 403)
    # Bob's role trusts bob's subject only.
    assert status_of(lambda: assume("bob", alice_token)) == 403
    # A role named like no one's.
    assert status_of(lambda: assume("nobody", alice_token)) in (403, 404)


def test_forged_and_expired_tokens_get_no_credentials(
    s3stack: Stack, rgw: LocalRgw, tag: str, alice_token: str
) -> None:
    claims = json.loads(_payload(alice_token))
    now = int(time.time())
    key = s3stack.provider.keys[0]
    forged = {
        "tampered": tamper(alice_token),
        "expired": mint(key, {**claims, "iat": now - 7200, "exp": now - 3600}),
        "foreign key": mint(make_rsa_jwk(), claims),
        "unsigned": unsigned(claims),
        "wrong audience": mint(key, {**claims, "aud": "someone-else"}),
        "unknown issuer": mint(key, {**claims, "iss": "http://127.0.0.1:9/other"}),
    }
    sts = sts_client(rgw)
    for what, token in forged.items():
        answer = httpx.post(
            f"{s3stack.url}/api/projects/user-alice/s3/credentials",
            headers=bearer(token),
            timeout=30,
        )
        assert answer.status_code == 401, (what, answer.text)
        assert token not in answer.text
        refused = status_of(
            lambda token=token: sts.assume_role_with_web_identity(
                RoleArn=f"arn:aws:iam:::role/t{tag}-alice",
                RoleSessionName="forged",
                WebIdentityToken=token,
                DurationSeconds=900,
            )
        )
        assert refused in (400, 403), (what, refused)


def _payload(token: str) -> str:
    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


def test_a_browser_session_gets_credentials_with_csrf(s3stack: Stack, rgw: LocalRgw) -> None:
    http, _ = browser_login(s3stack, "alice", ALICE_PASSWORD)
    try:
        refused = http.post("/api/projects/user-alice/s3/credentials")
        assert refused.status_code == 403
        assert refused.json()["reason"] == "csrf"
        answer = http.post("/api/projects/user-alice/s3/credentials", headers=csrf(http))
        assert answer.status_code == 200, answer.text
        s3 = s3_client(rgw, answer.json())
        assert s3.list_objects_v2(Bucket=answer.json()["bucket"])["KeyCount"] >= 0
        # Not a member of that project: refused before any STS call.
        other = http.post("/api/projects/user-bob/s3/credentials", headers=csrf(http))
        assert other.status_code == 403
    finally:
        http.close()


def test_a_read_only_token_cannot_mint_credentials(s3stack: Stack, alice_token: str) -> None:
    made = httpx.post(
        f"{s3stack.url}/api/tokens",
        json={"name": "read only", "scopes": ["read"]},
        headers=bearer(alice_token),
    )
    assert made.status_code == 201, made.text
    answer = httpx.post(
        f"{s3stack.url}/api/projects/user-alice/s3/credentials",
        headers=bearer(made.json()["token"]),
    )
    assert answer.status_code == 403
    status = httpx.get(
        f"{s3stack.url}/api/projects/user-alice/s3", headers=bearer(made.json()["token"])
    )
    assert status.status_code == 200
    assert status.json()["configured"] is True


def test_assume_role_mode_confines_the_platform_role_to_the_user(
    tmp_path: Path, rgw: LocalRgw
) -> None:
    tag = secrets.token_hex(3)
    uid = f"platform-{tag}"
    platform_key = rgw.create_user(uid)
    role = rgw.create_role(
        f"onyxia-platform-{tag}",
        trust={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam:::user/{uid}"]},
                    "Action": ["sts:AssumeRole"],
                    # Only long-term keys: temporary credentials cannot assume it again
                    # (RGW would otherwise let a session chain into the role, policy-free).
                    "Condition": {"Null": {"aws:TokenIssueTime": "true"}},
                }
            ],
        },
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": [f"arn:aws:s3:::u{tag}-*", f"arn:aws:s3:::g{tag}-*"],
                }
            ],
        },
    )
    settings = s3_settings(
        rgw,
        tag,
        credentials_mode=S3CredentialsMode.ASSUME_ROLE,
        role_arn=role,
        provision_roles=False,
        access_key_id=platform_key[0],
        secret_access_key=platform_key[1],
    )
    with stack(tmp_path, settings={"s3": settings}) as running:
        alice_token = running.tokens("alice", ALICE_PASSWORD)["access_token"]
        bob_token = running.tokens("bob", BOB_PASSWORD)["access_token"]
        bob = s3_client(rgw, issue(running, bob_token, "user-bob"))
        bob.create_bucket(Bucket=f"u{tag}-bob")
        creds = issue(running, alice_token, "user-alice")
        assert platform_key[0] not in json.dumps(creds)
        alice = s3_client(rgw, creds)
        alice.create_bucket(Bucket=f"u{tag}-alice")
        alice.put_object(Bucket=f"u{tag}-alice", Key="k", Body=b"v")
        # The role could reach bob's bucket; the session policy cuts alice's credentials down.
        assert status_of(lambda: alice.list_objects_v2(Bucket=f"u{tag}-bob")) == 403
        assert status_of(lambda: alice.put_object(Bucket=f"u{tag}-bob", Key="x", Body=b"")) == 403
        # Her temporary credentials cannot assume the platform role again without the policy.
        again = sts_client(
            rgw, (creds["access_key_id"], creds["secret_access_key"], creds["session_token"])
        )
        assert (
            status_of(
                lambda: again.assume_role(
                    RoleArn=role, RoleSessionName="escape", DurationSeconds=900
                )
            )
            == 403
        )


def test_without_s3_settings_the_platform_says_s3_is_not_configured(tmp_path: Path) -> None:
    with stack(tmp_path) as running:
        token = running.tokens("alice", ALICE_PASSWORD)["access_token"]
        status = httpx.get(f"{running.url}/api/projects/user-alice/s3", headers=bearer(token))
        assert status.status_code == 200
        assert status.json()["configured"] is False
        answer = httpx.post(
            f"{running.url}/api/projects/user-alice/s3/credentials", headers=bearer(token)
        )
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "not configured" in answer.json()["detail"]
        listing = httpx.get(
            f"{running.url}/api/projects/user-alice/s3/objects", headers=bearer(token)
        )
        assert listing.status_code == 503


def test_an_unreachable_s3_server_is_a_clear_503(tmp_path: Path, rgw: LocalRgw) -> None:
    settings = s3_settings(rgw, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with stack(tmp_path, settings={"s3": settings}) as running:
        token = running.tokens("alice", ALICE_PASSWORD)["access_token"]
        answer = httpx.post(
            f"{running.url}/api/projects/user-alice/s3/credentials",
            headers=bearer(token),
            timeout=60,
        )
        assert answer.status_code == 503, answer.text
        assert token not in answer.text
