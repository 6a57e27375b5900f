"""Generate a large Helm repository (charts x versions) of small, realistic Onyxia-style charts.

Run from the repository root: `python -m bench.gen_repo --out /tmp/bigrepo --base-url URL`.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml

from devtools.helmrepo import FIXTURE_CATALOG, PLACEHOLDER_REPOSITORY, build_repository
from devtools.helmrepo import package_charts as _package_charts

__all__ = ["generate_repository"]

WORDS = [
    "jupyter",
    "pyspark",
    "rstudio",
    "vscode",
    "python",
    "tensorflow",
    "pytorch",
    "postgres",
    "mongodb",
    "redis",
    "elastic",
    "superset",
    "metabase",
    "airflow",
    "mlflow",
    "minio",
    "neo4j",
    "kafka",
    "trino",
    "dask",
    "ray",
    "grafana",
    "label-studio",
    "shiny",
    "quarto",
    "duckdb",
    "polars",
    "keycloak",
    "gitlab",
    "argo",
]
KEYWORDS = [
    "python",
    "r",
    "ide",
    "database",
    "spark",
    "gpu",
    "ml",
    "ai",
    "dataviz",
    "workflow",
    "storage",
    "search",
    "graph",
    "streaming",
    "sql",
]
CATEGORIES = ("ide", "databases", "automation", "dataviz", "storage", "ml")
# Helm archives carry fixed-ish metadata; a constant mtime keeps the output reproducible.
MTIME = 1_700_000_000

TEMPLATE_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "library-chart.fullname" . }}
  labels:
    {{- include "library-chart.labels" . | nindent 4 }}
spec:
  replicas: {{ include "library-chart.replicas" . }}
  selector:
    matchLabels:
      {{- include "library-chart.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "library-chart.selectorLabels" . | nindent 8 }}
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: {{ .Values.service.image.version | quote }}
          ports:
            - name: http
              containerPort: {{ .Values.networking.service.port }}
          resources:
            {{- toYaml .Values.resources | nindent 12 }}
"""

TEMPLATE_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ include "library-chart.fullname" . }}
  labels:
    {{- include "library-chart.labels" . | nindent 4 }}
spec:
  ports:
    - name: http
      port: {{ .Values.networking.service.port }}
      targetPort: http
  selector:
    {{- include "library-chart.selectorLabels" . | nindent 4 }}
"""

TEMPLATE_INGRESS = """\
{{- if .Values.ingress.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "library-chart.fullname" . }}
  labels:
    {{- include "library-chart.labels" . | nindent 4 }}
spec:
  rules:
    - host: {{ .Values.ingress.hostname | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "library-chart.fullname" . }}
                port:
                  number: {{ .Values.networking.service.port }}
{{- end }}
"""


def _string(default: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "default": default, **extra}


def _schema_and_values(rng: random.Random, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A values.schema.json of about 30 properties (Onyxia x-onyxia style) and matching values."""
    images = [f"inseefrlab/onyxia-{name}:v{major}.{rng.randrange(10)}" for major in (1, 2, 3)]
    s3_keys = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_S3_ENDPOINT",
    ]
    extra: dict[str, Any] = {}
    extra_values: dict[str, Any] = {}
    # A dozen chart-specific options of assorted types, so schemas differ between charts.
    for number in range(12):
        kind = rng.choice(("string", "integer", "boolean", "enum"))
        key = f"option{number}"
        if kind == "string":
            extra[key] = _string(f"value-{number}", title=f"Option {number}")
        elif kind == "integer":
            extra[key] = {"type": "integer", "default": number, "minimum": 0, "maximum": 1000}
        elif kind == "boolean":
            extra[key] = {"type": "boolean", "default": bool(number % 2)}
        else:
            extra[key] = _string("a", enum=["a", "b", "c"])
        extra_values[key] = extra[key]["default"]
    schema: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "global": {
                "type": "object",
                "properties": {
                    "suspend": {"type": "boolean", "default": False, "x-onyxia": {"hidden": True}}
                },
            },
            "service": {
                "type": "object",
                "properties": {
                    "image": {
                        "type": "object",
                        "properties": {
                            "version": _string(images[0], listEnum=images),
                            "pullPolicy": _string(
                                "IfNotPresent", enum=["IfNotPresent", "Always", "Never"]
                            ),
                        },
                    }
                },
            },
            "resources": {
                "type": "object",
                "x-onyxia": {"overwriteSchemaWith": "ide/resources.json"},
                "properties": {
                    "requests": {
                        "type": "object",
                        "properties": {"cpu": _string("100m"), "memory": _string("1Gi")},
                    },
                    "limits": {
                        "type": "object",
                        "properties": {"cpu": _string("2000m"), "memory": _string("8Gi")},
                    },
                },
            },
            "security": {
                "type": "object",
                "properties": {
                    "password": _string(
                        "changeme", **{"x-onyxia": {"overwriteDefaultWith": "{{user.password}}"}}
                    ),
                    "allowlist": {
                        "type": "object",
                        "properties": {
                            "enabled": {"type": "boolean", "default": False},
                            "ip": _string(
                                "0.0.0.0/0", **{"x-onyxia": {"overwriteDefaultWith": "user.ip"}}
                            ),
                        },
                    },
                },
            },
            "s3": {
                "type": "object",
                "x-onyxia": {"overwriteSchemaWith": "ide/s3.json"},
                "properties": {
                    "enabled": {"type": "boolean", "default": False},
                    **{
                        key: _string(
                            "", **{"x-onyxia": {"overwriteDefaultWith": f"{{{{s3.{key}}}}}"}}
                        )
                        for key in s3_keys
                    },
                },
            },
            "ingress": {
                "type": "object",
                "properties": {
                    "enabled": {"type": "boolean", "default": False},
                    "hostname": _string(
                        "chart-example.local",
                        **{
                            "x-onyxia": {
                                "hidden": True,
                                "overwriteDefaultWith": (
                                    "{{project.id}}-{{k8s.randomSubdomain}}-0.{{k8s.domain}}"
                                ),
                            }
                        },
                    ),
                },
            },
            "networking": {
                "type": "object",
                "properties": {
                    "service": {
                        "type": "object",
                        "properties": {"port": {"type": "integer", "default": 8080}},
                    }
                },
            },
            "extra": {"type": "object", "properties": extra},
        },
    }
    values: dict[str, Any] = {
        "global": {"suspend": False},
        "service": {"image": {"version": images[0], "pullPolicy": "IfNotPresent"}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "1Gi"},
            "limits": {"cpu": "2000m", "memory": "8Gi"},
        },
        "security": {"password": "changeme", "allowlist": {"enabled": False, "ip": "0.0.0.0/0"}},
        "s3": {"enabled": False, **dict.fromkeys(s3_keys, "")},
        "ingress": {"enabled": False, "hostname": "chart-example.local"},
        "networking": {"service": {"port": 8080}},
        "extra": extra_values,
    }
    return schema, values


