"""Helm adapter: the only package that imports `helm_python`."""

from onyxia_py.helm.engine import Cancellation, HelmEngine, ReleaseInfo, Values
from onyxia_py.helm.sdk import SdkHelmEngine

__all__ = ["Cancellation", "HelmEngine", "ReleaseInfo", "SdkHelmEngine", "Values"]
