"""The answers of Onyxia's REST API, field for field as the Onyxia web reads them.

Written from the documented API (onyxia-anchor.md sections 1 and 3, and the web's own types):
camelCase where Onyxia uses it, Python names behind aliases. Answers are serialised by alias
and, where Onyxia leaves a field out rather than sending null (the web tells them apart: the
personal project is the one *without* `group`), without the None fields.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Localized = str | dict[str, str]


class OnyxiaModel(BaseModel):
    """Base of the answers: Onyxia's names on the wire, ours in code."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)


class IpOut(OnyxiaModel):
    """`GET /public/ip`: the caller's address, as the web puts it in `user.ip`."""

    ip: str


class HealthOut(OnyxiaModel):
    """`GET /public/healthcheck` when every catalogue has loaded once."""

    status: str = "UP"


class DependencyOut(OnyxiaModel):
    """A chart a chart needs, as `index.yaml` lists it."""

    name: str
    version: str
    repository: str


class ChartOut(OnyxiaModel):
    """One version of a chart: the fields of its `index.yaml` entry and its default values."""

    name: str
    version: str
    app_version: str = Field(alias="appVersion")
    description: str
    icon: str | None = None
    home: str | None = None
    type: str = Field(description="application or library (the web hides libraries).")
    keywords: list[str]
    annotations: dict[str, str]
    dependencies: list[DependencyOut]
    urls: list[str]
    digest: str
    created: str
    deprecated: bool
    default_values: str = Field(
        alias="defaultValues", description="The chart's values.yaml (YAML text)."
    )


class PackagesOut(OnyxiaModel):
    """The `catalog` member of a catalogue: its newest offered version of each chart."""

    api_version: str = Field("v1", alias="apiVersion")
    generated: str = Field(description="When the repository index was loaded (ISO 8601).")
    latest_packages: dict[str, ChartOut] = Field(alias="latestPackages")


class VisibleOut(OnyxiaModel):
    """In which kinds of projects the web shows the catalogue."""

    user: bool
    project: bool


class CatalogOut(OnyxiaModel):
    """A catalogue as Onyxia serves it: never its credentials or its restrictions."""

    id: str
    name: Localized
    description: Localized
    maintainer: str
    location: str
    status: str
    type: str
    highlighted_charts: list[str] = Field(alias="highlightedCharts")
    excluded_charts: list[str] = Field(alias="excludedCharts")
    include_keywords: list[str] = Field(alias="includeKeywords")
    exclude_keywords: list[str] = Field(alias="excludeKeywords")
    include_annotations: dict[str, str] = Field(alias="includeAnnotations")
    exclude_annotations: dict[str, str] = Field(alias="excludeAnnotations")
    multiple_services_mode: str = Field(alias="multipleServicesMode")
    max_number_of_versions: int = Field(alias="maxNumberOfVersions")
    skip_tls_verify: bool = Field(alias="skipTlsVerify")
    ca_file: str | None = Field(None, alias="caFile")
    allow_sharing: bool = Field(True, alias="allowSharing")
    visible: VisibleOut
    timeout: int
    last_update_time: int = Field(
        alias="lastUpdateTime", description="Last successful load, in ms since the epoch."
    )
    catalog: PackagesOut


class CatalogsOut(OnyxiaModel):
    """`GET /public/catalogs` and `GET /my-lab/catalogs`."""

    catalogs: list[CatalogOut]


class ProjectOut(OnyxiaModel):
    """A project of the caller; the personal one has no `group`."""

    id: str
    group: str | None = None
    namespace: str
    name: str
    vault_top_dir: str = Field(alias="vaultTopDir")
    bucket: str | None = None


class UserInfoOut(OnyxiaModel):
    """`GET /user/info`: the caller and their projects, personal first."""

    idep: str
    email: str | None = None
    nom_complet: str | None = Field(None, alias="nomComplet")
    ip: str
    groups: list[str]
    roles: list[str]
    projects: list[ProjectOut]


class QuotaOut(OnyxiaModel):
    """`GET /my-lab/quota`: the project's ResourceQuota, allowed (`spec`) and used."""

    spec: dict[str, str | int]
    usage: dict[str, str | int]


Schemas = dict[str, dict[str, Any]]
