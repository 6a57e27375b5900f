"""`make dev-cluster-stop` says what it drops; with KEEP=1 (`stop --keep-data`) the next start
resumes on the kept etcd data. The CLI itself, on a control plane of its own with the simulated
node (real nodes need root and minutes; their keep path is realstop.py's drain and teardown)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.localcluster import LocalCluster
from devtools.localcluster.__main__ import main
from devtools.localcluster.keep import KEPT_FILE, PROJECT_SELECTOR
from devtools.localcluster.readiness import nodes_ready

NS = "keep-me"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir whose cluster is stopped (and its data dropped) whatever the test did."""
    yield tmp_path
    LocalCluster(tmp_path).stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run the CLI, expect success, return what it said on stderr."""
    assert main(list(argv)) == 0
    return capsys.readouterr().err


def api(state_dir: Path) -> httpx.Client:
    return LocalCluster(state_dir).client_config().client()


def create(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    r = client.post(path, content=json.dumps(body), headers=JSON)
    assert r.status_code == 201, r.text


def make_a_service(state_dir: Path) -> None:
    """A project namespace, a service record in it (as onyxia-py writes them) and a ConfigMap."""
    label, value = PROJECT_SELECTOR.split("=")
    with api(state_dir) as c:
        meta = {"name": NS, "labels": {label: value}}
        create(c, "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        create(
            c,
            f"/api/v1/namespaces/{NS}/secrets",
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "onyxia.sh/release.v1",
                "metadata": {"name": "sh.onyxia.release.v1.jupyter-1"},
            },
        )
        create(
            c,
            f"/api/v1/namespaces/{NS}/configmaps",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "kept"},
                "data": {"a": "1"},
            },
        )


def configmap(state_dir: Path) -> httpx.Response:
    with api(state_dir) as c:
        return c.get(f"/api/v1/namespaces/{NS}/configmaps/kept")


def test_a_kept_stop_resumes_on_its_objects_and_a_plain_stop_drops_them(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(state_dir)
    run(capsys, "start", "--state-dir", d)
    make_a_service(state_dir)

    said = run(capsys, "stop", "--state-dir", d, "--keep-data")
    assert "keeping the cluster's state (1 service in 1 project)" in said
    assert (state_dir / KEPT_FILE).is_file()
    assert (state_dir / "etcd").is_dir()

    said = run(capsys, "start", "--state-dir", d)
    assert "[dev-cluster] resuming the kept state of " in said
    assert ": 1 service in 1 project" in said
    assert "kept node(s) sim-node-0: Ready again once they report" in said
    assert not (state_dir / KEPT_FILE).exists()
    assert configmap(state_dir).json()["data"] == {"a": "1"}
    with api(state_dir) as c:
        assert nodes_ready(c, ["sim-node-0"])

    said = run(capsys, "stop", "--state-dir", d)
    assert (
        "[dev-cluster-stop] dropping the cluster's state: 1 service in 1 project, their volumes."
        " Keep them with: make dev-cluster-stop KEEP=1"
    ) in said
    assert not (state_dir / "etcd").exists()

    said = run(capsys, "start", "--state-dir", d)
    assert "resuming" not in said
    assert configmap(state_dir).status_code == 404
    run(capsys, "stop", "--state-dir", d)


def test_a_plain_stop_after_a_kept_one_drops_the_kept_state(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = str(state_dir)
    run(capsys, "start", "--state-dir", d)
    make_a_service(state_dir)
    run(capsys, "stop", "--state-dir", d, "--keep-data")

    said = run(capsys, "stop", "--state-dir", d)  # the cluster is stopped: only the kept state
    assert "dropping the cluster's state: 1 service in 1 project" in said
    assert not (state_dir / KEPT_FILE).exists()
    assert not (state_dir / "etcd").exists()

    said = run(capsys, "start", "--state-dir", d)
    assert "resuming" not in said
    assert configmap(state_dir).status_code == 404
    run(capsys, "stop", "--state-dir", d)
