"""The S3 side of the integration tests: S3 settings for the session's RADOS Gateway (the `rgw`
fixture of tests/conftest.py) that trust a test OpenID Provider. Each test module gets its own
bucket and role names (a random tag), so modules never see each other's buckets."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import SecretStr

from devtools.localoidc import LocalOidcProvider, x5c_sha1_thumbprint
from devtools.localrgw import LocalRgw
from onyxia_py.settings import S3CredentialsMode, S3Settings


def trust(rgw: LocalRgw, provider: LocalOidcProvider, audience: str = "onyxia") -> str:
    """Register the provider's issuer with the gateway (as an operator does once)."""
    thumbprints = [x5c_sha1_thumbprint(k) for k in provider.keys]
    return rgw.register_oidc_provider(provider.issuer, [audience], thumbprints)


def s3_settings(rgw: LocalRgw, tag: str | None = None, **overrides: Any) -> S3Settings:
    """Web identity with one provisioned role per user, 900 s credentials, bucket and role
    names tagged so modules stay apart."""
    tag = tag or secrets.token_hex(3)
    access, secret = rgw.admin_key
    values: dict[str, Any] = {
        "enabled": True,
        "endpoint_url": rgw.endpoint,
        "region": "us-east-1",
        "path_style": True,
        "credentials_mode": S3CredentialsMode.WEB_IDENTITY,
        "role_arn": f"arn:aws:iam:::role/t{tag}-{{username}}",
        "duration_seconds": 900,
        "user_bucket_prefix": f"u{tag}-",
        "group_bucket_prefix": f"g{tag}-",
        "access_key_id": SecretStr(access),
        "secret_access_key": SecretStr(secret),
        "provision_roles": True,
        "refresh_interval_seconds": 3600.0,
        "refresh_before_seconds": 60,
        "request_timeout_seconds": 20.0,
    }
    values.update(overrides)
    return S3Settings(**values)
