"""Pure builders for service objects: release names and the metadata Secret."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

from onyxia_py.naming import MAX_RELEASE_NAME, slugify
from onyxia_py.projects.models import owner_label_value
from onyxia_py.services.models import ServiceMeta

META_PREFIX = "sh.onyxia.release.v1."
META_TYPE = "onyxia.sh/release.v1"
RELEASE_LABEL = "onyxia.sh/release"
OWNER_LABEL = "onyxia.sh/owner"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def release_name(chart: str) -> str:
    """A fresh release name: the chart's name and six random digits (Helm's 53-char limit)."""
    stem = slugify(chart)[: MAX_RELEASE_NAME - 7].rstrip("-") or "service"
    return f"{stem}-{secrets.randbelow(900000) + 100000}"


def meta_name(release: str) -> str:
    """The metadata Secret's name."""
    return META_PREFIX + release


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def meta_secret(meta: ServiceMeta) -> dict[str, Any]:
    """The metadata Secret; deliberately not owned by any Helm revision, so pruning Helm's
    history can never delete it (and with it the service from the listing)."""
    data = {
        "catalog": meta.catalog,
        "owner": meta.owner,
        "friendlyName": meta.friendly_name,
        "share": "true" if meta.share else "false",
        "chart": meta.chart,
        "version": meta.version,
        "created": meta.created,
        "overrides": json.dumps(meta.overrides),
        "runningSince": meta.running_since,
        "gpus": str(meta.gpus),
        "warnedAt": meta.warned_at,
        "failure": meta.failure,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": META_TYPE,
        "metadata": {
            "name": meta_name(meta.release),
            "namespace": meta.namespace,
            "labels": {
                RELEASE_LABEL: meta.release,
                OWNER_LABEL: owner_label_value(meta.owner),
                "app.kubernetes.io/managed-by": "onyxia-py",
            },
        },
        "data": {k: _b64(v) for k, v in data.items()},
    }


def read_meta(secret: dict[str, Any]) -> ServiceMeta:
    """A metadata Secret back into a `ServiceMeta`."""
    data = {k: base64.b64decode(v).decode("utf-8") for k, v in (secret.get("data") or {}).items()}
    meta = secret["metadata"]
    return ServiceMeta(
        release=meta["name"].removeprefix(META_PREFIX),
        namespace=meta.get("namespace", ""),
        catalog=data.get("catalog", ""),
        chart=data.get("chart", ""),
        version=data.get("version", ""),
        owner=data.get("owner", ""),
        friendly_name=data.get("friendlyName", ""),
        share=data.get("share") == "true",
        created=data.get("created", ""),
        overrides=_json_object(data.get("overrides", "{}")),
        running_since=data.get("runningSince", ""),
        gpus=int(data.get("gpus", "0") or 0),
        warned_at=data.get("warnedAt", ""),
        failure=data.get("failure", ""),
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
