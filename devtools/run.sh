#!/usr/bin/env bash
# `make run`: serve onyxia-py on the embedded defaults. Without a configured kubeconfig
# (ONYXIA_KUBERNETES__KUBECONFIG, KUBECONFIG or ~/.kube/config) the local control plane is
# started first (built once and cached in ~/.cache/onyxia-py) and used, with a local S3 server
# (Ceph RGW with STS) and, with AUTH=oidc, a local OpenID Provider with demo users
# (devtools/localstack.py: started once, reused by the next `make run`, stopped with the cluster).
set -euo pipefail
cd "$(dirname "$0")/.."

AUTH="${AUTH:-none}"
case "$AUTH" in none|oidc) ;; *) echo "[run] AUTH must be none or oidc, not '$AUTH'" >&2; exit 2;; esac
PUBLIC_URL="${ONYXIA_SERVER__PUBLIC_URL:-http://${ONYXIA_SERVER__HOST:-127.0.0.1}:${ONYXIA_SERVER__PORT:-8000}}"

if [ -z "${ONYXIA_KUBERNETES__KUBECONFIG:-}" ] && [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ]; then
  echo "[run] no kubeconfig configured: starting the local control plane (make dev-cluster)" >&2
  if why=$(.venv/bin/python -m devtools.localcluster check-real 2>&1); then
    echo "[run] real node: services really run ($why)" >&2
    NODES="--nodes 0 --real-nodes 1 --ingress-port ${ONYXIA_LOCAL_INGRESS_PORT:-8081}"
  else
    echo "[run] simulated node only: services are marked running but do not run ($why)" >&2
    NODES=""
  fi
  make --no-print-directory dev-cluster DEV_CLUSTER_DIR="$DEV_CLUSTER_DIR" DEV_CLUSTER_NODES="$NODES"
  export ONYXIA_KUBERNETES__KUBECONFIG="$DEV_CLUSTER_DIR/kubeconfig"
  if [ -n "$NODES" ]; then
    # Build the tools' images once (cached; progress below) and point the charts at them.
    echo "[run] preparing the tools' images (the first time builds them: 3 to 10 minutes on 2 cores, progress below)" >&2
    eval "$(.venv/bin/python -m devtools.localplatform env --state-dir "$DEV_CLUSTER_DIR")"
  fi
  # S3 on by default (S3=0 turns it off; a configured s3.endpoint_url is left alone).
  if [ "${S3:-1}" != "0" ] && [ -z "${ONYXIA_S3__ENDPOINT_URL:-}" ]; then
    if stack=$(.venv/bin/python -m devtools.localstack env --state-dir "$DEV_CLUSTER_DIR" \
        --auth "$AUTH" --public-url "$PUBLIC_URL"); then
      eval "$stack"
      echo "[run] S3 is on: buckets in the web page, credentials injected into services" >&2
    elif [ "$AUTH" = oidc ]; then
      echo "[run] AUTH=oidc needs the local S3 server and provider; see the reason above" >&2
      exit 1
    else
      echo "[run] going on without S3 (object storage is off; reason above)" >&2
    fi
  elif [ "$AUTH" = oidc ]; then
    echo "[run] AUTH=oidc starts its provider with the local S3 server: unset S3=0 and ONYXIA_S3__ENDPOINT_URL" >&2
    exit 2
  fi
  echo "[run] stop it with: make dev-cluster-stop KEEP=1 (keeps services, volumes and buckets" \
    "for the next make run) or make dev-cluster-stop (drops them); both stop S3 and the provider" >&2
elif [ "$AUTH" = oidc ]; then
  echo "[run] AUTH=oidc is for the local dev cluster; with your own kubeconfig, configure auth.* (docs/configuration.md)" >&2
  exit 2
fi
echo "[run] serving on $PUBLIC_URL (API docs at /docs)" >&2
exec .venv/bin/python -m onyxia_py serve
