"""Kubernetes adapter: the only package that imports the `kubernetes` client."""

from onyxia_py.kube.client import KubeClient, KubeObject
from onyxia_py.kube.leases import KubeLeases, LeaseRecord, pod_namespace

__all__ = ["KubeClient", "KubeLeases", "KubeObject", "LeaseRecord", "pod_namespace"]
