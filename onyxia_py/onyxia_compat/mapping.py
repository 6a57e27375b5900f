"""Domain objects as Onyxia's answers: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from onyxia_py.catalog.core import Catalogs
from onyxia_py.catalog.models import ChartVersion, LoadedCatalog
from onyxia_py.onyxia_compat.models import (
    CatalogOut,
    ChartOut,
    DependencyOut,
    PackagesOut,
    ProjectOut,
    QuotaOut,
    VisibleOut,
)
from onyxia_py.projects.models import Project

_URL_SCHEMES = ("http", "https", "oci")


def default_values(values: dict[str, Any] | None) -> str:
    """A chart's default values as YAML text (`defaultValues`; empty when unknown)."""
    if values is None:
        return ""
    return yaml.safe_dump(values, sort_keys=False, allow_unicode=True)


def chart_out(version: ChartVersion, values: dict[str, Any] | None) -> ChartOut:
    """One chart version as Onyxia's `Chart` (empty icon and home left out, as index.yaml
    leaves them out)."""
    return ChartOut(
        name=version.name,
        version=version.version,
        app_version=version.app_version,
        description=version.description,
        icon=version.icon.strip() or None,
        home=version.home.strip() or None,
        type=version.type or "application",
        keywords=list(version.keywords),
        annotations=dict(version.annotations),
        dependencies=[
            DependencyOut(name=d.name, version=d.version, repository=d.repository)
            for d in version.dependencies
        ],
        urls=list(version.urls),
        digest=version.digest,
        created=version.created,
        deprecated=version.deprecated,
        default_values=default_values(values),
    )


def public_location(location: str) -> str:
    """A catalogue's location as users may read it: a repository URL without credentials;
    empty for a folder on the server (its path is nobody's business)."""
    parts = urlsplit(location)
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        return ""
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def catalog_out(catalog: LoadedCatalog, latest: dict[str, ChartOut]) -> CatalogOut:
    """A loaded catalogue with the newest offered version of each of its charts."""
    spec = catalog.spec
    return CatalogOut(
        id=spec.id,
        name=spec.name,
        description=spec.description,
        maintainer=spec.maintainer,
        location=public_location(spec.location),
        status=spec.status,
        type=spec.type,
        highlighted_charts=list(spec.highlighted_charts),
        excluded_charts=list(spec.excluded_charts),
        include_keywords=list(spec.include_keywords),
        exclude_keywords=list(spec.exclude_keywords),
        include_annotations=dict(spec.include_annotations),
        exclude_annotations=dict(spec.exclude_annotations),
        multiple_services_mode=spec.multiple_services_mode.value,
        max_number_of_versions=spec.max_number_of_versions,
        skip_tls_verify=spec.skip_tls_verify,
        ca_file=spec.ca_file,
        visible=VisibleOut(user=spec.visible.user, project=spec.visible.project),
        timeout=spec.timeout,
        last_update_time=int(catalog.loaded_at.timestamp() * 1000),
        catalog=PackagesOut(generated=catalog.loaded_at.isoformat(), latest_packages=latest),
    )


def catalogs_for(catalogs: Catalogs, attributes: dict[str, Any]) -> list[LoadedCatalog]:
    """The loaded catalogues a user with `attributes` sees in personal or in group projects,
    each once. Onyxia answers with every catalogue the restrictions allow and the web picks by
    `visible` per project; one shown in neither kind of project is left out here."""
    found: dict[str, LoadedCatalog] = {}
    for group_project in (False, True):
        for catalog in catalogs.visible(attributes, group_project=group_project):
            found.setdefault(catalog.spec.id, catalog)
    order = {spec.id: n for n, spec in enumerate(catalogs.specs())}
    return sorted(found.values(), key=lambda c: order.get(c.spec.id, len(order)))


def project_out(
    project: Project, username: str, bucket: Callable[[Project], str | None]
) -> ProjectOut:
    """One project as Onyxia's `Project`. Without Vault, `vaultTopDir` is where the web keeps
    the project's settings in the browser, so it must tell projects apart: the username for
    the personal project, the project id for a group's (Onyxia's, with empty Vault prefixes)."""
    personal = project.group is None
    return ProjectOut(
        id=project.id,
        group=project.group,
        namespace=project.namespace,
        name=f"{username} personal project" if personal else (project.group or project.id),
        vault_top_dir=username if personal else project.id,
        bucket=bucket(project),
    )


def quota_out(quota: dict[str, Any] | None) -> QuotaOut:
    """A ResourceQuota as `{spec, usage}`: what is allowed (the status's `hard`, else the
    spec's) and what is used, each quantity as Kubernetes writes it."""
    if not quota:
        return QuotaOut(spec={}, usage={})
    status = quota.get("status") or {}
    hard = status.get("hard") or (quota.get("spec") or {}).get("hard") or {}
    used = status.get("used") or {}
    return QuotaOut(
        spec={str(k): str(v) for k, v in hard.items()},
        usage={str(k): str(used.get(k, "0")) for k in hard},
    )
