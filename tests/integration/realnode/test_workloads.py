"""The lifecycle of real workloads: a suspended service's pod is gone and its volume stays, and a
file written before the suspend is there after the resume; launches that cannot run (a command
that exits, an image that does not exist here) end `failed` with the real kubelet's reason and
leave nothing behind; project namespaces enforce the `restricted` Pod Security level and our
charts still run in them."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import httpx
import pytest

from devtools.localcluster import LocalCluster
from onyxia_py.errors import Forbidden

from ..oidc_stack import csrf
from ..services.helpers import leftovers
from .tools_stack import (
    Ingress,
    Tools,
    launch,
    password,
    run_in_kernel,
    service,
    tools_platform,
    wait_for,
)


@pytest.fixture(scope="module")
def tools(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, tag: str
) -> Iterator[Tools]:
    with tools_platform(real_cluster, tmp_path_factory.mktemp("workloads"), tag) as running:
        yield running


@pytest.fixture(scope="module")
def hugo(tools: Tools) -> Iterator[httpx.Client]:
    http = tools.login("hugo")
    yield http
    http.close()


def names(tools: Tools, project: str, release: str, resource: str) -> list[str]:
    """The release's `resource` (pods, persistentvolumeclaims...) in the project."""
    items = tools.kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{project}/{resource}",
        query={"labelSelector": f"app.kubernetes.io/instance={release}"},
    )["items"]
    return [i["metadata"]["name"] for i in items]


def test_a_file_survives_suspend_and_resume(tools: Tools, hugo: httpx.Client) -> None:
    project = tools.namespace("hugo")
    release, events = launch(hugo, project, "jupyter-python")
    assert events[-1]["phase"] == "running", events
    jupyter = Ingress(service(hugo, project, release)["urls"][0])
    token = password(tools, project, release)
    try:
        jupyter.wait_ready("/api")
        write = 'open("/home/onyxia/work/kept.txt", "w").write("before the suspend"); print("ok")'
        assert "ok" in run_in_kernel(jupyter, token, write)
        pvcs = names(tools, project, release, "persistentvolumeclaims")
        assert pvcs, "the notebook has a volume"

        suspended = hugo.post(
            f"/api/projects/{project}/services/{release}/suspend", headers=csrf(hugo), timeout=240
        )
        assert suspended.status_code == 204, suspended.text
        wait_for(lambda: not names(tools, project, release, "pods"), 90, "the pod to go")
        assert names(tools, project, release, "persistentvolumeclaims") == pvcs
        wait_for(
            lambda: service(hugo, project, release)["status"] == "suspended", 30, "'suspended'"
        )

        resumed = hugo.post(
            f"/api/projects/{project}/services/{release}/resume", headers=csrf(hugo), timeout=240
        )
        assert resumed.status_code == 204, resumed.text
        wait_for(lambda: service(hugo, project, release)["status"] == "running", 180, "'running'")
        jupyter.wait_ready("/api")
        read = textwrap.dedent(
            """
            print("found:", open("/home/onyxia/work/kept.txt").read())
            """
        )
        assert "found: before the suspend" in run_in_kernel(jupyter, token, read)
    finally:
        jupyter.close()
        hugo.delete(f"/api/projects/{project}/services/{release}", headers=csrf(hugo))


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        # The VSCode chart's command with the Jupyter image: code-server is not there, the
        # container exits at once, and the kubelet restarts it with a growing back-off.
        ("command exits", "keeps crashing"),
        # An image that exists in no containerd here and no registry can serve.
        ("missing image", "cannot pull"),
    ],
)
def test_launches_that_cannot_run_fail_with_the_kubelets_reason_and_leave_nothing(
    tools: Tools, hugo: httpx.Client, case: str, reason: str
) -> None:
    project = tools.namespace("hugo")
    image = tools.images["jupyter-python"] if case == "command exits" else "localhost/onyxia/nope:0"
    values = {"service": {"image": {"version": image}}, "persistence": {"enabled": False}}
    release, events = launch(hugo, project, "vscode-python", values)
    last = events[-1]
    assert last["phase"] == "failed", events
    assert reason in last["message"], last
    # The rollback removed the release and everything it made.
    wait_for(
        lambda: (
            not leftovers(tools.kube, project, release)
            and not names(tools, project, release, "pods")
            and not names(tools, project, release, "services")
        ),
        90,
        f"nothing left of {release}",
    )
    listed = hugo.get(f"/api/projects/{project}/services").json()
    assert release not in [s["id"] for s in listed]


def test_projects_enforce_restricted_pod_security_and_our_charts_run(
    tools: Tools, hugo: httpx.Client
) -> None:
    project = tools.namespace("hugo")
    namespace = tools.kube.request_sync("GET", f"/api/v1/namespaces/{project}")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # A root pod is refused by the API server's admission, on the real cluster too.
    root_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {"containers": [{"name": "c", "image": tools.images["jupyter-python"]}]},
    }
    with pytest.raises(Forbidden, match="violates PodSecurity"):
        tools.kube.request_sync("POST", f"/api/v1/namespaces/{project}/pods", body=root_pod)
    # MLflow really runs there: its server answers through the ingress.
    release, events = launch(hugo, project, "mlflow")
    try:
        assert events[-1]["phase"] == "running", events
        mlflow = Ingress(service(hugo, project, release)["urls"][0])
        try:
            assert mlflow.wait_ready("/health").text.strip() == "OK"
        finally:
            mlflow.close()
    finally:
        hugo.delete(f"/api/projects/{project}/services/{release}", headers=csrf(hugo))
