"""The service Secret (pure builder and reader) and the snippets made from credentials."""

from __future__ import annotations

import ast
import configparser
import json
from datetime import UTC, datetime

from onyxia_py.s3 import TemporaryCredentials
from onyxia_py.settings import S3Settings
from onyxia_py.storage import core, objects
from onyxia_py.storage.models import IssuedCredentials
from onyxia_py.storage.snippets import snippets

EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
CREDS = TemporaryCredentials("ASIAEXAMPLE", "se'cr\"et/+key", "to$ken`x", EXPIRES)
ENDPOINT = core.endpoint(S3Settings(endpoint_url="https://minio.example.org:9000"))
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_the_secret_holds_env_keys_files_and_annotations() -> None:
    secret = objects.credentials_secret(
        namespace="user-alice",
        release="jupyter-1",
        owner="alice",
        user_id=7,
        creds=CREDS,
        endpoint=ENDPOINT,
        bucket="user-alice",
        now=NOW,
    )
    assert secret["metadata"]["name"] == "onyxia-s3-jupyter-1"
    assert secret["metadata"]["labels"] == {
        "onyxia.sh/s3-credentials": "true",
        "app.kubernetes.io/managed-by": "onyxia-py",
    }
    # Not the release label: the listing and the lifetime policy read that one as metadata.
    assert "onyxia.sh/release" not in secret["metadata"]["labels"]
    data = secret["stringData"]
    assert data["AWS_ACCESS_KEY_ID"] == "ASIAEXAMPLE"
    assert data["AWS_S3_ENDPOINT"] == "minio.example.org:9000"
    assert data["AWS_ENDPOINT_URL"] == "https://minio.example.org:9000"
    assert data["S3_ENDPOINT"] == "https://minio.example.org:9000/"
    assert data["AWS_BUCKET_NAME"] == "user-alice"
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(data["credentials"])
    assert ini["default"]["aws_secret_access_key"] == CREDS.secret_access_key
    assert ini["default"]["aws_session_token"] == CREDS.session_token
    process = json.loads(data["credentials.json"])
    assert process == {
        "Version": 1,
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": CREDS.secret_access_key,
        "SessionToken": CREDS.session_token,
        "Expiration": "2030-01-02T03:04:05+00:00",
    }
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(data["config"])
    assert config["profile onyxia"]["credential_process"] == (
        "cat /var/run/secrets/onyxia/s3/credentials.json"
    )
    status = objects.read_status({**secret, "metadata": {**secret["metadata"]}})
    assert (status.release, status.owner, status.user_id, status.bucket) == (
        "jupyter-1",
        "alice",
        7,
        "user-alice",
    )
    assert status.expires_at == EXPIRES
    assert status.refreshed_at == NOW
    assert status.error is None


def test_patches_renew_and_record_errors() -> None:
    renewed = objects.refreshed_patch(CREDS, ENDPOINT, "user-alice", NOW)
    notes = renewed["metadata"]["annotations"]
    assert notes["onyxia.sh/s3-error"] is None  # merge patch: removes a past error
    assert notes["onyxia.sh/s3-expires-at"] == "2030-01-02T03:04:05+00:00"
    assert renewed["stringData"]["AWS_SESSION_TOKEN"] == CREDS.session_token
    failed = objects.error_patch("x" * 5000, NOW)
    assert len(failed["metadata"]["annotations"]["onyxia.sh/s3-error"]) == 1000
    broken = objects.read_status(
        {"metadata": {"name": "onyxia-s3-r", "annotations": {"onyxia.sh/s3-user-id": "x"}}}
    )
    assert (broken.release, broken.user_id, broken.expires_at) == ("r", 0, None)


def test_snippets_carry_the_values_and_parse() -> None:
    issued = IssuedCredentials(CREDS, ENDPOINT, "user-alice")
    found = {s.id: s for s in snippets(issued)}
    assert set(found) == {
        "env",
        "boto3",
        "s3fs",
        "pandas",
        "polars",
        "pyarrow",
        "r-arrow",
        "r-aws-s3",
        "aws-cli",
        "rclone",
        "mlflow",
    }
    for snippet in found.values():
        assert CREDS.access_key_id in snippet.code, snippet.id
        if snippet.language == "python":
            tree = ast.parse(snippet.code)
            strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
            assert CREDS.secret_access_key in strings, snippet.id
            assert CREDS.session_token in strings, snippet.id
    env = found["env"].code
    # Single-quoted for the shell: $, ` and " stay literal, ' is closed and escaped.
    assert "export AWS_SESSION_TOKEN='to$ken`x'" in env
    assert "export AWS_SECRET_ACCESS_KEY='se'\"'\"'cr\"et/+key'" in env
    assert 'endpoint_override="minio.example.org:9000"' in found["pyarrow"].code
    assert 'scheme="https"' in found["pyarrow"].code
    assert "MLFLOW_S3_ENDPOINT_URL='https://minio.example.org:9000'" in found["mlflow"].code
    assert "force_path_style = true" in found["rclone"].code
