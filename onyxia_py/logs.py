"""Logging: plain or JSON lines, a request id on each, and secrets redacted before output.

The redaction filter sits on the handler, so it sees every record whatever logger emits it
(ours, uvicorn's, SQLAlchemy's, the Kubernetes client's).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")

REDACTED: Final = "[REDACTED]"

# Each pattern keeps its first group (the key) and replaces the secret after it.
_PATTERNS: Final = [
    # Authorization headers and bearer tokens.
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value, key: value, "key": "value" for secret-looking keys.
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|access[_-]?key(?:[_-]?id)?|"
        r"secret[_-]?access[_-]?key|session[_-]?token|client[_-]?secret|refresh[_-]?token|"
        r"id[_-]?token|authorization|cookie|set-cookie)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s\"',;&}]+"
    ),
    # Credentials inside URLs: scheme://user:password@host.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(?=@)"),
]
# A JWT anywhere, even without a key in front of it.
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# AWS secret access keys are 40 base64 characters; access key ids start with AKIA/ASIA.
_AWS_KEY_ID: Final = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b")


def redact(text: str) -> str:
    """`text` with tokens, passwords, keys and URL credentials replaced by a marker."""
    text = _JWT.sub(REDACTED, text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class ContextFilter(logging.Filter):
    """Adds the current request id to every record and redacts its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        message = record.getMessage()
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts can quote secrets too: render them now, redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as a JSON line."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


PLAIN_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(fmt: str = "plain", level: str = "INFO") -> None:
    """Route every logger to stderr through the redaction filter, in `fmt` (plain or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn installs its own handlers; send its records through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
