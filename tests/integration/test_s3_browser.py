"""The bucket browser API against a real S3 server (Ceph RGW), acting with the user's own
temporary credentials: first-use bucket creation, folders, uploads (100 MB multipart,
byte-identical), downloads, moves, deletes, links, public prefixes that leave other policy
statements alone, usage, previews, pagination over 10,000 objects, and bad paths refused."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.config import Config

from devtools.localoidc import ALICE_PASSWORD, BOB_PASSWORD, OidcUser, default_users
from devtools.localrgw import LocalRgw

from .oidc_stack import Stack, bearer, stack
from .s3_stack import s3_settings, trust

CONFIG = Config(
    s3={"addressing_style": "path"}, retries={"max_attempts": 3}, max_pool_connections=32
)
MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3stack(tmp_path_factory: pytest.TempPathFactory, rgw: LocalRgw, tag: str) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("s3-browser")
    users = [*default_users(), OidcUser("carol", "carol-password", groups=["stats"])]
    with stack(tmp, settings={"s3": s3_settings(rgw, tag)}, users=users) as running:
        trust(rgw, running.provider)
        yield running


@pytest.fixture(scope="module")
def alice(s3stack: Stack) -> httpx.Client:
    token = s3stack.tokens("alice", ALICE_PASSWORD)["access_token"]
    return httpx.Client(
        base_url=f"{s3stack.url}/api/projects/user-alice/s3", headers=bearer(token), timeout=120
    )


def raw_client(client: httpx.Client, rgw: LocalRgw) -> Any:
    """A boto3 client with the caller's own temporary credentials (from the API)."""
    creds = client.post("/credentials").json()
    return boto3.client(
        "s3",
        endpoint_url=rgw.endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
        config=CONFIG,
    )


