"""Kubernetes adapter: the only package that imports the `kubernetes` client."""

from onyxia_py.kube.client import KubeClient, KubeObject

__all__ = ["KubeClient", "KubeObject"]
