"""Pure builders for service objects: release names and the metadata Secret."""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import datetime
from typing import Any

from onyxia_py.errors import FieldError, Invalid
from onyxia_py.naming import MAX_RELEASE_NAME, slugify
from onyxia_py.projects.models import owner_label_value
from onyxia_py.services.models import (
    MAX_RECORDED_EVENTS,
    FailureReason,
    LaunchEvent,
    Phase,
    ServiceMeta,
)

META_PREFIX = "sh.onyxia.release.v1."
META_TYPE = "onyxia.sh/release.v1"
RELEASE_LABEL = "onyxia.sh/release"
OWNER_LABEL = "onyxia.sh/owner"
INSTANCE_LABEL = "app.kubernetes.io/instance"


def release_name(chart: str) -> str:
    """A fresh release name: the chart's name and six random digits (Helm's 53-char limit)."""
    stem = slugify(chart)[: MAX_RELEASE_NAME - 7].rstrip("-") or "service"
    return f"{stem}-{secrets.randbelow(900000) + 100000}"


_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_release_name(release: str) -> None:
    """Refuse a release name a caller chose that Helm or Kubernetes would not take."""
    if len(release) > MAX_RELEASE_NAME or not _RELEASE_NAME.match(release):
        raise Invalid(
            f"{release!r} is not a valid service name",
            [
                FieldError(
                    "name",
                    f"at most {MAX_RELEASE_NAME} lowercase letters, digits and '-', "
                    "starting and ending with a letter or digit",
                )
            ],
        )


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
        "launchEvents": json.dumps([_event_json(e) for e in meta.events]),
        "s3CopiedUntil": meta.s3_copied_until,
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
        events=_events(data.get("launchEvents", "[]")),
        s3_copied_until=data.get("s3CopiedUntil", ""),
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text)
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _event_json(event: LaunchEvent) -> dict[str, Any]:
    return {
        "phase": event.phase.value,
        "message": event.message,
        "reason": event.reason.value if event.reason else None,
        "at": event.at.isoformat(),
    }


def _events(text: str) -> tuple[LaunchEvent, ...]:
    """The recorded launch events; a malformed entry (another version's, a hand edit) is
    skipped rather than making the whole record unreadable."""
    try:
        loaded = json.loads(text)
    except ValueError:
        return ()
    found = []
    for item in loaded if isinstance(loaded, list) else []:
        try:
            reason = item.get("reason")
            found.append(
                LaunchEvent(
                    phase=Phase(item["phase"]),
                    message=str(item.get("message", "")),
                    at=datetime.fromisoformat(item["at"]),
                    reason=FailureReason(reason) if reason else None,
                )
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
    return tuple(found[-MAX_RECORDED_EVENTS:])
