"""The local cluster's error: every failure to start or reach it is a ClusterError."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """The local cluster could not be started (or its real nodes could not)."""
