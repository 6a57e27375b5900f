"""A throwaway OCI registry for tests: Debian's docker-registry (distribution 2.8) on a free port.

Install it with devtools/system-deps-oci.sh. The registry speaks plain HTTP on 127.0.0.1, so
helm_python needs `plain_http=True` for push, pull, show and login.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import helm_python
import httpx

from devtools.ports import free_port

__all__ = ["REGISTRY_BIN", "LocalOciRegistry", "htpasswd_line", "push_chart"]

REGISTRY_BIN = Path("/usr/bin/docker-registry")


def htpasswd_line(username: str, password: str) -> str:
    """A bcrypt htpasswd line (the only hash distribution accepts)."""
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]

        hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
        return f"{username}:{hashed.decode()}"
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        # -i reads the password from stdin, so it never shows up in the process list.
        result = subprocess.run(
            ["htpasswd", "-niB", "-C", "5", username],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()
    # Last resort: libxcrypt's bcrypt through the deprecated stdlib crypt module.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        if crypt.METHOD_BLOWFISH not in crypt.methods:
            raise RuntimeError("no bcrypt: pip install bcrypt or apt-get install apache2-utils")
        # METHOD_BLOWFISH is bcrypt ($2b$), not the weak hashes the S324 rule is about.
        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)  # noqa: S324
        return f"{username}:{crypt.crypt(password, salt)}"


class LocalOciRegistry:
    """Start with `start()` (or `with`), push to `url`, stop with `stop()`."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        repo_path: str = "charts",
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("basic auth needs both username and password")
        self.username = username
        self.password = password
        self.repo_path = repo_path.strip("/")
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="onyxia-oci-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._client: helm_python.RegistryClient | None = None

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the registry host as OCI references and login spell it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The OCI repository root charts are pushed to, e.g. `oci://127.0.0.1:PORT/charts`."""
        return f"oci://{self.host}/{self.repo_path}"

    @property
    def http_url(self) -> str:
        """The registry's HTTP endpoint (for the /v2/ API)."""
        return f"http://{self.host}"

    @property
    def log_file(self) -> Path:
        """Where the registry process logs."""
        return self._root / "registry.log"

    @property
    def auth(self) -> tuple[str, str] | None:
        """httpx basic auth for the /v2/ API, if the registry has auth."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password

    def _write_config(self) -> Path:
        # JSON is YAML, so the config needs no YAML writer.
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self._root / "storage")},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {"addr": self.host, "secret": secrets.token_hex(16)},
        }
        if self.username is not None and self.password is not None:
            htpasswd = self._root / "htpasswd"
            htpasswd.write_text(htpasswd_line(self.username, self.password) + "\n")
            htpasswd.chmod(0o600)
            config["auth"] = {"htpasswd": {"realm": "onyxia-test", "path": str(htpasswd)}}
        path = self._root / "config.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    def start(self, timeout: float = 30.0) -> LocalOciRegistry:
        """Write the config, start the registry and wait until /v2/ answers."""
        if not REGISTRY_BIN.exists():
            raise RuntimeError("docker-registry is not installed: run devtools/system-deps-oci.sh")
        config = self._write_config()
        log = self.log_file.open("wb")
        self._proc = subprocess.Popen(
            [str(REGISTRY_BIN), "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self._root,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self._log_tail()}")
            try:
                # 401 is an answer too: the registry is up, it just wants credentials.
                status = httpx.get(f"{self.http_url}/v2/", timeout=1).status_code
                if status in (200, 401):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer within {timeout}s")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def client(self) -> helm_python.RegistryClient:
        """A plain-HTTP helm_python client, logged in when auth is on (owned by the registry)."""
        if self._client is None:
            client = helm_python.RegistryClient(
                plain_http=True, credentials_file=self._root / "helm-registry.json"
            )
            if self.username is not None and self.password is not None:
                client.login(self.host, self.username, self.password, plain_http=True)
            self._client = client
        return self._client

    def tags(self, chart: str) -> list[str]:
        """Tags of `<repo_path>/<chart>` through the registry API (empty if unknown)."""
        response = httpx.get(
            f"{self.http_url}/v2/{self.repo_path}/{chart}/tags/list", auth=self.auth, timeout=10
        )
        if response.status_code == 404:
            return []
        response.raise_for_status()
        tags: list[str] = response.json().get("tags") or []
        return tags

    def stop(self) -> None:
        """Stop the registry by pid and delete its storage; idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            self._proc = None
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LocalOciRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:
        # Never leave a registry process behind if a test forgets to stop it.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.kill()


