"""Fixtures for the catalog tests: a fixed onyxia context and a Jupyter-like chart."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from onyxia_py.catalog.context import (
    ContextProject,
    ContextRegion,
    ContextS3,
    ContextUser,
    build_context,
)
from onyxia_py.catalog.schema import SchemaRegistry, bundled_schema_dir

D7 = "http://json-schema.org/draft-07/schema#"

# Modelled on InseeFrLab's jupyter-python values.schema.json, cut down to what the tests need.
JUPYTER_SCHEMA: dict[str, Any] = {
    "$schema": D7,
    "type": "object",
    "properties": {
        "service": {
            "type": "object",
            "properties": {
                "image": {
                    "type": "object",
                    "properties": {
                        "version": {
                            "type": "string",
                            "render": "list",
                            "listEnum": ["py3.12", "py3.13"],
                            "default": "py3.13",
                        },
                    },
                },
            },
        },
        "resources": {
            "description": "inline copy, replaced by the registry",
            "type": "object",
            "x-onyxia": {"overwriteSchemaWith": "ide/resources.json"},
            "properties": {
                "limits": {
                    "type": "object",
                    "properties": {"cpu": {"type": "string", "default": "30000m"}},
                },
            },
        },
        "security": {
            "type": "object",
            "properties": {
                "password": {
                    "type": "string",
                    "x-onyxia": {"overwriteSchemaWith": "ide/password.json"},
                },
                "allowlist": {
                    "type": "object",
                    "properties": {
                        "enabled": {"type": "boolean", "default": False},
                        "ip": {
                            "type": "string",
                            "default": "0.0.0.0/0",
                            "x-onyxia": {"overwriteDefaultWith": "user.ip"},
                        },
                    },
                },
            },
        },
        "ingress": {
            "type": "object",
            "properties": {
                "enabled": {
                    "type": "boolean",
                    "default": False,
                    "x-onyxia": {"overwriteDefaultWith": "k8s.ingress", "hidden": True},
                },
                "hostname": {
                    "type": "string",
                    "x-onyxia": {
                        "overwriteDefaultWith": (
                            "{{project.id}}-{{k8s.randomSubdomain}}-0.{{k8s.domain}}"
                        ),
                        "hidden": True,
                    },
                },
            },
        },
        "s3": {
            "type": "object",
            "properties": {
                "enabled": {"type": "boolean", "default": True},
                "accessKeyId": {
                    "type": "string",
                    "default": "",
                    "x-onyxia": {"overwriteDefaultWith": "s3.AWS_ACCESS_KEY_ID"},
                },
                "endpoint": {
                    "type": "string",
                    "default": "",
                    "x-onyxia": {"overwriteDefaultWith": "{{s3.AWS_S3_ENDPOINT}}"},
                },
                "pathStyleAccess": {
                    "type": "boolean",
                    "default": False,
                    "x-onyxia": {"overwriteDefaultWith": "{{s3.pathStyleAccess}}"},
                },
            },
        },
        "tolerations": {"type": "array", "x-onyxia": {"overwriteSchemaWith": "tolerations.json"}},
        "kubernetes": {"type": "object", "x-onyxia": {"overwriteSchemaWith": "ide/role.json"}},
        "userPreferences": {
            "type": "object",
            "properties": {
                "language": {
                    "type": "string",
                    "enum": ["en", "fr"],
                    "default": "en",
                    "x-onyxia": {"overwriteDefaultWith": "user.lang"},
                },
            },
        },
        "global": {
            "type": "object",
            "properties": {
                "suspend": {"type": "boolean", "default": False, "x-onyxia": {"readonly": True}},
            },
        },
        "podAnnotations": {"type": "object", "default": {}},
        "env": {
            "type": "array",
            "default": [{"name": "TZ", "value": "UTC"}],
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Z_]+$"},
                    "value": {"type": "string"},
                },
                "required": ["name"],
            },
        },
    },
}

JUPYTER_VALUES: dict[str, Any] = {
    "service": {"image": {"version": "py3.12", "pullPolicy": "IfNotPresent"}},
    "resources": {},
    "security": {"password": "changeme", "allowlist": {"enabled": False, "ip": "0.0.0.0/0"}},
    "ingress": {"enabled": False, "hostname": "chart-example.local", "annotations": {}},
    "s3": {"enabled": False},
    "tolerations": [],
    "kubernetes": {"enabled": False, "role": "view"},
    "global": {"suspend": False},
    "replicaCount": 1,
}


@pytest.fixture
def jupyter_schema() -> dict[str, Any]:
    """A fresh copy of the Jupyter-like chart schema."""
    return copy.deepcopy(JUPYTER_SCHEMA)


@pytest.fixture
def jupyter_values() -> dict[str, Any]:
    """A fresh copy of the Jupyter-like chart's values.yaml."""
    return copy.deepcopy(JUPYTER_VALUES)


