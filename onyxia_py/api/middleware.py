"""ASGI middleware: request ids, access log lines, and Prometheus request metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid

from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onyxia_py.logs import request_id_var

access_log = logging.getLogger("onyxia_py.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    """The HTTP metrics of one app, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "onyxia_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "onyxia_http_requests_in_flight", "HTTP requests being served", registry=self.registry
        )


Headers = list[tuple[bytes, bytes]]


def security_headers(*, form_targets: tuple[str, ...], https: bool) -> dict[str, Headers]:
    """Headers for every answer: strict CSP (no inline script), no framing, no sniffing."""
    forms = " ".join(("'self'", *form_targets))
    strict = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action {forms}; "
        "frame-ancestors 'none'"
    )
    common = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if https:
        common.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return {"strict": [(b"content-security-policy", strict.encode()), *common]}


class RequestContextMiddleware:
    """Gives each request an id (header X-Request-ID), logs it, measures it, and adds the
    security headers to its answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        trust_request_id: bool,
        access_log: bool,
        headers: dict[str, Headers] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.trust_request_id = trust_request_id
        self.access_log = access_log
        self.headers = headers or security_headers(form_targets=(), https=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        scope["request_id"] = request_id
        request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        extra = self.headers["strict"]  # the API docs too (api/docs.py)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", request_id.encode()))
                headers.extend(kv for kv in extra if kv[0] not in present)
                message["headers"] = headers
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            self.metrics.latency.labels(scope["method"], route, str(status)).observe(elapsed)
            if self.access_log:
                # The path only: query strings can carry tokens.
                access_log.info(
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000
                )

    def _request_id(self, scope: Scope) -> str:
        if self.trust_request_id:
            for key, value in scope.get("headers", []):
                if key == b"x-request-id":
                    candidate: str = value.decode("latin-1")
                    if _SAFE_ID.match(candidate):
                        return candidate
        return uuid.uuid4().hex
