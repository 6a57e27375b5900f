"""Turn Ingresses, Services and EndpointSlices into an nginx configuration (pure functions).

One `server` per rule host (`server_name` matches the Host header without its port, so
`http://t1.lab.localhost:8080/` reaches `host: t1.lab.localhost`), one `location` per path
(Prefix matches whole path segments, Exact is `location =`, ImplementationSpecific is an
nginx prefix) and one `upstream` per backend, listing the backend Service's ready endpoints.
A backend without one answers 503 with the reason in plain text; unknown hosts get 404.
Rules without a host and `defaultBackend`s serve any host. `tls` sections are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
_SAFE_PATH = re.compile(r"^/[^\s\"\\{};#$\x00-\x1f\x7f]*$")
_SAFE_HOST = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class NginxSettings:
    """Where nginx listens, whose user its workers run as, and its state directory."""

    listen: tuple[str, ...]
    state_dir: Path
    user: str = "root"
    group: str = "root"
    read_timeout_s: int = 3600
    worker_shutdown_timeout_s: int = 300


@dataclass(frozen=True)
class Backend:
    """A Service port behind a route: its ready endpoints, or why there are none."""

    namespace: str
    service: str
    port: str
    endpoints: tuple[str, ...] = ()
    problem: str = ""

    @property
    def upstream(self) -> str:
        """The nginx upstream name (namespaces, Services and port names have no dots)."""
        return f"backend.{self.namespace}.{self.service}.{self.port}"

    def describe(self) -> str:
        """Say where requests go, for the log."""
        target = ",".join(self.endpoints) if self.endpoints else f"503 ({self.problem})"
        return f"{self.namespace}/{self.service}:{self.port} -> {target}"


@dataclass(frozen=True)
class Route:
    """One Ingress path: requests for host (any host if empty) and path go to backend."""

    host: str
    path: str
    path_type: str
    backend: Backend
    ingress: str

    def describe(self) -> str:
        """Say what the route serves, for the log."""
        return f"http://{self.host or '*'}{self.path} ({self.path_type}) {self.backend.describe()}"


class ClusterIndex:
    """Services by (namespace, name) and EndpointSlices by the Service they belong to."""

    def __init__(self, services: Iterable[JSON], slices: Iterable[JSON]) -> None:
        self.services = {_nsname(s): s for s in services}
        self.slices: dict[tuple[str, str], list[JSON]] = {}
        for sl in slices:
            meta = sl.get("metadata", {})
            svc = meta.get("labels", {}).get(SERVICE_NAME_LABEL)
            if svc:
                self.slices.setdefault((meta.get("namespace", ""), svc), []).append(sl)


def _nsname(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def resolve_backend(ns: str, backend: JSON, index: ClusterIndex) -> Backend:
    """Find the ready endpoints (address:port) of an Ingress backend."""
    ref = backend.get("service") or {}
    name = str(ref.get("name", ""))
    port_ref = ref.get("port") or {}
    port_key = str(port_ref.get("number") or port_ref.get("name") or "")
    if not name:
        return Backend(ns, "-", "-", problem="only Service backends are supported")
    b = Backend(ns, name, port_key or "-")
    svc = index.services.get((ns, name))
    if svc is None:
        return _with(b, problem=f"service not found: {ns}/{name}")
    spec = svc.get("spec", {})
    if spec.get("type") == "ExternalName":
        return _with(b, problem=f"ExternalName service {ns}/{name} is not supported")
    svc_port = next(
        (
            p
            for p in spec.get("ports") or []
            if (port_ref.get("number") and p.get("port") == port_ref.get("number"))
            or (port_ref.get("name") and p.get("name") == port_ref.get("name"))
        ),
        None,
    )
    if svc_port is None:
        return _with(b, problem=f"service {ns}/{name} has no port {port_key}")
    endpoints: set[str] = set()
    for sl in index.slices.get((ns, name), []):
        port = _slice_port(sl, svc_port)
        if port is None or sl.get("addressType") not in ("IPv4", "IPv6"):
            continue
        for ep in sl.get("endpoints") or []:
            addresses = ep.get("addresses") or []
            if addresses and ep.get("conditions", {}).get("ready") is not False:
                ip = addresses[0]
                endpoints.add(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
    if not endpoints:
        return _with(b, problem=f"service starting: no ready endpoint for {ns}/{name}")
    return _with(b, endpoints=tuple(sorted(endpoints)))


def _with(b: Backend, endpoints: tuple[str, ...] = (), problem: str = "") -> Backend:
    return Backend(b.namespace, b.service, b.port, endpoints, problem)


def _slice_port(sl: JSON, svc_port: JSON) -> int | None:
    # The EndpointSlice controller names each slice port after the Service port and gives it
    # the target port resolved for the slice's pods, named target ports included.
    want = svc_port.get("name") or ""
    for p in sl.get("ports") or []:
        if (p.get("name") or "") == want and (p.get("protocol") or "TCP") == "TCP":
            port = p.get("port")
            return int(port) if port else None
    target = svc_port.get("targetPort", svc_port.get("port"))
    return target if isinstance(target, int) else None


def build_routes(
    ingresses: Iterable[JSON], services: Iterable[JSON], slices: Iterable[JSON]
) -> tuple[list[Route], list[str]]:
    """Return every route (oldest Ingress first) and warnings about what was left out."""
    index = ClusterIndex(services, slices)
    routes: list[Route] = []
    warnings: list[str] = []

    def order(ing: JSON) -> tuple[str, str, str]:
        meta = ing.get("metadata", {})
        return str(meta.get("creationTimestamp", "")), *_nsname(ing)

    for ing in sorted(ingresses, key=order):
        ns, name = _nsname(ing)
        spec = ing.get("spec", {})
        for rule in spec.get("rules") or []:
            host = str(rule.get("host") or "").lower()
            if host and not _SAFE_HOST.match(host):
                warnings.append(f"{ns}/{name}: host {host!r} skipped")
                continue
            for p in (rule.get("http") or {}).get("paths") or []:
                path, path_type = str(p.get("path") or "/"), str(p.get("pathType") or "Prefix")
                if not _SAFE_PATH.match(path):
                    warnings.append(f"{ns}/{name}: path {path!r} skipped")
                    continue
                backend = resolve_backend(ns, p.get("backend") or {}, index)
                routes.append(Route(host, path, path_type, backend, f"{ns}/{name}"))
        if default := spec.get("defaultBackend"):
            backend = resolve_backend(ns, default, index)
            routes.append(Route("", "/", "Default", backend, f"{ns}/{name}"))
    return routes, warnings


def _locations(route: Route) -> list[tuple[int, str]]:
    # (priority, nginx location key); lower priority wins a clash, then the older Ingress.
    p = route.path
    if route.path_type == "Exact":
        return [(0, f'= "{p}"')]
    if route.path_type == "Prefix":
        p = p.rstrip("/")
        return [(1, '"/"')] if not p else [(1, f'= "{p}"'), (1, f'"{p}/"')]
    if route.path_type == "Default":
        return [(3, '"/"')]
    return [(2, f'"{p}"')]


def _server_name(host: str) -> str:
    if host.startswith("*."):
        # An Ingress wildcard matches exactly one label; nginx's `*.` would match several.
        return "~^[^.]+" + re.escape(host[1:]).replace("\\-", "-") + "$"
    return host


def _body(backend: Backend) -> list[str]:
    if backend.endpoints:
        return [f"proxy_pass http://{backend.upstream};"]
    # Inside an nginx string `$` starts a variable and `"` or `\\` would end or escape it.
    reason = re.sub(r'["\\$]', "?", backend.problem)
    return [
        'add_header Retry-After "5" always;',
        'add_header Cache-Control "no-store" always;',
        f'return 503 "{reason}\\n";',
    ]


def render(routes: list[Route], settings: NginxSettings) -> str:
    """Return the nginx configuration that serves the routes."""
    servers: dict[str, dict[str, tuple[int, int, Backend]]] = {"": {}}
    for n, route in enumerate(routes):
        server = servers.setdefault(route.host, {})
        for prio, key in _locations(route):
            if key not in server or (prio, n) < server[key][:2]:
                server[key] = (prio, n, route.backend)
    default = servers[""].get('"/"')
    d = settings.state_dir
    out = [
        "# generated by devtools.localcluster.ingress from Ingress objects; do not edit",
        f"user {settings.user} {settings.group};",
        "worker_processes 1;",
        f'error_log "{d}/logs/error.log" notice;',
        f"worker_shutdown_timeout {settings.worker_shutdown_timeout_s}s;",
        "events { worker_connections 1024; }",
        "http {",
        '    log_format ingress \'$remote_addr "$host" "$request" $status $body_bytes_sent \'',
        "                       '$request_time \"$upstream_addr\"';",
        f'    access_log "{d}/logs/access.log" ingress;',
        *(f'    {kind}_temp_path "{d}/tmp/{kind}";' for kind in TEMP_KINDS),
        "    default_type text/plain;",
        "    server_tokens off;",
        "    server_names_hash_bucket_size 512;  # hosts up to 253 characters",
        "    server_names_hash_max_size 8192;",
        "    map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
        "    proxy_http_version 1.1;",
        "    proxy_set_header Host $http_host;",
        "    proxy_set_header Upgrade $http_upgrade;",
        "    proxy_set_header Connection $connection_upgrade;",
        "    proxy_set_header X-Real-IP $remote_addr;",
        "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "    proxy_set_header X-Forwarded-Proto $scheme;",
        "    proxy_set_header X-Forwarded-Host $http_host;",
        "    proxy_set_header X-Forwarded-Port $server_port;",
        "    proxy_connect_timeout 5s;",
        f"    proxy_read_timeout {settings.read_timeout_s}s;",
        f"    proxy_send_timeout {settings.read_timeout_s}s;",
        "    proxy_buffering off;",
        "    proxy_request_buffering off;",
        "    proxy_redirect off;",
        "    client_max_body_size 0;",
    ]
    upstreams = {b.upstream: b for s in servers.values() for _, _, b in s.values() if b.endpoints}
    for name in sorted(upstreams):
        out.append(f"    upstream {name} {{")
        # max_fails=0: a refused connection while an app starts must not bench its only pod.
        out.extend(f"        server {ep} max_fails=0;" for ep in upstreams[name].endpoints)
        out.append("    }")
    for host in sorted(servers):
        locations = dict(servers[host])
        if '"/"' not in locations and default is not None:
            locations['"/"'] = default
        listen = " default_server" if host == "" else ""
        out.append("    server {")
        out.extend(f"        listen {addr}{listen};" for addr in settings.listen)
        out.append(f"        server_name {_server_name(host) if host else '_'};")
        for key in sorted(locations):
            out.append(f"        location {key} {{")
            out.extend(f"            {line}" for line in _body(locations[key][2]))
            out.append("        }")
        if '"/"' not in locations:
            reason = "no ingress rule for this host" if host == "" else "no ingress path matches"
            out.append(f'        location "/" {{ return 404 "{reason}\\n"; }}')
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


def nginx_config(
    ingresses: Iterable[JSON],
    services: Iterable[JSON],
    slices: Iterable[JSON],
    settings: NginxSettings,
) -> tuple[str, list[Route], list[str]]:
    """Return the configuration text, the routes it serves and warnings about skipped rules."""
    routes, warnings = build_routes(ingresses, services, slices)
    return render(routes, settings), routes, warnings
