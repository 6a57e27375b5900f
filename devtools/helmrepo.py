"""A real HTTP(S) Helm chart repository for tests: packaging, index.yaml, a fault-injecting server.

Charts are packaged WITHOUT their dependencies by default (the repository serves the library
chart too), so a loader has to resolve them from the same repository. Offline recipe with
helm_python: put the dependency's `.tgz` under `<chart>/charts/` (on disk, or inside the archive
with `bundle_dependencies`) and load that; see `render_offline`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import http.server
import io
import ipaddress
import logging
import shutil
import ssl
import tarfile
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import helm_python
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "FIXTURE_CATALOG",
    "JUPYTER_LITE_VERSIONS",
    "PLACEHOLDER_REPOSITORY",
    "ChartSource",
    "FaultKind",
    "HelmRepoServer",
    "build_fixture_repository",
    "build_repository",
    "bundle_dependencies",
    "fixture_repository",
    "fixture_sources",
    "package_bundled",
    "package_charts",
    "render_offline",
    "retargeted",
    "sha256_file",
]

log = logging.getLogger(__name__)

FIXTURE_CATALOG = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "catalog"
JUPYTER_LITE_VERSIONS = ("1.0.0", "1.1.0", "2.0.0")
PLACEHOLDER_REPOSITORY = "https://charts.example.invalid/interactive"

# A chart directory, or (chart directory, version to package it as).
ChartSource = Path | tuple[Path, str]
FaultKind = Literal["404", "500", "garbage", "slow"]

GARBAGE = b"\x1f\x8b\x00{{{ not: [yaml, nor a tarball\n\x00\xff\xfe garbage\n"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file (the `digest` a Helm index carries, without a prefix)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_chart_yaml(chart_dir: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    if not isinstance(loaded, dict):
        raise ValueError(f"{chart_dir}/Chart.yaml is not a mapping")
    return cast(dict[str, Any], loaded)


def _split_source(source: ChartSource) -> tuple[Path, str | None]:
    if isinstance(source, tuple):
        return source[0], source[1]
    return source, None


def _dependencies(chart_dir: Path) -> list[dict[str, Any]]:
    deps = _read_chart_yaml(chart_dir).get("dependencies") or []
    return [dep for dep in deps if isinstance(dep, dict)]


def package_charts(
    sources: Sequence[ChartSource], out_dir: Path, *, vendor_dependencies: bool = False
) -> list[Path]:
    """Package chart dirs into `out_dir` as `<name>-<version>.tgz`; returns the archives."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # Charts without dependencies first, so vendoring finds the library archive already built.
    ordered = sorted(sources, key=lambda source: bool(_dependencies(_split_source(source)[0])))
    archives: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="onyxia-helmrepo-pkg-") as scratch:
        for index, source in enumerate(ordered):
            chart_dir, version = _split_source(source)
            work = Path(scratch) / str(index) / chart_dir.name
            shutil.copytree(chart_dir, work)
            if version is not None:
                metadata = _read_chart_yaml(work)
                metadata["version"] = version
                (work / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
            if vendor_dependencies and _dependencies(work):
                # What chart-releaser does for Onyxia's charts: the archive carries its subcharts.
                (work / "charts").mkdir(exist_ok=True)
                for dep in _dependencies(work):
                    dep_archive = out_dir / f"{dep['name']}-{dep['version']}.tgz"
                    if not dep_archive.exists():
                        raise FileNotFoundError(f"{work.name} needs {dep_archive.name}")
                    shutil.copy2(dep_archive, work / "charts" / dep_archive.name)
                archives.append(Path(helm_python.package(work, destination=out_dir)))
            else:
                # `helm package` refuses declared-but-absent dependencies; Chart.save does not.
                with helm_python.Chart.load(work) as chart:
                    archives.append(Path(chart.save(out_dir)))
    return archives


def package_bundled(chart_dir: Path, dependencies: Sequence[Path], out_dir: Path) -> Path:
    """Package `chart_dir` with each dependency chart dir packaged under its `charts/` (as
    `helm dependency build` leaves it), into `out_dir`; the dependencies get no archive there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="onyxia-helmrepo-bundle-") as scratch:
        work = Path(scratch) / chart_dir.name
        shutil.copytree(chart_dir, work)
        (work / "charts").mkdir(exist_ok=True)
        for dependency in dependencies:
            with helm_python.Chart.load(dependency) as chart:
                chart.save(work / "charts")
        return Path(helm_python.package(work, destination=out_dir))


def retargeted(chart_dir: Path, out_dir: Path, repositories: Mapping[str, str]) -> Path:
    """A copy of `chart_dir` under `out_dir` whose dependencies naming a repository URL that is
    a key of `repositories` name its value instead (test servers' URLs are known only once they
    run)."""
    work = out_dir / chart_dir.name
    shutil.copytree(chart_dir, work, dirs_exist_ok=True)
    metadata = _read_chart_yaml(work)
    for dependency in metadata.get("dependencies") or []:
        if isinstance(dependency, dict) and dependency.get("repository") in repositories:
            dependency["repository"] = repositories[dependency["repository"]]
    (work / "Chart.yaml").write_text(yaml.safe_dump(metadata, sort_keys=False))
    return work


def build_repository(out_dir: Path, base_url: str | None = None) -> Path:
    """Write `out_dir/index.yaml` for every `.tgz` in `out_dir`; URLs are absolute with base_url."""
    # helm_python's `helm repo index` fills name, version, appVersion, type, keywords,
    # annotations, dependencies, urls, digest (sha256) and created from each archive.
    helm_python.repo_index_generate(out_dir, base_url=base_url.rstrip("/") if base_url else None)
    return out_dir / "index.yaml"


def fixture_sources(catalog: Path = FIXTURE_CATALOG) -> list[ChartSource]:
    """The fixture catalog: library-chart, jupyter-lite 1.0.0/1.1.0/2.0.0 and rstudio-lite."""
    sources: list[ChartSource] = [catalog / "library-chart", catalog / "rstudio-lite"]
    sources += [(catalog / "jupyter-lite", version) for version in JUPYTER_LITE_VERSIONS]
    return sources


def build_fixture_repository(
    out_dir: Path, base_url: str | None = None, *, vendor_dependencies: bool = False
) -> Path:
    """Package the fixture catalog into `out_dir` and index it; returns index.yaml."""
    package_charts(fixture_sources(), out_dir, vendor_dependencies=vendor_dependencies)
    return build_repository(out_dir, base_url)


def bundle_dependencies(chart_archive: bytes, dependencies: Sequence[bytes]) -> bytes:
    """A copy of a chart `.tgz` with each dependency `.tgz` added under `<chart>/charts/`."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(chart_archive), mode="r:gz") as source,
        tarfile.open(fileobj=out, mode="w:gz") as target,
    ):
        members = source.getmembers()
        if not members:
            raise ValueError("empty chart archive")
        # Helm archives hold one top directory named after the chart.
        top = members[0].name.split("/", 1)[0]
        for member in members:
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for number, dependency in enumerate(dependencies):
            entry = tarfile.TarInfo(f"{top}/charts/dependency-{number}.tgz")
            entry.size = len(dependency)
            entry.mode = 0o644
            target.addfile(entry, io.BytesIO(dependency))
    return out.getvalue()


