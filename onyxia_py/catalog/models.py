"""Catalogues as operators declare them, and charts as the platform loaded them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, field_validator

from onyxia_py.naming import is_label

Localized = str | dict[str, str]


class VersionsMode(StrEnum):
    """Which versions of each chart a catalogue offers."""

    LATEST = "latest"
    ALL = "all"
    SKIP_PATCHES = "skipPatches"
    MAX_NUMBER = "maxNumber"


class UserAttribute(BaseModel):
    """A claim that must match `matches` (a regex, matched in full)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str
    matches: str


class Restriction(BaseModel):
    """One condition a user must meet to see a catalogue (all must hold)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    user_attribute: UserAttribute = Field(alias="userAttribute")


class Visibility(BaseModel):
    """Whether the catalogue shows in personal projects (`user`) and group projects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: bool = True
    project: bool = True


class CatalogSpec(BaseModel):
    """A catalogue, as declared in `catalog/*.yaml`, in settings or by an admin (Onyxia names)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(description="Short unique id (a DNS label).")
    name: Localized = Field(description="Display name, or one per language.")
    description: Localized = Field("", description="Markdown, or one per language.")
    location: str = Field(
        description="A folder of chart directories, an HTTP(S) Helm repository, or oci://..."
    )
    type: Literal["helm"] = "helm"
    status: Literal["PROD", "TEST"] = "PROD"
    maintainer: str = ""
    highlighted_charts: list[str] = Field(default_factory=list, alias="highlightedCharts")
    excluded_charts: list[str] = Field(default_factory=list, alias="excludedCharts")
    include_keywords: list[str] = Field(default_factory=list, alias="includeKeywords")
    exclude_keywords: list[str] = Field(default_factory=list, alias="excludeKeywords")
    include_annotations: dict[str, str] = Field(default_factory=dict, alias="includeAnnotations")
    exclude_annotations: dict[str, str] = Field(default_factory=dict, alias="excludeAnnotations")
    multiple_services_mode: VersionsMode = Field(VersionsMode.LATEST, alias="multipleServicesMode")
    max_number_of_versions: int = Field(5, ge=1, alias="maxNumberOfVersions")
    skip_tls_verify: bool = Field(False, alias="skipTlsVerify")
    ca_file: str | None = Field(None, alias="caFile")
    username: str | None = None
    # Write-only: never served back by any endpoint, never logged (SecretStr hides it).
    password: SecretStr | None = None
    restrictions: list[Restriction] = Field(default_factory=list)
    visible: Visibility = Field(default_factory=Visibility)
    timeout: int = Field(600, ge=1, description="Install timeout (seconds) for its charts.")
    max_running_hours: dict[str, float] = Field(
        default_factory=dict,
        alias="maxRunningHours",
        description="Per chart: suspend its services after running this long.",
    )
    # OCI registries have no index: the charts to offer must be named.
    oci_charts: list[str] = Field(default_factory=list, alias="ociCharts")
    plain_http: bool = Field(False, alias="plainHttp", description="OCI registry over plain HTTP.")
    allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        alias="allowedNetworks",
        description="Networks (CIDR) beside public addresses that URLs the repository names "
        "(icons, packages on other hosts, dependency repositories, redirects) may lead to; its "
        "own origin needs none.",
    )

    @field_validator("id")
    @classmethod
    def _id_is_a_label(cls, value: str) -> str:
        if not is_label(value):
            raise ValueError("must be a DNS label: lowercase letters, digits and '-'")
        return value

    def text(self, value: Localized, lang: str | None) -> str:
        """A localized field in `lang`, else English, else any language."""
        if isinstance(value, str):
            return value
        return value.get(lang or "en") or value.get("en") or next(iter(value.values()), "")


@dataclass(frozen=True)
class Dependency:
    """A chart a chart needs (e.g. Onyxia's `library-chart`)."""

    name: str
    version: str
    repository: str


@dataclass(frozen=True)
class ChartVersion:
    """One version of one chart, as the repository index describes it."""

    name: str
    version: str
    app_version: str = ""
    description: str = ""
    icon: str = ""
    home: str = ""
    type: str = "application"
    keywords: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict)
    dependencies: tuple[Dependency, ...] = ()
    urls: tuple[str, ...] = ()
    digest: str = ""
    created: str = ""
    deprecated: bool = False


@dataclass(frozen=True)
class Chart:
    """A chart of a catalogue with the versions it offers, newest first."""

    name: str
    versions: tuple[ChartVersion, ...]
    highlighted: bool = False

    @property
    def latest(self) -> ChartVersion:
        """The newest offered version."""
        return self.versions[0]


@dataclass(frozen=True)
class LoadedCatalog:
    """A catalogue as last loaded successfully."""

    spec: CatalogSpec
    charts: tuple[Chart, ...]
    # Every version of every chart in the repository, for dependency resolution.
    index: dict[str, tuple[ChartVersion, ...]]
    loaded_at: datetime

    def chart(self, name: str) -> Chart | None:
        """The offered chart called `name`."""
        return next((c for c in self.charts if c.name == name), None)


@dataclass
class CatalogStatus:
    """How loading a catalogue went."""

    id: str
    last_success: datetime | None = None
    last_error: str | None = None
    last_attempt: datetime | None = None
    chart_count: int = 0
    duration_seconds: float | None = None


@dataclass(frozen=True)
class ChartFiles:
    """What a launch needs from one chart version: a renderable dir, its values and schema."""

    directory: Path
    values: dict[str, Any]
    schema: dict[str, Any] | None
    readme: str = ""
