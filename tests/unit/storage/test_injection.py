"""Credentials at launch: a failing mint is a warning, but an unavailable database refuses the
launch at once (its audit row would wait for the same database again)."""

from __future__ import annotations

import pytest

from onyxia_py.accounts.models import AuthMethod, Identity, Principal, Scope
from onyxia_py.errors import OnyxiaError, Unavailable
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings
from onyxia_py.storage.credentials import S3Credentials
from onyxia_py.storage.injection import S3Injector

from .fakes import FakeTokens
from .test_credentials import settings

ALICE = Principal(
    7,
    Identity("https://sso.example.org/realms/lab", "sub-alice", "alice", None, (), ()),
    is_admin=False,
    scopes=frozenset({Scope.READ, Scope.LAUNCH}),
    method=AuthMethod.BEARER,
)
PROJECT = Project("user-alice", "user-alice", "alice", None)


class FailingUserTokens:
    """Accounts whose session lookup fails with `error`."""

    def __init__(self, error: OnyxiaError) -> None:
        self.error = error

    async def provider_access_token(
        self, user_id: int, session_id: int | None = None
    ) -> str | None:
        raise self.error


def injector(error: OnyxiaError) -> S3Injector:
    s3 = settings()
    minter = S3Credentials(
        s3,
        ProjectSettings(),
        FakeTokens(),
        FailingUserTokens(error),
        issuer="https://sso.example.org/realms/lab",
        audience="onyxia",
    )
    # The Kubernetes client is not used before the credentials are minted.
    return S3Injector(s3, ProjectSettings(), minter, kube=None)  # type: ignore[arg-type]


async def test_an_unavailable_database_refuses_the_launch() -> None:
    down = Unavailable("the database did not answer", reason="database-unavailable")
    with pytest.raises(Unavailable) as refused:
        await injector(down).prepare(ALICE, PROJECT, "jupyter-1")
    assert refused.value is down


async def test_another_failure_is_a_warning() -> None:
    sts_down = Unavailable("the S3 server did not answer")
    prepared = await injector(sts_down).prepare(ALICE, PROJECT, "jupyter-1")
    assert prepared.context is None
    assert prepared.warning is not None
    assert "the S3 server did not answer" in prepared.warning