@pytest.fixture
def user() -> ContextUser:
    """Alice, with a profile holding her git settings."""
    return ContextUser(
        idep="alice",
        name="Alice Martin",
        email="alice@example.org",
        groups=("sspcloud-admin", "data"),
        roles=("datascientist",),
        lang="fr",
        ip="203.0.113.7",
        decoded_id_token={"sub": "42", "groups": ["data", "sspcloud-admin"]},
        profile={"git": {"token": "ghp_x", "name": "alice-m"}},
    )


@pytest.fixture
def project() -> ContextProject:
    """Alice's personal project."""
    return ContextProject(id="user-alice", namespace="user-alice", group=None, password="s3rv1ce")


@pytest.fixture
def region() -> ContextRegion:
    """A region exposing services under lab.example.org with a CPU node pool."""
    return ContextRegion(
        domain="lab.example.org",
        ingress_class="nginx",
        ingress=True,
        route=False,
        istio={"enabled": False, "gateways": []},
        use_cert_manager=False,
        cert_manager_issuer=None,
        init_script_url="https://example.org/init.sh",
        resources={"cpuRequest": "200m", "gpu": 1},
        tolerations=[{"key": "pool", "operator": "Equal", "value": "cpu", "effect": "NoSchedule"}],
        node_selector={"pool": "cpu"},
        default_network_policy=True,
        allowed_uri_pattern="^https://",
        proxy=None,
        package_repositories={"pypiProxyUrl": "https://pypi.example.org/simple"},
        certificate_authority=None,
        network_policy_from=[{"namespaceSelector": {}}],
    )


@pytest.fixture
def s3() -> ContextS3:
    """An STS-minted S3 profile on a MinIO-like endpoint."""
    return ContextS3(
        access_key_id="ASIAEXAMPLE",
        secret_access_key="secret-key",
        session_token="session",
        region="us-east-1",
        endpoint_host="minio.example.org",
        port=443,
        path_style=True,
        bucket="user-alice",
        working_directory="user-alice/",
        profile_name="default",
    )


@pytest.fixture
def context(
    user: ContextUser, project: ContextProject, region: ContextRegion, s3: ContextS3
) -> dict[str, Any]:
    """The onyxia context, with the random parts fixed."""
    return build_context(
        user,
        project,
        region,
        s3=s3,
        one_time_password="one-time-pw-123",
        random_subdomain="123456",
    )


def write_json(path: Path, data: object) -> None:
    """Write `data` as JSON, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def admin_dir(tmp_path: Path) -> Path:
    """An empty operator schema folder."""
    folder = tmp_path / "admin"
    folder.mkdir()
    return folder


@pytest.fixture
def registry(admin_dir: Path) -> SchemaRegistry:
    """The bundled schemas plus whatever a test writes into `admin_dir`."""
    return SchemaRegistry(bundled_schema_dir(), admin_dir)
