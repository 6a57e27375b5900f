"""Minting: which token, which role, provisioning once per change, the browser's cache."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr

from onyxia_py.errors import Forbidden
from onyxia_py.settings import ProjectSettings, S3CredentialsMode, S3Settings
from onyxia_py.storage import credentials
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.models import StorageUser, TokenHint

from .fakes import FakeTokens, FakeUserTokens

ALICE = StorageUser(7, "alice", "sub-alice", ("stats",))
KEY = {"access_key_id": SecretStr("AKPLATFORM"), "secret_access_key": SecretStr("secret")}


def settings(**overrides: object) -> S3Settings:
    values: dict[str, object] = {
        "enabled": True,
        "endpoint_url": "https://s3.example.org",
        "role_arn": "arn:aws:iam:::role/onyxia-{username}",
        "duration_seconds": 3600,
        "refresh_before_seconds": 600,
        **overrides,
    }
    return S3Settings(**values)


def minter(
    s3: S3Settings, tokens: FakeTokens, users: FakeUserTokens | None = None
) -> S3Credentials:
    return S3Credentials(
        s3,
        ProjectSettings(),
        tokens,
        users if users is not None else FakeUserTokens({7: "session-token"}),
        issuer="https://sso.example.org/realms/lab",
        audience="onyxia",
    )


async def test_web_identity_uses_the_request_token_first() -> None:
    sts = FakeTokens()
    users = FakeUserTokens({7: "session-token"})
    creds = await minter(settings(), sts, users).issue(ALICE, TokenHint(web_token="bearer-jwt"))
    assert creds.access_key_id.startswith("AK")
    assert sts.calls == [
        (
            "web",
            {
                "role": "arn:aws:iam:::role/onyxia-alice",
                "name": "onyxia-alice",
                "token": "bearer-jwt",
            },
        )
    ]
    assert users.asked == []


async def test_web_identity_falls_back_to_the_users_session() -> None:
    sts = FakeTokens()
    users = FakeUserTokens({7: "session-token"})
    await minter(settings(), sts, users).issue(ALICE, TokenHint(session_id=3))
    assert users.asked == [(7, 3)]
    assert sts.calls[0][1]["token"] == "session-token"


async def test_no_token_means_no_credentials_and_a_reason() -> None:
    sts = FakeTokens()
    with pytest.raises(Forbidden) as caught:
        await minter(settings(), sts, FakeUserTokens()).issue(ALICE)
    assert caught.value.extensions["reason"] == "no-web-identity"
    assert "log in" in caught.value.detail
    assert sts.calls == []


async def test_roles_are_provisioned_once_and_again_when_groups_change() -> None:
    sts = FakeTokens()
    mint = minter(settings(provision_roles=True, **KEY), sts)
    await mint.issue(ALICE, TokenHint(web_token="t"))
    await mint.issue(ALICE, TokenHint(web_token="t"))
    ensured = [c for c in sts.calls if c[0] == "ensure"]
    assert len(ensured) == 1
    role = ensured[0][1]
    assert role["name"] == "onyxia-alice"
    assert role["trust"]["Statement"][0]["Condition"]["StringEquals"] == {
        "sso.example.org/realms/lab:sub": "sub-alice",
        "sso.example.org/realms/lab:aud": "onyxia",
    }
    assert "arn:aws:s3:::projet-stats/*" in role["policy"]["Statement"][0]["Resource"]
    await mint.issue(replace(ALICE, groups=("stats", "economics")), TokenHint(web_token="t"))
    ensured = [c for c in sts.calls if c[0] == "ensure"]
    assert len(ensured) == 2
    assert "arn:aws:s3:::projet-economics" in ensured[1][1]["policy"]["Statement"][0]["Resource"]


async def test_assume_role_sends_a_session_policy_and_needs_no_user_token() -> None:
    sts = FakeTokens()
    s3 = settings(
        credentials_mode=S3CredentialsMode.ASSUME_ROLE,
        role_arn="arn:aws:iam::123:role/onyxia-platform",
        **KEY,
    )
    await minter(s3, sts, FakeUserTokens()).issue(ALICE)
    kind, call = sts.calls[0]
    assert kind == "role"
    assert call["role"] == "arn:aws:iam::123:role/onyxia-platform"
    assert call["policy"]["Statement"][0]["Resource"] == [
        "arn:aws:s3:::user-alice",
        "arn:aws:s3:::user-alice/*",
        "arn:aws:s3:::projet-stats",
        "arn:aws:s3:::projet-stats/*",
    ]


async def test_a_scope_sends_a_session_policy_for_its_buckets_only() -> None:
    sts = FakeTokens()
    mint = minter(settings(provision_roles=True, **KEY), sts)
    await mint.issue(ALICE, TokenHint(web_token="t"), ("projet-stats",))
    web = [c for kind, c in sts.calls if kind == "web"]
    assert web[0]["policy"]["Statement"][0]["Resource"] == [
        "arn:aws:s3:::projet-stats",
        "arn:aws:s3:::projet-stats/*",
    ]
    # The role itself still covers all her buckets: the session policy is the cut.
    ensured = next(c for kind, c in sts.calls if kind == "ensure")
    assert "arn:aws:s3:::user-alice" in ensured["policy"]["Statement"][0]["Resource"]
    # Without a scope: no session policy, exactly as before.
    await mint.issue(ALICE, TokenHint(web_token="t"))
    assert "policy" not in [c for kind, c in sts.calls if kind == "web"][1]


async def test_assume_role_cuts_the_session_policy_down_to_the_scope() -> None:
    sts = FakeTokens()
    s3 = settings(
        credentials_mode=S3CredentialsMode.ASSUME_ROLE,
        role_arn="arn:aws:iam::123:role/onyxia-platform",
        **KEY,
    )
    await minter(s3, sts, FakeUserTokens()).issue(ALICE, scope=("projet-stats",))
    assert sts.calls[0][1]["policy"]["Statement"][0]["Resource"] == [
        "arn:aws:s3:::projet-stats",
        "arn:aws:s3:::projet-stats/*",
    ]


async def test_a_scope_outside_the_users_buckets_gets_nothing() -> None:
    sts = FakeTokens()
    mint = minter(settings(), sts)
    for scope in (("projet-economics",), ()):
        with pytest.raises(Forbidden) as caught:
            await mint.issue(ALICE, TokenHint(web_token="t"), scope)
        assert caught.value.extensions["reason"] == "not-a-member"
    assert sts.calls == []


async def test_a_services_scoped_credentials_never_serve_the_browser() -> None:
    sts = FakeTokens()
    mint = minter(settings(), sts)
    scoped = await mint.issue(ALICE, TokenHint(web_token="t"), ("projet-stats",))
    own = await mint.current(ALICE, TokenHint(web_token="t"))
    assert own is not scoped
    assert "policy" not in sts.calls[-1][1]
    assert await mint.current(ALICE, TokenHint(web_token="t"), ("projet-stats",)) is scoped


async def test_the_browser_reuses_credentials_while_they_are_young() -> None:
    sts = FakeTokens()
    mint = minter(settings(), sts)
    first = await mint.current(ALICE, TokenHint(web_token="t"))
    assert await mint.current(ALICE, TokenHint(web_token="t")) is first
    # Other groups: other buckets, so other credentials.
    other = await mint.current(replace(ALICE, groups=()), TokenHint(web_token="t"))
    assert other is not first
    assert len([c for c in sts.calls if c[0] == "web"]) == 2


async def test_old_credentials_are_replaced() -> None:
    sts = FakeTokens()
    mint = minter(settings(duration_seconds=900, refresh_before_seconds=60), sts)
    first = await mint.issue(ALICE, TokenHint(web_token="t"))
    mint._cache[(ALICE.user_id, None)] = (
        ALICE.groups,
        replace(first, expiration=first.expiration.replace(year=2000)),
    )
    again = await mint.current(ALICE, TokenHint(web_token="t"))
    assert again.access_key_id != first.access_key_id


async def test_the_cache_stays_bounded_by_dropping_what_cannot_be_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(credentials, "CACHE_MAX", 3)
    mint = minter(settings(), FakeTokens())
    for user_id in range(1, 4):
        await mint.issue(replace(ALICE, user_id=user_id), TokenHint(web_token="t"))
    old_key = (1, None)
    groups, creds = mint._cache[old_key]
    mint._cache[old_key] = (groups, replace(creds, expiration=creds.expiration.replace(year=2000)))
    await mint.issue(replace(ALICE, user_id=4), TokenHint(web_token="t"))
    assert sorted(k[0] for k in mint._cache) == [2, 3, 4]  # the expired one went
    assert len(mint._locks) == 0  # no lock kept for users nobody is minting for


def test_settings_refuse_incomplete_s3_configurations() -> None:
    with pytest.raises(ValueError, match="endpoint_url"):
        S3Settings(enabled=True, role_arn="r")
    with pytest.raises(ValueError, match="role_arn"):
        S3Settings(enabled=True, endpoint_url="https://s3")
    with pytest.raises(ValueError, match="assume-role needs"):
        settings(credentials_mode=S3CredentialsMode.ASSUME_ROLE)
    with pytest.raises(ValueError, match="provision_roles"):
        settings(provision_roles=True, role_arn="arn:aws:iam:::role/shared", **KEY)
    with pytest.raises(ValueError, match="refresh_before_seconds"):
        settings(duration_seconds=900, refresh_before_seconds=900)
    with pytest.raises(ValueError, match="greater than or equal to 900"):
        settings(duration_seconds=600)
    assert not S3Settings().enabled
