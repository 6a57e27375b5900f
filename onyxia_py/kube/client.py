"""The Kubernetes client: plain-dict objects over the REST API, as the platform or as a user.

The official client loads the configuration (kubeconfig, exec plugins, in-cluster service account,
client certificates) and owns the connection pool; requests and responses stay plain JSON dicts,
which are fast to handle and match the pure object builders. Blocking calls run in a worker thread
so the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import copy
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.client.rest import RESTClientObject
from kubernetes.config.config_exception import ConfigException

from onyxia_py.errors import NotFound, OnyxiaError, Unavailable
from onyxia_py.identity import Impersonation
from onyxia_py.kube.api import KubeObject
from onyxia_py.kube.errors import error_from_status
from onyxia_py.kube.resources import resource
from onyxia_py.settings import KubernetesSettings

log = logging.getLogger(__name__)

STREAM_POOL_SIZE = 1024

METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"

_PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}


def load_configuration(settings: KubernetesSettings) -> Configuration:
    """The client configuration: kubeconfig (setting, KUBECONFIG, ~/.kube/config) or in-cluster."""
    configuration = Configuration()
    kubeconfig = settings.kubeconfig or _default_kubeconfig()
    try:
        if kubeconfig is not None:
            kube_config.load_kube_config(
                config_file=str(kubeconfig),
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            kube_config.load_incluster_config(client_configuration=configuration)
    except (ConfigException, OSError, ValueError) as exc:
        where = kubeconfig or "the in-cluster service account"
        raise Unavailable(f"cannot load the Kubernetes configuration from {where}: {exc}") from None
    return configuration


def _default_kubeconfig() -> Path | None:
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0])
    home = Path.home() / ".kube" / "config"
    return home if home.is_file() else None


class KubeClient:
    """Kubernetes API calls, each made as the platform or, given `as_`, as an impersonated user
    (the `Kube` the domain sees, and the raw REST the adapter's watches and leases use)."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self._settings = settings
        self._configuration: Configuration | None = None
        self._rest: RESTClientObject | None = None
        self._streams: RESTClientObject | None = None
        self._lock = threading.Lock()
        # How often each kind was listed by `list` (the watches list on their own): a launch
        # must list no pods, and the tests check it.
        self.listed: collections.Counter[str] = collections.Counter()

    def _connect(self, streaming: bool = False) -> tuple[Configuration, RESTClientObject]:
        # Lazily, so the platform starts (and /readyz explains) when the cluster is unreachable.
        with self._lock:
            if self._configuration is None or self._rest is None:
                self._configuration = load_configuration(self._settings)
                self._rest = RESTClientObject(self._configuration)
            if not streaming:
                return self._configuration, self._rest
            if self._streams is None:
                # Watches and log streams hold their connection for minutes: their own pool,
                # sized for one connection per stream, keeps them from crowding out calls.
                streams = copy.copy(self._configuration)
                streams.connection_pool_maxsize = STREAM_POOL_SIZE
                self._streams = RESTClientObject(streams)
            return self._configuration, self._streams

    def close(self) -> None:
        """Release pooled connections."""
        for rest in (self._rest, self._streams):
            if rest is not None:
                rest.pool_manager.clear()

    # -- raw REST ----------------------------------------------------------------------------

    def _open(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
        as_: Impersonation | None = None,
        timeout: float | tuple[float, float] | None = None,
        accept: str = "application/json, */*",
        streaming: bool = False,
    ) -> Any:
        """Send one request; the response (body unread) or a platform error."""
        configuration, rest = self._connect(streaming)
        url = configuration.host + path
        if query:
            url += "?" + urlencode({k: _query_value(v) for k, v in query.items()})
        headers = urllib3.HTTPHeaderDict({"Accept": accept})
        if body is not None:
            headers["Content-Type"] = content_type
        auth: dict[str, Any] = dict(configuration.auth_settings())
        for setting in auth.values():
            headers[str(setting["key"])] = str(setting["value"])
        if as_ is not None:
            headers["Impersonate-User"] = as_.user
            for group in as_.groups:
                # One header per group: the API server reads repeated headers, not a list.
                headers.add("Impersonate-Group", group)
        try:
            response = rest.request(
                method,
                url,
                headers=headers,
                body=body,
                _request_timeout=timeout or self._settings.request_timeout_seconds,
            )
        except (urllib3.exceptions.HTTPError, ApiException, OSError) as exc:
            raise Unavailable(f"cannot reach Kubernetes: {type(exc).__name__}") from None
        if response.status >= 400:
            raise error_from_status(response.status, self._read(response))
        return response

    @staticmethod
    def _read(response: Any) -> bytes:
        try:
            data: bytes = response.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unavailable(f"cannot reach Kubernetes: {type(exc).__name__}") from None
        return data

    def request_sync(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        as_: Impersonation | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One blocking API call (`timeout`: unset, kubernetes.request_timeout_seconds); returns
        the decoded JSON answer or raises a platform error."""
        response = self._open(
            method,
            path,
            body=body,
            query=query,
            content_type=content_type,
            accept=accept,
            as_=as_,
            timeout=timeout,
        )
        data = self._read(response)
        return json.loads(data) if data else None

    async def logs(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail: int | None = None,
        as_: Impersonation | None = None,
    ) -> str:
        """A container's log (its last `tail` lines)."""
        query: dict[str, str | int | bool] = {"container": container}
        if tail is not None:
            query["tailLines"] = tail

        def call() -> str:
            response = self._open(
                "GET", resource("Pod").path(namespace, pod, "log"), query=query, as_=as_
            )
            return self._read(response).decode("utf-8", "replace")

        return await asyncio.to_thread(call)

    async def follow_logs(
        self,
        namespace: str,
        pod: str,
        container: str,
        *,
        tail: int | None = None,
        as_: Impersonation | None = None,
    ) -> AsyncIterator[str]:
        """A container's log lines as they come, until the container or the caller stops."""
        query: dict[str, str | int | bool] = {"container": container, "follow": True}
        if tail is not None:
            query["tailLines"] = tail
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | BaseException | None] = asyncio.Queue(maxsize=1000)
        stop = threading.Event()

        def hand_over(item: str | BaseException | None) -> bool:
            """Queue `item` for the consumer; False once the consumer or its loop is gone."""
            if stop.is_set() or loop.is_closed():
                return False
            try:
                asyncio.run_coroutine_threadsafe(lines.put(item), loop).result(timeout=30)
            except (RuntimeError, TimeoutError, concurrent.futures.CancelledError):
                return False
            return True

        def pump() -> None:
            response = None
            try:
                response = self._open(
                    "GET",
                    resource("Pod").path(namespace, pod, "log"),
                    query=query,
                    as_=as_,
                    timeout=(self._settings.request_timeout_seconds, 3600.0),
                    streaming=True,
                )
                pending = b""
                for chunk in response.response.stream(4096):
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    for line in complete:
                        if not hand_over(line.decode("utf-8", "replace")):
                            return
                hand_over(None)
            except Exception as exc:  # handed to the consumer, raised there
                hand_over(exc)
            finally:
                if response is not None:
                    # Never hand a half-read stream back to the pool: close its connection.
                    response.response.close()

        worker = threading.Thread(target=pump, name=f"logs-{pod}", daemon=True)
        worker.start()
        try:
            while True:
                item = await lines.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    if isinstance(item, OnyxiaError):
                        raise item
                    raise Unavailable(f"log stream broke: {type(item).__name__}")
                yield item
        finally:
            stop.set()

    def open_stream(
        self,
        path: str,
        *,
        query: Mapping[str, str | int | bool],
        accept: str = "application/json",
        as_: Impersonation | None = None,
        read_timeout: float = 300.0,
    ) -> Any:
        """A GET whose body is read as it comes (a watch): the urllib3 response, or an error."""
        response = self._open(
            "GET",
            path,
            query=query,
            accept=accept,
            as_=as_,
            timeout=(self._settings.request_timeout_seconds, read_timeout),
            streaming=True,
        )
        return response.response

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request_sync` in a worker thread."""
        return await asyncio.to_thread(self.request_sync, method, path, **kwargs)

    # -- objects -----------------------------------------------------------------------------

    async def get(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """One object; NotFound if it does not exist."""
        result: KubeObject = await self.request(
            "GET", resource(kind).path(namespace, name), as_=as_
        )
        return result

    async def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
        as_: Impersonation | None = None,
    ) -> list[KubeObject]:
        """The objects of `kind` (in `namespace`, or cluster-wide), optionally filtered.

        With `metadata_only`, only names, labels and annotations travel: Helm's release Secrets
        hold whole charts, and a listing needs none of it."""
        query = {
            k: v
            for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if v
        }
        accept = METADATA_ONLY if metadata_only else "application/json"
        self.listed[kind] += 1
        answer = await self.request(
            "GET", resource(kind).path(namespace), query=query, accept=accept, as_=as_
        )
        # An empty metadata-only list comes back as `"items": null`.
        items: list[KubeObject] = answer.get("items") or []
        return items

    async def create(self, manifest: KubeObject, *, as_: Impersonation | None = None) -> KubeObject:
        """Create `manifest`; Conflict if it exists, Forbidden if RBAC says no."""
        metadata = manifest.get("metadata", {})
        path = resource(manifest["kind"]).path(metadata.get("namespace"))
        result: KubeObject = await self.request("POST", path, body=manifest, as_=as_)
        return result

    async def patch(
        self,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """Patch one object (merge, strategic or json patch)."""
        result: KubeObject = await self.request(
            "PATCH",
            resource(kind).path(namespace, name),
            body=patch,
            content_type=_PATCH_TYPES[patch_type],
            as_=as_,
        )
        return result

    async def apply(
        self,
        manifest: KubeObject,
        *,
        field_manager: str = "onyxia-py",
        as_: Impersonation | None = None,
    ) -> KubeObject:
        """Create or update `manifest` with server-side apply (idempotent; our fields win)."""
        metadata = manifest["metadata"]
        path = resource(manifest["kind"]).path(metadata.get("namespace"), metadata["name"])
        result: KubeObject = await self.request(
            "PATCH",
            path,
            body=json.dumps(manifest),
            query={"fieldManager": field_manager, "force": True},
            content_type="application/apply-patch+yaml",
            as_=as_,
        )
        return result

    async def delete(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        as_: Impersonation | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Delete one object, its dependents in the background; NotFound unless `missing_ok`."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            await self.request("DELETE", resource(kind).path(namespace, name), body=body, as_=as_)
        except NotFound:
            if not missing_ok:
                raise

    async def allowed(
        self, who: Impersonation, verb: str, resource_name: str, namespace: str, group: str = ""
    ) -> bool:
        """Whether the API server's authorizer lets `who` do `verb` on `resource_name` now."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": who.user,
                "groups": list(who.groups),
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource_name,
                    "namespace": namespace,
                },
            },
        }
        answer = await self.create(review)
        return bool(answer.get("status", {}).get("allowed"))

    async def wait_allowed(
        self,
        who: Impersonation,
        verb: str,
        resource_name: str,
        namespace: str,
        *,
        limit_seconds: float = 10.0,
    ) -> None:
        """Wait until a fresh RoleBinding has reached the authorizer (it lags the write)."""
        deadline = asyncio.get_running_loop().time() + limit_seconds
        while not await self.allowed(who, verb, resource_name, namespace):
            if asyncio.get_running_loop().time() > deadline:
                raise Unavailable(
                    f"{who.user} still may not {verb} {resource_name} in {namespace} "
                    f"{limit_seconds:g}s after being granted it"
                )
            await asyncio.sleep(0.05)

    async def version(self) -> dict[str, str]:
        """The API server's version; raises Unavailable when it cannot be reached."""
        answer: dict[str, str] = await self.request("GET", "/version")
        return answer


def _query_value(value: str | int | bool) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
