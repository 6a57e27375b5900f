"""Reflectors: one kind's objects in one namespace (or in all) kept in step with the API server.

A reflector lists, then watches from the list's resourceVersion, and hands every change to a
callback (in its own thread). When the watch ends (server timeout, a restarted API server, a
network error) it resumes from the last resourceVersion it saw; when that version is too old
(410 Gone) it lists again and hands over the whole new snapshot. So a consumer sees one `sync`
with every object, then `added`/`modified`/`deleted` events, then possibly another `sync`.

A snapshot is listed in pages (`PAGE` objects each) and handed over page by page, so that a
cluster-wide list of thousands of pods never sits in memory whole: every `sync` change but the
last of a snapshot has `complete` False, and the consumer replaces its copy at the last one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from onyxia_py.errors import Conflict, OnyxiaError
from onyxia_py.identity import Impersonation
from onyxia_py.kube.api import KubeObject
from onyxia_py.kube.client import KubeClient
from onyxia_py.kube.resources import resource

log = logging.getLogger(__name__)

METADATA_ONLY_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
METADATA_ONLY_WATCH = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"


@dataclass(frozen=True)
class Change:
    """What a reflector saw: `sync` (`objects` is the whole set), or one object `added`,
    `modified` or `deleted`."""

    kind: str
    namespace: str
    type: str  # "sync", "added", "modified", "deleted"
    objects: tuple[KubeObject, ...]
    # For `sync`: False on every page of a snapshot but its last.
    complete: bool = True


Listener = Callable[[Change], None]


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


@dataclass(frozen=True)
class WatchSpec:
    """Which objects a reflector follows ("" as the namespace: every namespace)."""

    kind: str
    namespace: str
    label_selector: str
    metadata_only: bool = False


class Reflector:
    """Follows the objects of one `WatchSpec` as `as_`, in a daemon thread, until `stop`."""

    # The API server ends a watch after this long; the reflector then resumes it.
    WATCH_SECONDS = 240
    # Objects per page of a list.
    PAGE = 500

    def __init__(
        self,
        client: KubeClient,
        spec: WatchSpec,
        listener: Listener,
        *,
        as_: Impersonation | None = None,
        max_backoff_seconds: float = 5.0,
    ) -> None:
        self.client = client
        self.spec = spec
        self.listener = listener
        self.as_ = as_
        self.max_backoff = max_backoff_seconds
        self.connected = False
        self.last_error: str | None = None
        self._stopping = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{spec.kind}-{spec.namespace or 'all'}", daemon=True
        )

    def start(self) -> None:
        """Start listing and watching in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop following (the thread ends within moments)."""
        self._stopping.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(AttributeError, OSError):
                response.shutdown()

    @property
    def stopped(self) -> bool:
        """True once asked to stop."""
        return self._stopping.is_set()

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stopping.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                failures = 0
            except (_Gone, Conflict):
                # Our resourceVersion was compacted away (410): take a fresh snapshot.
                version = None
            except OnyxiaError as exc:
                failures += 1
                self._lost(exc.detail)
            except Exception as exc:  # a broken stream: resume after a pause
                failures += 1
                self._lost(type(exc).__name__)
            finally:
                self._response = None
            if failures:
                delay = min(self.max_backoff, 0.2 * 2 ** min(failures, 6))
                self._stopping.wait(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)

    def _lost(self, why: str) -> None:
        if self._stopping.is_set():
            return
        if self.connected or self.last_error != why:
            log.warning(
                "watch of %s in %s interrupted (%s); resuming",
                self.spec.kind,
                self.spec.namespace or "every namespace",
                why,
            )
        self.connected = False
        self.last_error = why

    def _path(self) -> str:
        return resource(self.spec.kind).path(self.spec.namespace or None)

    def _list(self) -> str:
        """List page by page, handing each page over; the snapshot's resourceVersion. An
        expired continue token (410) raises `Conflict`: the snapshot starts again."""
        token = ""
        while True:
            query: dict[str, str | int] = {
                "labelSelector": self.spec.label_selector,
                "limit": self.PAGE,
            }
            if token:
                query["continue"] = token
            answer = self.client.request_sync(
                "GET",
                self._path(),
                query=query,
                accept=METADATA_ONLY_LIST if self.spec.metadata_only else "application/json",
                as_=self.as_,
            )
            token = str((answer.get("metadata") or {}).get("continue") or "")
            items = tuple(answer.pop("items", None) or ())  # they go with the change only
            self._hand_over(
                Change(self.spec.kind, self.spec.namespace, "sync", items, complete=not token)
            )
            if not token:
                break
            if self._stopping.is_set():
                raise _Gone("stopped while listing")
        self.connected = True
        self.last_error = None
        version: str = answer["metadata"]["resourceVersion"]
        return version

    def _watch(self, version: str) -> str:
        accept = (
            f"{METADATA_ONLY_WATCH}, application/json"
            if self.spec.metadata_only
            else "application/json"
        )
        response = self.client.open_stream(
            self._path(),
            query={
                "watch": True,
                "labelSelector": self.spec.label_selector,
                "resourceVersion": version,
                "allowWatchBookmarks": True,
                "timeoutSeconds": self.WATCH_SECONDS,
            },
            accept=accept,
            as_=self.as_,
            read_timeout=self.WATCH_SECONDS + 30.0,
        )
        self._response = response
        if self._stopping.is_set():
            return version
        self.connected = True
        self.last_error = None
        pending = b""
        for chunk in response.stream(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    version = self._event(json.loads(line), version)
            if self._stopping.is_set():
                break
        return version

    def _event(self, event: dict[str, Any], version: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone(str(obj.get("message") or "resourceVersion too old"))
            raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('reason')}")
        new_version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._hand_over(Change(self.spec.kind, self.spec.namespace, kind.lower(), (obj,)))
        return new_version

    def _hand_over(self, change: Change) -> None:
        try:
            self.listener(change)
        except Exception:  # a consumer's bug must not end the watch
            log.exception("listener of %s in %s failed", self.spec.kind, self.spec.namespace)