def put(client: httpx.Client, key: str, data: bytes, content_type: str = "text/plain") -> None:
    answer = client.put(
        "/object", params={"key": key}, content=data, headers={"content-type": content_type}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == len(data)


def test_the_bucket_is_created_on_first_use(alice: httpx.Client, tag: str) -> None:
    listing = alice.get("/objects")
    assert listing.status_code == 200, listing.text
    assert listing.json() == {
        "bucket": f"u{tag}-alice",
        "prefix": "",
        "folders": [],
        "objects": [],
        "next_token": None,
    }
    usage = alice.get("/usage").json()
    assert usage == {"bucket": f"u{tag}-alice", "objects": 0, "bytes": 0}


def test_folders_uploads_moves_and_deletes(alice: httpx.Client) -> None:
    put(alice, "notes/a.txt", b"first")
    put(alice, "notes/deep/b.txt", b"second")
    assert alice.post("/folders", json={"path": "empty"}).json()["prefix"] == "empty/"
    root = alice.get("/objects").json()
    assert set(root["folders"]) >= {"notes/", "empty/"}
    notes = alice.get("/objects", params={"prefix": "notes/"}).json()
    assert notes["folders"] == ["notes/deep/"]
    assert [(o["name"], o["size"]) for o in notes["objects"]] == [("a.txt", 5)]
    assert alice.get("/objects", params={"prefix": "empty/"}).json()["objects"] == []

    download = alice.get("/object", params={"key": "notes/a.txt"})
    assert download.content == b"first"
    assert download.headers["content-disposition"] == 'attachment; filename="a.txt"'
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["x-content-type-options"] == "nosniff"

    moved = alice.post("/move", json={"source": "notes/a.txt", "destination": "notes/c.txt"})
    assert moved.json() == {"count": 1}
    assert alice.get("/object", params={"key": "notes/a.txt"}).status_code == 404
    assert alice.get("/object", params={"key": "notes/c.txt"}).content == b"first"
    folder = alice.post("/move", json={"source": "notes/", "destination": "archive/notes/"})
    assert folder.json() == {"count": 2}
    assert alice.get("/object", params={"key": "archive/notes/deep/b.txt"}).content == b"second"
    into_itself = alice.post("/move", json={"source": "archive/", "destination": "archive/x/"})
    assert into_itself.status_code == 422

    assert alice.delete("/object", params={"key": "archive/notes/c.txt"}).status_code == 204
    assert alice.delete("/object", params={"key": "archive/notes/c.txt"}).status_code == 404
    unconfirmed = alice.delete("/prefix", params={"prefix": "archive/"})
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["errors"] == [
        {"field": "confirm", "reason": "must repeat the folder being deleted"}
    ]
    put(alice, "archive/more/x.bin", b"x" * 10)
    # What a folder holds (the Files page says it before deleting): exactly what goes.
    held = alice.get("/usage", params={"prefix": "archive/"}).json()
    assert (held["objects"], held["bytes"]) == (2, len(b"second") + 10)
    assert alice.get("/usage", params={"prefix": "../"}).status_code == 422
    deleted = alice.delete("/prefix", params={"prefix": "archive/", "confirm": "archive/"})
    assert deleted.json() == {"count": 2}
    assert alice.get("/objects", params={"prefix": "archive/"}).json()["objects"] == []


def test_a_100_mb_upload_round_trips_byte_identical(alice: httpx.Client) -> None:
    size = 100 * MB
    sent = hashlib.sha256()
    seed = secrets.token_bytes(32)

    def body() -> Iterator[bytes]:
        block = seed
        for _ in range(size // MB):
            # 1 MiB of pseudo-random bytes per step (incompressible, never all in memory).
            block = hashlib.sha512(block).digest()
            chunk = block * (MB // len(block))
            sent.update(chunk)
            yield chunk

    started = time.monotonic()
    answer = alice.put(
        "/object",
        params={"key": "big/blob.bin"},
        content=body(),
        headers={"content-type": "application/octet-stream"},
    )
    uploaded = time.monotonic() - started
    assert answer.status_code == 201, answer.text
    assert answer.json()["size"] == size
    received = hashlib.sha256()
    total = 0
    started = time.monotonic()
    with alice.stream("GET", "/object", params={"key": "big/blob.bin"}) as download:
        assert download.status_code == 200
        assert int(download.headers["content-length"]) == size
        for chunk in download.iter_bytes():
            received.update(chunk)
            total += len(chunk)
    downloaded = time.monotonic() - started
    assert total == size
    assert received.hexdigest() == sent.hexdigest()
    print(f"100 MB: upload {uploaded:.1f}s, download {downloaded:.1f}s")
    # Multipart: the ETag of a multipart object ends with -<parts>.
    etag = next(
        o["etag"]
        for o in alice.get("/objects", params={"prefix": "big/"}).json()["objects"]
        if o["key"] == "big/blob.bin"
    )
    assert etag.endswith("-13")
    assert alice.delete("/object", params={"key": "big/blob.bin"}).status_code == 204


def test_listing_10000_objects_paginates(alice: httpx.Client, rgw: LocalRgw) -> None:
    s3 = raw_client(alice, rgw)
    bucket = alice.get("/objects").json()["bucket"]
    keys = [f"many/{i:05d}.txt" for i in range(10_000)]
    started = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    created = time.monotonic() - started
    seen: list[str] = []
    pages = 0
    token: str | None = None
    started = time.monotonic()
    while True:
        params: dict[str, Any] = {"prefix": "many/", "limit": 1000}
        if token:
            params["token"] = token
        page = alice.get("/objects", params=params).json()
        pages += 1
        assert len(page["objects"]) <= 1000
        seen += [o["key"] for o in page["objects"]]
        token = page["next_token"]
        if token is None:
            break
    listed = time.monotonic() - started
    print(f"10,000 objects: created in {created:.1f}s, listed in {pages} pages in {listed:.1f}s")
    assert pages == 10
    assert seen == keys
    small = alice.get("/objects", params={"prefix": "many/", "limit": 7}).json()
    assert len(small["objects"]) == 7
    assert small["next_token"]
    assert alice.get("/usage").json()["objects"] >= 10_000
    deleted = alice.delete("/prefix", params={"prefix": "many/", "confirm": "many/"})
    assert deleted.json() == {"count": 10_000}


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "must not be empty"),
        ("a/../b.txt", "must not contain '.' or '..' segments"),
        ("../escape", "must not contain '.' or '..' segments"),
        ("a/./b", "must not contain '.' or '..' segments"),
        ("x" * 1025, "must be at most 1024 bytes"),
        ("é" * 513, "must be at most 1024 bytes"),
        ("bad\x00name", "must not contain control characters"),
        ("line\nbreak", "must not contain control characters"),
        ("tab\there", "must not contain control characters"),
        ("/absolute", "must not start with '/'"),
        ("a//b", "must not contain empty segments ('//')"),
        ("folder/", "must not end with '/' (that names a folder)"),
    ],
)
def test_bad_keys_get_a_clear_422(alice: httpx.Client, key: str, reason: str) -> None:
    attempts = [
        alice.put("/object", params={"key": key}, content=b"x"),
        alice.get("/object", params={"key": key}),
        alice.delete("/object", params={"key": key}),
        alice.get("/preview", params={"key": key}),
        alice.post("/presign", json={"key": key}),
        alice.post("/move", json={"source": "ok.txt", "destination": key}),
    ]
    for answer in attempts:
        assert answer.status_code == 422, (answer.request.url, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        errors = answer.json()["errors"]
        assert errors[0]["reason"] == reason, errors
        assert errors[0]["field"] in ("key", "destination")


@pytest.mark.parametrize("prefix", ["../", "a/../", "/root/", "a//b/", "x\x01/", "z" * 1030 + "/"])
def test_bad_folders_get_a_clear_422(alice: httpx.Client, prefix: str) -> None:
    for answer in (
        alice.get("/objects", params={"prefix": prefix}),
        alice.post("/folders", json={"path": prefix}),
        alice.delete("/prefix", params={"prefix": prefix, "confirm": prefix}),
        alice.post("/public", json={"prefix": prefix}),
    ):
        assert answer.status_code == 422, (answer.request.url, answer.text)
        assert answer.json()["errors"][0]["field"] in ("prefix", "path")
    assert alice.delete("/prefix", params={"prefix": "", "confirm": ""}).status_code == 422


@pytest.mark.parametrize("token", ["\x01", "abc\x00def", "line\nbreak", "del\x7f"])
def test_a_listing_token_with_control_characters_is_a_422(alice: httpx.Client, token: str) -> None:
    answer = alice.get("/objects", params={"token": token})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"] == [
        {"field": "token", "reason": "must not contain control characters"}
    ]


