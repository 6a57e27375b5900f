"""The simulated kubelet's log endpoint: the API server serves `pods/log` by calling the node's
kubelet over HTTPS at `/containerLogs/<ns>/<pod>/<container>`; this answers with made-up lines
(there are no containers), and keeps adding lines while a follower listens."""

from __future__ import annotations

import http.server
import logging
import ssl
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("simlogs")

FOLLOW_PERIOD = 0.5
FOLLOW_LIMIT_SECONDS = 600.0
START_LINES = 20


def _certificate(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "kubelet.crt", directory / "kubelet.key"
    if not (cert.is_file() and key.is_file()):
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=sim-kubelet",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def start_lines(pod: str, container: str) -> list[str]:
    """What every simulated container 'printed' when it started."""
    return [
        f"[{container}] simulated container of {pod}: line {i}" for i in range(1, START_LINES + 1)
    ]


def _stamp(line: str, timestamps: bool) -> str:
    return f"{datetime.now(UTC).isoformat()} {line}" if timestamps else line


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _LogServer
    # Chunked answers (follow) need HTTP/1.1; with 1.0 the framing would end up in the log.
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 4 or segments[0] != "containerLogs":
            self.send_error(404)
            return
        _, _namespace, pod, container = segments
        query = parse_qs(parts.query)
        lines = start_lines(pod, container)
        tail = query.get("tailLines", [""])[0]
        if tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        timestamps = query.get("timestamps", ["false"])[0] == "true"
        follow = query.get("follow", ["false"])[0] == "true"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if not follow:
            body = "".join(_stamp(line, timestamps) + "\n" for line in lines).encode()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for line in lines:
                self._chunk(_stamp(line, timestamps) + "\n")
            started, tick = time.monotonic(), 0
            while not self.server.stopping.is_set():
                if time.monotonic() - started > FOLLOW_LIMIT_SECONDS:
                    break
                time.sleep(FOLLOW_PERIOD)
                tick += 1
                self._chunk(_stamp(f"[{container}] still running (tick {tick})", timestamps) + "\n")
            self._chunk("")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return  # the follower left

    def _chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _LogServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stopping: threading.Event) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = stopping


def start_log_server(state_dir: Path, stopping: threading.Event) -> int:
    """Serve the kubelet log endpoint over HTTPS in a thread; the port it listens on."""
    cert, key = _certificate(state_dir)
    server = _LogServer(stopping)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, name="kubelet-logs", daemon=True).start()
    port: int = server.server_address[1]
    return port
