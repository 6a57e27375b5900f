"""Object storage settings: S3 and STS endpoints, how credentials are minted, buckets."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, model_validator

from onyxia_py.settings.base import Group, check_origins


class S3CredentialsMode(StrEnum):
    """How temporary S3 credentials are minted for a user."""

    WEB_IDENTITY = "web-identity"
    ASSUME_ROLE = "assume-role"


class S3Settings(Group):
    """Object storage: temporary S3 credentials per user (STS), injected into services and
    renewed while they run, and the bucket browser. See docs/s3.md for RGW, MinIO and AWS."""

    enabled: bool = Field(False, description="Offer S3 storage and inject credentials.")
    endpoint_url: str | None = Field(
        None, description="S3 endpoint URL (scheme, host and port), as services reach it."
    )
    region: str = Field("us-east-1", description="S3 region.")
    path_style: bool = Field(
        True, description="Path-style bucket addressing (RGW, MinIO); false for virtual hosts."
    )
    verify_tls: bool = Field(True, description="Check the S3 and STS servers' certificates.")
    sts_endpoint_url: str | None = Field(
        None, description="STS endpoint; unset: the S3 endpoint (AWS: https://sts.amazonaws.com)."
    )
    public_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint as browsers reach it (the Onyxia web's own S3 calls); unset: "
        "endpoint_url.",
    )
    public_sts_endpoint_url: str | None = Field(
        None,
        description="STS endpoint as browsers reach it (the Onyxia web's own STS call); unset: "
        "sts_endpoint_url, else the public S3 endpoint.",
    )
    bucket_cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) allowed to call S3 from a browser (the "
        "Onyxia web's S3 explorer): written as the CORS rules of each bucket onyxia-py creates "
        "or first uses (PutBucketCors, replacing the bucket's rules); empty: bucket CORS is "
        "left alone.",
    )
    credentials_mode: S3CredentialsMode = Field(
        S3CredentialsMode.WEB_IDENTITY,
        description="web-identity: AssumeRoleWithWebIdentity with the user's OIDC access "
        "token; assume-role: AssumeRole with the platform key and a session policy limiting "
        "the result to the user's buckets (for servers without web identity).",
    )
    role_arn: str | None = Field(
        None,
        description="Role to assume; `{username}` is replaced by the user's name as it appears "
        "in bucket names (e.g. arn:aws:iam:::role/onyxia-{username} for one role per user).",
    )
    role_session_name: str = Field(
        "onyxia-{username}", description="Session name template (`{username}`), 2-64 characters."
    )
    duration_seconds: int = Field(
        43200, ge=900, description="Lifetime of temporary credentials (servers refuse < 900)."
    )
    user_bucket_prefix: str = Field(
        "user-", description="Personal bucket of each user: this prefix + the username."
    )
    group_bucket_prefix: str = Field(
        "projet-", description="Bucket of each group project: this prefix + the group name."
    )
    access_key_id: SecretStr | None = Field(
        None,
        description="The platform's own key: signs AssumeRole (assume-role mode) and role "
        "provisioning (provision_roles). Never given to users.",
    )
    secret_access_key: SecretStr | None = Field(None, description="Secret of the platform's key.")
    provision_roles: bool = Field(
        False,
        description="Create or update one IAM role per user (role_arn must hold `{username}`): "
        "trusting only that user's OIDC subject, allowing only their buckets (Ceph RGW).",
    )
    oidc_provider_arn: str | None = Field(
        None,
        description="Identity provider ARN named in provisioned trust policies; unset: "
        "arn:aws:iam:::oidc-provider/<auth.issuer_url without scheme>.",
    )
    refresh_interval_seconds: float = Field(
        60.0, gt=0, description="How often running services' credentials are checked."
    )
    refresh_before_seconds: int = Field(
        3600,
        ge=0,
        description="Credentials of a running service are renewed when they have less than "
        "this left (keep it below duration_seconds).",
    )
    presign_max_seconds: int = Field(
        604800, ge=1, le=604800, description="Longest expiry users may give a download link."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, description="Timeout of one S3, STS or IAM call."
    )

    @model_validator(mode="after")
    def _complete(self) -> Self:
        check_origins("s3.bucket_cors_origins", self.bucket_cors_origins)
        if not self.enabled:
            return self
        if not self.endpoint_url:
            raise ValueError("s3.enabled needs s3.endpoint_url")
        if not self.role_arn:
            raise ValueError("s3.enabled needs s3.role_arn")
        platform_key = self.access_key_id is not None and self.secret_access_key is not None
        if self.credentials_mode is S3CredentialsMode.ASSUME_ROLE and not platform_key:
            raise ValueError("s3 credentials_mode assume-role needs s3.access_key_id and secret")
        if self.provision_roles and not (platform_key and "{username}" in self.role_arn):
            raise ValueError(
                "s3.provision_roles needs the platform key and {username} in s3.role_arn"
            )
        if self.refresh_before_seconds >= self.duration_seconds:
            raise ValueError("s3.refresh_before_seconds must be below s3.duration_seconds")
        return self

    @property
    def browser_endpoint_url(self) -> str | None:
        """The S3 endpoint as browsers reach it."""
        return self.public_endpoint_url or self.endpoint_url

    @property
    def browser_sts_endpoint_url(self) -> str | None:
        """The STS endpoint as browsers reach it."""
        return self.public_sts_endpoint_url or self.sts_endpoint_url or self.browser_endpoint_url