def test_public_prefixes_touch_only_our_statements(
    alice: httpx.Client, rgw: LocalRgw, tag: str
) -> None:
    bucket = f"u{tag}-alice"
    s3 = raw_client(alice, rgw)
    foreign = {
        "Sid": "KeepMe",
        "Effect": "Allow",
        "Principal": {"AWS": ["*"]},
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/shared-by-hand/*"],
    }
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign]}, separators=(",", ":")),
    )
    put(alice, "pub/hello.txt", b"public")
    put(alice, "private/secret.txt", b"secret")
    anonymous = httpx.Client(base_url=f"{rgw.endpoint}/{bucket}", timeout=10)
    assert anonymous.get("/pub/hello.txt").status_code == 403

    made = alice.post("/public", json={"prefix": "pub/"})
    assert made.status_code == 200, made.text
    assert made.json()["public_prefixes"] == ["pub/"]
    assert alice.get("/public").json()["public_prefixes"] == ["pub/"]
    assert anonymous.get("/pub/hello.txt").content == b"public"
    assert anonymous.get("/private/secret.txt").status_code == 403
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert foreign in statements
    assert len(statements) == 2

    again = alice.post("/public", json={"prefix": "pub/"})
    assert again.json()["public_prefixes"] == ["pub/"]
    assert len(json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]) == 2

    private = alice.delete("/public", params={"prefix": "pub/"})
    assert private.json()["public_prefixes"] == []
    assert anonymous.get("/pub/hello.txt").status_code == 403
    statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert statements == [foreign]
    anonymous.close()


def test_presigned_links(alice: httpx.Client) -> None:
    put(alice, "links/report.csv", b"a,b\n1,2\n")
    answer = alice.post("/presign", json={"key": "links/report.csv", "expires_in_seconds": 120})
    assert answer.status_code == 200, answer.text
    link = answer.json()
    assert httpx.get(link["url"]).content == b"a,b\n1,2\n"
    assert (
        alice.post(
            "/presign", json={"key": "links/report.csv", "expires_in_seconds": 0}
        ).status_code
        == 422
    )
    too_long = alice.post("/presign", json={"key": "links/report.csv", "expires_in_seconds": 10**7})
    assert too_long.status_code == 422
    capped = alice.post("/presign", json={"key": "links/report.csv", "expires_in_seconds": 86400})
    assert capped.status_code == 200
    assert alice.post("/presign", json={"key": "links/missing.csv"}).status_code == 404


def test_previews(alice: httpx.Client) -> None:
    put(alice, "p/table.csv", b"name,age\nann,31\nbob,42\ncid,7\n", "text/csv")
    csv = alice.get("/preview", params={"key": "p/table.csv", "lines": 2}).json()
    assert csv["kind"] == "csv"
    assert csv["columns"] == ["name", "age"]
    assert csv["rows"] == [["ann", "31"], ["bob", "42"]]
    assert csv["truncated"] is True
    put(alice, "p/doc.json", json.dumps({"a": [1, 2], "b": "c"}).encode(), "application/json")
    assert alice.get("/preview", params={"key": "p/doc.json"}).json()["data"] == {
        "a": [1, 2],
        "b": "c",
    }
    put(alice, "p/lines.txt", b"\n".join(b"line %d" % i for i in range(100)))
    text = alice.get("/preview", params={"key": "p/lines.txt", "lines": 3}).json()
    assert text["kind"] == "text"
    assert text["text"] == "line 0\nline 1\nline 2"
    put(alice, "p/blob.bin", bytes(range(256)), "application/octet-stream")
    assert alice.get("/preview", params={"key": "p/blob.bin"}).json()["kind"] == "binary"
    table = pa.table({"id": list(range(1000)), "label": [f"row {i}" for i in range(1000)]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=250)
    put(alice, "p/data.parquet", buffer.getvalue(), "application/octet-stream")
    parquet = alice.get("/preview", params={"key": "p/data.parquet", "lines": 3}).json()
    assert parquet["kind"] == "parquet"
    assert parquet["columns"] == ["id", "label"]
    assert parquet["rows"] == [[0, "row 0"], [1, "row 1"], [2, "row 2"]]
    assert parquet["total_rows"] == 1000
    put(alice, "p/fake.parquet", b"not parquet at all")
    assert alice.get("/preview", params={"key": "p/fake.parquet"}).status_code == 502
    assert alice.get("/preview", params={"key": "p/none.csv"}).status_code == 404


def test_group_members_share_the_group_bucket(
    s3stack: Stack, alice: httpx.Client, tag: str
) -> None:
    carol_token = s3stack.tokens("carol", "carol-password")["access_token"]
    bob_token = s3stack.tokens("bob", BOB_PASSWORD)["access_token"]
    group = f"{s3stack.url}/api/projects/projet-stats/s3"
    written = httpx.put(
        f"{group}/object", params={"key": "shared.txt"}, content=b"team", headers=alice.headers
    )
    assert written.status_code == 201, written.text
    assert written.json()["bucket"] == f"g{tag}-stats"
    read = httpx.get(f"{group}/object", params={"key": "shared.txt"}, headers=bearer(carol_token))
    assert read.content == b"team"
    assert httpx.get(f"{group}/objects", headers=bearer(bob_token)).status_code == 403
    # Carol's own bucket is not alice's.
    mine = httpx.get(
        f"{s3stack.url}/api/projects/user-carol/s3/objects", headers=bearer(carol_token)
    ).json()
    assert mine["bucket"] == f"u{tag}-carol"
    assert (
        httpx.get(
            f"{s3stack.url}/api/projects/user-alice/s3/objects", headers=bearer(carol_token)
        ).status_code
        == 403
    )
