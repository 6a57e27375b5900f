"""Quota pre-flight: precise refusals before anything is installed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from onyxia_py.errors import Invalid, QuotaExceeded
from onyxia_py.quantities import human, parse_quantity
from onyxia_py.services.quota import manifests_objects, preflight, requested

MANIFESTS = {
    "ide/templates/statefulset.yaml": """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: ide}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: main
          resources:
            requests: {cpu: 1500m, memory: 2Gi}
            limits: {cpu: "2", memory: 4Gi, nvidia.com/gpu: "1"}
        - name: sidecar
          resources:
            requests: {cpu: 500m}
""",
    "ide/templates/pvc.yaml": """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: home}
spec:
  resources: {requests: {storage: 10Gi}}
""",
    "ide/templates/NOTES.txt": "not yaml: {{",
    "ide/templates/suspended.yaml": """
apiVersion: apps/v1
kind: Deployment
metadata: {name: off}
spec:
  replicas: 0
  template: {spec: {containers: [{name: c, resources: {requests: {cpu: "8"}}}]}}
""",
}


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", "0.5"), ("2", "2"), ("1.5", "1.5"), ("2Gi", str(2 * 2**30)), ("1k", "1000")],
)
def test_quantities(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


def test_bad_quantity() -> None:
    with pytest.raises(Invalid):
        parse_quantity("lots")


def test_requested_sums_replicas_containers_and_storage() -> None:
    wanted = requested(manifests_objects(MANIFESTS))
    assert wanted["requests.cpu"] == Decimal(4)
    assert wanted["requests.memory"] == 2 * parse_quantity("2Gi")
    assert wanted["limits.cpu"] == Decimal(4)
    assert wanted["requests.nvidia.com/gpu"] == Decimal(2)
    assert wanted["requests.storage"] == parse_quantity("10Gi")
    assert wanted["count/pods"] == Decimal(2)


def quota(hard: dict[str, str], used: dict[str, str]) -> dict[str, object]:
    return {"spec": {"hard": hard}, "status": {"hard": hard, "used": used}}


def test_preflight_says_what_is_missing() -> None:
    wanted = {"requests.cpu": Decimal(4), "requests.memory": parse_quantity("1Gi")}
    with pytest.raises(QuotaExceeded) as caught:
        preflight(
            quota({"requests.cpu": "8", "requests.memory": "32Gi"}, {"requests.cpu": "6500m"}),
            wanted,
            "user-alice",
        )
    assert caught.value.detail == "requested 4 CPU, 1.5 CPU available in user-alice (requests.cpu)"
    assert set(caught.value.extensions["resources"]) == {"requests.cpu"}


def test_preflight_passes_when_it_fits() -> None:
    preflight(
        quota({"requests.cpu": "8"}, {"requests.cpu": "4"}), {"requests.cpu": Decimal(4)}, "ns"
    )
    preflight(None, {"requests.cpu": Decimal(400)}, "ns")


def test_human_units() -> None:
    assert human("requests.memory", parse_quantity("1536Mi")) == "1.5 GiB"
    assert human("requests.nvidia.com/gpu", Decimal(2)) == "2 GPU"
    assert human("count/pods", Decimal(3)) == "3 pods"


HOOKS = {
    "ide/templates/tests/connection.yaml": """
apiVersion: v1
kind: Pod
metadata:
  name: ide-test
  annotations: {helm.sh/hook: test}
spec:
  containers: [{name: t, resources: {requests: {cpu: 200m}}}]
""",
    "ide/templates/migrate.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: ide-migrate
  annotations: {"helm.sh/hook": "pre-upgrade, pre-install"}
spec:
  template:
    spec:
      containers: [{name: m, resources: {requests: {cpu: 100m}}}]
""",
    "ide/templates/cleanup.yaml": """
apiVersion: batch/v1
kind: Job
metadata:
  name: ide-cleanup
  annotations: {"helm.sh/hook": post-delete}
spec:
  template:
    spec:
      containers: [{name: c, resources: {requests: {cpu: 300m}}}]
""",
}


def test_only_what_an_install_creates_is_counted() -> None:
    # The test hook and the deletion hook never run at install; the pre-install Job does.
    wanted = requested(manifests_objects(HOOKS))
    assert wanted["requests.cpu"] == Decimal("0.1")
    assert wanted["count/pods"] == 1


def test_invalid_rendered_yaml_is_refused_naming_the_template_and_line() -> None:
    broken = {"demo/templates/configmap.yaml": "kind: ConfigMap\ndata:\n  a: b\n   c: d\n"}
    with pytest.raises(Invalid) as refused:
        manifests_objects(broken)
    assert refused.value.detail.startswith(
        "the chart renders invalid YAML: demo/templates/configmap.yaml line 4:"
    ), refused.value.detail


@pytest.mark.parametrize(
    "spec",
    [
        {"replicas": "many", "template": {"spec": {"containers": []}}},
        {"template": {"spec": {"containers": [{"resources": "lots"}]}}},
        {"template": {"spec": {"containers": [{"resources": {"requests": {"cpu": "x"}}}]}}},
    ],
)
def test_objects_of_a_shape_kubernetes_refuses_are_invalid_not_errors(spec: object) -> None:
    with pytest.raises(Invalid):
        requested([{"kind": "Deployment", "spec": spec}])


def test_the_free_share_is_what_the_quota_has_left_less_reservations() -> None:
    from onyxia_py.services.quota import free_share

    quota = {
        "status": {
            "hard": {"requests.cpu": "4", "requests.nvidia.com/gpu": "1", "count/pods": "5"},
            "used": {"requests.cpu": "3500m", "count/pods": "9"},
        }
    }
    left = free_share(quota, {"requests.nvidia.com/gpu": Decimal(1)})
    assert left == {
        "requests.cpu": Decimal("0.5"),
        "requests.nvidia.com/gpu": Decimal(0),
        "count/pods": Decimal(0),  # never below zero
    }
    assert free_share(None) == {}
