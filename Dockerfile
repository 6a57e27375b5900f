# syntax=docker/dockerfile:1
# The onyxia-py image: `docker build -t ghcr.io/onyxia-py/onyxia-py:0.1.0 .`
#
# Layout: the dependencies live in a virtualenv (/opt/venv, installed from wheels built in the
# first stage), the application runs from its SOURCE TREE in /app (PYTHONPATH=/app), not from
# site-packages. onyxia_py/ui/pages.py finds its templates at
# `Path(__file__).parents[2] / "web"`, i.e. next to the `onyxia_py` folder: /app/web here. A
# regular (non-editable) install would put the package in site-packages, where no `web/` exists.
# The default catalogue (catalog/, relative to the working directory /app) and its charts
# (charts/) sit there too.

ARG PYTHON_IMAGE=python:3.11-slim

# -- build: wheels for onyxia-py and every dependency ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY onyxia_py ./onyxia_py
# Building our own wheel checks the package builds; its dependencies come as wheels alongside.
RUN pip wheel --wheel-dir /wheels .
# Install everything from those wheels only, then remove onyxia-py itself from the virtualenv:
# the runtime stage runs the source tree, so exactly one copy of the package exists.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels onyxia-py \
 && /opt/venv/bin/pip uninstall --yes onyxia-py

# -- runtime ------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="onyxia-py" \
      org.opencontainers.image.description="Onyxia's control plane in Python" \
      org.opencontainers.image.source="https://github.com/onyxia-py/onyxia-py" \
      org.opencontainers.image.licenses="MIT"

RUN groupadd --system --gid 10001 onyxia \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin onyxia

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Owned by root and read-only for the runtime user.
COPY pyproject.toml README.md ./
COPY onyxia_py ./onyxia_py
COPY web ./web
COPY catalog ./catalog
COPY charts ./charts
# Byte-code compiled now: the root file system is read-only at run time (Kubernetes chart).
RUN python -m compileall -q /app/onyxia_py \
 && mkdir -p /data /var/cache/onyxia-py \
 && chown 10001:10001 /data /var/cache/onyxia-py

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    ONYXIA_SERVER__HOST=0.0.0.0 \
    ONYXIA_SERVER__PORT=8000 \
    ONYXIA_DATABASE__URL=sqlite+aiosqlite:////data/onyxia.db \
    ONYXIA_CATALOGS__CACHE_DIR=/var/cache/onyxia-py/charts \
    HELM_CACHE_HOME=/var/cache/onyxia-py/helm

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["python", "-m", "onyxia_py", "serve"]
