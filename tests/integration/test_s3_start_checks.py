"""The start-time S3 checks against a real Ceph RGW: the credential lifetime against the role's
MaxSessionDuration read with IAM GetRole; and the S3 settings `make run` prints for auth mode
none (devtools/localstack.py) pass that check and mint working credentials."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from devtools.localrgw import LocalRgw, compact
from devtools.localstack import platform_trust, setup_platform_s3
from devtools.ports import free_port
from onyxia_py.s3 import BotoTokenService
from onyxia_py.s3.roles import BotoRoleReader
from onyxia_py.settings import S3Settings
from onyxia_py.storage.checks import S3SettingsConflict, check_credential_lifetime


def role_settings(rgw: LocalRgw, tag: str, max_seconds: int, **overrides: Any) -> S3Settings:
    """Assume-role settings on a fresh role of `max_seconds` (the admin key may read it)."""
    iam = rgw.client("iam")
    arn = iam.create_role(
        RoleName=f"check-{tag}-{max_seconds}",
        AssumeRolePolicyDocument=compact(platform_trust("admin")),
        MaxSessionDuration=max_seconds,
    )["Role"]["Arn"]
    access, secret = rgw.admin_key
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint_url": rgw.endpoint,
        "credentials_mode": "assume-role",
        "role_arn": arn,
        "access_key_id": SecretStr(access),
        "secret_access_key": SecretStr(secret),
        "request_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return S3Settings(**values)


async def test_the_default_lifetime_against_a_one_hour_role_refuses_start(
    rgw: LocalRgw, tag: str
) -> None:
    settings = role_settings(rgw, tag, 3600)
    assert await BotoRoleReader(settings).max_session_seconds(f"check-{tag}-3600") == 3600
    with pytest.raises(S3SettingsConflict, match=r"43200 s .* at most 3600 s"):
        await check_credential_lifetime(settings, BotoRoleReader(settings))


async def test_a_lifetime_within_the_role_passes(rgw: LocalRgw, tag: str) -> None:
    settings = role_settings(rgw, tag, 7200, duration_seconds=7200, refresh_before_seconds=600)
    await check_credential_lifetime(settings, BotoRoleReader(settings))


async def test_a_missing_role_or_an_unreachable_server_is_logged_not_fatal(
    rgw: LocalRgw, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    missing = role_settings(rgw, tag, 3601, role_arn=f"arn:aws:iam:::role/none-{tag}")
    away = role_settings(rgw, tag, 3602, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING):
        await check_credential_lifetime(missing, BotoRoleReader(missing))
        await check_credential_lifetime(away, BotoRoleReader(away), wait_seconds=15)
    assert f"none-{tag}" in caplog.text
    assert "S3 check skipped" in caplog.text


async def test_the_make_run_s3_settings_pass_the_check_and_mint_credentials(
    rgw: LocalRgw, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = setup_platform_s3(rgw, rgw.endpoint, name=f"platform-{tag}")
    settings = S3Settings.model_validate(
        {key.removeprefix("ONYXIA_S3__").lower(): value for key, value in env.items()}
    )
    assert settings.duration_seconds == 43200  # the platform's default, unchanged
    with caplog.at_level(logging.INFO):
        await check_credential_lifetime(settings, BotoRoleReader(settings))
    assert "fit the role" in caplog.text
    assert settings.role_arn is not None
    creds = await BotoTokenService(settings).assume_role(
        role_arn=settings.role_arn,
        session_name=f"check-{tag}",
        policy={
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}],
        },
        duration_seconds=settings.duration_seconds,
    )
    assert creds.session_token