def render_offline(
    chart_archive: bytes,
    dependencies: Sequence[bytes] = (),
    values: Mapping[str, Any] | None = None,
    *,
    name: str = "release",
    namespace: str = "default",
) -> dict[str, str]:
    """Render a chart archive with its dependency archives, with no network."""
    bundled = bundle_dependencies(chart_archive, dependencies) if dependencies else chart_archive
    with helm_python.Chart.load_archive(bundled) as chart:
        return chart.render(dict(values or {}), name=name, namespace=namespace)


def _self_signed_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a 127.0.0.1/localhost server certificate signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "onyxia test helm repo CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (
        directory / "ca.pem",
        directory / "tls.crt",
        directory / "tls.key",
    )
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


class _RepoHTTPServer(http.server.ThreadingHTTPServer):
    """The stdlib threading server, pointing back at the HelmRepoServer it serves for."""

    daemon_threads = True

    def __init__(self, repo: HelmRepoServer, directory: Path) -> None:
        self.repo = repo
        self.directory = directory
        super().__init__(("127.0.0.1", 0), _RepoHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts in tests) are expected: log them quietly."""
        log.debug("helm repo: request from %s failed", client_address, exc_info=True)


class _RepoHandler(http.server.SimpleHTTPRequestHandler):
    """Static files plus basic auth, request counting and fault injection."""

    def __init__(self, request: Any, client_address: Any, server: Any) -> None:
        super().__init__(
            request, client_address, server, directory=str(cast(_RepoHTTPServer, server).directory)
        )

    @property
    def _repo(self) -> HelmRepoServer:
        return cast(_RepoHTTPServer, self.server).repo

    def do_GET(self) -> None:
        """Serve a file unless auth or a fault says otherwise."""
        if self._intercept():
            super().do_GET()

    def do_HEAD(self) -> None:
        """Same gatekeeping as GET."""
        if self._intercept():
            super().do_HEAD()

    def _intercept(self) -> bool:
        """Count, authenticate and apply faults; True when the file should be served."""
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        repo = self._repo
        repo._count(path, credentials=self.headers.get("Authorization") is not None)
        if not repo._authorized(self.headers.get("Authorization")):
            self._reply(401, b"unauthorized\n", {"WWW-Authenticate": 'Basic realm="helm-repo"'})
            return False
        fault = repo._fault_for(path)
        if fault is None:
            return True
        kind, delay = fault
        if kind == "404":
            self._reply(404, b"not found (injected)\n")
            return False
        if kind == "500":
            self._reply(500, b"internal error (injected)\n")
            return False
        if kind == "garbage":
            self._reply(200, GARBAGE, {"Content-Type": "application/octet-stream"})
            return False
        # "slow": hold the answer, but let stop() cut the wait short.
        repo._stopping.wait(delay)
        return True

    def _reply(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for header, value in (headers or {}).items():
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Route access logs to logging instead of stderr."""
        log.debug("helm repo %s: " + format, self.address_string(), *args)


