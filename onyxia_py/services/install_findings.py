"""What an install teaches about its chart, beyond running or not: whether it copies the S3
credentials into objects of its own (which the platform cannot renew), and, when Helm refuses
an object the chart names itself, whose that object is."""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from dataclasses import replace
from typing import Any

from onyxia_py.catalog.context import ContextS3
from onyxia_py.errors import OnyxiaError
from onyxia_py.helm import HelmEngine
from onyxia_py.identity import Impersonation
from onyxia_py.kube import Kube
from onyxia_py.services import objects
from onyxia_py.services.cache import ServiceCache
from onyxia_py.services.lifecycle import update_meta
from onyxia_py.services.tracker import Launch

log = logging.getLogger(__name__)

# Helm's words when an object the chart names exists already (another release's, or nobody's).
_EXISTS = re.compile(r'(\w+) "([^"]+)" in namespace "([^"]+)" exists and cannot be imported')
_CURRENT_OWNER = re.compile(
    r'meta\.helm\.sh/release-name" must equal "[^"]*": current value is "([^"]+)"'
)


def _mentions(values: Any, text: str) -> bool:
    if isinstance(values, dict):
        return any(_mentions(v, text) for v in values.values())
    if isinstance(values, list):
        return any(_mentions(v, text) for v in values)
    return isinstance(values, str) and text in values


async def note_copied_credentials(
    kube: Kube,
    helm: HelmEngine,
    cache: ServiceCache,
    launch: Launch,
    chart_dir: Any,
    values: dict[str, Any],
    as_user: Impersonation,
    s3: ContextS3 | None,
) -> None:
    """Record when the S3 credentials expire if the chart puts them in objects of its own
    (which the platform does not renew: it keeps only `onyxia-s3-<release>` fresh)."""
    key = s3.access_key_id if s3 is not None else None
    if s3 is None or not key or not s3.expiration or not _mentions(values, key):
        return
    manifests = await helm.render(
        chart_dir, values, release=launch.release, namespace=launch.namespace
    )
    encoded = base64.b64encode(key.encode()).decode()
    if not any(key in text or encoded in text for text in manifests.values()):
        return  # the chart reads the platform's Secret
    expiry = s3.expiration
    try:
        stored = await update_meta(
            kube,
            launch.namespace,
            launch.release,
            lambda m: replace(m, s3_copied_until=expiry),
            as_user,
        )
    except OnyxiaError as exc:
        log.warning("noting copied S3 credentials of %s: %s", launch.release, exc.detail)
        return
    cache.observe(stored)


async def taken_name(kube: Kube, detail: str, namespace: str, as_user: Impersonation) -> str | None:
    """For a chart with fixed object names: which object exists already, and whose it is."""
    found = _EXISTS.search(detail)
    if found is None:
        return None
    kind, name, where = found.groups()
    owner = _CURRENT_OWNER.search(detail)
    if owner is None:
        whose = "it was not made by a service of the platform"
    else:
        release = owner.group(1)
        friendly = release
        with contextlib.suppress(OnyxiaError):
            secret = await kube.get("Secret", objects.meta_name(release), namespace, as_=as_user)
            friendly = objects.read_meta(secret).friendly_name
        whose = f'it belongs to service "{friendly}" ({release})'
    return (
        f'{kind} "{name}" already exists in {where}: {whose}. This chart names its '
        "objects itself, so it runs once per project: delete that service first"
    )
