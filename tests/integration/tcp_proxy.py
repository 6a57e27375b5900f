"""A TCP forwarder in front of a real server that a test can break: refuse connections (a server
that is down) or hold every byte (a server that hangs), then heal."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `upstream`, byte for byte (TLS passes through)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.mode = "forward"  # or "refuse", "hang"
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def refuse(self) -> None:
        """Drop every connection and every new one at once, as a server that went away."""
        self.mode = "refuse"
        self._drop_all()

    def hang(self) -> None:
        """Keep connections open but pass nothing, as a server that stopped answering."""
        self.mode = "hang"

    def heal(self) -> None:
        """Forward again."""
        self.mode = "forward"

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self._closed = True
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode == "refuse":
                client.close()
                continue
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.mode == "hang":
                    time.sleep(0.05)
                if self.mode == "refuse":
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


def kubeconfig_through(proxy: TcpProxy, kubeconfig: Path, target: Path) -> Path:
    """A copy of `kubeconfig` whose clusters are reached through `proxy`."""
    document = yaml.safe_load(kubeconfig.read_text())
    for cluster in document["clusters"]:
        server = urlsplit(cluster["cluster"]["server"])
        cluster["cluster"]["server"] = f"{server.scheme}://127.0.0.1:{proxy.port}"
    target.write_text(yaml.safe_dump(document))
    target.chmod(0o600)
    return target


def upstream_of(kubeconfig: Path) -> tuple[str, int]:
    """The (host, port) of the current cluster of `kubeconfig`."""
    document = yaml.safe_load(kubeconfig.read_text())
    server = urlsplit(document["clusters"][0]["cluster"]["server"])
    assert server.hostname is not None
    return server.hostname, server.port or 443
