"""Generate `docs/configuration.md` from the settings model, so the docs cannot drift."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from onyxia_py.settings import DEFAULT_SESSION_SECRET, Settings

HEADER = """# Configuration

Every setting of onyxia-py, generated from `onyxia_py/settings/` by
`python -m onyxia_py config-docs` (a test fails when this file is out of date).

Each setting can be given, highest priority first:
- as an environment variable: `ONYXIA_` + group + `__` + name, upper case
  (`ONYXIA_DATABASE__URL`); lists and mappings as JSON (`ONYXIA_CATALOGS__PATHS='["catalog"]'`);
- in a YAML file named by `ONYXIA_CONFIG`, nested by group:

```yaml
server:
  host: 0.0.0.0
  session_secret: "replace-me-with-at-least-32-random-characters"
database:
  url: postgresql+asyncpg://onyxia:secret@db/onyxia
auth:
  mode: oidc
  issuer_url: https://sso.example.org/realms/datalab
  client_id: onyxia
```

Unknown keys are refused, and so are insecure defaults (auth mode `none`, the default session
secret) unless the server is bound to a loopback address or `dev_mode` is true.
Secrets (marked *secret*) are never logged nor returned by any endpoint.
"""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return "(a placeholder)" if secret == DEFAULT_SESSION_SECRET else f"`{secret}`"
    if isinstance(value, BaseModel):
        return ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list):
        value = [str(v) if isinstance(v, Path | Enum) else v for v in value]
    return "unset" if value is None else f"`{json.dumps(value)}`"


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("pathlib.", "").replace("pydantic.types.", "")
    if "SecretStr" in text:
        text += " (*secret*)"
    return text


def _row(*cells: str) -> str:
    """A table row; a `|` inside a cell is escaped, or it would split the cell (types such as
    `float | None` did, shifting every later column)."""
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _rows(model: type[BaseModel], env_prefix: str, yaml_prefix: str) -> list[str]:
    return [
        _row(
            f"`{yaml_prefix}{name}`",
            f"`{env_prefix}{name.upper()}`",
            _type(field),
            _default(field),
            field.description or "",
        )
        for name, field in model.model_fields.items()
    ]


def render() -> str:
    """The text of docs/configuration.md."""
    table_head = (
        "| YAML key | Environment variable | Type | Default | Meaning |\n|---|---|---|---|---|"
    )
    parts = [HEADER, "## General\n", table_head]
    groups: list[tuple[str, type[BaseModel], FieldInfo]] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            groups.append((name, annotation, field))
        else:
            parts.extend(_rows_for_single(name, field))
    for name, model, field in groups:
        parts.append(f"\n## `{name}`: {model.__doc__ or field.description or ''}\n")
        parts.append(table_head)
        parts.extend(_rows(model, f"ONYXIA_{name.upper()}__", f"{name}."))
    return "\n".join(parts) + "\n"


def _rows_for_single(name: str, field: FieldInfo) -> list[str]:
    return [
        _row(
            f"`{name}`",
            f"`ONYXIA_{name.upper()}`",
            _type(field),
            _default(field),
            field.description or "",
        )
    ]
