"""Pure builders of a project's Kubernetes objects, as plain dicts (tested without a cluster)."""

from __future__ import annotations

from typing import Any

from onyxia_py.identity import Impersonation
from onyxia_py.projects.models import Project

KubeObject = dict[str, Any]

OWNER_LABEL = "onyxia_owner"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
QUOTA_NAME = "onyxia-quota"
IGNORE_ANNOTATION = "onyxia_ignore"
PSA_PREFIX = "pod-security.kubernetes.io"


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {MANAGED_LABEL: "onyxia-py"}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def pod_security_labels(level: str) -> dict[str, str]:
    """The Pod Security Admission labels that enforce `level` (and warn and audit at it)."""
    if not level:
        return {}
    return {f"{PSA_PREFIX}/{mode}": level for mode in ("enforce", "warn", "audit")}


def namespace(
    project: Project, labels: dict[str, str], annotations: dict[str, str], pod_security: str = ""
) -> KubeObject:
    """The project's namespace, labelled with its owner (a user or a group) and the Pod
    Security level enforced in it."""
    meta = _meta(project.namespace)
    meta["labels"] = {
        **pod_security_labels(pod_security),
        **labels,
        **meta["labels"],
        OWNER_LABEL: project.owner_label,
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def admin_binding(project: Project, subject_name: str) -> KubeObject:
    """Binds the built-in ClusterRole `admin` in the namespace to the user (or the group)."""
    kind = "Group" if project.group is not None else "User"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta("onyxia-admin", project.namespace),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "admin",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject_name}],
    }


def binding_identity(binding: KubeObject, group_user: str) -> Impersonation | None:
    """Whom to act as in a project: the subject of its `onyxia-admin` RoleBinding (a group
    subject is impersonated as `group_user` in that group)."""
    subjects = binding.get("subjects") or []
    if not subjects:
        return None
    subject = subjects[0]
    if subject.get("kind") == "Group":
        return Impersonation(group_user, (str(subject["name"]),))
    return Impersonation(str(subject["name"]))


def resource_quota(project: Project, hard: dict[str, str]) -> KubeObject:
    """The project's ResourceQuota `onyxia-quota`."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(QUOTA_NAME, project.namespace),
        "spec": {"hard": dict(hard)},
    }


def limit_range(project: Project, container: dict[str, dict[str, str]]) -> KubeObject:
    """Defaults for containers that state no requests or limits."""
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": _meta("onyxia-limits", project.namespace),
        "spec": {"limits": [{"type": "Container", **container}]},
    }


def isolation_policy(project: Project, ingress_namespace: str) -> KubeObject:
    """Admits traffic only from the same namespace and the ingress controller's."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("onyxia-isolation", project.namespace),
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {}},
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": ingress_namespace}
                            }
                        },
                    ]
                }
            ],
        },
    }
