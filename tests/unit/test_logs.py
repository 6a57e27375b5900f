"""Log lines: request ids and redaction of secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from onyxia_py.logs import REDACTED, ContextFilter, JsonFormatter, redact, request_id_var

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        (f"token {JWT} refused", JWT),
        ("password=hunter2hunter2 user=alice", "hunter2hunter2"),
        ('{"client_secret": "s3cr3t-value"}', "s3cr3t-value"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("key id ASIAIOSFODNN7EXAMPLE", "ASIAIOSFODNN7EXAMPLE"),
        ("postgresql+asyncpg://onyxia:pa55word@db/onyxia", "pa55word"),
        ("session_token: FwoGZXIvYXdzEBYaDKRL", "FwoGZXIvYXdzEBYaDKRL"),
        ("refresh_token=abc.def.ghi", "abc.def.ghi"),
    ],
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    clean = redact(text)
    assert secret not in clean
    assert REDACTED in clean


def test_ordinary_text_is_untouched() -> None:
    text = "installed release jupyter-1234 in user-alice (3 pods)"
    assert redact(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_json_lines_carry_the_request_id_and_redact_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    token = request_id_var.set("req-42")
    try:
        logger.info("calling with %s", f"Bearer {JWT}")
    finally:
        request_id_var.reset(token)
    entry = json.loads(stream.getvalue())
    assert entry["request_id"] == "req-42"
    assert entry["level"] == "INFO"
    assert JWT not in entry["message"]
    assert REDACTED in entry["message"]


def test_exception_texts_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError("login failed for password=topsecret123")
    except RuntimeError:
        logger.exception("boom")
    entry = json.loads(stream.getvalue())
    assert "topsecret123" not in stream.getvalue()
    assert "RuntimeError" in entry["exception"]


def test_lines_outside_a_request_have_a_dash(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.warning("background work")
    assert json.loads(stream.getvalue())["request_id"] == "-"
