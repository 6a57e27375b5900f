"""The start-time check of s3.duration_seconds against the role's maximum, on a fake IAM."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import SecretStr

from onyxia_py.errors import Forbidden, Unavailable
from onyxia_py.settings import S3Settings
from onyxia_py.storage.checks import (
    S3SettingsConflict,
    check_credential_lifetime,
    role_name,
)


class FakeRoles:
    """A RoleReader that answers one maximum, or fails, and records the names it was asked."""

    def __init__(self, max_seconds: int = 3600, error: Exception | None = None) -> None:
        self.max_seconds = max_seconds
        self.error = error
        self.asked: list[str] = []
        self.hang = False

    async def max_session_seconds(self, role_name: str) -> int:
        self.asked.append(role_name)
        if self.hang:
            await asyncio.sleep(60)
        if self.error is not None:
            raise self.error
        return self.max_seconds


def settings(**overrides: Any) -> S3Settings:
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint_url": "http://127.0.0.1:9",
        "credentials_mode": "assume-role",
        "role_arn": "arn:aws:iam:::role/onyxia-platform",
        "access_key_id": SecretStr("AK"),
        "secret_access_key": SecretStr("SK"),
        "duration_seconds": 43200,
    }
    values.update(overrides)
    return S3Settings(**values)


def test_role_names_come_from_role_arns_with_or_without_a_path() -> None:
    assert role_name("arn:aws:iam:::role/onyxia") == "onyxia"
    assert role_name("arn:aws:iam::123456789012:role/team/onyxia") == "onyxia"
    assert role_name("arn:aws:iam:::user/onyxia") is None


async def test_a_lifetime_above_the_roles_maximum_refuses_start_naming_both_numbers() -> None:
    roles = FakeRoles(max_seconds=3600)
    with pytest.raises(S3SettingsConflict) as refused:
        await check_credential_lifetime(settings(), roles)
    message = str(refused.value)
    assert "43200" in message
    assert "3600" in message
    assert "s3.duration_seconds" in message
    assert "ONYXIA_S3__DURATION_SECONDS" in message
    assert roles.asked == ["onyxia-platform"]


async def test_a_lifetime_within_the_maximum_passes() -> None:
    await check_credential_lifetime(
        settings(duration_seconds=3600, refresh_before_seconds=600), FakeRoles(3600)
    )


@pytest.mark.parametrize(
    "error", [Unavailable("reading the S3 role: cannot be reached"), Forbidden("refused")]
)
async def test_an_unreadable_role_is_logged_and_start_goes_on(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await check_credential_lifetime(settings(), FakeRoles(error=error))
    assert "S3 check skipped" in caplog.text
    assert "onyxia-platform" in caplog.text


async def test_a_server_that_does_not_answer_does_not_hold_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    roles = FakeRoles()
    roles.hang = True
    with caplog.at_level(logging.WARNING):
        await check_credential_lifetime(settings(), roles, wait_seconds=0.05)
    assert "did not answer" in caplog.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"enabled": False},
        {"access_key_id": None, "secret_access_key": None, "credentials_mode": "web-identity"},
        {"role_arn": "arn:aws:iam:::role/onyxia-{username}", "provision_roles": True},
    ],
)
async def test_nothing_is_read_when_no_single_role_can_be_read(overrides: dict[str, Any]) -> None:
    roles = FakeRoles(max_seconds=900)
    await check_credential_lifetime(settings(**overrides), roles)
    assert roles.asked == []