def push_chart(
    registry: LocalOciRegistry,
    tgz: Path,
    repo_path: str = "charts",
    username: str | None = None,
    password: str | None = None,
) -> dict[str, Any]:
    """Push a chart archive to `oci://<host>/<repo_path>`; credentials default to the registry's."""
    remote = f"oci://{registry.host}/{repo_path.strip('/')}"
    username = username if username is not None else registry.username
    password = password if password is not None else registry.password
    if username is None or password is None:
        return helm_python.push(tgz, remote, plain_http=True)
    # A private credentials file: never write to the user's Helm registry config.
    with (
        tempfile.TemporaryDirectory(prefix="onyxia-oci-login-") as tmp,
        helm_python.RegistryClient(
            plain_http=True, credentials_file=Path(tmp) / "config.json"
        ) as client,
    ):
        client.login(registry.host, username, password, plain_http=True)
        return helm_python.push(tgz, remote, client=client, plain_http=True)


def _self_check() -> None:
    """Push the fixture charts (without and with auth), list tags, pull and show them back."""
    from devtools.helmrepo import build_fixture_repository

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onyxia-oci-check-") as tmp:
        charts = Path(tmp) / "charts"
        build_fixture_repository(charts)
        for auth in (None, ("alice", secrets.token_hex(8))):
            username, password = auth if auth else (None, None)
            with LocalOciRegistry(username=username, password=password) as registry:
                if auth:
                    denied = httpx.get(f"{registry.http_url}/v2/_catalog", timeout=5)
                    assert denied.status_code == 401, denied.status_code
                    try:
                        helm_python.push(
                            charts / "library-chart-1.0.0.tgz", registry.url, plain_http=True
                        )
                    except helm_python.HelmError:
                        pass
                    else:
                        raise AssertionError("anonymous push accepted")
                for name in ("library-chart-1.0.0", "jupyter-lite-1.0.0", "jupyter-lite-2.0.0"):
                    pushed = push_chart(registry, charts / f"{name}.tgz")
                    print("pushed", name, pushed)
                tags = sorted(registry.tags("jupyter-lite"))
                assert tags == ["1.0.0", "2.0.0"], tags
                client = registry.client()
                print("client.tags", client.tags(f"{registry.url}/jupyter-lite"))
                print("resolve", client.resolve(f"{registry.url}/jupyter-lite:1.0.0"))
                out = Path(tmp) / f"pulled-{bool(auth)}"
                out.mkdir()
                helm_python.pull(
                    f"{registry.url}/jupyter-lite",
                    client=client,
                    version="1.0.0",
                    destination=out,
                    plain_http=True,
                )
                pulled = out / "jupyter-lite-1.0.0.tgz"
                with helm_python.Chart.load(pulled) as chart:
                    assert chart.metadata["keywords"] == ["python", "jupyter"]
                # show(version=...) is rejected by helm_python 0.2.2 ("unknown field version"):
                # put the tag in the reference instead.
                shown = helm_python.show(
                    f"{registry.url}/library-chart:1.0.0",
                    client=client,
                    output_format="chart",
                    plain_http=True,
                )
                assert "type: library" in shown, shown
                print(f"auth={bool(auth)}: push, tags, pull, show ok")
    print(f"self-check passed in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    _self_check()
