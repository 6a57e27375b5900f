#!/usr/bin/env bash
# `make run`: serve onyxia-py on the embedded defaults. Without a configured kubeconfig
# (ONYXIA_KUBERNETES__KUBECONFIG, KUBECONFIG or ~/.kube/config) the local control plane is
# started first (built once and cached in ~/.cache/onyxia-py) and used.
set -euo pipefail
cd "$(dirname "$0")/.."

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
    echo "[run] preparing the tools' images (the first time builds them: about 10 minutes)" >&2
    eval "$(.venv/bin/python -m devtools.localplatform env --state-dir "$DEV_CLUSTER_DIR")"
  fi
  echo "[run] stop it with: make dev-cluster-stop" >&2
fi
echo "[run] serving on http://${ONYXIA_SERVER__HOST:-127.0.0.1}:${ONYXIA_SERVER__PORT:-8000} (API docs at /docs)" >&2
exec .venv/bin/python -m onyxia_py serve
