"""Streams an object body into chunks while hashing it once: MD5 (the ETag), SHA-256, S3 checksums."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field

from pails.checksums import Checksum, new_checksum
from pails.data.engine import ChunkSink, ChunkStore, StoreFull
from pails.errors import S3Error
from pails.limits import CHUNK_SIZE
from pails.meta.models import ChunkRef


@dataclass(slots=True)
class StoredBody:
    manifest: tuple[ChunkRef, ...]
    size: int
    md5_hex: str
    sha256_hex: str | None
    checksums: dict[str, str] = field(default_factory=dict)


async def store_body(
    store: ChunkStore,
    pieces: AsyncIterable[bytes],
    *,
    expected_size: int | None,
    checksum_algorithms: tuple[str, ...] = (),
    want_sha256: bool = False,
) -> StoredBody:
    """Write the body as chunks of at most CHUNK_SIZE; on any failure nothing is left referenced.

    The chunks are not durable yet: the caller commits them with ChunkStore.sync_barrier().
    """
    md5 = hashlib.md5()
    sha256 = hashlib.sha256() if want_sha256 else None
    sums: dict[str, Checksum] = {name: new_checksum(name) for name in checksum_algorithms}
    manifest: list[ChunkRef] = []
    total = 0
    sink: ChunkSink | None = None
    in_chunk = 0
    try:
        async for piece in pieces:
            if not piece:
                continue
            md5.update(piece)
            if sha256 is not None:
                sha256.update(piece)
            for checksum in sums.values():
                checksum.update(piece)
            view = memoryview(piece)
            while view:
                if sink is None:
                    hint = None if expected_size is None else min(expected_size - total, CHUNK_SIZE)
                    sink = await store.new_chunk(hint)
                    in_chunk = 0
                take = min(len(view), CHUNK_SIZE - in_chunk)
                await sink.write(view[:take])
                view = view[take:]
                in_chunk += take
                total += take
                if in_chunk == CHUNK_SIZE:
                    manifest.append(await sink.finish())
                    sink = None
        if sink is not None:
            manifest.append(await sink.finish())
            sink = None
        if expected_size is not None and total != expected_size:
            raise S3Error("IncompleteBody")
    except BaseException as exc:
        if sink is not None:
            await sink.abort()
        if manifest:
            await store.delete([ref.chunk_id for ref in manifest])
        if isinstance(exc, StoreFull):
            raise S3Error("ServiceUnavailable", "The storage is full.", status=507) from exc
        raise
    return StoredBody(
        manifest=tuple(manifest),
        size=total,
        md5_hex=md5.hexdigest(),
        sha256_hex=sha256.hexdigest() if sha256 is not None else None,
        checksums={name: checksum.b64digest() for name, checksum in sums.items()},
    )


async def read_range(
    store: ChunkStore, manifest: tuple[ChunkRef, ...], start: int, end: int
) -> AsyncIterator[bytes]:
    """Stream bytes [start, end) of an object made of the given chunks."""
    position = 0
    for ref in manifest:
        chunk_start, chunk_end = position, position + ref.size
        position = chunk_end
        if chunk_end <= start:
            continue
        if chunk_start >= end:
            break
        offset = max(start - chunk_start, 0)
        length = min(end, chunk_end) - chunk_start - offset
        async for data in store.read(ref.chunk_id, offset, length):
            yield data
