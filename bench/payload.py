"""Deterministic object contents, so a GET can be verified without remembering the PUT.

Small objects: the key itself followed by one of 64 pre-generated random blobs chosen by
CRC of the key (a server returning another key's bytes is caught).  Large objects: 1 MiB
chunks made of a per-key random block whose first 16 bytes are replaced by the chunk
index and a key digest; streamed on PUT and compared chunk by chunk on GET (memcmp, so
verification stays far cheaper than the transfer).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from collections.abc import AsyncIterator
from functools import lru_cache

CHUNK = 1 << 20
HEADER = 16  # chunk index (8 bytes) + key tag (8 bytes)
_POOL = 64


@lru_cache(maxsize=8)
def _small_pool(size: int) -> tuple[bytes, ...]:
    rng = random.Random(f"pails-bench-{size}")
    return tuple(rng.randbytes(size) for _ in range(_POOL))


def small_body(key: str, size: int) -> bytes:
    """Deterministic pseudo-random contents of ``size`` bytes for ``key``."""
    if size == 0:
        return b""
    kb = key.encode()
    if len(kb) >= size:
        return kb[:size]
    blob = _small_pool(size)[zlib.crc32(kb) % _POOL]
    return kb + blob[len(kb) :]


class LargePattern:
    """Contents of a large object, addressable one 1 MiB chunk at a time."""

    def __init__(self, key: str, size: int) -> None:
        digest = hashlib.sha256(key.encode()).digest()
        self.size = size
        self.tag = digest[:8]
        self.block = random.Random(digest).randbytes(CHUNK)
        self.chunks = (size + CHUNK - 1) // CHUNK

    def chunk(self, i: int) -> bytes:
        length = min(CHUNK, self.size - i * CHUNK)
        data = struct.pack(">Q", i) + self.tag + self.block[HEADER:length]
        return data[:length]

    async def stream(self) -> AsyncIterator[bytes]:
        for i in range(self.chunks):
            yield self.chunk(i)


class StreamVerifier:
    """Feed received bytes in any piece sizes; ``finish()`` says whether all matched.

    Zero-copy: each piece is compared in place (``bytes.startswith`` at an offset is a
    memcmp) against the chunk header or the per-key block it must equal.
    """

    def __init__(self, pattern: LargePattern) -> None:
        self.pattern = pattern
        self.received = 0
        self.ok = True

    def feed(self, data: bytes | memoryview) -> None:
        pos = self.received
        self.received += len(data)
        if not self.ok:
            return
        if self.received > self.pattern.size:
            self.ok = False
            return
        mv = memoryview(data)
        block, tag = self.pattern.block, self.pattern.tag
        while mv:
            index, off = divmod(pos, CHUNK)
            take = min(len(mv), CHUNK - off)
            piece = mv[:take]
            if off < HEADER:
                h = min(HEADER - off, take)
                header = struct.pack(">Q", index) + tag
                if not header.startswith(piece[:h], off):
                    self.ok = False
                    return
                piece, off = piece[h:], off + h
            if piece and not block.startswith(piece, off):
                self.ok = False
                return
            pos += take
            mv = mv[take:]

    def finish(self) -> bool:
        return self.ok and self.received == self.pattern.size
