"""Settings: sources, nesting, and refusal of insecure defaults."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from onyxia_py.app import with_installation_secret
from onyxia_py.config_docs import render
from onyxia_py.settings import (
    DEFAULT_SESSION_SECRET,
    AuthMode,
    AuthSettings,
    DatabaseSettings,
    LeaderElectionSettings,
    ServerSettings,
    Settings,
    is_loopback,
)

GOOD_SECRET = "x" * 40
OIDC = AuthSettings(mode=AuthMode.OIDC, issuer_url="https://sso.example", client_id="onyxia")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONYXIA_CONFIG", raising=False)


def test_defaults_are_valid_on_localhost() -> None:
    settings = Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.auth.mode is AuthMode.NONE
    assert settings.database.url.get_secret_value() == "sqlite+aiosqlite:///./onyxia.db"


def test_auth_none_is_refused_on_a_public_address() -> None:
    with pytest.raises(ValidationError, match=r"auth mode 'none' is refused on 0\.0\.0\.0"):
        Settings(server=ServerSettings(host="0.0.0.0", session_secret=SecretStr(GOOD_SECRET)))


@pytest.mark.parametrize(
    "where",
    [{"host": "0.0.0.0"}, {"host": "127.0.0.1"}, {"host": "127.0.0.1", "dev_mode": True}],
)
def test_oidc_refuses_the_published_default_session_secret_everywhere(
    where: dict[str, Any],
) -> None:
    dev = where.pop("dev_mode", False)
    with pytest.raises(ValidationError, match=r"auth mode oidc needs server\.session_secret"):
        Settings(dev_mode=dev, server=ServerSettings(**where), auth=OIDC)
    chosen = ServerSettings(**where, session_secret=SecretStr(GOOD_SECRET))
    assert Settings(dev_mode=dev, server=chosen, auth=OIDC).auth.mode is AuthMode.OIDC


def test_auth_none_generates_one_secret_per_installation(tmp_path: Path) -> None:
    def installation(name: str) -> Settings:
        url = f"sqlite+aiosqlite:///{tmp_path / name / 'onyxia.db'}"
        return Settings(database=DatabaseSettings(url=SecretStr(url)))

    first = with_installation_secret(installation("a"))
    secret = first.server.session_secret.get_secret_value()
    assert secret != DEFAULT_SESSION_SECRET
    assert len(secret) >= 32
    kept = tmp_path / "a" / "onyxia-session-secret"
    assert kept.read_text().strip() == secret
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The same installation keeps it (sessions and project passwords survive restarts); another
    # installation gets its own.
    again = with_installation_secret(installation("a")).server.session_secret
    assert again.get_secret_value() == secret
    other = with_installation_secret(installation("b")).server.session_secret
    assert other.get_secret_value() != secret
    # An operator's secret is used as it is, and nothing is written.
    chosen = Settings(
        server=ServerSettings(session_secret=SecretStr(GOOD_SECRET)),
        database=DatabaseSettings(url=SecretStr(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")),
    )
    assert with_installation_secret(chosen).server.session_secret.get_secret_value() == GOOD_SECRET
    assert not (tmp_path / "onyxia-session-secret").exists()


def test_short_session_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(
            server=ServerSettings(host="0.0.0.0", session_secret=SecretStr("short")), auth=OIDC
        )


def test_dev_mode_allows_insecure_defaults_anywhere() -> None:
    settings = Settings(dev_mode=True, server=ServerSettings(host="0.0.0.0"))
    assert settings.auth.mode is AuthMode.NONE


def test_secure_public_configuration_is_accepted() -> None:
    settings = Settings(
        server=ServerSettings(host="0.0.0.0", session_secret=SecretStr(GOOD_SECRET)), auth=OIDC
    )
    assert settings.auth.issuer_url == "https://sso.example"


def test_oidc_needs_an_issuer_and_a_client() -> None:
    with pytest.raises(ValidationError, match=r"needs auth\.issuer_url and auth\.client_id"):
        AuthSettings(mode=AuthMode.OIDC)


def test_nested_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONYXIA_DATABASE__URL", "postgresql+asyncpg://u:p@db/onyxia")
    monkeypatch.setenv("ONYXIA_SERVER__PORT", "9000")
    monkeypatch.setenv("ONYXIA_PROJECTS__NAMESPACE_LABELS", '{"team": "stats"}')
    settings = Settings()
    assert settings.database.url.get_secret_value() == "postgresql+asyncpg://u:p@db/onyxia"
    assert settings.server.port == 9000
    assert settings.projects.namespace_labels == {"team": "stats"}


def test_yaml_file_and_environment_priority(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "onyxia.yaml"
    config.write_text("server:\n  port: 7000\n  log_format: json\nhelm:\n  max_history: 3\n")
    monkeypatch.setenv("ONYXIA_CONFIG", str(config))
    monkeypatch.setenv("ONYXIA_SERVER__PORT", "7001")
    settings = Settings()
    assert settings.server.port == 7001  # the environment wins over the file
    assert settings.server.log_format.value == "json"
    assert settings.helm.max_history == 3


def test_unknown_keys_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "onyxia.yaml"
    config.write_text("server:\n  prot: 7000\n")
    monkeypatch.setenv("ONYXIA_CONFIG", str(config))
    with pytest.raises(ValidationError, match="prot"):
        Settings()


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONYXIA_CONFIG", "/nonexistent/onyxia.yaml")
    with pytest.raises(ValueError, match="not a file"):
        Settings()


def test_out_of_range_values_name_the_field() -> None:
    with pytest.raises(ValidationError, match="port"):
        ServerSettings(port=70000)


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(server=ServerSettings(session_secret=SecretStr(GOOD_SECRET)))
    assert GOOD_SECRET not in repr(settings)
    assert GOOD_SECRET not in str(settings.model_dump())


def test_leader_election_timings_nest() -> None:
    election = Settings().leader_election
    assert (election.lease_duration_seconds, election.renew_deadline_seconds) == (15, 10.0)
    assert election.retry_period_seconds == 2.0
    # A leader must give up before a successor may take over, and retry before giving up.
    with pytest.raises(ValidationError, match="renew_deadline_seconds must be shorter"):
        LeaderElectionSettings(lease_duration_seconds=5, renew_deadline_seconds=5)
    with pytest.raises(ValidationError, match="retry_period_seconds must be shorter"):
        LeaderElectionSettings(renew_deadline_seconds=2, retry_period_seconds=2)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_configuration_docs_are_up_to_date() -> None:
    docs = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert docs.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run python -m onyxia_py config-docs"
    )
