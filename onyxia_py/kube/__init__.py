"""Kubernetes adapter: the only package that imports the `kubernetes` client."""

from onyxia_py.kube.api import Kube, KubeObject
from onyxia_py.kube.client import KubeClient
from onyxia_py.kube.leases import KubeLeases, LeaseRecord, pod_namespace

__all__ = ["Kube", "KubeClient", "KubeLeases", "KubeObject", "LeaseRecord", "pod_namespace"]
