"""Pure builders of project objects."""

from __future__ import annotations

from onyxia_py.projects import objects
from onyxia_py.projects.models import Project, owner_label_value


def test_personal_and_group_bindings() -> None:
    mine = Project("user-alice", "user-alice", "alice", None)
    team = Project("projet-stats", "projet-stats", "stats", "stats")
    assert objects.admin_binding(mine, "oidc:alice")["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "oidc:alice"}
    ]
    assert objects.admin_binding(team, "stats")["subjects"][0]["kind"] == "Group"
    assert objects.admin_binding(team, "stats")["roleRef"]["name"] == "admin"


def test_namespace_labels() -> None:
    project = Project("user-jean", "user-jean", "Jean Dupont@insee", None)
    ns = objects.namespace(project, {"team": "lab"}, {"note": "x"})
    labels = ns["metadata"]["labels"]
    assert labels["onyxia_owner"] == "Jean_Dupont_insee"
    assert labels["team"] == "lab"
    assert labels["app.kubernetes.io/managed-by"] == "onyxia-py"
    assert ns["metadata"]["annotations"] == {"note": "x"}


def test_namespace_pod_security_labels() -> None:
    project = Project("user-jean", "user-jean", "jean", None)
    labels = objects.namespace(project, {}, {}, "restricted")["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    # An operator's own label wins over the setting; an empty level adds none.
    mine = {"pod-security.kubernetes.io/enforce": "baseline"}
    labels = objects.namespace(project, mine, {}, "restricted")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert not any(
        k.startswith("pod-security")
        for k in objects.namespace(project, {}, {})["metadata"]["labels"]
    )


def test_owner_label_values_are_valid() -> None:
    assert owner_label_value("x" * 100) == "x" * 63
    assert owner_label_value("@@@") == "unknown"


def test_quota_limits_and_policy() -> None:
    project = Project("user-a", "user-a", "a", None)
    quota = objects.resource_quota(project, {"requests.cpu": "4"})
    assert quota["metadata"]["name"] == "onyxia-quota"
    assert quota["spec"]["hard"] == {"requests.cpu": "4"}
    limits = objects.limit_range(project, {"default": {"cpu": "1"}})
    assert limits["spec"]["limits"] == [{"type": "Container", "default": {"cpu": "1"}}]
    policy = objects.isolation_policy(project, "ingress-nginx")
    peers = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {}} in peers
    assert peers[1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
