"""What a user launches really runs on a real node, opens through the local ingress and works:
Jupyter in Chromium and through its kernel API (the user's bucket with the injected credentials,
another user's refused), MLflow found by Jupyter over real traffic with its artifacts in the
user's bucket, credentials renewed under running code, code-server and Label Studio logins and
an S3 source storage. The platform, the OpenID Provider and Ceph RGW are real; so are the
kubelet, containerd, the CNI, kube-proxy, the cluster DNS and the ingress."""

from __future__ import annotations

import base64
import concurrent.futures
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from playwright.sync_api import sync_playwright

from devtools.localcluster import LocalCluster

from ..oidc_stack import csrf
from .tools_stack import (
    Ingress,
    Tools,
    launch,
    password,
    pod_logs,
    run_in_kernel,
    service,
    tools_platform,
    wait_for,
)

ARTIFACTS = Path(__file__).parents[2] / "browser" / "artifacts"
S3_CLIENT = """
import boto3, os
from botocore.config import Config
path_style = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
"""


@pytest.fixture(scope="module")
def tools(
    real_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory, tag: str
) -> Iterator[Tools]:
    # 900 s credentials renewed once less than 880 s are left, checked every 2 s: a running
    # service gets new credentials about every 20 s.
    renew = {"refresh_interval_seconds": 2.0, "refresh_before_seconds": 880}
    with tools_platform(
        real_cluster, tmp_path_factory.mktemp("tools"), tag, s3_overrides=renew
    ) as running:
        yield running


@pytest.fixture(scope="module")
def gina(tools: Tools) -> Iterator[httpx.Client]:
    http = tools.login("gina")
    yield http
    http.close()


@pytest.fixture(scope="module")
def notebooks(tools: Tools, gina: httpx.Client) -> dict[str, str]:
    """MLflow, then Jupyter in gina's project (Jupyter finds MLflow when it is installed)."""
    project = tools.namespace("gina")
    urls = {}
    for chart in ("mlflow", "jupyter-python"):
        release, events = launch(gina, project, chart)
        assert events[-1]["phase"] == "running", events
        urls[chart] = service(gina, project, release)["urls"][0]
        urls[f"{chart}-release"] = release
    return urls


