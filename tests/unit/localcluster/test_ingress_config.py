"""The local ingress's nginx configuration, built from plain Ingress/Service/EndpointSlice dicts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from devtools.localcluster.nginxconf import NginxSettings, build_routes, nginx_config

JSON = dict[str, Any]
SETTINGS = NginxSettings(listen=("127.0.0.1:8080",), state_dir=Path("/state"))


def ingress(name: str, rules: list[JSON], *, ns: str = "u", created: str = "2026-01-01") -> JSON:
    return {
        "metadata": {"namespace": ns, "name": name, "creationTimestamp": created},
        "spec": {"ingressClassName": "whatever", "rules": rules},
    }


def rule(host: str, *paths: tuple[str, str, str, int | str]) -> JSON:
    """A rule for host with (path, pathType, service, port number or name) paths."""
    return {
        "host": host,
        "http": {
            "paths": [
                {
                    "path": path,
                    "pathType": kind,
                    "backend": {
                        "service": {
                            "name": svc,
                            "port": {"number": port} if isinstance(port, int) else {"name": port},
                        }
                    },
                }
                for path, kind, svc, port in paths
            ]
        },
    }


def service(name: str, ports: list[JSON], *, ns: str = "u", kind: str = "ClusterIP") -> JSON:
    return {
        "metadata": {"namespace": ns, "name": name},
        "spec": {"type": kind, "clusterIP": "10.96.0.9", "ports": ports},
    }


def eps(
    svc: str, ports: list[JSON], endpoints: list[tuple[str, bool | None]], *, ns: str = "u"
) -> JSON:
    """An EndpointSlice of svc with (address, ready) endpoints; ready None leaves it unset."""
    return {
        "metadata": {
            "namespace": ns,
            "name": f"{svc}-x{len(endpoints)}",
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": "IPv6" if endpoints and ":" in endpoints[0][0] else "IPv4",
        "ports": ports,
        "endpoints": [
            {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
            for ip, ready in endpoints
        ],
    }


HTTP = [{"name": "http", "port": 80, "targetPort": "web"}]
SLICE_HTTP = [{"name": "http", "port": 8888, "protocol": "TCP"}]


def config(ingresses: list[JSON], services: list[JSON], slices: list[JSON]) -> str:
    return nginx_config(ingresses, services, slices, SETTINGS)[0]


def server_block(text: str, server_name: str) -> str:
    """The text of the server block whose server_name is server_name."""
    for block in text.split("    server {")[1:]:
        if f"server_name {server_name};" in block:
            return block
    raise AssertionError(f"no server {server_name} in:\n{text}")


def test_named_target_port_resolves_through_the_slice_port_name() -> None:
    text = config(
        [ingress("j", [rule("t1.lab.localhost", ("/", "Prefix", "jup", "http"))])],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("10.244.0.3", True), ("10.244.0.4", False)])],
    )
    assert (
        "upstream backend.u.jup.http {\n        server 10.244.0.3:8888 max_fails=0;\n    }" in text
    )
    assert "10.244.0.4" not in text
    block = server_block(text, "t1.lab.localhost")
    assert 'location "/" {\n            proxy_pass http://backend.u.jup.http;' in block


def test_service_port_by_number_and_unset_ready_counts_as_ready() -> None:
    routes, _ = build_routes(
        [ingress("j", [rule("a.lab.localhost", ("/", "Prefix", "jup", 80))])],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("10.244.0.5", None)])],
    )
    assert routes[0].backend.endpoints == ("10.244.0.5:8888",)


def test_numeric_target_port_without_a_matching_slice_port() -> None:
    routes, _ = build_routes(
        [ingress("j", [rule("a.lab.localhost", ("/", "Prefix", "web", 80))])],
        [service("web", [{"port": 80, "targetPort": 8080}])],
        [eps("web", [{"name": "other", "port": 1}], [("10.244.0.6", True)])],
    )
    assert routes[0].backend.endpoints == ("10.244.0.6:8080",)


def test_each_slice_port_of_a_named_target_port_is_used() -> None:
    a = eps("jup", SLICE_HTTP, [("10.244.0.3", True)])
    b = eps("jup", [{"name": "http", "port": 9000}], [("10.244.0.7", True), ("10.244.0.8", True)])
    routes, _ = build_routes(
        [ingress("j", [rule("a.lab.localhost", ("/", "Prefix", "jup", "http"))])],
        [service("jup", HTTP)],
        [a, b],
    )
    assert routes[0].backend.endpoints == ("10.244.0.3:8888", "10.244.0.7:9000", "10.244.0.8:9000")


def test_ipv6_endpoints_are_bracketed() -> None:
    routes, _ = build_routes(
        [ingress("j", [rule("a.lab.localhost", ("/", "Prefix", "jup", "http"))])],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("fd00::5", True)])],
    )
    assert routes[0].backend.endpoints == ("[fd00::5]:8888",)


def test_no_ready_endpoint_answers_503_with_the_reason() -> None:
    text = config(
        [ingress("j", [rule("t1.lab.localhost", ("/", "Prefix", "jup", "http"))])],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("10.244.0.3", False)])],
    )
    block = server_block(text, "t1.lab.localhost")
    assert 'return 503 "service starting: no ready endpoint for u/jup\\n";' in block
    assert "upstream backend" not in text


def test_missing_service_port_and_external_name_answer_503() -> None:
    routes, _ = build_routes(
        [
            ingress(
                "j",
                [
                    rule(
                        "a.lab.localhost",
                        ("/gone", "Prefix", "gone", 80),
                        ("/port", "Prefix", "jup", "metrics"),
                        ("/ext", "Prefix", "ext", 80),
                    )
                ],
            )
        ],
        [service("jup", HTTP), service("ext", [{"port": 80}], kind="ExternalName")],
        [],
    )
    assert [r.backend.problem for r in routes] == [
        "service not found: u/gone",
        "service u/jup has no port metrics",
        "ExternalName service u/ext is not supported",
    ]


def test_path_types() -> None:
    text = config(
        [
            ingress(
                "j",
                [
                    rule(
                        "a.lab.localhost",
                        ("/exact", "Exact", "jup", "http"),
                        ("/lab/", "Prefix", "jup", "http"),
                        ("/impl", "ImplementationSpecific", "jup", "http"),
                    )
                ],
            )
        ],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("10.244.0.3", True)])],
    )
    block = server_block(text, "a.lab.localhost")
    locations = re.findall(r"location (.+?) \{", block)
    # Prefix /lab matches /lab and /lab/..., never /labs; the rest of the host is 404.
    assert sorted(locations) == ['"/"', '"/impl"', '"/lab/"', '= "/exact"', '= "/lab"']
    assert 'location "/" { return 404 "no ingress path matches\\n"; }' in block


def test_unknown_hosts_get_404_and_tls_is_ignored() -> None:
    ing = ingress("j", [rule("t1.lab.localhost", ("/", "Prefix", "jup", "http"))])
    ing["spec"]["tls"] = [{"hosts": ["t1.lab.localhost"], "secretName": "cert"}]
    text = config([ing], [service("jup", HTTP)], [])
    default = server_block(text, "_")
    assert "listen 127.0.0.1:8080 default_server;" in default
    assert 'return 404 "no ingress rule for this host\\n";' in default
    assert "ssl" not in text
    assert "443" not in text


def test_rules_without_host_and_default_backends_serve_any_host() -> None:
    ing = ingress("j", [rule("", ("/any", "Prefix", "jup", "http"))])
    ing["spec"]["defaultBackend"] = {"service": {"name": "jup", "port": {"number": 80}}}
    text = config(
        [ing, ingress("k", [rule("b.lab.localhost", ("/only", "Exact", "jup", "http"))])],
        [service("jup", HTTP)],
        [eps("jup", SLICE_HTTP, [("10.244.0.3", True)])],
    )
    default = server_block(text, "_")
    assert '"/any/"' in default
    assert 'location "/" {\n            proxy_pass http://backend.u.jup.80;' in default
    # A host's unmatched paths fall back to the default backend too.
    assert "proxy_pass http://backend.u.jup.80;" in server_block(text, "b.lab.localhost")


def test_same_host_from_two_ingresses_merges_and_the_oldest_wins_a_clash() -> None:
    old = ingress("old", [rule("a.lab.localhost", ("/", "Prefix", "one", 80))], created="2026-01")
    new = ingress(
        "new",
        [rule("a.lab.localhost", ("/", "Prefix", "two", 80), ("/api", "Prefix", "two", 80))],
        created="2026-02",
    )
    services = [service("one", [{"port": 80}]), service("two", [{"port": 80}])]
    slices = [eps("one", [], [("10.0.0.1", True)]), eps("two", [], [("10.0.0.2", True)])]
    text = config([new, old], services, slices)
    block = server_block(text, "a.lab.localhost")
    assert text.count("server_name a.lab.localhost;") == 1
    assert 'location "/" {\n            proxy_pass http://backend.u.one.80;' in block
    assert 'location "/api/" {\n            proxy_pass http://backend.u.two.80;' in block


def test_exact_beats_the_exact_half_of_a_prefix() -> None:
    older = ingress("a", [rule("a.lab.localhost", ("/x", "Prefix", "one", 80))], created="1")
    newer = ingress("b", [rule("a.lab.localhost", ("/x", "Exact", "two", 80))], created="2")
    services = [service("one", [{"port": 80}]), service("two", [{"port": 80}])]
    slices = [eps("one", [], [("10.0.0.1", True)]), eps("two", [], [("10.0.0.2", True)])]
    block = server_block(config([older, newer], services, slices), "a.lab.localhost")
    assert 'location = "/x" {\n            proxy_pass http://backend.u.two.80;' in block
    assert 'location "/x/" {\n            proxy_pass http://backend.u.one.80;' in block


def test_wildcard_hosts_match_one_label() -> None:
    text = config([ingress("j", [rule("*.w.lab.localhost", ("/", "Prefix", "jup", 80))])], [], [])
    assert "server_name ~^[^.]+\\.w\\.lab\\.localhost$;" in text


def test_unsafe_paths_are_skipped_with_a_warning() -> None:
    _, routes, warnings = nginx_config(
        [ingress("j", [rule("a.lab.localhost", ('/x"; evil', "ImplementationSpecific", "s", 80))])],
        [],
        [],
        SETTINGS,
    )
    assert routes == []
    assert warnings == ["u/j: path '/x\"; evil' skipped"]


def test_what_the_tools_need_websockets_timeouts_bodies_streaming_headers() -> None:
    text = config([], [], [])
    for line in (
        "map $http_upgrade $connection_upgrade { default upgrade; '' close; }",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 3600s;",
        "client_max_body_size 0;",
        "proxy_buffering off;",
        "proxy_request_buffering off;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $http_host;",
    ):
        assert line in text


def test_every_path_is_under_the_state_dir() -> None:
    text = config([], [], [])
    paths = re.findall(r'"(/[^"]*)"', text)
    assert paths
    assert all(p.startswith("/state/") for p in paths if p != "/")
    assert "/var/" not in text
    assert "/etc/" not in text


def test_output_does_not_depend_on_input_order() -> None:
    ings = [
        ingress("a", [rule("a.lab.localhost", ("/", "Prefix", "jup", "http"))]),
        ingress("b", [rule("b.lab.localhost", ("/", "Prefix", "jup", "http"))], ns="v"),
    ]
    services = [service("jup", HTTP), service("jup", HTTP, ns="v")]
    slices = [
        eps("jup", SLICE_HTTP, [("10.244.0.3", True), ("10.244.0.1", True)]),
        eps("jup", SLICE_HTTP, [("10.244.1.3", True)], ns="v"),
    ]
    first = config(ings, services, slices)
    assert config(ings[::-1], services[::-1], slices[::-1]) == first
    assert first.index("10.244.0.1:8888") < first.index("10.244.0.3:8888")
