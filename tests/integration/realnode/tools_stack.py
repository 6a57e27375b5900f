"""The whole local platform on a real node, for the tests of the tools themselves: a real OpenID
Provider, a Ceph RGW that pods reach on the pod network's gateway, the platform serving our
charts with the images built here, and clients that reach services through the local ingress
as a browser does (`<host>.lab.localhost` on 127.0.0.1)."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websocket

from devtools.localcluster import LocalCluster
from devtools.localoidc import OidcUser, default_users
from devtools.localplatform import prepare_images, settings_overrides
from devtools.localrgw import LocalRgw
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.settings import CatalogSettings, KubernetesSettings, ProjectSettings

from ...support import wait_for_catalogs
from ..oidc_stack import Stack, browser_login, launch_followed, stack
from ..s3_stack import s3_settings, trust

CHARTS = Path(__file__).parents[3] / "charts"
PASSWORDS = {"gina": "gina-password", "hugo": "hugo-password"}
TOOLS = ("jupyter-python", "vscode-python", "mlflow", "label-studio")


@dataclass
class Tools:
    """The platform, its cluster and S3 server, with the tag that keeps names apart."""

    stack: Stack
    cluster: LocalCluster
    kube: KubeClient
    rgw: LocalRgw
    tag: str
    images: dict[str, str]

    def namespace(self, user: str) -> str:
        """The personal project of `user`."""
        return f"rn{self.tag}-{user}"

    def bucket(self, user: str) -> str:
        """The personal bucket of `user`."""
        return f"u{self.tag}-{user}"

    def login(self, user: str) -> httpx.Client:
        """A browser-like session of `user`, logged in through the provider's form."""
        http, _ = browser_login(self.stack, user, PASSWORDS[user])
        return http


@contextlib.contextmanager
def tools_platform(
    cluster: LocalCluster, tmp: Path, tag: str, *, s3_overrides: dict[str, Any] | None = None
) -> Iterator[Tools]:
    """Start the RGW (on the gateway too), import the images, serve the platform; clean up."""
    chart_images = prepare_images(cluster, TOOLS)
    local = settings_overrides(cluster, chart_images)
    kube_settings = KubernetesSettings(kubeconfig=cluster.kubeconfig)
    kube = KubeClient(kube_settings)
    with LocalRgw(extra_addresses=(cluster.pod_gateway,)) as rgw:
        s3 = s3_settings(
            rgw,
            tag,
            endpoint_url=rgw.endpoint_on(cluster.pod_gateway),
            **(s3_overrides or {}),
        )
        overrides: dict[str, Any] = {
            "kubernetes": kube_settings,
            "projects": ProjectSettings(
                user_namespace_prefix=f"rn{tag}-", group_namespace_prefix=f"rng{tag}-"
            ),
            "catalogs": CatalogSettings(
                paths=[],
                definitions=[{"id": "ide", "name": "IDE", "location": str(CHARTS)}],
                cache_dir=tmp / "cache",
                **local["catalogs"],
            ),
            "region": local["region"],
            "helm": {"timeout_seconds": 240},
            "s3": s3,
        }
        users = [*default_users(), *(OidcUser(u, p) for u, p in PASSWORDS.items())]
        try:
            with stack(tmp, settings=overrides, users=users, access_token_ttl=600) as running:
                wait_for_catalogs(httpx.get, running.url)
                trust(rgw, running.provider)
                yield Tools(running, cluster, kube, rgw, tag, chart_images)
        finally:
            for user in PASSWORDS:
                with contextlib.suppress(NotFound):
                    kube.request_sync("DELETE", f"/api/v1/namespaces/rn{tag}-{user}", body={})
            kube.close()


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(1)
    raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}; last: {last!r}")


