"""A byte range of an existing object as a new chunk list that shares the source's whole chunks.

Chunks lying entirely inside the range are shared (no bytes written: the metadata commit adds a
reference to each); the partial chunks at the edges are copied into new chunks. The range is read
once when its MD5 (the part's ETag) or a checksum has to be computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from pails.checksums import Checksum, new_checksum
from pails.data.engine import ChunkStore
from pails.meta.models import ChunkRef
from pails.service.bodies import store_body


@dataclass(slots=True)
class SharedRange:
    manifest: tuple[ChunkRef, ...]
    shared: tuple[bytes, ...]  # chunk ids taken from the source (one per occurrence)
    written: tuple[ChunkRef, ...]  # new chunks (the caller deletes them if it does not commit)
    size: int
    md5_hex: str | None
    checksums: dict[str, str] = field(default_factory=dict)


async def share_range(
    store: ChunkStore,
    manifest: tuple[ChunkRef, ...],
    start: int,
    end: int,
    *,
    want_md5: bool,
    checksum_algorithms: tuple[str, ...] = (),
) -> SharedRange:
    md5 = hashlib.md5() if want_md5 else None
    sums: dict[str, Checksum] = {name: new_checksum(name) for name in checksum_algorithms}
    hashing = md5 is not None or bool(sums)

    def update(data: bytes) -> None:
        if md5 is not None:
            md5.update(data)
        for checksum in sums.values():
            checksum.update(data)

    async def hashed(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for piece in pieces:
            update(piece)
            yield piece

    out: list[ChunkRef] = []
    shared: list[bytes] = []
    written: list[ChunkRef] = []
    position = 0
    try:
        for ref in manifest:
            chunk_start, chunk_end = position, position + ref.size
            position = chunk_end
            if chunk_end <= start or ref.size == 0:
                continue
            if chunk_start >= end:
                break
            low, high = max(start, chunk_start), min(end, chunk_end)
            if low == chunk_start and high == chunk_end:
                if hashing:
                    async for data in store.read(ref.chunk_id):
                        update(data)
                out.append(ref)
                shared.append(ref.chunk_id)
            else:
                piece = store.read(ref.chunk_id, low - chunk_start, high - low)
                stored = await store_body(store, hashed(piece), expected_size=high - low)
                written.extend(stored.manifest)
                out.extend(stored.manifest)
    except BaseException:
        if written:
            await store.delete([ref.chunk_id for ref in written])
        raise
    return SharedRange(
        manifest=tuple(out),
        shared=tuple(shared),
        written=tuple(written),
        size=end - start,
        md5_hex=md5.hexdigest() if md5 is not None else None,
        checksums={name: checksum.b64digest() for name, checksum in sums.items()},
    )
