"""What routes depend on, as `Annotated` aliases: routes read like declarations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from onyxia_py.db import AuditLog, Database, Users
from onyxia_py.helm import HelmEngine
from onyxia_py.kube import KubeClient
from onyxia_py.settings import Settings


@dataclass(frozen=True)
class Platform:
    """The long-lived services of one running app, built by `app.create_app`."""

    settings: Settings
    db: Database
    kube: KubeClient
    helm: HelmEngine
    users: Users
    audit: AuditLog


def get_platform(request: Request) -> Platform:
    """The platform services of the app serving `request`."""
    platform: Platform = request.app.state.platform
    return platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
