"""Helm adapter: the only package that imports `helm_python`."""

from onyxia_py.helm.engine import (
    DELETED,
    Cancellation,
    HelmEngine,
    ProcessLocks,
    ReleaseInfo,
    ReleaseLocks,
    Values,
)
from onyxia_py.helm.sdk import SdkHelmEngine

__all__ = [
    "DELETED",
    "Cancellation",
    "HelmEngine",
    "ProcessLocks",
    "ReleaseInfo",
    "ReleaseLocks",
    "SdkHelmEngine",
    "Values",
]
