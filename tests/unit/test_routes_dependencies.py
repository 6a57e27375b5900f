"""Routes receive only the services they need, never the whole `Platform` (issue #15 item 8),
and every route's dependencies and endpoint run on the event loop."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from onyxia_py.api.deps import PlatformDep
from onyxia_py.app import create_app
from onyxia_py.settings import DatabaseSettings, KubernetesSettings, Settings

# Routes still handed the whole platform, each with the reason. Onyxia's REST API
# (onyxia_compat/) is another change's code, not yet moved to per-service dependencies.
STILL_TAKE_PLATFORM = {
    "onyxia_py.onyxia_compat.routes.healthcheck": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.public_catalogs": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.schemas": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.schema": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.user_info": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.my_catalogs": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.chart_versions": "onyxia_compat, not converted yet",
    "onyxia_py.onyxia_compat.routes.quota": "onyxia_compat, not converted yet",
}


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        if inner is not None:
            yield from _routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


GET_PLATFORM = get_args(PlatformDep)[1].dependency


def _takes_platform(dependant: Dependant) -> bool:
    """Whether the endpoint or any dependency it declares is handed the whole platform."""
    return any(sub.call is GET_PLATFORM or _takes_platform(sub) for sub in dependant.dependencies)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp: Path = tmp_path_factory.mktemp("routes")
    return create_app(
        Settings(
            # Building the app reaches no server: no cluster and a database never opened.
            kubernetes=KubernetesSettings(kubeconfig=tmp / "none"),
            database=DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}"),
        )
    )


def _name(route: APIRoute) -> str:
    return f"{route.endpoint.__module__}.{route.endpoint.__qualname__}"


def test_routes_take_services_not_the_platform(app: FastAPI) -> None:
    routes = list(_routes(app.router.routes))
    assert len(routes) > 50  # the walk found the routes of the included routers
    taking = {_name(r) for r in routes if _takes_platform(r.dependant)}
    assert taking - STILL_TAKE_PLATFORM.keys() == set()
    # An exception that no longer applies is removed from the list.
    assert STILL_TAKE_PLATFORM.keys() - taking == set()


def test_api_and_pages_never_take_the_platform(app: FastAPI) -> None:
    ours = [
        r
        for r in _routes(app.router.routes)
        if r.endpoint.__module__.startswith(("onyxia_py.api.", "onyxia_py.ui."))
    ]
    assert ours
    assert [_name(r) for r in ours if _takes_platform(r.dependant)] == []


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _blocking(call: Any) -> bool:
    return not (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or inspect.iscoroutinefunction(type(call).__call__)  # an instance used as a dependency
    )


def test_no_route_runs_a_dependency_or_its_endpoint_in_the_thread_pool(app: FastAPI) -> None:
    """FastAPI runs a plain function in its thread pool: a hop between threads per dependency
    per request (about a sixth of the event loop's time in a profile of the services
    listing, when every `get_*` dependency was a plain function)."""
    routes = list(_routes(app.router.routes))
    blocking = {
        f"{route.path}: {getattr(call, '__qualname__', call)}"
        for route in routes
        for call in [route.endpoint, *_calls(route.dependant)]
        if _blocking(call)
    }
    assert blocking == set()
