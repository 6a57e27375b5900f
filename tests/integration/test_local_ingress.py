"""The local ingress controller routes Ingress hosts to real endpoints inside a network namespace.

The backend is a small HTTP + WebSocket server in a network namespace of the test's own, reached
over a veth pair (10.89.<n>.1 on the host, 10.89.<n>.2 in the namespace), standing for a pod.
Creating namespaces needs root: without it the test fails and says so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from devtools.ports import free_port
from onyxia_py.kube import KubeClient

REPO = Path(__file__).resolve().parents[2]
MANAGED_BY = "onyxia-py-tests"
TARGET = 2.0  # seconds from an API change to nginx serving it

BACKEND = r"""
import base64, hashlib, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, doc):
        body = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        self.reply({"hello": "netns", "path": self.path, "headers": dict(self.headers)})

    def do_POST(self):
        left = n = int(self.headers["Content-Length"])
        while left:
            left -= len(self.rfile.read(min(left, 1 << 20)))
        self.reply({"received": n})

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"] + GUID
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                break
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self.rfile.read(2), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                break
            self.wfile.write(bytes([0x80 | opcode, len(data)]) + data)
            self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class NetNs:
    """A network namespace with a veth pair to the host: host_ip <-> ns_ip."""

    name: str
    host_if: str
    host_ip: str
    ns_ip: str

    def run(self, argv: list[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start a process inside the namespace."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv], stdout=log, stderr=subprocess.STDOUT
        )


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    free = [n for n in range(1, 255) if f"10.89.{n}." not in used]
    return random.choice(free)


@contextlib.contextmanager
def netns() -> Iterator[NetNs]:
    """Create a namespace and veth pair of our own; delete both afterwards."""
    if os.geteuid() != 0:
        pytest.fail("creating a network namespace needs root (ip netns add); run as root")
    tag = secrets.token_hex(3)
    n = _free_subnet()
    ns = NetNs(f"onyxia-t-{tag}", f"ot{tag}h", f"10.89.{n}.1", f"10.89.{n}.2")
    peer = f"ot{tag}n"
    try:
        _ip("netns", "add", ns.name)
        _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns.name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
        _ip("link", "set", ns.host_if, "up")
        _ip("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", peer)
        _ip("-n", ns.name, "link", "set", peer, "up")
        _ip("-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", ns.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


@contextlib.contextmanager
def controller(module: str, args: list[str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `python -m devtools.localcluster.<module>`; SIGTERM it (then SIGKILL) afterwards."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"devtools.localcluster.{module}", *args],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stop_cleanly(proc: subprocess.Popen[bytes], child_pid_file: Path) -> None:
    """SIGTERM a controller: it exits 0 and its daemon child is gone too."""
    child = int(child_pid_file.read_text().strip())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert not Path(f"/proc/{child}").exists(), f"daemon {child} outlived its controller"


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> float:
    """Poll check every 20 ms; return the seconds it took, fail after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.02)
    pytest.fail(f"{what}: not seen after {timeout:.0f}s")


# No keep-alive: a reload must not hide behind a connection to an old worker. One client for
# all polls, as creating one per request costs more than the reloads being timed.
_HTTP = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), timeout=30.0)


def get(port: int, host: str, path: str = "/") -> httpx.Response:
    """GET through the ingress with the given Host header."""
    return _HTTP.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host})


def websocket_echo(port: int, host: str, message: bytes) -> tuple[str, bytes]:
    """Open a WebSocket through the ingress, send one text frame; return status line and echo."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        s.sendall(
            (
                f"GET /api/kernels/k/channels HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        status = head.split(b"\r\n")[0].decode()
        guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        accept = base64.b64encode(
            hashlib.sha1((key + guid).encode(), usedforsecurity=False).digest()
        ).decode()
        assert f"\r\nSec-WebSocket-Accept: {accept}\r\n".encode() in head
        mask = secrets.token_bytes(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(message))
        s.sendall(bytes([0x81, 0x80 | len(message)]) + mask + masked)
        frame = s.recv(2)
        echo = b""
        while len(echo) < frame[1]:
            echo += s.recv(frame[1] - len(echo))
        s.sendall(bytes([0x88, 0x80]) + mask)
        return status, echo


def api(kube: KubeClient, method: str, path: str, body: Any = None) -> Any:
    """One API call; merge-patch for PATCH."""
    kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
    return kube.request_sync(method, path, body=body, content_type=kind)


def test_ingress_routes_hosts_to_ready_endpoints(
    kube: KubeClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    port, backend_port = free_port(), 8080
    state = tmp_path / "ingress"
    (tmp_path / "backend.py").write_text(BACKEND)
    host = "t1.lab.localhost"
    with (
        netns() as ns,
        open(tmp_path / "backend.log", "wb") as backend_log,
        controller(
            "ingress",
            [
                "--kubeconfig",
                str(kubeconfig),
                "--listen",
                f"127.0.0.1:{port}",
                "--state-dir",
                str(state),
            ],
            tmp_path / "ingress.log",
        ) as ctl,
    ):
        server = ns.run(
            [sys.executable, str(tmp_path / "backend.py"), str(backend_port)], backend_log
        )
        try:
            _exercise(kube, namespace, ns, port, backend_port, host, state, ctl, tmp_path)
        finally:
            server.terminate()
            server.wait(timeout=10)


def _exercise(
    kube: KubeClient,
    namespace: str,
    ns: NetNs,
    port: int,
    backend_port: int,
    host: str,
    state: Path,
    ctl: subprocess.Popen[bytes],
    tmp_path: Path,
) -> None:
    log = tmp_path / "ingress.log"

    def answers(status: int, text: str = "") -> Callable[[], bool]:
        def check() -> bool:
            assert ctl.poll() is None, log.read_text()
            try:
                r = get(port, host)
            except httpx.TransportError:
                return False
            return r.status_code == status and text in r.text

        return check

    def served(status: int, text: str, what: str) -> float:
        """Seconds until the first answer is the new one; then every answer must be."""
        took = wait_for(answers(status, text), what)
        # On a reload the nginx master gives new workers 100 ms before it tells the old ones
        # to stop accepting, so some connections still get the old answer for that long.
        time.sleep(0.15)
        for _ in range(5):
            assert answers(status, text)(), f"{what}: an old worker still answers"
        return took

    wait_for(answers(404), "nginx answering 404 for an unknown host", timeout=20.0)
    api(
        kube,
        "POST",
        f"/api/v1/namespaces/{namespace}/services",
        {
            "metadata": {"name": "web"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend_port}]},
        },
    )
    slice_path = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    api(
        kube,
        "POST",
        slice_path,
        {
            "metadata": {
                "name": "web-1",
                "labels": {
                    "kubernetes.io/service-name": "web",
                    "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                },
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": backend_port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ns.ns_ip], "conditions": {"ready": True}}],
        },
    )
    ingress_path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses"
    t0 = time.monotonic()
    api(
        kube,
        "POST",
        ingress_path,
        {
            "metadata": {"name": "web"},
            "spec": {
                "ingressClassName": "onyxia-local",
                "tls": [{"hosts": [host]}],
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "web", "port": {"name": "http"}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
        },
    )
    create_took = time.monotonic() - t0
    routed = served(200, '"hello": "netns"', "the new route")
    routed_total = create_took + routed

    curl = subprocess.run(
        ["curl", "-sS", "-H", f"Host: {host}", f"http://127.0.0.1:{port}/lab?x=1"],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(curl.stdout)
    assert seen["path"] == "/lab?x=1"
    assert seen["headers"]["Host"] == host
    with_port = get(port, f"{host}:{port}").json()["headers"]
    # The Host header keeps the port the browser used (Jupyter compares it with Origin).
    assert with_port["Host"] == f"{host}:{port}"
    assert with_port["X-Forwarded-Host"] == f"{host}:{port}"
    assert with_port["X-Forwarded-For"] == "127.0.0.1"
    assert with_port["X-Forwarded-Proto"] == "http"

    status, echo = websocket_echo(port, host, b"hello kernel")
    assert status == "HTTP/1.1 101 Switching Protocols"
    assert echo == b"hello kernel"

    upload = 32 * 1024 * 1024
    r = _HTTP.post(f"http://127.0.0.1:{port}/upload", headers={"Host": host}, content=b"x" * upload)
    assert r.json() == {"received": upload}

    api(kube, "PATCH", f"{slice_path}/web-1", {"endpoints": []})
    reason = f"service starting: no ready endpoint for {namespace}/web"
    unready = served(503, reason, "503 once the endpoint is gone")
    r = get(port, host)
    assert r.text == reason + "\n"
    assert r.headers["content-type"] == "text/plain"

    api(kube, "DELETE", f"{ingress_path}/web")
    deleted = served(404, "no ingress rule", "404 once the Ingress is gone")
    assert get(port, host).text == "no ingress rule for this host\n"

    print(
        f"\ningress timings: route served {routed:.3f}s after the create returned "
        f"({routed_total:.3f}s incl. the create), endpoint removal -> 503 {unready:.3f}s, "
        f"Ingress deletion -> 404 {deleted:.3f}s"
    )
    assert max(routed, unready, deleted) < TARGET
    stop_cleanly(ctl, state / "nginx.pid")
    assert "nginx stopped" in log.read_text()
