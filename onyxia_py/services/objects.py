"""Pure builders for service objects: release names, the metadata Secret and its mirror.

The record of a service is a Secret (it holds the user's launch values, which may carry
passwords). What listings need of it, every field but those values, is mirrored into a ConfigMap
of the same name, owned by the Secret (the garbage collector deletes the mirror with it): the
platform may watch ConfigMaps cluster-wide, never Secrets.
"""

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
# On a mirror: the resourceVersion of the Secret it was made from (a repair compares them).
RECORD_VERSION = "onyxia.sh/record-version"
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


def _record_data(meta: ServiceMeta) -> dict[str, str]:
    return {
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


def _record_metadata(meta: ServiceMeta) -> dict[str, Any]:
    return {
        "name": meta_name(meta.release),
        "namespace": meta.namespace,
        "labels": {
            RELEASE_LABEL: meta.release,
            OWNER_LABEL: owner_label_value(meta.owner),
            "app.kubernetes.io/managed-by": "onyxia-py",
        },
    }


def meta_secret(meta: ServiceMeta) -> dict[str, Any]:
    """The metadata Secret; deliberately not owned by any Helm revision, so pruning Helm's
    history can never delete it (and with it the service from the listing)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": META_TYPE,
        "metadata": _record_metadata(meta),
        "data": {k: _b64(v) for k, v in _record_data(meta).items()},
    }


def record_mirror(secret: dict[str, Any]) -> dict[str, Any]:
    """The ConfigMap mirroring a stored metadata Secret for listings: every field but the
    launch values, owned by the Secret, stamped with the Secret's resourceVersion."""
    meta = read_meta(secret)
    stored = secret.get("metadata") or {}
    metadata = _record_metadata(meta)
    metadata["annotations"] = {RECORD_VERSION: str(stored.get("resourceVersion", ""))}
    if stored.get("uid"):
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Secret", "name": stored["name"], "uid": stored["uid"]}
        ]
    data = _record_data(meta)
    del data["overrides"]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def mirror_version(mirror: dict[str, Any]) -> str:
    """The resourceVersion of the Secret a mirror was made from ("" if unknown)."""
    annotations = (mirror.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(RECORD_VERSION, ""))


def read_meta(secret: dict[str, Any]) -> ServiceMeta:
    """A metadata Secret back into a `ServiceMeta`."""
    raw = secret.get("data") or {}
    return _meta(secret, {k: base64.b64decode(v).decode("utf-8") for k, v in raw.items()})


def read_mirror(mirror: dict[str, Any]) -> ServiceMeta:
    """A record's ConfigMap mirror back into a `ServiceMeta` (without the launch values)."""
    return _meta(mirror, {str(k): str(v) for k, v in (mirror.get("data") or {}).items()})


def _meta(record: dict[str, Any], data: dict[str, str]) -> ServiceMeta:
    meta = record["metadata"]
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
