"""The launch form's GPU hint: what a launch can take now is the smaller of the cluster's free
GPUs and what the project's quota has left, and it says which."""

from __future__ import annotations

from decimal import Decimal

from onyxia_py.api.gpus import GpuOut
from onyxia_py.ui.launcher import gpu_share

GPUS = [GpuOut(product="T4", nodes=1, capacity=4, allocated=1, free=3)]


def test_the_quota_caps_the_gpus_on_offer_and_says_so() -> None:
    assert gpu_share(GPUS, Decimal(0)) == (
        0,
        "your project's quota has 0 left; the cluster has 3 free",
    )


def test_without_a_smaller_quota_the_cluster_decides() -> None:
    assert gpu_share(GPUS, None) == (3, "")
    assert gpu_share(GPUS, Decimal(8)) == (3, "")
    assert gpu_share(None, None) == (0, "")
