"""`server.workers`: several HTTP worker processes on one port, each a replica of its own.

`python -m onyxia_py serve` with two workers, auth mode none, SQLite: the parent migrates once
and writes the session secret once; each worker builds its own listing cache from the cluster
(its own six watches); a session made through one worker is honoured by the other, and a
service launched through one is listed by whichever worker answers."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.ports import free_port
from devtools.procstat import connections_to, tree
from onyxia_py.errors import NotFound
from onyxia_py.kube import KubeClient
from onyxia_py.kube.client import load_configuration
from onyxia_py.settings import KubernetesSettings

REPO = Path(__file__).parents[2]
CHARTS = REPO / "charts"


@pytest.fixture(scope="module")
def served(
    kubeconfig: Path, kube: KubeClient, tmp_path_factory: pytest.TempPathFactory, tag: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], str]]:
    tmp = tmp_path_factory.mktemp("workers")
    port = free_port()
    prefix = f"w{tag}-"
    env = {
        **os.environ,
        "ONYXIA_KUBERNETES__KUBECONFIG": str(kubeconfig),
        "ONYXIA_SERVER__PORT": str(port),
        "ONYXIA_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ONYXIA_SERVER__WORKERS": "2",
        "ONYXIA_SERVER__SESSION_SECRET_FILE": str(tmp / "session-secret"),
        "ONYXIA_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'onyxia.db'}",
        "ONYXIA_PROJECTS__USER_NAMESPACE_PREFIX": prefix,
        "ONYXIA_CATALOGS__PATHS": "[]",
        "ONYXIA_CATALOGS__DEFINITIONS": (
            f'[{{"id": "ide", "name": "IDE", "location": "{CHARTS}"}}]'
        ),
        "ONYXIA_CATALOGS__CACHE_DIR": str(tmp / "cache"),
        "ONYXIA_HELM__TIMEOUT_SECONDS": "120",
    }
    env.pop("ONYXIA_CONFIG", None)
    log_path = tmp / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "onyxia_py", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise AssertionError(f"serve exited {server.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        yield url, server, f"{prefix}onyxia"
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(30)
        server.kill()
        with contextlib.suppress(NotFound):
            kube.request_sync("DELETE", f"/api/v1/namespaces/{prefix}onyxia", body={})


def test_two_workers_serve_one_platform(
    served: tuple[str, subprocess.Popen[bytes], str], kubeconfig: Path
) -> None:
    url, server, namespace = served
    workers = tree(server.pid)[1:]
    assert len(workers) >= 2, workers  # uvicorn's workers (and maybe its resource tracker)
    host = load_configuration(KubernetesSettings(kubeconfig=kubeconfig)).host
    apiserver = int(str(host).rsplit(":", 1)[1])
    # Each worker follows the cluster itself: every one holds its own watch streams.
    deadline = time.monotonic() + 60
    while True:
        holding = [w for w in workers if connections_to(w, apiserver) > 0]
        if len(holding) >= 2:
            break
        assert time.monotonic() < deadline, f"API connections by worker: {holding}"
        time.sleep(0.5)

    # One login; its session works whichever worker answers (each request a new connection,
    # which the kernel hands to either worker).
    with httpx.Client(base_url=url, timeout=30) as browser:
        browser.get("/auth/login", follow_redirects=True)
        csrf = {"X-CSRF-Token": browser.get("/auth/session").json()["csrf_token"]}
        cookies = browser.cookies
    for _ in range(20):
        me = httpx.get(f"{url}/api/me", cookies=cookies, timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "onyxia"
    project = namespace
    answer = httpx.post(
        f"{url}/api/projects/{project}/services",
        json={"catalog": "ide", "chart": "jupyter-python", "values": {}},
        headers=csrf,
        cookies=cookies,
        timeout=60,
    )
    assert answer.status_code == 202, answer.text
    release = answer.json()["release"]
    # Listed by every worker (20 fresh connections), whichever accepted the launch.
    for _ in range(20):
        lines = httpx.get(
            f"{url}/api/projects/{project}/services", cookies=cookies, timeout=30
        ).json()
        assert release in {s["id"] for s in lines}, lines
    deleted = httpx.delete(
        f"{url}/api/projects/{project}/services/{release}",
        headers=csrf,
        cookies=cookies,
        timeout=120,
    )
    assert deleted.status_code == 204, deleted.text
