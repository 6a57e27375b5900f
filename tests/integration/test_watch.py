"""Reflectors against the real API server: a cluster-wide snapshot listed page by page, then
the changes, and a restart of the snapshot when asked to stop mid-way."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest

from onyxia_py.kube import KubeClient
from onyxia_py.kube.watch import Change, Reflector, WatchSpec


@pytest.fixture
def two_namespaces(kube: KubeClient) -> Iterator[tuple[str, str]]:
    names = (f"t-{secrets.token_hex(4)}", f"t-{secrets.token_hex(4)}")
    for name in names:
        kube.request_sync(
            "POST",
            "/api/v1/namespaces",
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        )
    yield names
    for name in names:
        kube.request_sync("DELETE", f"/api/v1/namespaces/{name}", body={})


def config_map(namespace: str, name: str, label: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"t-watch": label}},
        "data": {"n": name},
    }


class Recorder:
    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.lock = threading.Lock()

    def __call__(self, change: Change) -> None:
        with self.lock:
            self.changes.append(change)

    def until(self, wanted: int, seconds: float = 20.0) -> list[Change]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.changes) >= wanted:
                    return list(self.changes)
            time.sleep(0.05)
        raise AssertionError(f"only {self.changes} after {seconds} s")


def test_a_cluster_wide_snapshot_comes_in_pages_then_the_changes(
    kube: KubeClient, two_namespaces: tuple[str, str]
) -> None:
    label = secrets.token_hex(4)
    first, second = two_namespaces
    for n in range(3):
        kube.request_sync(
            "POST",
            f"/api/v1/namespaces/{first}/configmaps",
            body=config_map(first, f"a{n}", label),
        )
    for n in range(2):
        kube.request_sync(
            "POST",
            f"/api/v1/namespaces/{second}/configmaps",
            body=config_map(second, f"b{n}", label),
        )
    recorder = Recorder()
    reflector = Reflector(kube, WatchSpec("ConfigMap", "", f"t-watch={label}"), recorder)
    reflector.PAGE = 2  # 5 objects: pages of 2, 2 and 1
    reflector.start()
    try:
        pages = recorder.until(3)
        assert [c.type for c in pages] == ["sync"] * 3
        assert [c.complete for c in pages] == [False, False, True]
        listed = {
            (o["metadata"]["namespace"], o["metadata"]["name"]) for c in pages for o in c.objects
        }
        assert listed == {
            (first, "a0"),
            (first, "a1"),
            (first, "a2"),
            (second, "b0"),
            (second, "b1"),
        }

        kube.request_sync(
            "POST",
            f"/api/v1/namespaces/{second}/configmaps",
            body=config_map(second, "b2", label),
        )
        kube.request_sync("DELETE", f"/api/v1/namespaces/{first}/configmaps/a0", body={})
        later = recorder.until(5)[3:]
        assert [(c.type, c.objects[0]["metadata"]["name"]) for c in later] == [
            ("added", "b2"),
            ("deleted", "a0"),
        ]
        assert reflector.connected
    finally:
        reflector.stop()