def user_s3(tools: Tools, release: str) -> Any:
    """An S3 client with the credentials the platform injected into gina's `release`."""
    secret = tools.kube.request_sync(
        "GET", f"/api/v1/namespaces/{tools.namespace('gina')}/secrets/onyxia-s3-{release}"
    )

    def value(key: str) -> str:
        return base64.b64decode(secret["data"][key]).decode()

    return boto3.client(
        "s3",
        endpoint_url=tools.rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=value("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=value("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=value("AWS_SESSION_TOKEN"),
        config=Config(s3={"addressing_style": "path"}),
    )


def jupyter_of(tools: Tools, notebooks: dict[str, str]) -> tuple[Ingress, str]:
    """gina's Jupyter through the ingress, up, and its token."""
    jupyter = Ingress(notebooks["jupyter-python"])
    token = password(tools, tools.namespace("gina"), notebooks["jupyter-python-release"])
    jupyter.wait_ready("/api")
    return jupyter, token


def open_in_chromium(url: str, screenshot: Path) -> str:
    """Open `url` in headless Chromium (it resolves *.localhost itself); the page's title once
    JupyterLab's shell is on screen."""

    def run() -> str:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            try:
                page = browser.new_page()
                page.goto(url, timeout=90_000)
                page.wait_for_selector("#jp-main-dock-panel", timeout=90_000)
                page.wait_for_selector(".jp-LauncherCard", timeout=60_000)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                return page.title()
            finally:
                browser.close()

    # Playwright's sync API keeps an event loop in its thread: never the test's own thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=240)


def test_jupyter_opens_in_chromium_with_its_token(tools: Tools, notebooks: dict[str, str]) -> None:
    url = notebooks["jupyter-python"]
    assert re.fullmatch(r"http://[a-z0-9-]+\.lab\.localhost:\d+", url), url
    jupyter, token = jupyter_of(tools, notebooks)
    try:
        # Without the token JupyterLab asks for it; with it, the lab loads.
        assert "/login" in str(jupyter.get("/lab", follow_redirects=True).url)
        assert jupyter.get("/lab", params={"token": token}).status_code == 200
    finally:
        jupyter.close()
    title = open_in_chromium(f"{url}/lab?token={token}", ARTIFACTS / "real-jupyterlab.png")
    assert "JupyterLab" in title


def test_code_in_jupyter_uses_the_users_bucket_and_not_others(
    tools: Tools, notebooks: dict[str, str]
) -> None:
    hugo = tools.login("hugo")
    try:
        # Hugo's bucket exists (made on his first use of the Files API).
        listed = hugo.get(f"/api/projects/{tools.namespace('hugo')}/s3/objects")
        assert listed.status_code == 200, listed.text
    finally:
        hugo.close()
    jupyter, token = jupyter_of(tools, notebooks)
    code = S3_CLIENT + textwrap.dedent(
        f"""
        s3 = boto3.client("s3", config=path_style)
        bucket = os.environ["AWS_BUCKET_NAME"]
        assert bucket == "{tools.bucket("gina")}", bucket
        s3.put_object(Bucket=bucket, Key="from-jupyter.txt", Body=b"written in the pod")
        print("read back:", s3.get_object(Bucket=bucket, Key="from-jupyter.txt")["Body"].read())
        try:
            s3.list_objects_v2(Bucket="{tools.bucket("hugo")}")
            print("other bucket: readable")
        except s3.exceptions.ClientError as e:
            print("other bucket:", e.response["Error"]["Code"])
        """
    )
    try:
        out = run_in_kernel(jupyter, token, code)
    finally:
        jupyter.close()
    assert "read back: b'written in the pod'" in out, out
    assert "other bucket: AccessDenied" in out, out
    # The object is really in gina's bucket, as the S3 server holds it.
    s3 = user_s3(tools, notebooks["jupyter-python-release"])
    body = s3.get_object(Bucket=tools.bucket("gina"), Key="from-jupyter.txt")["Body"].read()
    assert body == b"written in the pod"


def test_jupyter_logs_runs_to_mlflow_with_artifacts_in_the_bucket(
    tools: Tools, notebooks: dict[str, str]
) -> None:
    jupyter, token = jupyter_of(tools, notebooks)
    code = textwrap.dedent(
        """
        import os, mlflow
        print("tracking:", os.environ["MLFLOW_TRACKING_URI"])
        mlflow.set_experiment("real-node")
        with mlflow.start_run() as run:
            mlflow.log_metric("accuracy", 0.93)
            with open("/tmp/model.txt", "w") as f:
                f.write("a model")
            mlflow.log_artifact("/tmp/model.txt")
        print("run:", run.info.run_id)
        """
    )
    try:
        out = run_in_kernel(jupyter, token, code, timeout=180)
    except AssertionError as failed:
        logs = pod_logs(tools, tools.namespace("gina"), notebooks["mlflow-release"])
        raise AssertionError(f"{failed}\nMLflow server:\n{logs}") from None
    finally:
        jupyter.close()
    assert f".{tools.namespace('gina')}" in out.split("tracking:", 1)[1].split()[0], out
    run_id = out.split("run:", 1)[1].split()[0]
    mlflow = Ingress(notebooks["mlflow"])
    try:
        got = mlflow.get("/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        assert got.status_code == 200, got.text
        metrics = {m["key"]: m["value"] for m in got.json()["run"]["data"]["metrics"]}
        assert metrics == {"accuracy": 0.93}
        listed = mlflow.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
        assert [f["path"] for f in listed.json()["files"]] == ["model.txt"], listed.text
    finally:
        mlflow.close()
    # The tracking server stored the artifact in gina's bucket.
    s3 = user_s3(tools, notebooks["jupyter-python-release"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=tools.bucket("gina"))["Contents"]]
    assert any(k.endswith(f"{run_id}/artifacts/model.txt") for k in keys), keys


def test_renewed_credentials_reach_running_code(tools: Tools, notebooks: dict[str, str]) -> None:
    jupyter, token = jupyter_of(tools, notebooks)
    code = S3_CLIENT + textwrap.dedent(
        """
        import json, time
        path = "/var/run/secrets/onyxia/s3/credentials.json"
        first = json.load(open(path))["AccessKeyId"]
        deadline = time.time() + 170
        while json.load(open(path))["AccessKeyId"] == first and time.time() < deadline:
            time.sleep(2)
        renewed = json.load(open(path))["AccessKeyId"]
        print("renewed:", renewed != first)
        # Profile `onyxia` reads the mounted file: the next call signs with the new key.
        session = boto3.Session(profile_name="onyxia")
        assert session.get_credentials().access_key == renewed
        s3 = session.client("s3", config=path_style)
        s3.put_object(Bucket=os.environ["AWS_BUCKET_NAME"], Key="renewed.txt", Body=b"ok")
        print("call with the new key: ok")
        """
    )
    try:
        out = run_in_kernel(jupyter, token, code, timeout=240)
    finally:
        jupyter.close()
    assert "renewed: True" in out, out
    assert "call with the new key: ok" in out, out


def test_code_server_opens_and_accepts_the_password(tools: Tools, gina: httpx.Client) -> None:
    project = tools.namespace("gina")
    release, events = launch(gina, project, "vscode-python")
    assert events[-1]["phase"] == "running", events
    ide = Ingress(service(gina, project, release)["urls"][0])
    try:
        first = ide.wait_ready("/")
        assert first.status_code == 302, first
        assert "login" in first.headers["location"], first.headers
        refused = ide.post("/login", data={"password": "not-the-password"})
        assert refused.status_code == 200, refused.text[:300]
        assert "Incorrect password" in refused.text
        accepted = ide.post("/login", data={"password": password(tools, project, release)})
        assert accepted.status_code == 302, accepted.text[:300]
        page = ide.get("/", follow_redirects=True)
        assert page.status_code == 200, page.text[:300]
        assert "vscode" in page.text.lower(), page.text[:300]
    finally:
        ide.close()
        gina.delete(f"/api/projects/{project}/services/{release}", headers=csrf(gina))


LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="mood" toName="text"><Choice value="good"/><Choice value="bad"/></Choices>'
    "</View>"
)


def label_studio_login(studio: Ingress, email: str, secret: str) -> httpx.Response:
    """Submit Label Studio's login form (Django, CSRF cookie and field); its answer."""
    studio.get("/user/login/")
    token = studio.http.cookies.get("csrftoken")
    assert token, "Label Studio set no CSRF cookie"
    return studio.post(
        "/user/login/",
        data={"email": email, "password": secret, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{studio.url}/user/login/"},
    )


def test_label_studio_admin_logs_in_and_imports_from_the_users_bucket(
    tools: Tools, gina: httpx.Client
) -> None:
    project = tools.namespace("gina")
    release, events = launch(gina, project, "label-studio")
    assert events[-1]["phase"] == "running", events
    bucket = tools.bucket("gina")
    task = b'{"data": {"text": "a task read from the bucket"}}'
    user_s3(tools, release).put_object(Bucket=bucket, Key="label-studio/tasks/one.json", Body=task)
    studio = Ingress(service(gina, project, release)["urls"][0])
    try:
        assert studio.wait_ready("/health", seconds=300).status_code == 200
        refused = label_studio_login(studio, "gina@example.org", "not-the-password")
        assert refused.status_code == 200, refused.text[:300]
        assert studio.get("/api/current-user/whoami").status_code in (401, 403)
        # The admin is the user's e-mail from the OpenID Provider, with the service's password.
        accepted = label_studio_login(studio, "gina@example.org", password(tools, project, release))
        assert accepted.status_code == 302, accepted.text[:300]
        whoami = studio.get("/api/current-user/whoami")
        assert whoami.status_code == 200, whoami.text[:300]
        assert whoami.json()["email"] == "gina@example.org", whoami.json()
        api = {"X-CSRFToken": studio.http.cookies["csrftoken"], "Referer": studio.url + "/"}
        created = studio.post(
            "/api/projects", json={"title": "from-s3", "label_config": LABEL_CONFIG}, headers=api
        )
        assert created.status_code == 201, created.text[:500]
        ls_project = created.json()["id"]
        # No key in the form: Label Studio's boto3 takes the credentials the platform injected
        # (AWS_* and AWS_ENDPOINT_URL_S3 in its environment).
        storage = studio.post(
            "/api/storages/s3",
            json={
                "project": ls_project,
                "title": "my bucket",
                "bucket": bucket,
                "prefix": "label-studio/tasks",
                "regex_filter": r".*\.json",
                "use_blob_urls": False,
                "region_name": "us-east-1",
            },
            headers=api,
        )
        assert storage.status_code == 201, storage.text[:500]
        synced = studio.post(f"/api/storages/s3/{storage.json()['id']}/sync", headers=api)
        assert synced.status_code == 200, synced.text[:500]

        def imported() -> list[Any] | None:
            r = studio.get("/api/tasks", params={"project": ls_project})
            assert r.status_code == 200, r.text[:300]
            body = r.json()
            found = body["tasks"] if isinstance(body, dict) else body
            return found or None

        tasks = wait_for(imported, 120, "the S3 storage's tasks")
        assert [t["data"]["text"] for t in tasks] == ["a task read from the bucket"], tasks
    finally:
        studio.close()
        gina.delete(f"/api/projects/{project}/services/{release}", headers=csrf(gina))
