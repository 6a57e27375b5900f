"""Project bootstrap on the real API server: idempotent, quotas by role, RBAC that works."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from onyxia_py.accounts.models import Identity
from onyxia_py.errors import Conflict, Forbidden
from onyxia_py.kube import KubeClient
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.core import group_project, personal_project
from onyxia_py.projects.models import Project
from onyxia_py.settings import ProjectSettings


def identity(name: str, groups: tuple[str, ...] = (), roles: tuple[str, ...] = ()) -> Identity:
    return Identity("https://sso", f"{name}-sub", name, None, groups, roles)


RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(name: str, namespace: str, *, restricted: bool = True) -> dict[str, Any]:
    """A small pod; `restricted`: it meets the Pod Security level projects enforce."""
    container: dict[str, Any] = {
        "name": "c",
        "image": "busybox:1.36",
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
    }
    if restricted:
        container["securityContext"] = RESTRICTED_CONTAINER
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [container]},
    }


@pytest.fixture
def settings() -> ProjectSettings:
    # A unique prefix per test: namespaces never clash and are easy to clean up.
    tag = secrets.token_hex(3)
    return ProjectSettings(
        user_namespace_prefix=f"u{tag}-",
        group_namespace_prefix=f"g{tag}-",
        role_quotas={"gpu-users": {"requests.cpu": "2", "requests.nvidia.com/gpu": "2"}},
    )


@pytest.fixture
async def cleanup(kube: KubeClient) -> Any:
    created: list[str] = []
    yield created
    for name in created:
        await kube.delete("Namespace", name, missing_ok=True)


async def test_bootstrap_is_idempotent(
    kube: KubeClient, settings: ProjectSettings, cleanup: list[str]
) -> None:
    bootstrap = ProjectBootstrap(kube, settings)
    alice = identity("alice")
    project = personal_project("alice", settings)
    cleanup.append(project.namespace)
    await bootstrap.ensure(project, alice)
    first = {
        kind: (await kube.get(kind, name, project.namespace))["metadata"]["resourceVersion"]
        for kind, name in [
            ("RoleBinding", "onyxia-admin"),
            ("ResourceQuota", "onyxia-quota"),
            ("LimitRange", "onyxia-limits"),
            ("NetworkPolicy", "onyxia-isolation"),
        ]
    }
    namespace = await kube.get("Namespace", project.namespace)
    assert namespace["metadata"]["labels"]["onyxia_owner"] == "alice"
    await ProjectBootstrap(kube, settings).ensure(project, alice)  # a fresh process, same result
    again = {
        kind: (await kube.get(kind, name, project.namespace))["metadata"]["resourceVersion"]
        for kind, name in [
            ("RoleBinding", "onyxia-admin"),
            ("ResourceQuota", "onyxia-quota"),
            ("LimitRange", "onyxia-limits"),
            ("NetworkPolicy", "onyxia-isolation"),
        ]
    }
    assert again == first


async def test_quota_by_role_and_onyxia_ignore(
    kube: KubeClient, settings: ProjectSettings, cleanup: list[str]
) -> None:
    gpu_user = identity("carol", roles=("gpu-users", "staff"))
    project = personal_project("carol", settings)
    cleanup.append(project.namespace)
    await ProjectBootstrap(kube, settings).ensure(project, gpu_user)
    quota = await kube.get("ResourceQuota", "onyxia-quota", project.namespace)
    assert quota["spec"]["hard"] == {"requests.cpu": "2", "requests.nvidia.com/gpu": "2"}
    await kube.patch(
        "ResourceQuota",
        "onyxia-quota",
        {
            "metadata": {"annotations": {"onyxia_ignore": "true"}},
            "spec": {"hard": {"requests.cpu": "99"}},
        },
        project.namespace,
    )
    await ProjectBootstrap(kube, settings).ensure(project, identity("carol"))
    kept = await kube.get("ResourceQuota", "onyxia-quota", project.namespace)
    assert kept["spec"]["hard"]["requests.cpu"] == "99"


async def test_users_act_in_their_projects_only(
    kube: KubeClient, settings: ProjectSettings, cleanup: list[str]
) -> None:
    bootstrap = ProjectBootstrap(kube, settings)
    alice, bob = identity("alice", groups=("stats",)), identity("bob")
    mine, bobs = personal_project("alice", settings), personal_project("bob", settings)
    team = group_project("stats", settings)
    assert team is not None
    cleanup.extend([mine.namespace, bobs.namespace, team.namespace])
    await bootstrap.ensure_all(alice)
    await bootstrap.ensure(bobs, bob)
    as_alice = bootstrap.impersonation(alice)
    await kube.create(pod("notebook", mine.namespace), as_=as_alice)
    await kube.create(pod("shared", team.namespace), as_=as_alice)
    with pytest.raises(Forbidden):
        await kube.create(pod("intruder", bobs.namespace), as_=as_alice)
    with pytest.raises(Forbidden):
        await kube.list("Pod", team.namespace, as_=bootstrap.impersonation(bob))


async def test_projects_enforce_the_restricted_pod_security_level(
    kube: KubeClient, settings: ProjectSettings, cleanup: list[str]
) -> None:
    bootstrap = ProjectBootstrap(kube, settings)
    dan = identity("dan")
    project = personal_project("dan", settings)
    cleanup.append(project.namespace)
    await bootstrap.ensure(project, dan)
    labels = (await kube.get("Namespace", project.namespace))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    as_dan = bootstrap.impersonation(dan)
    with pytest.raises(Forbidden) as refused:
        await kube.create(pod("root", project.namespace, restricted=False), as_=as_dan)
    assert 'violates PodSecurity "restricted' in refused.value.detail
    await kube.create(pod("fine", project.namespace), as_=as_dan)


def test_reserved_groups_are_never_impersonated(
    settings: ProjectSettings, kube: KubeClient
) -> None:
    mallory = identity("mallory", groups=("system:masters", "stats"))
    assert ProjectBootstrap(kube, settings).impersonation(mallory).groups == ("stats",)


async def test_bootstrap_never_hands_a_namespace_to_another_owner(
    kube: KubeClient, settings: ProjectSettings, cleanup: list[str]
) -> None:
    bootstrap = ProjectBootstrap(kube, settings)
    team = group_project("teamb", settings)
    assert team is not None
    cleanup.append(team.namespace)
    await bootstrap.ensure(team, identity("ben", ("teamb",)))
    # `TeamB` gives the same namespace: refused, and the RoleBinding is left as it was.
    usurper = Project(team.id, team.namespace, "TeamB", "TeamB")
    with pytest.raises(Conflict, match="belongs to another group"):
        await bootstrap.ensure(usurper, identity("ann", ("TeamB",)))
    binding = await kube.get("RoleBinding", "onyxia-admin", team.namespace)
    assert [s["name"] for s in binding["subjects"]] == ["teamb"]
    # A namespace made before owners were recorded: its RoleBinding is never re-pointed either.
    await kube.request(
        "PATCH",
        f"/api/v1/namespaces/{team.namespace}",
        body={"metadata": {"annotations": {"onyxia-py.io/owner": None}}},
        content_type="application/merge-patch+json",
    )
    with pytest.raises(Conflict, match="not re-pointed"):
        await bootstrap.ensure(usurper, identity("ann", ("TeamB",)))
    # A personal namespace belongs to one subject, not to whoever has the username now.
    mine = personal_project("eve", settings)
    cleanup.append(mine.namespace)
    await bootstrap.ensure(mine, identity("eve"))
    recycled = Identity("https://sso", "another-subject", "eve", None, (), ())
    with pytest.raises(Conflict, match="belongs to another user"):
        await bootstrap.ensure(mine, recycled)
