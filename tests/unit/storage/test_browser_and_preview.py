"""The bucket browser's rules and previews, over an in-memory object store."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from onyxia_py.errors import Invalid, NotFound
from onyxia_py.s3 import ObjectHead
from onyxia_py.settings import S3Settings
from onyxia_py.storage import preview as previews
from onyxia_py.storage.browser import BucketBrowser

from .fakes import FakeStore, credentials

BUCKET = "user-alice"


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def browser(store: FakeStore) -> BucketBrowser:
    return BucketBrowser(S3Settings(presign_max_seconds=3600), store)


async def test_the_bucket_is_created_once(browser: BucketBrowser, store: FakeStore) -> None:
    creds = credentials()
    await browser.list_folder(creds, BUCKET, "", token=None, limit=10)
    await browser.list_folder(creds, BUCKET, "", token=None, limit=10)
    assert store.created == [BUCKET]
    assert store.cors == {}  # no origins set: the bucket's CORS rules are left alone


async def test_bucket_cors_is_set_once_per_bucket_created_or_found(store: FakeStore) -> None:
    origins = ["https://datalab.example.org"]
    browser = BucketBrowser(S3Settings(bucket_cors_origins=origins), store)
    creds = credentials()
    store.buckets["user-bob"] = {}  # made before the setting: it gets the rules too
    for bucket in (BUCKET, BUCKET, "user-bob"):
        await browser.ensure_bucket(creds, bucket)
    assert store.cors == {BUCKET: origins, "user-bob": origins}
    assert store.cors_calls == 2


def test_bucket_cors_origins_must_be_origins() -> None:
    with pytest.raises(ValueError, match=r"s3\.bucket_cors_origins"):
        S3Settings(bucket_cors_origins=["https://datalab.example.org/"])


async def test_listing_is_folder_style(browser: BucketBrowser) -> None:
    creds = credentials()
    for key in ("a.txt", "data/x.csv", "data/y.csv", "data/deep/z.csv"):
        await browser.upload(creds, BUCKET, key, body(b"1"), "text/plain")
    await browser.create_folder(creds, BUCKET, "data/empty")
    root = await browser.list_folder(creds, BUCKET, "", token=None, limit=10)
    assert root.folders == ("data/",)
    assert [o.key for o in root.objects] == ["a.txt"]
    data = await browser.list_folder(creds, BUCKET, "data", token=None, limit=1)
    assert data.prefix == "data/"
    assert data.folders == ("data/deep/", "data/empty/")
    assert [o.key for o in data.objects] == ["data/x.csv"]
    assert data.next_token is not None
    empty = await browser.list_folder(creds, BUCKET, "data/empty/", token=None, limit=10)
    assert empty.objects == ()  # the folder marker itself is not listed
    with pytest.raises(Invalid):
        await browser.list_folder(creds, BUCKET, "", token=None, limit=5000)


async def test_recursive_deletes_need_confirmation(
    browser: BucketBrowser, store: FakeStore
) -> None:
    creds = credentials()
    for key in ("d/1", "d/2", "d/e/3", "keep"):
        await browser.upload(creds, BUCKET, key, body(b""), "text/plain")
    with pytest.raises(Invalid) as caught:
        await browser.delete_prefix(creds, BUCKET, "d/", "")
    assert caught.value.errors[0].field == "confirm"
    assert await browser.delete_prefix(creds, BUCKET, "d/", "d") == 3
    assert sorted(store.buckets[BUCKET]) == ["keep"]
    with pytest.raises(NotFound):
        await browser.delete_prefix(creds, BUCKET, "d/", "d/")
    with pytest.raises(NotFound):
        await browser.delete_object(creds, BUCKET, "missing")


async def test_moves(browser: BucketBrowser, store: FakeStore) -> None:
    creds = credentials()
    for key in ("src/a", "src/b/c"):
        await browser.upload(creds, BUCKET, key, body(key.encode()), "text/plain")
    assert await browser.move(creds, BUCKET, "src/", "dst/") == 2
    assert sorted(store.buckets[BUCKET]) == ["dst/a", "dst/b/c"]
    assert store.buckets[BUCKET]["dst/b/c"] == b"src/b/c"
    with pytest.raises(Invalid):
        await browser.move(creds, BUCKET, "dst/", "dst/inner/")
    with pytest.raises(Invalid):
        await browser.move(creds, BUCKET, "dst/a", "dst/a")
    with pytest.raises(NotFound):
        await browser.move(creds, BUCKET, "nothing/", "else/")
    assert await browser.move(creds, BUCKET, "dst/a", "renamed") == 1
    assert "renamed" in store.buckets[BUCKET]


async def test_links_die_with_the_credentials(browser: BucketBrowser) -> None:
    creds = credentials(seconds=600)
    await browser.upload(creds, BUCKET, "f", body(b"x"), "text/plain")
    url, expires = await browser.presign(creds, BUCKET, "f", 3600)
    assert expires == creds.expiration
    assert "X-Amz-Expires=" in url
    assert int(url.rsplit("=", 1)[1]) <= 600
    _, sooner = await browser.presign(creds, BUCKET, "f", 60)
    assert sooner < datetime.now(UTC) + timedelta(seconds=61)
    for seconds in (0, 3601):
        with pytest.raises(Invalid):
            await browser.presign(creds, BUCKET, "f", seconds)


async def test_public_prefixes_keep_other_statements(
    browser: BucketBrowser, store: FakeStore
) -> None:
    creds = credentials()
    await browser.ensure_bucket(creds, BUCKET)
    theirs = {"Sid": "Theirs", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
    store.policies[BUCKET] = {"Version": "2012-10-17", "Statement": [theirs]}
    assert await browser.set_public(creds, BUCKET, "pub", True) == ["pub/"]
    assert await browser.public_prefixes(creds, BUCKET) == ["pub/"]
    assert await browser.set_public(creds, BUCKET, "pub/", False) == []
    assert store.policies[BUCKET]["Statement"] == [theirs]
    store.policies.clear()
    await browser.set_public(creds, BUCKET, "p/", True)
    await browser.set_public(creds, BUCKET, "p/", False)
    assert BUCKET not in store.policies  # nothing left: no empty policy behind


async def test_usage(browser: BucketBrowser) -> None:
    creds = credentials()
    for i in range(2500):
        await browser.upload(creds, BUCKET, f"k{i}", body(b"ab"), "text/plain")
    usage = await browser.usage(creds, BUCKET)
    assert (usage.objects, usage.bytes) == (2500, 5000)


def head(key: str, size: int, content_type: str = "application/octet-stream") -> ObjectHead:
    return ObjectHead(key, size, content_type, None)


def test_text_like_previews() -> None:
    csv = b"a;b\n1;2\n3;4\n5;"
    shown = previews.preview_bytes("t.csv", head("t.csv", 1000), csv, 5)
    assert shown.kind == "csv"
    assert shown.columns == ("a;b",)  # .csv is comma-separated
    assert shown.rows == (("1;2",), ("3;4",))  # the cut last line is dropped
    tsv = previews.preview_bytes("t.tsv", head("t.tsv", 7), b"a\tb\n1\t2", 5)
    assert (tsv.columns, tsv.rows, tsv.truncated) == (("a", "b"), (("1", "2"),), False)
    lines = b"\n".join(json.dumps({"i": i}).encode() for i in range(5)) + b'\n{"i"'
    jsonl = previews.preview_bytes("l.jsonl", head("l.jsonl", 10_000), lines, 3)
    assert (jsonl.kind, jsonl.data) == ("json", [{"i": 0}, {"i": 1}, {"i": 2}])
    broken = previews.preview_bytes("b.json", head("b.json", 5), b"{oops", 3)
    assert (broken.kind, broken.text) == ("text", "{oops")
    cut = "é".encode() * 10
    text = previews.preview_bytes("x.txt", head("x.txt", 100), cut[:-1], 3)
    assert text.kind == "text"
    assert text.text is not None
    assert text.text.startswith("é" * 9)
    assert previews.preview_bytes("x.bin", head("x.bin", 3), b"\x00\x01\x02", 3).kind == "binary"
    assert previews.preview_bytes("x", head("x", 3, "text/plain"), b"abc", 3).kind == "text"


def test_parquet_values_become_json() -> None:
    from decimal import Decimal

    assert previews.jsonable(Decimal("1.5")) == "1.5"
    assert previews.jsonable(float("nan")) == "nan"
    assert previews.jsonable(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00+00:00"
    assert previews.jsonable(b"\x00\x01") == "AAE="
    assert previews.jsonable({"a": [1, (2, 3)]}) == {"a": [1, [2, 3]]}


async def test_parquet_preview_reads_ranges_only(store: FakeStore) -> None:
    table = pa.table({"n": list(range(100_000)), "s": [f"v{i}" for i in range(100_000)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=1000)
    data = buffer.getvalue()
    store.buckets[BUCKET] = {"t.parquet": data, "empty.csv": b""}
    creds = credentials()
    found = await previews.preview(store, creds, BUCKET, "t.parquet", 4)
    assert found.columns == ("n", "s")
    assert found.rows == ((0, "v0"), (1, "v1"), (2, "v2"), (3, "v3"))
    assert found.total_rows == 100_000
    assert found.truncated
    read = sum(
        int(r.split("-")[1]) - int(r.removeprefix("bytes=").split("-")[0]) + 1 for r in store.ranges
    )
    assert read < len(data) / 2
    empty = await previews.preview(store, creds, BUCKET, "empty.csv", 4)
    assert (empty.size, empty.text) == (0, "")
    with pytest.raises(Invalid):
        await previews.preview(store, creds, BUCKET, "t.parquet", 500)
