"""Pure builders for the Secret that carries a service's S3 credentials, and its reader.

One Secret per service, `onyxia-s3-<release>`, created by the platform before the install and
kept fresh by the refresh job: keys named as the charts' environment variables, plus
`credentials`, an AWS shared-credentials file that charts mount (not with subPath), so the
kubelet swaps the file in place when the Secret changes. Who and when live in annotations.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from onyxia_py.s3 import TemporaryCredentials
from onyxia_py.storage.models import Endpoint, InjectedStatus

SECRET_PREFIX = "onyxia-s3-"  # noqa: S105 (a name, not a secret)
S3_LABEL = "onyxia.sh/s3-credentials"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
A_RELEASE = "onyxia.sh/s3-release"
A_OWNER = "onyxia.sh/s3-owner"
A_USER_ID = "onyxia.sh/s3-user-id"
A_BUCKET = "onyxia.sh/s3-bucket"
A_EXPIRES = "onyxia.sh/s3-expires-at"
A_REFRESHED = "onyxia.sh/s3-refreshed-at"
A_ERROR = "onyxia.sh/s3-error"
# Where the charts mount the Secret's files (library chart, `library.s3.volumeMount`).
MOUNT_DIR = "/var/run/secrets/onyxia/s3"


def secret_name(release: str) -> str:
    """The name of a service's S3 Secret."""
    return SECRET_PREFIX + release


def stamp(moment: datetime) -> str:
    """An annotation timestamp (ISO 8601, seconds, UTC offset kept)."""
    return moment.isoformat(timespec="seconds")


def credentials_file(creds: TemporaryCredentials, region: str) -> str:
    """An AWS shared-credentials file with one `default` profile."""
    return (
        "[default]\n"
        f"aws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n"
        f"aws_session_token = {creds.session_token}\n"
        f"region = {region}\n"
    )


def process_output(creds: TemporaryCredentials) -> str:
    """The credentials as an AWS `credential_process` prints them: SDKs using profile `onyxia`
    read this file again before `Expiration`, so they pick up renewed credentials by
    themselves."""
    return json.dumps(
        {
            "Version": 1,
            "AccessKeyId": creds.access_key_id,
            "SecretAccessKey": creds.secret_access_key,
            "SessionToken": creds.session_token,
            "Expiration": creds.expiration.isoformat(timespec="seconds"),
        }
    )


def config_file(region: str) -> str:
    """An AWS config file: the region, and profile `onyxia` reading the renewed credentials."""
    return (
        f"[default]\nregion = {region}\n"
        f"[profile onyxia]\nregion = {region}\n"
        f"credential_process = cat {MOUNT_DIR}/credentials.json\n"
    )


def secret_data(creds: TemporaryCredentials, endpoint: Endpoint, bucket: str) -> dict[str, str]:
    """The Secret's keys, as `stringData`."""
    return {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "AWS_DEFAULT_REGION": endpoint.region,
        "AWS_S3_ENDPOINT": endpoint.authority,
        "AWS_ENDPOINT_URL": endpoint.url,
        "S3_ENDPOINT": endpoint.url + "/",
        "AWS_BUCKET_NAME": bucket,
        "AWS_CREDENTIAL_EXPIRATION": stamp(creds.expiration),
        "credentials": credentials_file(creds, endpoint.region),
        "credentials.json": process_output(creds),
        "config": config_file(endpoint.region),
    }


def credentials_secret(
    *,
    namespace: str,
    release: str,
    owner: str,
    user_id: int,
    creds: TemporaryCredentials,
    endpoint: Endpoint,
    bucket: str,
    now: datetime,
) -> dict[str, Any]:
    """The Secret created before a service is installed."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(release),
            "namespace": namespace,
            "labels": {S3_LABEL: "true", MANAGED_LABEL: "onyxia-py"},
            "annotations": {
                A_RELEASE: release,
                A_OWNER: owner,
                A_USER_ID: str(user_id),
                A_BUCKET: bucket,
                A_EXPIRES: stamp(creds.expiration),
                A_REFRESHED: stamp(now),
            },
        },
        "stringData": secret_data(creds, endpoint, bucket),
    }


def refreshed_patch(
    creds: TemporaryCredentials, endpoint: Endpoint, bucket: str, now: datetime
) -> dict[str, Any]:
    """A merge patch putting new credentials in the Secret and clearing a past error."""
    return {
        "metadata": {
            "annotations": {
                A_EXPIRES: stamp(creds.expiration),
                A_REFRESHED: stamp(now),
                A_ERROR: None,
            }
        },
        "stringData": secret_data(creds, endpoint, bucket),
    }


def error_patch(message: str, now: datetime) -> dict[str, Any]:
    """A merge patch recording why the last renewal failed."""
    return {"metadata": {"annotations": {A_ERROR: f"{stamp(now)} {message}"[:1000]}}}


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def read_status(secret: dict[str, Any]) -> InjectedStatus:
    """What a Secret's annotations say (never its data)."""
    meta = secret.get("metadata") or {}
    notes = meta.get("annotations") or {}
    try:
        user_id = int(notes.get(A_USER_ID, "0"))
    except ValueError:
        user_id = 0
    return InjectedStatus(
        release=str(notes.get(A_RELEASE) or str(meta.get("name", "")).removeprefix(SECRET_PREFIX)),
        namespace=str(meta.get("namespace", "")),
        owner=str(notes.get(A_OWNER, "")),
        user_id=user_id,
        bucket=str(notes.get(A_BUCKET, "")),
        expires_at=_when(notes.get(A_EXPIRES)),
        refreshed_at=_when(notes.get(A_REFRESHED)),
        created_at=_when(meta.get("creationTimestamp", "").replace("Z", "+00:00") or None),
        error=notes.get(A_ERROR) or None,
    )


def access_key_of(secret: dict[str, Any]) -> str:
    """The access key id a Secret holds (for tests and diagnostics; not a secret)."""
    raw = (secret.get("data") or {}).get("AWS_ACCESS_KEY_ID", "")
    return base64.b64decode(raw).decode("utf-8") if raw else ""
