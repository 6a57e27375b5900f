"""What `make run` is told by devtools/localstack.py: the S3 and auth settings as exports."""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from devtools import localstack
from devtools.localcluster import LocalCluster
from devtools.localcluster.procs import ProcessRecord, write_pids
from devtools.localstack import (
    auth_environment,
    cluster_alive,
    export_lines,
    login_help,
    platform_trust,
    s3_environment,
    session_secret,
)
from onyxia_py.settings import AuthMode, S3CredentialsMode, Settings


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_auth_none_gets_assume_role_with_the_platform_key(monkeypatch: pytest.MonkeyPatch) -> None:
    env = s3_environment(
        "http://10.103.0.1:7480", ("AK", "SK"), role_arn="arn:aws:iam:::role/onyxia-platform"
    )
    s3 = settings_from(env, monkeypatch).s3
    assert s3.enabled
    assert s3.credentials_mode is S3CredentialsMode.ASSUME_ROLE
    assert s3.endpoint_url == "http://10.103.0.1:7480"
    assert s3.access_key_id is not None
    assert s3.access_key_id.get_secret_value() == "AK"
    assert not s3.provision_roles


def test_auth_oidc_gets_web_identity_with_provisioned_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = s3_environment(
        "http://127.0.0.1:7480",
        ("AK", "SK"),
        role_arn="arn:aws:iam:::role/onyxia-{username}",
        oidc_provider_arn="arn:aws:iam:::oidc-provider/127.0.0.1:5556",
    )
    env |= auth_environment("http://127.0.0.1:5556", "onyxia", "cs", "x" * 48)
    settings = settings_from(env, monkeypatch)
    assert settings.auth.mode is AuthMode.OIDC
    assert settings.auth.scopes == ["openid", "profile", "email", "groups", "roles"]
    assert settings.s3.credentials_mode is S3CredentialsMode.WEB_IDENTITY
    assert settings.s3.provision_roles
    assert settings.s3.oidc_provider_arn == "arn:aws:iam:::oidc-provider/127.0.0.1:5556"


def test_exports_are_shell_quoted_and_sorted() -> None:
    lines = export_lines({"B": "arn:aws:iam:::role/x-{username}", "A": "it's"})
    assert lines[0] == "export A='it'\"'\"'s'"
    assert shlex.split(lines[1]) == ["export", "B=arn:aws:iam:::role/x-{username}"]


def test_the_session_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "localstack" / "session-secret"
    first = session_secret(path)
    assert len(first) >= 32
    assert session_secret(path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_platform_role_refuses_temporary_credentials() -> None:
    statement = platform_trust("onyxia-platform")["Statement"][0]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam:::user/onyxia-platform"]}
    assert statement["Condition"] == {"Null": {"aws:TokenIssueTime": "true"}}


def test_login_help_names_each_demo_user_and_the_admin() -> None:
    state = {
        "issuer": "http://127.0.0.1:5556",
        "users": [["alice", "alice-password", ["admin"]], ["bob", "bob-password", []]],
    }
    lines = login_help(state, "http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000" in lines[0]
    assert lines[1].endswith("alice / alice-password (admin)")
    assert lines[2].endswith("bob / bob-password")


def test_the_stack_serves_while_the_cluster_it_started_with_runs(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path)
    assert cluster_alive(cluster, had_cluster=False)  # started on its own: until stopped
    write_pids(cluster.pids_file, [ProcessRecord("self", os.getpid(), "python")])
    assert cluster_alive(cluster, had_cluster=True)
    cluster.pids_file.unlink()  # what `make dev-cluster-stop` leaves
    assert not cluster_alive(cluster, had_cluster=True)


class _Gateway:
    """A gateway whose provider registration is refused (RGW has no listing of them)."""

    def __init__(self, resuming: bool) -> None:
        self.resuming = resuming

    def register_oidc_provider(
        self, issuer: str, client_ids: list[str], thumbprints: list[str]
    ) -> str:
        raise ClientError({"Error": {"Code": "EntityAlreadyExists"}}, "CreateOpenIDConnectProvider")


def test_a_kept_gateway_keeps_its_provider_and_a_fresh_one_says_why_it_failed() -> None:
    kept = _Gateway(resuming=True)
    arn = localstack.register_provider(kept, "http://127.0.0.1:4000", ["onyxia"], [])  # type: ignore[arg-type]
    assert arn == "arn:aws:iam:::oidc-provider/127.0.0.1:4000"
    with pytest.raises(ClientError):
        localstack.register_provider(_Gateway(resuming=False), "http://127.0.0.1:4000", [], [])  # type: ignore[arg-type]
