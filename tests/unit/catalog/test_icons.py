"""Chart icons: what counts as an image we serve, data: URIs, and the cache's rules."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from onyxia_py.catalog.icons import Icon, IconCache, from_data_uri, sniff, validated
from onyxia_py.errors import Invalid, NotFound, Unavailable

from ...integration.icon_charts import SVG, tiny_png

PNG = tiny_png()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PNG, "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (SVG, "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b'<svg width="1"/>', None),  # no SVG namespace: browsers do not render it as an image
        (b'<html xmlns="http://www.w3.org/2000/svg"/>', None),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', None),
        (
            b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaa">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
            None,
        ),
        (b"<!doctype html><p>hello", None),
        (b"", None),
    ],
)
def test_sniff_recognises_only_images_we_serve(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


def test_validated_refuses_big_or_unknown_data() -> None:
    assert validated(PNG, "x") == Icon(PNG, "image/png")
    with pytest.raises(Invalid, match="larger than 256 KiB"):
        validated(PNG + bytes(256 * 1024), "x")
    with pytest.raises(Invalid, match=r"^here: not a PNG"):
        validated(b"GIF", "here")


def test_data_uris() -> None:
    encoded = base64.b64encode(PNG).decode()
    assert from_data_uri(f"data:image/png;base64,{encoded}").data == PNG
    assert from_data_uri(f"data:image/svg+xml;charset=utf-8;base64,{encoded}").data == PNG
    percent = "data:image/svg+xml,%3Csvg%20xmlns%3D%22http%3A%2F%2Fwww.w3.org%2F2000%2Fsvg%22%2F%3E"
    assert from_data_uri(percent).content_type == "image/svg+xml"
    with pytest.raises(Invalid, match="not an image type"):
        from_data_uri(f"data:text/html;base64,{encoded}")
    with pytest.raises(Invalid, match="invalid base64"):
        from_data_uri("data:image/png;base64,@@@")
    with pytest.raises(Invalid, match="not a PNG"):
        from_data_uri("data:image/png;base64," + base64.b64encode(b"<html>").decode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_failures_are_remembered_until_they_expire() -> None:
    clock = Clock()
    cache = IconCache(failure_ttl=600, clock=clock)
    calls: list[str] = []

    async def failing() -> Icon:
        calls.append("fail")
        raise Unavailable("http://example.test/icon.png: ConnectError")

    async def working() -> Icon:
        calls.append("work")
        return Icon(PNG, "image/png")

    with pytest.raises(NotFound, match="ConnectError"):
        await cache.get(("c", "k"), failing)
    clock.now += 599
    with pytest.raises(NotFound, match="ConnectError"):
        await cache.get(("c", "k"), working)
    clock.now += 2
    assert (await cache.get(("c", "k"), working)).data == PNG
    assert calls == ["fail", "work"]
    cache.forget("c")
    await cache.get(("c", "k"), working)
    assert calls == ["fail", "work", "work"]


async def test_concurrent_requests_load_once() -> None:
    cache = IconCache()
    calls = 0

    async def slow() -> Icon:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return Icon(PNG, "image/png")

    found = await asyncio.gather(*(cache.get(("c", "k"), slow) for _ in range(20)))
    assert calls == 1
    assert {i.data for i in found} == {PNG}


async def test_memory_keeps_the_recently_used_within_its_budget() -> None:
    cache = IconCache(budget_bytes=2 * len(PNG))
    calls: list[str] = []

    def loader(name: str) -> Icon:
        calls.append(name)
        return Icon(PNG, "image/png")

    async def get(name: str) -> None:
        async def load() -> Icon:
            return loader(name)

        await cache.get(("c", name), load)

    for name in ("a", "b", "a", "c", "a", "b"):
        await get(name)
    # "b" was the least recently used when "c" came in.
    assert calls == ["a", "b", "c", "b"]


async def test_disk_copies_survive_and_bad_ones_are_replaced(tmp_path: Path) -> None:
    disk = tmp_path / "icons" / "x.icon"
    calls = 0

    async def load() -> Icon:
        nonlocal calls
        calls += 1
        return Icon(SVG, "image/svg+xml")

    assert (await IconCache().get(("c", "x"), load, disk)).data == SVG
    assert disk.read_bytes() == SVG
    assert (await IconCache().get(("c", "x"), load, disk)).content_type == "image/svg+xml"
    assert calls == 1
    disk.write_bytes(b"truncated <svg")
    assert (await IconCache().get(("c", "x"), load, disk)).data == SVG
    assert calls == 2
    assert disk.read_bytes() == SVG
