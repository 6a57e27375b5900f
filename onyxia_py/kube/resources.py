"""The Kubernetes resource kinds the platform touches, and their REST paths."""

from __future__ import annotations

from dataclasses import dataclass

from onyxia_py.errors import Invalid


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the Kubernetes REST API."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, sub: str = "") -> str:
        """The REST path of the collection (every namespace's when `namespace` is None for a
        namespaced kind), or of one object (and a subresource of it)."""
        base = (
            f"/api/{self.api_version}"
            if "/" not in self.api_version
            else (f"/apis/{self.api_version}")
        )
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        elif self.namespaced and name:
            raise Invalid(f"{self.kind} is namespaced: a namespace is required")
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
            if sub:
                base += f"/{sub}"
        return base


def _r(api_version: str, kind: str, plural: str, namespaced: bool = True) -> Resource:
    return Resource(api_version, kind, plural, namespaced)


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in [
        _r("v1", "Namespace", "namespaces", namespaced=False),
        _r("v1", "Node", "nodes", namespaced=False),
        _r("v1", "Pod", "pods"),
        _r("v1", "Secret", "secrets"),
        _r("v1", "ConfigMap", "configmaps"),
        _r("v1", "Service", "services"),
        _r("v1", "ServiceAccount", "serviceaccounts"),
        _r("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        _r("v1", "ResourceQuota", "resourcequotas"),
        _r("v1", "LimitRange", "limitranges"),
        _r("v1", "Event", "events"),
        _r("apps/v1", "Deployment", "deployments"),
        _r("apps/v1", "StatefulSet", "statefulsets"),
        _r("apps/v1", "ReplicaSet", "replicasets"),
        _r("batch/v1", "Job", "jobs"),
        _r("coordination.k8s.io/v1", "Lease", "leases"),
        _r("networking.k8s.io/v1", "Ingress", "ingresses"),
        _r("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        _r("rbac.authorization.k8s.io/v1", "Role", "roles"),
        _r("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
        _r("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", namespaced=False),
        _r(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            namespaced=False,
        ),
        _r(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            namespaced=False,
        ),
        _r(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            namespaced=False,
        ),
    ]
}


def resource(kind: str) -> Resource:
    """The resource of `kind`, or Invalid if the platform does not handle that kind."""
    try:
        return RESOURCES[kind]
    except KeyError:
        raise Invalid(f"unsupported Kubernetes kind {kind!r}") from None
