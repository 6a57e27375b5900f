"""The command line refuses bad configurations with readable reasons, not tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from onyxia_py.cli import main


def test_insecure_host_override_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ONYXIA_CONFIG", raising=False)
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--host", "0.0.0.0"])
    message = str(caught.value.code)
    assert message.startswith("invalid configuration:")
    assert "auth mode 'none' is refused on 0.0.0.0" in message


def test_bad_values_name_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONYXIA_SERVER__PORT", "not-a-port")
    with pytest.raises(SystemExit) as caught:
        main(["db", "upgrade"])
    assert "server.port" in str(caught.value.code)


def test_db_upgrade_migrates_sqlite(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONYXIA_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    main(["db", "upgrade"])
    assert "database at revision head" in capsys.readouterr().out
    assert (tmp_path / "cli.db").stat().st_size > 0


def test_config_docs_check_passes_on_the_committed_file() -> None:
    docs = Path(__file__).parents[2] / "docs" / "configuration.md"
    main(["config-docs", "--check", "--output", str(docs)])
