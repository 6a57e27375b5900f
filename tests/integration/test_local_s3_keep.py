"""The local S3 server keeps its data over a kept stop (`make dev-cluster-stop KEEP=1`) and
resumes on it: the gateway alone (`LocalRgw(root=...)`), and `make run`'s server
(devtools/localstack.py), which keeps its data when the cluster's stop recorded kept.json."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devtools.localcluster.keep import KEPT_FLAG, STACK_DATA, forget_kept, write_kept
from devtools.localrgw import LocalRgw
from devtools.localstack import Paths, read_state, setup_platform_s3, start, stop

BUCKET = "kept-bucket"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A lasting data dir for a gateway (each test stops its own gateways)."""
    yield tmp_path / "rgw"
    shutil.rmtree(tmp_path / "rgw", ignore_errors=True)


def s3_as_platform(state: dict[str, Any]) -> Any:
    """An S3 client with the platform user's key that `make run` was given."""
    env = state["env"]
    return boto3.client(
        "s3",
        endpoint_url=state["endpoint"],
        region_name="us-east-1",
        aws_access_key_id=env["ONYXIA_S3__ACCESS_KEY_ID"],
        aws_secret_access_key=env["ONYXIA_S3__SECRET_ACCESS_KEY"],
        config=Config(s3={"addressing_style": "path"}),
    )


def test_a_kept_gateway_resumes_with_its_users_roles_and_objects(root: Path) -> None:
    rgw = LocalRgw(root=root).start()
    try:
        env = setup_platform_s3(rgw, rgw.endpoint)
        rgw.client("s3").create_bucket(Bucket=BUCKET)
        rgw.client("s3").put_object(Bucket=BUCKET, Key="notes.txt", Body=b"kept")
    finally:
        rgw.stop(keep=True)
    assert (root / KEPT_FLAG).exists()

    again = LocalRgw(root=root)
    assert again.resuming
    assert again.endpoint == rgw.endpoint
    again.start()
    try:
        assert not (root / KEPT_FLAG).exists()
        body = again.client("s3").get_object(Bucket=BUCKET, Key="notes.txt")["Body"].read()
        assert body == b"kept"
        assert again.admin_key == rgw.admin_key
        # The platform's user and role are there already: the same key, the same role.
        assert setup_platform_s3(again, again.endpoint) == env
    finally:
        again.stop()
    assert not root.exists()


def test_without_the_kept_flag_a_lasting_root_starts_afresh(root: Path) -> None:
    rgw = LocalRgw(root=root).start()
    try:
        rgw.client("s3").create_bucket(Bucket=BUCKET)
    finally:
        rgw.stop(keep=True)
    (root / KEPT_FLAG).unlink()  # as after a crash: the stop never finished

    fresh = LocalRgw(root=root)
    assert not fresh.resuming
    fresh.start()
    try:
        assert fresh.client("s3").list_buckets()["Buckets"] == []
    finally:
        fresh.stop()


def test_make_runs_server_keeps_its_data_when_the_cluster_stop_kept_its_own(
    tmp_path: Path,
) -> None:
    paths = Paths(tmp_path)
    first = start(paths, "none", "http://127.0.0.1:8000")
    try:
        s3_as_platform(first).create_bucket(Bucket=BUCKET)
        write_kept(tmp_path, None, datetime.datetime.now(datetime.UTC))
    finally:
        assert stop(paths)
    assert (tmp_path / STACK_DATA / KEPT_FLAG).exists()

    forget_kept(tmp_path)  # the cluster resumed
    second = start(paths, "none", "http://127.0.0.1:8000")
    try:
        assert second["endpoint"] == first["endpoint"]
        assert second["env"] == first["env"]
        assert [b["Name"] for b in s3_as_platform(second).list_buckets()["Buckets"]] == [BUCKET]
    finally:
        assert stop(paths)  # no kept.json this time: dropped
    assert read_state(paths) is None
    assert not (tmp_path / STACK_DATA).exists()


def test_make_run_with_login_starts_and_resumes_with_its_provider(tmp_path: Path) -> None:
    # `make run AUTH=oidc`: the gateway trusts the local provider; on kept data both resume,
    # the provider on its port and keys, the gateway still trusting it (RGW cannot list
    # providers, so the registration is not made twice).
    paths = Paths(tmp_path)
    first = start(paths, "oidc", "http://127.0.0.1:8000")
    try:
        assert first["env"]["ONYXIA_S3__CREDENTIALS_MODE"] == "web-identity"
        assert first["env"]["ONYXIA_S3__OIDC_PROVIDER_ARN"].endswith(
            first["issuer"].split("://", 1)[1]
        )
        write_kept(tmp_path, None, datetime.datetime.now(datetime.UTC))
    finally:
        assert stop(paths)
    forget_kept(tmp_path)
    second = start(paths, "oidc", "http://127.0.0.1:8000")
    try:
        assert second["issuer"] == first["issuer"]
        assert second["env"] == first["env"]
    finally:
        assert stop(paths)