def _add(archive: tarfile.TarFile, path: str, data: bytes) -> None:
    entry = tarfile.TarInfo(path)
    entry.size = len(data)
    entry.mode = 0o644
    entry.mtime = MTIME
    archive.addfile(entry, io.BytesIO(data))


def _write_chart(out_dir: Path, name: str, version: str, rng: random.Random) -> Path:
    """Write `<name>-<version>.tgz` laid out as `helm package` lays it out."""
    schema, values = _schema_and_values(rng, name)
    metadata: dict[str, Any] = {
        "apiVersion": "v2",
        "name": name,
        "description": f"The {name} service, generated for benchmarks.",
        "icon": f"https://charts.example.invalid/icons/{name}.png",
        "type": "application",
        "version": version,
        "appVersion": f"{rng.randrange(1, 5)}.{rng.randrange(20)}.{rng.randrange(10)}",
        "keywords": sorted(rng.sample(KEYWORDS, 3)),
        "annotations": {"category": rng.choice(CATEGORIES)},
        "dependencies": [
            {"name": "library-chart", "version": "1.0.0", "repository": PLACEHOLDER_REPOSITORY}
        ],
    }
    buffer = io.BytesIO()
    # mtime=0 and level 6: reproducible bytes, and much faster than the default level 9.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        _add(archive, f"{name}/Chart.yaml", yaml.safe_dump(metadata, sort_keys=False).encode())
        _add(archive, f"{name}/values.yaml", yaml.safe_dump(values, sort_keys=False).encode())
        _add(archive, f"{name}/values.schema.json", json.dumps(schema, indent=2).encode())
        _add(archive, f"{name}/templates/deployment.yaml", TEMPLATE_DEPLOYMENT.encode())
        _add(archive, f"{name}/templates/service.yaml", TEMPLATE_SERVICE.encode())
        _add(archive, f"{name}/templates/ingress.yaml", TEMPLATE_INGRESS.encode())
    path = out_dir / f"{name}-{version}.tgz"
    path.write_bytes(buffer.getvalue())
    return path


def _chart_name(number: int) -> str:
    return f"{WORDS[number % len(WORDS)]}-{number:04d}"


def _version(number: int) -> str:
    # Several minors per major, like real catalogs: 1.0.0 1.1.0 1.2.0 1.3.0 2.0.0 ...
    return f"{1 + number // 4}.{number % 4}.0"


def generate_repository(
    out_dir: Path, charts: int = 300, versions: int = 10, *, base_url: str
) -> Path:
    """Write `charts x versions` chart archives plus library-chart and index.yaml; returns it."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Seeded, not secret: benchmarks must compare like with like.
    rng = random.Random(20240601)  # noqa: S311
    _package_charts([FIXTURE_CATALOG / "library-chart"], out_dir)
    for chart in range(charts):
        for version in range(versions):
            _write_chart(out_dir, _chart_name(chart), _version(version), rng)
    packaged = time.perf_counter()
    index = build_repository(out_dir, base_url)
    done = time.perf_counter()
    print(
        f"generated {charts}x{versions} charts in {out_dir}: archives {packaged - started:.2f}s, "
        f"index.yaml {done - packaged:.2f}s ({index.stat().st_size / 1e6:.1f} MB), "
        f"total {done - started:.2f}s"
    )
    return index


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    parser.add_argument("--charts", type=int, default=300)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument(
        "--base-url", required=True, help="URL the repository will be served at (index URLs)"
    )
    args = parser.parse_args(argv)
    generate_repository(args.out, args.charts, args.versions, base_url=args.base_url)


if __name__ == "__main__":
    main()