def launch(
    http: httpx.Client, project: str, chart: str, values: dict[str, Any] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Launch `chart` as `http`'s user; the release and the launch's events, to the end."""
    accepted, events = launch_followed(http, project, chart, values, timeout=400)
    return str(accepted["release"]), events


def service(http: httpx.Client, project: str, release: str) -> dict[str, Any]:
    """The listing entry of one service."""
    listed = http.get(f"/api/projects/{project}/services").json()
    found: dict[str, Any] = next(s for s in listed if s["id"] == release)
    return found


def password(tools: Tools, project: str, release: str) -> str:
    """The service's password (its Secret, which the chart's pods read)."""
    secrets_ = tools.kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{project}/secrets",
        query={"labelSelector": f"app.kubernetes.io/instance={release}"},
    )["items"]
    for secret in secrets_:
        if "PASSWORD" in (secret.get("data") or {}):
            return base64.b64decode(secret["data"]["PASSWORD"]).decode()
    raise AssertionError(f"no password Secret for {release} in {project}")


class Ingress:
    """Requests to a service URL (http://<host>.lab.localhost:PORT) sent to the local ingress on
    127.0.0.1 with that Host, as a browser resolving *.localhost sends them."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        assert parts.hostname, url
        assert parts.hostname.endswith(".localhost"), url
        self.url = url.rstrip("/")
        self.host = parts.netloc
        self.base = f"http://127.0.0.1:{parts.port}"
        self.http = httpx.Client(base_url=self.base, headers={"Host": self.host}, timeout=30)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET a path of the service."""
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST to a path of the service."""
        return self.http.post(path, **kwargs)

    def wait_ready(self, path: str = "/", seconds: float = 180) -> httpx.Response:
        """The first answer that is not the ingress's 502/503 (the tool is up)."""

        def up() -> httpx.Response | None:
            r = self.get(path)
            return r if r.status_code not in (502, 503, 504) else None

        answer: httpx.Response = wait_for(up, seconds, f"{self.url}{path} to answer")
        return answer

    def close(self) -> None:
        """Close the connections."""
        self.http.close()


def run_in_kernel(jupyter: Ingress, token: str, code: str, timeout: float = 120) -> str:
    """Run `code` in a new kernel through Jupyter's REST and kernel (WebSocket) API; its output.
    Fails with the traceback if the code raises."""
    auth = {"Authorization": f"token {token}"}
    created = jupyter.post("/api/kernels", json={"name": "python3"}, headers=auth)
    assert created.status_code == 201, created.text
    kernel = created.json()["id"]
    ws = kernel_channels(jupyter, token, kernel, timeout)
    out: list[str] = []
    try:
        iopub_connected(ws)
        msg_id = send_shell(
            ws,
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
        )
        while True:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("the kernel raised:\n" + "\n".join(content["traceback"]))
            elif kind == "execute_reply":
                assert content["status"] == "ok", content
                return "".join(out)
    finally:
        ws.close()
        jupyter.http.delete(f"/api/kernels/{kernel}", headers=auth)


def kernel_channels(
    jupyter: Ingress, token: str, kernel: str, timeout: float, unavailable_for: float = 90
) -> websocket.WebSocket:
    """Open a kernel's WebSocket as JupyterLab does: while the ingress answers 502/503/504 (the
    backend briefly has no ready endpoint, e.g. its node's heartbeat came late on a loaded
    machine), wait and try again, for at most `unavailable_for` seconds."""
    deadline = time.monotonic() + unavailable_for
    while True:
        try:
            return websocket.create_connection(
                f"ws://{jupyter.base.removeprefix('http://')}/api/kernels/{kernel}/channels",
                host=jupyter.host,
                header=[f"Authorization: token {token}"],
                suppress_origin=True,
                timeout=timeout,
            )
        except websocket.WebSocketBadStatusException as e:
            if e.status_code not in (502, 503, 504) or time.monotonic() > deadline:
                raise
            print(f"kernel channels: {e.status_code} from the ingress; trying again")
            time.sleep(2)


def send_shell(ws: websocket.WebSocket, msg_type: str, content: dict[str, Any]) -> str:
    """Send a message on the kernel's shell channel; its msg_id."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": uuid.uuid4().hex,
        "msg_type": msg_type,
        "version": "5.3",
        "date": datetime.now(UTC).isoformat(),
    }
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    ws.send(json.dumps({**message, "channel": "shell", "buffers": []}))
    return msg_id


def iopub_connected(ws: websocket.WebSocket, attempts: int = 30) -> None:
    """Wait until the kernel's output channel reaches us, as Jupyter's own clients do: a new
    kernel's first outputs are lost while its iopub subscription is not yet connected, so ask
    kernel_info until an iopub status message answers one of them."""
    previous = ws.gettimeout()
    for _ in range(attempts):
        asked = send_shell(ws, "kernel_info_request", {})
        ws.settimeout(2)
        try:
            while True:
                message = json.loads(ws.recv())
                if message.get("channel") == "iopub" and (
                    message.get("parent_header", {}).get("msg_id") == asked
                ):
                    return
        except websocket.WebSocketTimeoutException:
            continue
        finally:
            ws.settimeout(previous)
    raise AssertionError("the kernel's output channel never answered kernel_info")


def pod_logs(tools: Tools, project: str, release: str, lines: int = 40) -> str:
    """The last log lines of the release's pods (for failure messages)."""
    pods = tools.kube.request_sync(
        "GET",
        f"/api/v1/namespaces/{project}/pods",
        query={"labelSelector": f"app.kubernetes.io/instance={release}"},
    )["items"]
    out = []
    for pod in pods:
        name = pod["metadata"]["name"]
        text = tools.kube.request_sync(
            "GET",
            f"/api/v1/namespaces/{project}/pods/{name}/log",
            query={"tailLines": lines},
            accept="text/plain",
        )
        out.append(f"--- {name}\n{text}")
    return "\n".join(out)
