"""The Kubernetes adapter against a real API server: impersonation, RBAC, error translation."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from onyxia_py.errors import Conflict, Forbidden, Invalid, NotFound
from onyxia_py.identity import Impersonation
from onyxia_py.kube import KubeClient


def pod(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
    }


def edit_binding(
    namespace: str, *, user: str | None = None, group: str | None = None
) -> dict[str, Any]:
    subject = {"kind": "User", "name": user} if user else {"kind": "Group", "name": group}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"edit-{secrets.token_hex(3)}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}],
    }


async def test_user_without_binding_is_refused_by_the_api_server(
    kube: KubeClient, namespace: str
) -> None:
    mallory = Impersonation("mallory", ("team-a",))
    with pytest.raises(Forbidden, match="mallory"):
        await kube.create(pod("intruder", namespace), as_=mallory)
    with pytest.raises(Forbidden):
        await kube.list("Pod", namespace, as_=mallory)
    # Nothing was created behind the refusal.
    with pytest.raises(NotFound):
        await kube.get("Pod", "intruder", namespace)


async def test_user_with_a_binding_acts_in_their_namespace_only(
    kube: KubeClient, namespace: str
) -> None:
    await kube.create(edit_binding(namespace, user="alice"))
    alice = Impersonation("alice")
    await kube.wait_allowed(alice, "create", "pods", namespace)
    created = await kube.create(pod("notebook", namespace), as_=alice)
    assert created["metadata"]["name"] == "notebook"
    names = [p["metadata"]["name"] for p in await kube.list("Pod", namespace, as_=alice)]
    assert names == ["notebook"]
    with pytest.raises(Forbidden):
        await kube.create(pod("notebook", "default"), as_=alice)


async def test_every_group_is_sent(kube: KubeClient, namespace: str) -> None:
    # Only the last of several groups is bound: it must reach the API server as its own header.
    await kube.create(edit_binding(namespace, group="stats"))
    bob = Impersonation("bob", ("economics", "demography", "stats"))
    await kube.wait_allowed(bob, "create", "pods", namespace)
    await kube.create(pod("shared", namespace), as_=bob)
    with pytest.raises(Forbidden):
        await kube.create(pod("other", namespace), as_=Impersonation("bob", ("economics",)))


async def test_errors_are_translated(kube: KubeClient, namespace: str) -> None:
    await kube.create(pod("twice", namespace))
    with pytest.raises(Conflict, match="already exists"):
        await kube.create(pod("twice", namespace))
    with pytest.raises(NotFound):
        await kube.get("Pod", "missing", namespace)
    bad = pod("Not_A_Name", namespace)
    with pytest.raises(Invalid) as caught:
        await kube.create(bad)
    assert any(e.field == "metadata.name" for e in caught.value.errors)


async def test_patch_and_delete(kube: KubeClient, namespace: str) -> None:
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"a": "1"},
        }
    )
    patched = await kube.patch("ConfigMap", "settings", {"data": {"b": "2"}}, namespace)
    assert patched["data"] == {"a": "1", "b": "2"}
    await kube.delete("ConfigMap", "settings", namespace)
    with pytest.raises(NotFound):
        await kube.get("ConfigMap", "settings", namespace)
    await kube.delete("ConfigMap", "settings", namespace, missing_ok=True)
    with pytest.raises(NotFound):
        await kube.delete("ConfigMap", "settings", namespace)


async def test_version(kube: KubeClient) -> None:
    version = await kube.version()
    assert version["major"] == "1"


async def test_metadata_only_listings(kube: KubeClient, namespace: str) -> None:
    assert (
        await kube.list("Secret", namespace, label_selector="owner=helm", metadata_only=True) == []
    )
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "big", "namespace": namespace, "labels": {"owner": "helm"}},
            "stringData": {"release": "x" * 100_000},
        }
    )
    (only,) = await kube.list("Secret", namespace, label_selector="owner=helm", metadata_only=True)
    assert only["metadata"]["labels"] == {"owner": "helm"}
    assert "data" not in only


async def test_events_can_be_selected_by_reason(kube: KubeClient, namespace: str) -> None:
    # The launch watcher relies on this selector: the API server must accept it.
    assert await kube.list("Event", namespace, field_selector="reason=FailedCreate") == []


async def test_access_reviews(kube: KubeClient, namespace: str) -> None:
    carol = Impersonation("carol")
    assert not await kube.allowed(carol, "create", "pods", namespace)
    await kube.create(edit_binding(namespace, user="carol"))
    await kube.wait_allowed(carol, "create", "pods", namespace)
    assert await kube.allowed(carol, "create", "pods", namespace)
    assert not await kube.allowed(carol, "create", "pods", "kube-system")
