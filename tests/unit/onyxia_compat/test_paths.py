"""Onyxia's API sits beside ours under /api: no URL reaches both, and the prefix is a setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import RouteContext, iter_route_contexts
from pydantic import ValidationError
from starlette.routing import Mount

from onyxia_py.app import create_app
from onyxia_py.onyxia_compat import build_router
from onyxia_py.settings import (
    DatabaseSettings,
    KubernetesSettings,
    OnyxiaCompatSettings,
    Settings,
)

_PARAM = re.compile(r"^\{[^}:]+(:(?P<kind>[a-z]+))?\}$")
EVERY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def app(tmp: Path, **compat: object) -> FastAPI:
    return create_app(
        Settings(
            # Building the app reaches no server: no cluster and a database never opened.
            kubernetes=KubernetesSettings(kubeconfig=tmp / "none"),
            database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"),
            onyxia_compat=OnyxiaCompatSettings.model_validate(compat),
        )
    )


def segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def overlap(a: list[str], b: list[str]) -> bool:
    """Whether some URL matches both templates (`{x}` one segment, `{x:path}` one or more)."""
    if not a or not b:
        return not a and not b
    head_a, head_b = _PARAM.match(a[0]), _PARAM.match(b[0])
    for head, rest, other in ((head_a, a, b), (head_b, b, a)):
        if head and head.group("kind") == "path":
            return any(overlap(rest[1:], other[n:]) for n in range(1, len(other) + 1)) or (
                len(rest) == 1
            )
    if head_a or head_b or a[0] == b[0]:
        return overlap(a[1:], b[1:])
    return False


def test_the_overlap_check_sees_what_it_must() -> None:
    assert overlap(segments("/api/{a}/b"), segments("/api/c/{d}"))
    assert overlap(segments("/static/{p:path}"), segments("/static/x/y"))
    assert not overlap(segments("/api/public/ip"), segments("/api/projects/{project}"))
    assert not overlap(segments("/api/a"), segments("/api/a/b"))


def methods(route: RouteContext) -> frozenset[str]:
    if isinstance(route.original_route, Mount):
        return EVERY_METHOD
    return frozenset(route.methods or EVERY_METHOD)


def path_of(route: RouteContext) -> str:
    if isinstance(route.original_route, Mount):
        return f"{route.path}/{{rest:path}}"
    return str(route.path)


def routes(application: FastAPI) -> list[RouteContext]:
    return list(iter_route_contexts(application.routes))


def is_onyxias(route: RouteContext) -> bool:
    return getattr(route.endpoint, "__module__", "").startswith("onyxia_py.onyxia_compat")


def test_no_path_of_onyxias_api_collides_with_one_of_ours(tmp_path: Path) -> None:
    every = routes(app(tmp_path))
    onyxias = [r for r in every if is_onyxias(r)]
    ours = [r for r in every if not is_onyxias(r)]
    assert "/api/public/catalogs" in {r.path for r in onyxias}
    assert len(onyxias) == len(build_router("/api").routes)
    assert "/api/catalogs/{catalog_id}" in {r.path for r in ours}
    assert "/static/{rest:path}" in {path_of(r) for r in ours}
    clashes = [
        f"{sorted(methods(a) & methods(b))} {path_of(a)} and {path_of(b)}"
        for a in onyxias
        for b in ours
        if methods(a) & methods(b) and overlap(segments(path_of(a)), segments(path_of(b)))
    ]
    assert clashes == []


def test_the_router_is_served_under_its_prefix_or_not_at_all(tmp_path: Path) -> None:
    paths = {r.path for r in routes(app(tmp_path, prefix="/onyxia"))}
    assert "/onyxia/public/ip" in paths
    assert "/api/public/ip" not in paths
    off = [r for r in routes(app(tmp_path / "off", enabled=False)) if is_onyxias(r)]
    assert off == []


def test_onyxias_api_is_documented_under_a_tag_of_its_own(tmp_path: Path) -> None:
    document = app(tmp_path).openapi()
    operation = document["paths"]["/api/my-lab/quota"]["get"]
    assert operation["tags"] == ["onyxia compatibility"]
    assert "403" in operation["responses"]
    assert "401" in operation["responses"]  # it authenticates


@pytest.mark.parametrize("prefix", ["", "/", "api", "/api/", "/a b", "/../x"])
def test_a_prefix_is_a_plain_absolute_path(prefix: str) -> None:
    with pytest.raises(ValidationError):
        OnyxiaCompatSettings(prefix=prefix)


def test_the_defaults_serve_it_under_api() -> None:
    settings = OnyxiaCompatSettings()
    assert settings.enabled
    assert settings.prefix == "/api"
