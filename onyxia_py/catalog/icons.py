"""Chart icons served from our own origin: recognised by their bytes, size-capped, cached in
memory and on disk, and failures remembered for a while so a broken icon is not refetched on
every page view."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes
from xml.parsers import expat

from onyxia_py.errors import Invalid, NotFound, OnyxiaError

log = logging.getLogger(__name__)

MAX_ICON_BYTES = 256 * 1024
FAILURE_TTL_SECONDS = 600.0
MEMORY_BUDGET_BYTES = 32 * 1024 * 1024
ICON_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
_SVG_ROOT = "http://www.w3.org/2000/svg svg"


@dataclass(frozen=True)
class Icon:
    """An icon we may serve: its bytes and the content type they were recognised as."""

    data: bytes
    content_type: str


def sniff(data: bytes) -> str | None:
    """The content type `data` really is among `ICON_TYPES`, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/svg+xml" if _is_svg(data) else None


def _is_svg(data: bytes) -> bool:
    # Well-formed XML whose root is an SVG-namespaced <svg> (browsers render nothing else as an
    # SVG image). Entity declarations are refused outright: no billion laughs, no external files.
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    roots: list[str] = []

    def start(name: str, attributes: object) -> None:
        if not roots:
            roots.append(name)

    def entity(*args: object) -> None:
        raise ValueError("entity declaration")

    parser.StartElementHandler = start
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except (expat.ExpatError, ValueError):
        return False
    return roots == [_SVG_ROOT]


def validated(data: bytes, where: str) -> Icon:
    """`data` as an icon, or Invalid naming `where` if it is too big or not an image we serve."""
    if len(data) > MAX_ICON_BYTES:
        raise Invalid(f"{where}: the icon is larger than {MAX_ICON_BYTES // 1024} KiB")
    content_type = sniff(data)
    if content_type is None:
        raise Invalid(f"{where}: not a PNG, JPEG, GIF, WebP or SVG image")
    return Icon(data, content_type)


def from_data_uri(uri: str) -> Icon:
    """The icon a `data:image/...` URI holds (base64 or percent-encoded)."""
    header, comma, payload = uri.partition(",")
    media = header.removeprefix("data:").split(";")
    if not comma or media[0].strip().lower() not in ICON_TYPES:
        raise Invalid("data: icon: not an image type we serve")
    if len(payload) > 3 * MAX_ICON_BYTES:  # even percent-encoded, it could not fit
        raise Invalid(f"data: icon: larger than {MAX_ICON_BYTES // 1024} KiB")
    try:
        if "base64" in (m.strip().lower() for m in media[1:]):
            data = base64.b64decode(payload, validate=True)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise Invalid("data: icon: invalid base64") from None
    return validated(data, "data: icon")


Loader = Callable[[], Awaitable[Icon]]


class IconCache:
    """Icons by key: in memory (least recently used dropped past a byte budget), on disk when
    given a path, and failures for `failure_ttl` seconds; one load per key at a time."""

    def __init__(
        self,
        *,
        budget_bytes: int = MEMORY_BUDGET_BYTES,
        failure_ttl: float = FAILURE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget = budget_bytes
        self._ttl = failure_ttl
        self._clock = clock
        self._memory: OrderedDict[tuple[str, str], Icon] = OrderedDict()
        self._size = 0
        self._failures: dict[tuple[str, str], tuple[float, str]] = {}
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}

    async def get(self, key: tuple[str, str], load: Loader, disk: Path | None = None) -> Icon:
        """The icon under `key`: cached, else from `disk`, else `load()`ed (and kept on disk).
        NotFound, with the reason, when it cannot be had (remembered for a while)."""
        found = self._cached(key)
        if found is not None:
            return found
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._cached(key)
            if found is not None:
                return found
            try:
                icon = await self._load(load, disk)
            except OnyxiaError as exc:
                self._failures[key] = (self._clock() + self._ttl, exc.detail)
                log.info("catalogue %s: icon unavailable: %s", key[0], exc.detail)
                raise NotFound(f"icon unavailable: {exc.detail}") from None
            finally:
                self._loading.pop(key, None)
            self._remember(key, icon)
            return icon

    def forget(self, catalog_id: str) -> None:
        """Drop what is known of one catalogue's icons (its location or settings changed)."""
        for key in [k for k in self._memory if k[0] == catalog_id]:
            self._size -= len(self._memory.pop(key).data)
        self._failures = {k: v for k, v in self._failures.items() if k[0] != catalog_id}

    def _cached(self, key: tuple[str, str]) -> Icon | None:
        icon = self._memory.get(key)
        if icon is not None:
            self._memory.move_to_end(key)
            return icon
        failure = self._failures.get(key)
        if failure is not None:
            if failure[0] > self._clock():
                raise NotFound(f"icon unavailable: {failure[1]}")
            del self._failures[key]
        return None

    async def _load(self, load: Loader, disk: Path | None) -> Icon:
        if disk is not None:
            kept = await asyncio.to_thread(_read_kept, disk)
            if kept is not None:
                return kept
        icon = await load()
        if disk is not None:
            try:
                await asyncio.to_thread(_keep, disk, icon.data)
            except OSError as exc:  # the icon is good; only the next restart refetches it
                log.warning("could not keep an icon in %s: %s", disk.parent, exc)
        return icon

    def _remember(self, key: tuple[str, str], icon: Icon) -> None:
        self._memory[key] = icon
        self._size += len(icon.data)
        while self._size > self._budget and len(self._memory) > 1:
            _, dropped = self._memory.popitem(last=False)
            self._size -= len(dropped.data)


def _read_kept(path: Path) -> Icon | None:
    try:
        return validated(path.read_bytes(), str(path))
    except (OSError, Invalid):
        return None


def _keep(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
