"""The head of an object, decoded: text, CSV rows, JSON, or the first rows of a Parquet file.

Only the first 64 KiB of text-like objects are read. Parquet needs its footer, so it is read
through ranged GETs (pyarrow asks for the footer, then the first row group's columns), and
refused past a size that would make a preview a download. pyarrow is imported here only.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import math
from collections.abc import Coroutine
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

import pyarrow.parquet as pq

from onyxia_py.errors import FieldError, Invalid, OnyxiaError, OperationFailed
from onyxia_py.s3 import ObjectHead, ObjectStore, TemporaryCredentials
from onyxia_py.storage import core
from onyxia_py.storage.models import Preview

T = TypeVar("T")

HEAD_BYTES = 64 * 1024
MAX_ROWS = 200
MAX_COLUMNS = 100
# A Parquet preview reads the first row group: not when that is a large download.
MAX_ROW_GROUP_BYTES = 32 * 1024 * 1024
_TEXT = {".txt", ".md", ".log", ".py", ".r", ".sql", ".sh", ".yaml", ".yml", ".xml", ".toml",
         ".ini", ".cfg", ".html", ".js", ".ts", ".ipynb", ".rmd", ".qmd", ".tex"}  # fmt: skip
_CSV = {".csv": ",", ".tsv": "\t"}
_JSON = {".json", ".jsonl", ".ndjson", ".geojson"}
_PARQUET = {".parquet", ".pq"}


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    return name[name.rfind(".") :] if "." in name else ""


def kind_of(key: str, content_type: str) -> str:
    """How to preview an object: by extension first, then by content type."""
    suffix = _suffix(key)
    if suffix in _PARQUET:
        return "parquet"
    if suffix in _CSV or content_type.startswith("text/csv"):
        return "csv"
    if suffix in _JSON or content_type.startswith("application/json"):
        return "json"
    if suffix in _TEXT or content_type.startswith("text/"):
        return "text"
    return "sniff"


def _decode(data: bytes, truncated: bool) -> str | None:
    """UTF-8 text, or None when it looks binary (a cut multi-byte sequence at the end is ok)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8", "replace")
        return None


def _complete_lines(text: str, truncated: bool) -> str:
    """The text without its last, partial line when the object goes on."""
    return text.rsplit("\n", 1)[0] if truncated and "\n" in text else text


def preview_bytes(key: str, head: ObjectHead, data: bytes, lines: int) -> Preview:
    """A preview of the first bytes of an object (pure: no S3 here)."""
    truncated = head.size > len(data)
    kind = kind_of(key, head.content_type)
    text = _decode(data, truncated)
    if text is None:
        return Preview(key, "binary", head.size, truncated)
    if kind == "csv":
        body = _complete_lines(text, truncated)
        delimiter = _CSV.get(_suffix(key), ",")
        rows = list(csv.reader(io.StringIO(body), delimiter=delimiter))
        columns = tuple(rows[0]) if rows else ()
        shown = tuple(tuple(r) for r in rows[1 : lines + 1])
        return Preview(
            key, "csv", head.size, truncated or len(rows) - 1 > lines, columns=columns, rows=shown
        )
    if kind == "json":
        if not truncated:
            try:
                return Preview(key, "json", head.size, False, data=json.loads(text))
            except ValueError:
                pass
        records = []
        for line in _complete_lines(text, truncated).splitlines()[:lines]:
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    records = []
                    break
        if records:
            return Preview(key, "json", head.size, True, data=records)
    shown_lines = _complete_lines(text, truncated).split("\n")
    return Preview(
        key,
        "text",
        head.size,
        truncated or len(shown_lines) > lines,
        text="\n".join(shown_lines[:lines]),
    )


def jsonable(value: Any) -> Any:
    """A value from a Parquet file as JSON can carry it."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value[:256]).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


class _RangedFile(io.RawIOBase):
    """A read-only, seekable file over ranged GETs, used by pyarrow from a worker thread."""

    def __init__(self, size: int, fetch: Any) -> None:
        self._size = size
        self._fetch = fetch  # (start, end_inclusive) -> bytes, blocking
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._size - self._pos)
        if wanted <= 0:
            return 0
        data: bytes = self._fetch(self._pos, self._pos + wanted - 1)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _parquet(key: str, size: int, file: _RangedFile, lines: int) -> Preview:
    # Buffered: pyarrow reads in small pieces, each would be one GET.
    parquet = pq.ParquetFile(io.BufferedReader(file, buffer_size=256 * 1024))
    metadata = parquet.metadata
    columns = tuple(parquet.schema_arrow.names)
    if metadata.num_row_groups == 0:
        return Preview(key, "parquet", size, False, columns=columns, total_rows=0)
    if metadata.row_group(0).total_byte_size > MAX_ROW_GROUP_BYTES:
        return Preview(key, "parquet", size, True, columns=columns, total_rows=metadata.num_rows)
    shown = list(columns[:MAX_COLUMNS])
    batch = next(parquet.iter_batches(batch_size=lines, row_groups=[0], columns=shown), None)
    rows: tuple[tuple[Any, ...], ...] = ()
    if batch is not None:
        records = batch.to_pylist()
        rows = tuple(tuple(jsonable(r.get(c)) for c in shown) for r in records)
    return Preview(
        key,
        "parquet",
        size,
        metadata.num_rows > len(rows),
        columns=tuple(shown),
        rows=rows,
        total_rows=metadata.num_rows,
    )


async def _read(
    store: ObjectStore, creds: TemporaryCredentials, bucket: str, key: str, start: int, end: int
) -> bytes:
    stream = await store.open(creds, bucket, key, byte_range=f"bytes={start}-{end}")
    parts = [chunk async for chunk in stream.chunks()]
    return b"".join(parts)


async def preview(
    store: ObjectStore, creds: TemporaryCredentials, bucket: str, key: str, lines: int
) -> Preview:
    """The head of `key`, at most `lines` lines or rows."""
    core.check_key(key)
    if not 1 <= lines <= MAX_ROWS:
        raise Invalid("bad preview length", [FieldError("lines", f"must be 1 to {MAX_ROWS}")])
    head = await store.head(creds, bucket, key)
    if head.size == 0:
        return Preview(key, kind_of(key, head.content_type), 0, False, text="")
    if kind_of(key, head.content_type) == "parquet":
        loop = asyncio.get_running_loop()

        def run(coroutine: Coroutine[Any, Any, T]) -> T:
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

        file = _RangedFile(
            head.size, lambda start, end: run(_read(store, creds, bucket, key, start, end))
        )
        try:
            return await asyncio.to_thread(_parquet, key, head.size, file, lines)
        except OnyxiaError:
            raise
        except Exception as exc:  # pyarrow's errors: a file that is not what its name says
            raise OperationFailed(
                f"{key} cannot be read as Parquet: {type(exc).__name__}"
            ) from None
    data = await _read(store, creds, bucket, key, 0, min(head.size, HEAD_BYTES) - 1)
    return preview_bytes(key, head, data, lines)
