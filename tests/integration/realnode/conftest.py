"""Fixtures for tests on real nodes (kubelet + containerd + kube-proxy on this machine).

``real_cluster`` is a LocalCluster with one real node and no simulated one, started once per
session in a temporary state dir; with ONYXIA_TEST_KUBECONFIG it is the local cluster whose
state dir holds that kubeconfig (e.g. the dev cluster of `make run` with real nodes). A machine
that cannot run a real node FAILS these tests with the reason; they are never skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.localcluster import ClusterError, LocalCluster, NodeSpec, real_nodes_possible
from devtools.localcluster.realnode import mounts_under

from .helpers import api


def start_real_cluster(state: Path, spec: NodeSpec) -> LocalCluster:
    """Start a cluster with real nodes in state (one retry); fail if the machine cannot."""
    possible, why = real_nodes_possible()
    if not possible:
        pytest.fail(f"this machine cannot run a real node: {why}")
    cluster = LocalCluster(state, spec)
    try:
        cluster.start()
    except ClusterError as first:
        print(f"cluster with real nodes failed to start, retrying once: {first}", file=sys.stderr)
        cluster.start()
    return cluster


def stop_real_cluster(cluster: LocalCluster, state: Path) -> None:
    """Stop the cluster and remove its state dir (never through a mount left behind)."""
    cluster.stop()
    if not mounts_under(state):
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[LocalCluster]:
    """A running cluster with at least one real node."""
    env = os.environ.get("ONYXIA_TEST_KUBECONFIG")
    if env:
        cluster = LocalCluster(Path(env).parent)
        if not cluster.real_nodes:
            pytest.fail(
                f"ONYXIA_TEST_KUBECONFIG={env} is not the kubeconfig of a local cluster "
                "with real nodes (start one with --real-nodes 1)"
            )
        yield cluster
        return
    state = Path(tempfile.mkdtemp(prefix="onyxia-test-real-"))
    cluster = start_real_cluster(state, NodeSpec(count=0, real=1))
    try:
        yield cluster
    finally:
        stop_real_cluster(cluster, state)


@pytest.fixture
def real_api(real_cluster: LocalCluster) -> Iterator[httpx.Client]:
    """An admin HTTP client on the real cluster's API server."""
    with api(real_cluster) as client:
        yield client
