"""Small charts with icons, tiny generated images, and a recording HTTP server, for the chart
icon tests (integration and browser)."""

from __future__ import annotations

import http.server
import struct
import threading
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from devtools.helmrepo import HelmRepoServer, build_repository, package_charts

SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">'
    b'<circle cx="8" cy="8" r="7" fill="#e46e2e"/></svg>'
)


def tiny_png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (228, 110, 46)) -> bytes:
    """A valid PNG of one colour (`width` x `height` pixels)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_chart(root: Path, name: str, icon: str, files: dict[str, bytes] | None = None) -> Path:
    """A minimal chart folder `root/name` whose Chart.yaml names `icon`, with extra `files`."""
    folder = root / name
    (folder / "templates").mkdir(parents=True)
    metadata = {
        "apiVersion": "v2",
        "name": name,
        "version": "1.0.0",
        "description": f"The {name} test chart",
        "type": "application",
        "icon": icon,
    }
    (folder / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    (folder / "values.yaml").write_text("greeting: hello\n")
    (folder / "templates" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    for relative, data in (files or {}).items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def publish(server: HelmRepoServer, charts: list[Path]) -> None:
    """Package `charts` into the served folder and (re)write its index.yaml."""
    package_charts(charts, server.directory)
    build_repository(server.directory, server.url)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        self.owner: RecordingServer = server.owner
        super().__init__(request, client_address, server, directory=str(self.owner.directory))

    def do_GET(self) -> None:
        """Record the request, then answer a fixed route or a file."""
        owner = self.owner
        with owner.lock:
            owner.requests.append((self.path, self.headers.get("Authorization")))
        route = owner.routes.get(self.path)
        if route is None:
            super().do_GET()
            return
        status, headers, body = route
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class RecordingServer:
    """Serves `directory` and fixed `routes` (path -> status, headers, body) on 127.0.0.1, and
    records each request's path and Authorization header."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def authorizations(self, path: str) -> list[str | None]:
        """The Authorization header of each request for `path`."""
        with self.lock:
            return [auth for p, auth in self.requests if p == path]

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
