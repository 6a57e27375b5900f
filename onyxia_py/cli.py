"""Command line: `python -m onyxia_py serve | db upgrade | config-docs`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from onyxia_py.settings import Settings


def load_settings(**overrides: Any) -> Settings:
    """Settings from `overrides`, the environment and ONYXIA_CONFIG, or exit with the reason."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors(include_input=False)
        ]
        sys.exit("invalid configuration:\n" + "\n".join(lines))
    except ValueError as exc:
        sys.exit(f"invalid configuration: {exc}")


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from onyxia_py.app import create_app
    from onyxia_py.logs import configure_logging

    server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    settings = load_settings(**({"server": server} if server else {}))
    configure_logging(settings.server.log_format.value, settings.server.log_level)
    if settings.server.workers > 1:
        _serve_workers(settings, server)
        return
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def _serve_workers(settings: Settings, server: dict[str, Any]) -> None:
    """`server.workers` processes on one port, each a replica built by `worker_app`. What
    they must not race over is done here first: the installation's session secret and the
    migrations; the command line's overrides reach them through the environment."""
    import uvicorn

    from onyxia_py.app import with_installation_secret
    from onyxia_py.db import upgrade_sync

    with_installation_secret(settings)  # written once, then read by every worker
    if settings.database.migrate_on_start:
        upgrade_sync(settings.database.url.get_secret_value())
    for key, value in server.items():
        os.environ[f"ONYXIA_SERVER__{key.upper()}"] = str(value)
    os.environ["ONYXIA_DATABASE__MIGRATE_ON_START"] = "false"
    uvicorn.run(
        "onyxia_py.cli:worker_app",
        factory=True,
        workers=settings.server.workers,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


def worker_app() -> Any:
    """One worker's application (uvicorn's factory when server.workers > 1)."""
    from onyxia_py.app import create_app
    from onyxia_py.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.server.log_format.value, settings.server.log_level)
    return create_app(settings)


def _db_upgrade(args: argparse.Namespace) -> None:
    from onyxia_py.db import upgrade_sync
    from onyxia_py.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.server.log_format.value, settings.server.log_level)
    upgrade_sync(settings.database.url.get_secret_value(), args.revision)
    print(f"database at revision {args.revision}")


def _config_docs(args: argparse.Namespace) -> None:
    from onyxia_py.config_docs import render

    text = render()
    target = Path(args.output)
    if args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            sys.exit(f"{target} is out of date: run python -m onyxia_py config-docs")
        return
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


def main(argv: list[str] | None = None) -> None:
    """Parse `argv` and run the chosen command."""
    parser = argparse.ArgumentParser(prog="onyxia-py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(run=_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    up = db_commands.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(run=_db_upgrade)

    docs = commands.add_parser("config-docs", help="write docs/configuration.md")
    docs.add_argument("--output", default="docs/configuration.md")
    docs.add_argument("--check", action="store_true", help="fail if the file is out of date")
    docs.set_defaults(run=_config_docs)

    args = parser.parse_args(argv)
    args.run(args)
