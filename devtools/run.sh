#!/usr/bin/env bash
# `make run`: serve onyxia-py on the embedded defaults. Without a configured kubeconfig
# (ONYXIA_KUBERNETES__KUBECONFIG, KUBECONFIG or ~/.kube/config) the local control plane is
# started first (built once and cached in ~/.cache/onyxia-py) and used.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${ONYXIA_KUBERNETES__KUBECONFIG:-}" ] && [ -z "${KUBECONFIG:-}" ] && [ ! -f "$HOME/.kube/config" ]; then
  echo "[run] no kubeconfig configured: starting the local control plane (make dev-cluster)" >&2
  make --no-print-directory dev-cluster DEV_CLUSTER_DIR="$DEV_CLUSTER_DIR"
  export ONYXIA_KUBERNETES__KUBECONFIG="$DEV_CLUSTER_DIR/kubeconfig"
  echo "[run] stop it with: make dev-cluster-stop" >&2
fi
echo "[run] serving on http://${ONYXIA_SERVER__HOST:-127.0.0.1}:${ONYXIA_SERVER__PORT:-8000} (API docs at /docs)" >&2
exec .venv/bin/python -m onyxia_py serve