class HelmRepoServer:
    """Serve a directory as a Helm repository on 127.0.0.1 (HTTP or HTTPS, optional basic auth)."""

    def __init__(
        self,
        directory: Path,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("basic auth needs both username and password")
        self.directory = directory
        self.username = username
        self.password = password
        self.tls = tls
        self.hits: dict[str, int] = {}
        self.credentialed: dict[str, int] = {}  # requests that carried an Authorization header
        self._faults: dict[str, tuple[FaultKind, float]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _RepoHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp: Path | None = None
        self.ca_file: Path | None = None

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The repository URL, without a trailing slash."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> HelmRepoServer:
        """Bind a free port and serve in a background thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _RepoHTTPServer(self, self.directory)
        if self.tls:
            self._tmp = Path(tempfile.mkdtemp(prefix="onyxia-helmrepo-tls-"))
            self.ca_file, cert_file, key_file = _self_signed_tls(self._tmp)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            # Handshake in the handler thread, so one stuck client cannot block accept().
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; idempotent."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            self.ca_file = None

    def __enter__(self) -> HelmRepoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def set_fault(self, path_suffix: str, kind: FaultKind, delay: float = 5.0) -> None:
        """Make requests whose path ends with `path_suffix` fail as `kind` (slow: wait `delay`)."""
        with self._lock:
            self._faults[path_suffix] = (kind, delay)

    def clear_faults(self) -> None:
        """Serve everything normally again."""
        with self._lock:
            self._faults.clear()

    def hit_count(self, path_suffix: str) -> int:
        """Requests (including rejected ones) whose path ends with `path_suffix`."""
        with self._lock:
            return sum(count for path, count in self.hits.items() if path.endswith(path_suffix))

    def credentialed_count(self, path_suffix: str = "") -> int:
        """Requests whose path ends with `path_suffix` that carried an Authorization header."""
        with self._lock:
            return sum(n for path, n in self.credentialed.items() if path.endswith(path_suffix))

    def reset_hits(self) -> None:
        """Forget the request counts."""
        with self._lock:
            self.hits.clear()
            self.credentialed.clear()

    def _count(self, path: str, *, credentials: bool = False) -> None:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            if credentials:
                self.credentialed[path] = self.credentialed.get(path, 0) + 1

    def _fault_for(self, path: str) -> tuple[FaultKind, float] | None:
        with self._lock:
            for suffix, fault in self._faults.items():
                if path.endswith(suffix):
                    return fault
        return None

    def _authorized(self, header: str | None) -> bool:
        if self.username is None or self.password is None:
            return True
        if header is None or not header.startswith("Basic "):
            return False
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return hmac.compare_digest(header[len("Basic ") :].strip(), expected)


@contextlib.contextmanager
def fixture_repository(
    *,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    vendor_dependencies: bool = False,
) -> Iterator[HelmRepoServer]:
    """A served fixture catalog repository in a temp dir, removed on exit."""
    with tempfile.TemporaryDirectory(prefix="onyxia-helmrepo-") as tmp:
        directory = Path(tmp)
        with HelmRepoServer(directory, username=username, password=password, tls=tls) as server:
            build_fixture_repository(directory, server.url, vendor_dependencies=vendor_dependencies)
            yield server


def _self_check() -> None:
    """Package, index, serve (plain, basic auth, TLS, faults) and render the fixture catalog."""
    import secrets
    import time

    import httpx

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onyxia-helmrepo-check-") as tmp:
        directory = Path(tmp)
        for tls, auth in (
            (False, None),
            (False, ("alice", secrets.token_hex(8))),
            (True, ("bob", secrets.token_hex(8))),
        ):
            username, password = auth if auth else (None, None)
            with HelmRepoServer(directory, username=username, password=password, tls=tls) as srv:
                for stale in directory.glob("*"):
                    stale.unlink()
                build_fixture_repository(directory, srv.url)
                verify: str | bool = str(srv.ca_file) if srv.ca_file else True
                with httpx.Client(verify=verify, auth=auth, timeout=5) as client:
                    if auth:
                        denied = httpx.get(f"{srv.url}/index.yaml", verify=verify)
                        assert denied.status_code == 401, denied.status_code
                        assert denied.headers["WWW-Authenticate"].startswith("Basic")
                    index = yaml.safe_load(client.get(f"{srv.url}/index.yaml").content)
                    versions = sorted(e["version"] for e in index["entries"]["jupyter-lite"])
                    assert versions == list(JUPYTER_LITE_VERSIONS), versions
                    archives: dict[str, bytes] = {}
                    for name in ("jupyter-lite", "library-chart", "rstudio-lite"):
                        entry = index["entries"][name][0]
                        body = client.get(entry["urls"][0]).raise_for_status().content
                        assert hashlib.sha256(body).hexdigest() == entry["digest"], name
                        archives[name] = body
                    manifests = render_offline(
                        archives["jupyter-lite"],
                        [archives["library-chart"]],
                        {"ingress": {"enabled": True}, "s3": {"enabled": True}},
                    )
                    kinds = sorted(
                        yaml.safe_load(text)["kind"]
                        for key, text in manifests.items()
                        if key.endswith(".yaml")
                    )
                    assert kinds == ["Ingress", "Secret", "Service", "StatefulSet"], kinds
                    with helm_python.Chart.load_archive(archives["jupyter-lite"]) as chart:
                        assert chart.schema is not None
                        assert chart.dependencies == []  # served without its library chart
                    try:
                        render_offline(archives["jupyter-lite"])
                    except helm_python.HelmRenderError:
                        pass
                    else:
                        raise AssertionError("rendered without the library chart")
                    render_offline(archives["rstudio-lite"], [archives["library-chart"]])
                    srv.set_fault("index.yaml", "garbage")
                    garbage = client.get(f"{srv.url}/index.yaml").content
                    assert garbage == GARBAGE
                    srv.set_fault("rstudio-lite-1.0.0.tgz", "404")
                    assert client.get(f"{srv.url}/rstudio-lite-1.0.0.tgz").status_code == 404
                    srv.set_fault("index.yaml", "500")
                    assert client.get(f"{srv.url}/index.yaml").status_code == 500
                    srv.set_fault("index.yaml", "slow", delay=2)
                    try:
                        client.get(f"{srv.url}/index.yaml", timeout=0.5)
                    except httpx.ReadTimeout:
                        pass
                    else:
                        raise AssertionError("slow fault answered in time")
                    srv.clear_faults()
                    assert client.get(f"{srv.url}/index.yaml").status_code == 200
                    print(f"tls={tls} auth={bool(auth)} ok, hits={srv.hit_count('index.yaml')}")
        # helm_python itself (Go's HTTP client) against the served repository.
        secret = secrets.token_hex(8)
        with HelmRepoServer(directory, username="bob", password=secret) as srv:
            build_repository(directory, srv.url)
            index = helm_python.repo_index(srv.url, username="bob", password=secret)
            assert sorted(index["entries"]) == ["jupyter-lite", "library-chart", "rstudio-lite"]
            pulled = directory / "pulled"
            pulled.mkdir()  # helm_python.pull does not create its destination
            helm_python.pull(
                "jupyter-lite",
                repo_url=srv.url,
                version="1.1.0",
                destination=pulled,
                username="bob",
                password=secret,
            )
            assert (pulled / "jupyter-lite-1.1.0.tgz").exists()
            print("helm_python.repo_index and pull with basic auth ok")
    print(f"self-check passed in {time.perf_counter() - started:.2f}s")


if __name__ == "__main__":
    _self_check()
