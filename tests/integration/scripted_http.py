"""A real HTTP server for the outbound-request tests: on any loopback address (127.0.0.2 and ::1
included), it serves a folder and scripted routes (redirects, bodies without a length, bodies
dripped a few bytes at a time) and records which paths were asked for."""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Route:
    """One scripted answer. `drip` > 0 sends the body `chunk` bytes at a time, `drip` seconds
    apart; `declare_length` False leaves out Content-Length (the body ends when the connection
    closes)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    declare_length: bool = True
    drip: float = 0.0
    chunk: int = 1


def redirect(location: str) -> Route:
    """A 302 to `location`."""
    return Route(302, {"Location": location})


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: ScriptedServer, host: str) -> None:
        self.owner = owner
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up on a drip or a capped body are what the tests cause: quiet."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.owner: ScriptedServer = server.owner
        super().__init__(request, client_address, server, directory=str(self.owner.directory))

    def do_GET(self) -> None:
        """Record the path, then answer its route, the catch-all route, or a file."""
        path = self.path.split("?", 1)[0]
        with self.owner.lock:
            self.owner.paths.append(path)
        route = self.owner.routes.get(path) or self.owner.routes.get("*")
        if route is None:
            super().do_GET()
            return
        self.send_response(route.status)
        for key, value in route.headers.items():
            self.send_header(key, value)
        if route.declare_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if not route.drip:
            self.wfile.write(route.body)
            return
        for start in range(0, len(route.body), route.chunk):
            if self.owner.stopping.wait(route.drip):
                return
            self.wfile.write(route.body[start : start + route.chunk])
            self.wfile.flush()
            self.owner.dripped += route.chunk

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class ScriptedServer:
    """Serves `directory` and `routes` (path, or "*" for any other path) over HTTP on `host`."""

    def __init__(self, directory: Path, host: str = "127.0.0.1") -> None:
        self.directory = directory
        self.routes: dict[str, Route] = {}
        self.paths: list[str] = []
        self.dripped = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _Server(self, host)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        host, port = str(self._server.server_address[0]), self.port
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def hits(self, path: str | None = None) -> int:
        """How many requests asked for `path` (any path when None)."""
        with self.lock:
            return sum(1 for p in self.paths if path is None or p == path)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping.set()  # cut drips short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
