"""Project bootstrap on a fake cluster: the namespace, its RoleBinding and quota made as the
platform; a namespace of another owner, or bound to another subject, is never taken over."""

from __future__ import annotations

import pytest

from onyxia_py.accounts.models import Identity
from onyxia_py.errors import Conflict, Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.projects import objects
from onyxia_py.projects.bootstrap import ProjectBootstrap
from onyxia_py.projects.core import group_project, personal_project
from onyxia_py.projects.models import Project
from onyxia_py.projects.ownership import OWNER_ANNOTATION, OWNER_KIND_ANNOTATION
from onyxia_py.settings import ProjectSettings

from ..fakes import FakeKube

SETTINGS = ProjectSettings(
    user_quota={"requests.cpu": "2"},
    group_quota={"requests.cpu": "8"},
    kubernetes_user_prefix="oidc:",
    kubernetes_group_prefix="oidc:",
)
ALICE = Identity("https://sso", "sub-alice", "alice", None, ("stats", "system:masters"), ())
BOB = Identity("https://sso", "sub-bob", "bob", None, (), ())


def stats() -> Project:
    project = group_project("stats", SETTINGS)
    assert project is not None
    return project


async def test_a_new_project_gets_its_namespace_binding_and_quota() -> None:
    kube = FakeKube()
    project = personal_project("alice", SETTINGS)
    await ProjectBootstrap(kube, SETTINGS).ensure(project, ALICE)

    namespace = kube.find("Namespace", project.namespace)
    assert namespace is not None
    labels = namespace["metadata"]["labels"]
    assert labels[objects.MANAGED_LABEL] == "onyxia-py"
    assert labels[objects.OWNER_LABEL] == "alice"
    annotations = namespace["metadata"]["annotations"]
    assert (annotations[OWNER_KIND_ANNOTATION], annotations[OWNER_ANNOTATION]) == (
        "user",
        "sub-alice",
    )
    binding = kube.find("RoleBinding", "onyxia-admin", project.namespace)
    assert binding is not None
    assert binding["roleRef"]["name"] == "admin"
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("User", "oidc:alice")]
    quota = kube.find("ResourceQuota", objects.QUOTA_NAME, project.namespace)
    assert quota is not None
    assert quota["spec"]["hard"] == {"requests.cpu": "2"}
    # Made as the platform, and the user is waited for until the authorizer knows the binding.
    assert all(c[4] is None for c in kube.calls)
    assert ("wait_allowed", "secrets", project.namespace, "oidc:alice", None) in kube.calls


async def test_a_group_project_is_bound_to_the_group() -> None:
    kube = FakeKube()
    bootstrap = ProjectBootstrap(kube, SETTINGS)
    await bootstrap.ensure(stats(), ALICE)
    binding = kube.find("RoleBinding", "onyxia-admin", stats().namespace)
    assert binding is not None
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("Group", "oidc:stats")]
    quota = kube.find("ResourceQuota", objects.QUOTA_NAME, stats().namespace)
    assert quota is not None
    assert quota["spec"]["hard"] == {"requests.cpu": "8"}
    # Background work there acts as a member of the group, never as the platform.
    assert await bootstrap.acting_identity(stats().namespace, "onyxia-py:x") == Impersonation(
        "onyxia-py:x", ("oidc:stats",)
    )
    assert await bootstrap.acting_identity("elsewhere", "onyxia-py:x") is None


async def test_an_existing_binding_to_another_subject_is_never_repointed() -> None:
    kube = FakeKube()
    project = personal_project("alice", SETTINGS)
    # A namespace made before owners were recorded, bound to someone else.
    kube.put(objects.namespace(project, {}, {}))
    kube.put(objects.admin_binding(project, "oidc:mallory"))
    before = len(kube.calls)

    with pytest.raises(Conflict, match="bound to another subject"):
        await ProjectBootstrap(kube, SETTINGS).ensure(project, ALICE)
    binding = kube.find("RoleBinding", "onyxia-admin", project.namespace)
    assert binding is not None
    assert binding["subjects"][0]["name"] == "oidc:mallory"
    assert [c[0] for c in kube.calls[before:]] == ["get", "get"]  # read, nothing written
    assert kube.find("ResourceQuota", objects.QUOTA_NAME, project.namespace) is None


async def test_a_namespace_of_another_owner_is_not_taken_over() -> None:
    kube = FakeKube()
    project = personal_project("alice", SETTINGS)
    await ProjectBootstrap(kube, SETTINGS).ensure(project, ALICE)
    # Another person whose name maps to the same namespace (another issuer's alice).
    other = Identity("https://other-sso", "sub-x", "alice", None, (), ())
    with pytest.raises(Conflict, match="belongs to another user"):
        await ProjectBootstrap(kube, SETTINGS).ensure(project, other)
    namespace = kube.find("Namespace", project.namespace)
    assert namespace is not None
    assert namespace["metadata"]["annotations"][OWNER_ANNOTATION] == "sub-alice"


async def test_an_operators_quota_is_kept_and_ensure_is_idempotent() -> None:
    kube = FakeKube()
    project = personal_project("bob", SETTINGS)
    quota = objects.resource_quota(project, {"requests.cpu": "64"})
    quota["metadata"]["annotations"] = {objects.IGNORE_ANNOTATION: "true"}
    kube.put(quota)
    bootstrap = ProjectBootstrap(kube, SETTINGS)
    await bootstrap.ensure(project, BOB)
    kept = kube.find("ResourceQuota", objects.QUOTA_NAME, project.namespace)
    assert kept is not None
    assert kept["spec"]["hard"] == {"requests.cpu": "64"}

    calls = len(kube.calls)
    await bootstrap.ensure(project, BOB)  # bootstrapped a moment ago: not checked again
    assert len(kube.calls) == calls
    await ProjectBootstrap(kube, SETTINGS).ensure(project, BOB)  # another replica: no change
    assert kube.names("RoleBinding") == {"onyxia-admin"}


async def test_a_binding_the_authorizer_never_learns_fails_the_bootstrap() -> None:
    kube = FakeKube(authorizes=False)
    bootstrap = ProjectBootstrap(kube, SETTINGS)
    with pytest.raises(Unavailable):
        await bootstrap.ensure(personal_project("bob", SETTINGS), BOB)
    await bootstrap.ensure_all(BOB)  # at login a failure is logged, never raised


def test_the_impersonation_drops_kubernetes_own_groups() -> None:
    who = ProjectBootstrap(FakeKube(), SETTINGS).impersonation(ALICE)
    assert who == Impersonation("oidc:alice", ("oidc:stats", "oidc:system:masters"))
    plain = ProjectBootstrap(FakeKube(), ProjectSettings()).impersonation(ALICE)
    assert plain == Impersonation("alice", ("stats",))
